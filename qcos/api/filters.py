from __future__ import annotations

import django_filters
from django.db.models import TextField
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast
from rest_framework.exceptions import ValidationError

from qcos.jobs.models import QuantumJob
from qcos.jobs.states import JobStatus


class JobFilter(django_filters.FilterSet):
    """``?status=&project=&backend=&tag=k=v&submitted_after=&submitted_before=``.

    ``tag`` is ``key=value`` (exact) or ``key`` (present); repeat it to require several.
    """

    status = django_filters.MultipleChoiceFilter(choices=JobStatus.choices)
    project = django_filters.CharFilter(field_name="project__slug")
    backend = django_filters.CharFilter()
    tag = django_filters.CharFilter(method="filter_tag")
    submitted_after = django_filters.IsoDateTimeFilter(field_name="submitted_at", lookup_expr="gte")
    submitted_before = django_filters.IsoDateTimeFilter(field_name="submitted_at", lookup_expr="lt")

    class Meta:
        model = QuantumJob
        fields = ["status", "project", "backend", "tag", "submitted_after", "submitted_before"]

    def filter_tag(self, queryset, name, value):
        # KeyTextTransform keeps the key a plain string (a key like "a__b" is not a lookup path);
        # the cast makes "=" a text comparison on SQLite too, not a JSON one.
        for i, item in enumerate(self.request.query_params.getlist("tag") if self.request else [value]):
            key, sep, tag_value = item.partition("=")
            if not key:
                raise ValidationError({"tag": ["use key=value or key"]})
            alias = f"_tag{i}"
            queryset = queryset.alias(**{alias: Cast(KeyTextTransform(key, "tags"), TextField())})
            queryset = queryset.filter(**({alias: tag_value} if sep else {f"{alias}__isnull": False}))
        return queryset
