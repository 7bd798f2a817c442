from django.apps import AppConfig


class BenchConfig(AppConfig):
    """Benchmark runs: governed, signed reports over the Django-free core in this package."""

    name = "bench"
    label = "bench"
    verbose_name = "Benchmarks"
    default_auto_field = "django.db.models.BigAutoField"
