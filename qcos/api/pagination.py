import contextlib

from rest_framework.exceptions import ValidationError
from rest_framework.pagination import LimitOffsetPagination


class JobPagination(LimitOffsetPagination):
    """``limit``/``offset`` with a total ``count``; scoped querysets keep the count per tenant.

    Unlike DRF's default, a ``limit`` or ``offset`` that is not a whole number in range is a
    ``VALIDATION_ERROR`` rather than silently replaced by the default; a ``limit`` above
    ``max_limit`` is capped at it."""

    default_limit = 50
    max_limit = 500

    def _param(self, request, name: str, default: int, minimum: int) -> int:
        raw = request.query_params.get(name)
        if raw is None:
            return default
        with contextlib.suppress(ValueError):
            if (value := int(raw)) >= minimum:
                return value
        raise ValidationError({name: [f"must be a whole number of at least {minimum}"]})

    def get_limit(self, request) -> int:
        return min(self._param(request, self.limit_query_param, self.default_limit, 1), self.max_limit)

    def get_offset(self, request) -> int:
        return self._param(request, self.offset_query_param, 0, 0)
