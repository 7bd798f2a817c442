"""FinOps in the Django admin: price sheets, budget policies, windows and charges, the approval
queue and the decision form. Every decision goes through ``qcos.jobs.approvals.job_decide``, so
four-eyes, atomicity and the budget re-check hold here exactly as in the API."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db import models
from django.shortcuts import render
from django.utils import timezone

from qcos.errors import QCOSError
from qcos.jobs.approvals import job_decide
from qcos.jobs.models import QuantumJob
from qcos.jobs.states import JobStatus
from qcos.tenancy.admin import ServiceWrittenMixin, TenantScopedAdmin

from . import admin_reports  # noqa: F401  (chargeback reports and the cost dashboard)
from .models import (
    ApprovalDecision,
    BudgetPolicy,
    BudgetWindow,
    Charge,
    Decision,
    PendingApproval,
    PriceSheetVersion,
    usd,
)
from .policy import policy_save
from .sheets import sheet_publish, sheet_validate


# --- price sheets ----------------------------------------------------------------------------------


class PriceSheetVersionForm(forms.ModelForm):
    class Meta:
        model = PriceSheetVersion
        fields = ["sheet_id", "family", "effective_from", "parameters", "notes"]

    def clean(self):
        data = super().clean()
        try:
            sheet_validate(sheet_id=data.get("sheet_id") or "", family=data.get("family") or "",
                           effective_from=data.get("effective_from") or timezone.now().date(),
                           parameters=data.get("parameters") or {}, notes=data.get("notes") or "")
        except (ValueError, TypeError, ArithmeticError) as exc:
            raise ValidationError(f"not a valid price sheet: {exc}") from None
        return data


@admin.register(PriceSheetVersion)
class PriceSheetVersionAdmin(admin.ModelAdmin):
    """Saving never edits a version: it publishes the next one (``version`` + 1), effective from
    the date given. Estimates keep pointing at the version that priced them."""

    form = PriceSheetVersionForm
    list_display = ["sheet_id", "version", "family", "effective_from", "created_by", "created_at"]
    list_filter = ["family"]
    search_fields = ["sheet_id"]
    readonly_fields = ["version", "created_by", "created_at"]

    def save_model(self, request, obj, form, change):
        published = sheet_publish(sheet_id=obj.sheet_id, family=obj.family, effective_from=obj.effective_from,
                                  parameters=obj.parameters, notes=obj.notes, user=request.user)
        obj.pk, obj.version = published.pk, published.version  # the admin redirects to what was published
        messages.info(request, f"published {obj.sheet_id} version {obj.version}; earlier versions are unchanged")

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


# --- budgets ---------------------------------------------------------------------------------------


@admin.register(BudgetPolicy)
class BudgetPolicyAdmin(TenantScopedAdmin):
    list_display = ["__str__", "monthly_limit_usd", "daily_limit_usd", "per_job_limit_usd", "on_exceeded",
                    "on_per_job_exceeded", "updated_at"]
    list_select_related = ["tenant", "project"]
    readonly_fields = ["source", "updated_at"]
    # A webhook typed without a scheme is taken as https:// (Django 6's default; http:// stays
    # possible by typing it), never silently as plain http.
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}

    def save_model(self, request, obj, form, change):
        policy_save(policy=obj, actor=self.admin_actor(request, obj.tenant), changed=form.changed_data)


@admin.register(BudgetWindow)
class BudgetWindowAdmin(ServiceWrittenMixin, TenantScopedAdmin):
    tenant_field = "policy__tenant"
    list_display = ["policy", "kind", "period_start", "limit", "spent", "reserved", "hard"]
    list_select_related = ["policy__tenant", "policy__project"]
    list_filter = ["kind"]
    date_hierarchy = "period_start"

    @admin.display(description="limit (USD)")
    def limit(self, obj):
        return usd(obj.limit_micros)

    @admin.display(description="spent (USD)")
    def spent(self, obj):
        return usd(obj.spent_micros)

    @admin.display(description="reserved (USD)")
    def reserved(self, obj):
        return usd(obj.reserved_micros)


@admin.register(Charge)
class ChargeAdmin(ServiceWrittenMixin, TenantScopedAdmin):
    list_display = ["resource_id", "tenant", "project", "backend", "status", "estimated", "settled", "created_at"]
    list_select_related = ["tenant", "project"]
    list_filter = ["status", "backend"]
    search_fields = ["resource_id"]
    show_full_result_count = False

    @admin.display(description="estimate (USD)")
    def estimated(self, obj):
        return usd(obj.estimated_micros)

    @admin.display(description="settled (USD)")
    def settled(self, obj):
        return usd(obj.settled_micros)


# --- approvals -------------------------------------------------------------------------------------


class ReasonForm(forms.Form):
    _selected_action = forms.CharField(widget=forms.MultipleHiddenInput)
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 3, "cols": 60}), required=False)


def _decide_many(modeladmin, request, queryset, decision: str):
    if "apply" in request.POST:
        form = ReasonForm(request.POST)
        if form.is_valid():
            done = 0
            for job in queryset.select_related("tenant"):
                try:
                    job_decide(user=request.user, job=job, decision=decision,
                               reason=form.cleaned_data["reason"], channel="admin")
                    done += 1
                except QCOSError as exc:
                    modeladmin.message_user(request, f"{job.pk}: {exc.code}: {exc.message}", messages.ERROR)
            if done:
                verb = "approved" if decision == Decision.APPROVE else "rejected"
                modeladmin.message_user(request, f"{verb} {done} job(s)", messages.SUCCESS)
            return None
    form = ReasonForm(initial={"_selected_action": request.POST.getlist(admin.helpers.ACTION_CHECKBOX_NAME)})
    return render(request, "admin/finops/decision_reason.html", {
        **modeladmin.admin_site.each_context(request),
        "title": f"{decision.capitalize()} {queryset.count()} job(s)",
        "jobs": queryset.select_related("project", "submitted_by"), "form": form,
        "action": f"{decision}_selected", "decision": decision, "opts": modeladmin.model._meta,
    })


@admin.register(PendingApproval)
class PendingApprovalAdmin(ServiceWrittenMixin, TenantScopedAdmin):
    """The approvers' queue: jobs in PENDING_APPROVAL with approve and reject actions (a reason
    is asked for; a rejection needs one)."""

    list_display = ["id", "tenant", "project", "submitted_by", "backend", "shots", "priority",
                    "estimated_cost_usd", "submitted_at"]
    list_select_related = ["tenant", "project", "submitted_by"]
    list_filter = ["tenant", "backend"]
    actions = ["approve_selected", "reject_selected"]
    ordering = ["submitted_at"]

    def get_queryset(self, request):
        return super().get_queryset(request).filter(status=JobStatus.PENDING_APPROVAL)

    @admin.action(description="Approve the selected jobs", permissions=["change"])
    def approve_selected(self, request, queryset):
        return _decide_many(self, request, queryset, Decision.APPROVE)

    @admin.action(description="Reject the selected jobs", permissions=["change"])
    def reject_selected(self, request, queryset):
        return _decide_many(self, request, queryset, Decision.REJECT)


class DecisionForm(forms.ModelForm):
    class Meta:
        model = ApprovalDecision
        fields = ["job", "decision", "reason"]

    def __init__(self, *args, request=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.request = request
        jobs = QuantumJob.objects.filter(status=JobStatus.PENDING_APPROVAL).select_related("tenant")
        if request is not None and not request.user.is_superuser:
            jobs = jobs.filter(tenant__memberships__user=request.user).distinct()
        self.fields["job"].queryset = jobs

    def clean(self):
        data = super().clean()
        job = data.get("job")
        if job is not None and self.request is not None:
            try:
                self.decided = job_decide(user=self.request.user, job=job, decision=data.get("decision", ""),
                                          reason=data.get("reason", ""), channel="admin-form")
            except QCOSError as exc:
                raise ValidationError(f"{exc.code}: {exc.message}") from None
        return data

    def validate_unique(self):
        pass  # the decision was recorded (or refused) by the service in clean()


@admin.register(ApprovalDecision)
class ApprovalDecisionAdmin(TenantScopedAdmin):
    """Decisions taken, and a form to take one; the form calls the same service as the API."""

    tenant_field = "job__tenant"
    form = DecisionForm
    list_display = ["job", "decision", "decided_by", "submitted_by", "decided_at"]
    list_select_related = ["job", "decided_by", "submitted_by"]
    list_filter = ["decision"]

    def get_form(self, request, obj=None, **kwargs):
        form_class = super().get_form(request, obj, **kwargs)

        class WithRequest(form_class):
            def __new__(cls, *args, **kw):
                kw["request"] = request
                return form_class(*args, **kw)

        return WithRequest

    def save_model(self, request, obj, form, change):
        pass  # job_decide wrote the decision row, the job's new state and the audit entries

    def get_readonly_fields(self, request, obj=None):
        return ["job", "decision", "reason", "decided_by", "submitted_by", "decided_at"] if obj else []

    def has_change_permission(self, request, obj=None) -> bool:
        return obj is None and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
