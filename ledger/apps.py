from django.apps import AppConfig


class LedgerConfig(AppConfig):
    """Audit log, provenance, evidence bundles, signing keys and the transparency registry."""

    name = "ledger"
    label = "ledger"
    verbose_name = "Ledger"
