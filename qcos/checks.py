"""System checks with their own ids, for misconfiguration an operator can make."""

from django.conf import settings
from django.core.checks import Error, Tags, Warning, register


@register(Tags.security, deploy=True)
def check_secret_key(app_configs, **kwargs):
    if not settings.DEBUG and settings.SECRET_KEY == settings.DEV_SECRET_KEY:
        return [
            Error(
                "SECRET_KEY is the development key while DEBUG is off.",
                hint="Set SECRET_KEY (or SECRET_KEY_FILE) to a long random value.",
                id="qcos.E001",
            )
        ]
    return []


@register()
def check_broker(app_configs, **kwargs):
    db_engine = settings.DATABASES["default"]["ENGINE"]
    messages = []
    has_broker = not settings.CELERY_BROKER_URL.startswith("memory://")
    if has_broker and "sqlite" in db_engine:
        messages.append(
            Error(
                "CELERY_BROKER_URL is set but the database is SQLite: worker processes and the web "
                "process would not share one reliable database.",
                hint="Set DATABASE_URL to PostgreSQL, or unset CELERY_BROKER_URL for the embedded mode.",
                id="qcos.E002",
            )
        )
    if not settings.CELERY_TASK_ALWAYS_EAGER and not has_broker:
        messages.append(
            Error(
                "Tasks are not eager but no CELERY_BROKER_URL is set: jobs would never run.",
                id="qcos.E003",
            )
        )
    lease = settings.QCOS["JOB_LEASE_SECONDS"]
    if lease < 1:
        messages.append(Error("QCOS_JOB_LEASE_SECONDS must be at least 1.", id="qcos.E004"))
    visibility = settings.CELERY_BROKER_TRANSPORT_OPTIONS.get("visibility_timeout", 3600)
    if settings.CELERY_BROKER_URL.startswith("redis") and visibility <= settings.CELERY_TASK_TIME_LIMIT:
        messages.append(
            Warning(
                "The Redis visibility timeout is not above the task time limit: a running job "
                "would be delivered again while it still runs.",
                id="qcos.W001",
            )
        )
    return messages
