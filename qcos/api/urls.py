from django.urls import path

from . import audit, views

urlpatterns = [
    path("jobs", views.JobListCreateView.as_view(), name="jobs"),
    path("jobs/<str:job_id>", views.JobDetailView.as_view(), name="job-detail"),
    path("jobs/<str:job_id>/cancel", views.JobCancelView.as_view(), name="job-cancel"),
    path("audit", audit.AuditListView.as_view(), name="audit"),
    path("audit/verify", audit.AuditVerifyView.as_view(), name="audit-verify"),
]
