"""Content negotiation for operations that answer a file (zip, text, CSV, SVG) as well as JSON.

Their file answers bypass DRF's renderers, so DRF alone would refuse ``Accept: application/zip``
with 406 although the schema says the operation answers with it -- and generated clients send
exactly that header. Here the ``Accept`` header is satisfied by any media type the operation
answers with; its errors still render as JSON, the one error shape.
"""

from __future__ import annotations

from rest_framework.exceptions import NotAcceptable
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import JSONRenderer
from rest_framework.utils.mediatypes import media_type_matches


class _FileAnswers(DefaultContentNegotiation):
    media_types: tuple[str, ...] = ()

    def select_renderer(self, request, renderers, format_suffix=None):
        try:
            return super().select_renderer(request, renderers, format_suffix)
        except NotAcceptable:
            accepted = [part.split(";")[0].strip() for part in self.get_accept_list(request)]
            if any(media_type_matches(mine, theirs) for theirs in accepted for mine in self.media_types):
                return JSONRenderer(), JSONRenderer.media_type
            raise


def answers_with(*media_types: str) -> type[DefaultContentNegotiation]:
    """A view's ``content_negotiation_class`` when it also answers with ``media_types``."""
    return type("FileAnswers", (_FileAnswers,), {"media_types": media_types})
