from rest_framework.pagination import LimitOffsetPagination


class JobPagination(LimitOffsetPagination):
    """``limit``/``offset`` with a total ``count``; scoped querysets keep the count per tenant."""

    default_limit = 50
    max_limit = 500
