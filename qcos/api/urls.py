from django.urls import path

from finops import api as finops_api

from . import audit, budgets, estimates, ledger_views, views

urlpatterns = [
    path("jobs", views.JobListCreateView.as_view(), name="jobs"),
    path("jobs/<str:job_id>", views.JobDetailView.as_view(), name="job-detail"),
    path("jobs/<str:job_id>/cancel", views.JobCancelView.as_view(), name="job-cancel"),
    path("jobs/<str:job_id>/approve", budgets.JobApproveView.as_view(), name="job-approve"),
    path("jobs/<str:job_id>/reject", budgets.JobRejectView.as_view(), name="job-reject"),
    path("approvals", budgets.ApprovalListView.as_view(), name="approvals"),
    path("budget/check", budgets.BudgetCheckView.as_view(), name="budget-check"),
    path("budgets", budgets.BudgetStatusView.as_view(), name="budgets"),
    path("jobs/<str:job_id>/evidence", ledger_views.JobEvidenceView.as_view(), name="job-evidence"),
    path("ledger/keys", ledger_views.PublicKeysView.as_view(), name="ledger-keys"),
    path("ledger/bundles/verify", ledger_views.BundleVerifyView.as_view(), name="bundle-verify"),
    path("registry/checkpoint", ledger_views.CheckpointView.as_view(), name="registry-checkpoint"),
    path("registry/proof/inclusion", ledger_views.InclusionProofView.as_view(), name="registry-inclusion"),
    path("registry/proof/consistency", ledger_views.ConsistencyProofView.as_view(), name="registry-consistency"),
    path("registry/leaves/<str:bundle_id>", ledger_views.LeafView.as_view(), name="registry-leaf"),
    path("estimates", estimates.EstimateView.as_view(), name="estimates"),
    path("backends", estimates.BackendListView.as_view(), name="backends"),
    path("audit", audit.AuditListView.as_view(), name="audit"),
    path("audit/verify", audit.AuditVerifyView.as_view(), name="audit-verify"),
    path("reports", finops_api.ReportCreateView.as_view(), name="reports"),
    path("reports/<str:report_id>", finops_api.ReportDetailView.as_view(), name="report-detail"),
    path("reports/<str:report_id>/download", finops_api.ReportDownloadView.as_view(), name="report-download"),
]
