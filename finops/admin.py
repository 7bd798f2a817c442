"""FinOps in the Django admin: price sheets, budget policies, the approval queue, reports."""

from . import admin_reports  # noqa: F401  (chargeback reports and the cost dashboard)
