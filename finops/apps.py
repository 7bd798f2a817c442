from django.apps import AppConfig


class FinopsConfig(AppConfig):
    name = "finops"
    verbose_name = "FinOps"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import sheets  # noqa: F401  (drops cached price sheets when a version is saved)
