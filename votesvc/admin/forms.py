"""The console's forms as they arrive: urlencoded, bounded, the first value of each field.

Parsed here rather than by Starlette's form parser, which needs python-multipart
for this too; the console's forms are all ``application/x-www-form-urlencoded``.
"""

from __future__ import annotations

from urllib.parse import parse_qs

from starlette.requests import Request

__all__ = ["FORM_MAX", "FormTooLarge", "read_form"]

FORM_MAX = 512 * 1024  # bytes of a form: 10,000 vote ids fit
_FIELDS_MAX = 64


class FormTooLarge(Exception):
    """The body is over :data:`FORM_MAX`."""


async def read_form(request: Request) -> dict[str, str]:
    """The request's fields (the first value of each); raises FormTooLarge."""
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > FORM_MAX:
            raise FormTooLarge
    try:
        fields = parse_qs(body.decode("utf-8"), keep_blank_values=True, max_num_fields=_FIELDS_MAX)
    except (UnicodeDecodeError, ValueError):  # not UTF-8, too many fields
        return {}
    return {name: values[0] for name, values in fields.items()}
