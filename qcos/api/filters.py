from __future__ import annotations

import json
from datetime import UTC

import django_filters
from django import forms
from django.db.models import TextField
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast
from django_filters.fields import IsoDateTimeField
from rest_framework.exceptions import ValidationError

from qcos.jobs.models import QuantumJob
from qcos.jobs.states import JobStatus


class TagText(KeyTextTransform):
    """A tag's value by its key, the key always an object key: Django reads an all-digit key such
    as "5" as an array index (which PostgreSQL then refuses for a key past 2^63)."""

    def as_postgresql(self, compiler, connection):
        lhs, params = compiler.compile(self.lhs)
        return f"({lhs} ->> %s)", (*params, self.key_name)

    def as_sqlite(self, compiler, connection):
        lhs, params = compiler.compile(self.lhs)
        return f"JSON_EXTRACT({lhs}, %s)", (*params, "$." + json.dumps(self.key_name))


class UtcDateTimeField(IsoDateTimeField):
    """An ISO 8601 date-time that must be expressible in UTC (years 1 to 9999 there), so that an
    offset at either end of the calendar is refused here, not overflowed in the database driver."""

    def to_python(self, value):
        moment = super().to_python(value)
        try:
            return moment.astimezone(UTC) if moment is not None else None
        except OverflowError:
            raise forms.ValidationError("the date-time is out of range in UTC", code="invalid") from None


class UtcDateTimeFilter(django_filters.IsoDateTimeFilter):
    field_class = UtcDateTimeField


class JobFilter(django_filters.FilterSet):
    """``?status=&project=&backend=&tag=k=v&submitted_after=&submitted_before=``.

    ``tag`` is ``key=value`` (exact) or ``key`` (present); repeat it to require several.
    """

    status = django_filters.MultipleChoiceFilter(choices=JobStatus.choices)
    project = django_filters.CharFilter(field_name="project__slug")
    backend = django_filters.CharFilter()
    submitted_after = UtcDateTimeFilter(field_name="submitted_at", lookup_expr="gte")
    submitted_before = UtcDateTimeFilter(field_name="submitted_at", lookup_expr="lt")

    class Meta:
        model = QuantumJob
        fields = ["status", "project", "backend", "submitted_after", "submitted_before"]

    def filter_queryset(self, queryset):
        # Every ``tag`` counts, not only the last one (which a declared filter would see): an
        # empty one requires nothing, wherever it stands.
        queryset = super().filter_queryset(queryset)
        return self.filter_tag(queryset, self.request.query_params.getlist("tag") if self.request else [])

    def filter_tag(self, queryset, items):
        # KeyTextTransform keeps the key a plain string (a key like "a__b" is not a lookup path);
        # the cast makes "=" a text comparison on SQLite too, not a JSON one.
        for i, item in enumerate(item for item in items if item):
            key, sep, tag_value = item.partition("=")
            if not key:
                raise ValidationError({"tag": ["use key=value or key"]})
            alias = f"_tag{i}"
            queryset = queryset.alias(**{alias: Cast(TagText(key, "tags"), TextField())})
            queryset = queryset.filter(**({alias: tag_value} if sep else {f"{alias}__isnull": False}))
        return queryset
