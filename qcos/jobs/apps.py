from django.apps import AppConfig


class JobsConfig(AppConfig):
    """Quantum jobs: submission, lifecycle and results."""

    name = "qcos.jobs"
    label = "jobs"
    verbose_name = "Quantum jobs"
