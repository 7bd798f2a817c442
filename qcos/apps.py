from django.apps import AppConfig


class QcosConfig(AppConfig):
    """Project-level hooks: system checks for misconfiguration a user can make."""

    name = "qcos"
    verbose_name = "QCOS"

    def ready(self) -> None:
        from . import checks  # noqa: F401  (registers the checks)
