from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _sync_role_groups(sender, **kwargs) -> None:
    from .services import role_groups_sync

    role_groups_sync()


class TenancyConfig(AppConfig):
    """Tenants, projects, memberships with roles, and API keys."""

    name = "qcos.tenancy"
    label = "tenancy"
    verbose_name = "Tenants and access"

    def ready(self) -> None:
        # Permissions exist only after migrate, so the role groups are (re)built then.
        post_migrate.connect(_sync_role_groups, dispatch_uid="qcos.tenancy.role_groups")
