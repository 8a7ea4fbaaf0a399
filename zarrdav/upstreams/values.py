"""Upstream strings that zarrdav puts into the headers of its own answers.

An ETag, a redirect URL or a media type comes from a manifest or the
archive as it is. A CR LF in one would write headers of the upstream's
choosing into the answer, so each is checked where it is taken from its
upstream, and refused with an error naming the field and the item.
Values that go into URLs are percent-encoded instead and need no check.
"""

from __future__ import annotations

import re

from zarrdav.errors import UpstreamError

# Visible ASCII and Latin-1 letters; no controls (CR, LF, TAB, DEL, C1).
_SENDABLE = re.compile(r"[\x20-\x7e\xa0-\xff]*")
# An entity tag's characters (RFC 9110 etagc): no space, no quote.
_ETAG = re.compile(r"[\x21\x23-\x7e\xa0-\xff]*")
# A URL as sent in Location: visible ASCII only, anything else percent-encoded.
_URL = re.compile(r"[\x21-\x7e]*")


def sendable(value: str, field: str) -> bool:
    """Whether ``value`` can be sent as the ``field`` header as it is."""
    pattern = _ETAG if field == "ETag" else _URL if field == "Location" else _SENDABLE
    return pattern.fullmatch(value) is not None


def header_value(value: str, field: str, item: str) -> str:
    """``value`` if it can be sent as the ``field`` header; else an error naming ``item``."""
    if not sendable(value, field):
        raise unsendable(field, item)
    return value


def unsendable(field: str, item: str) -> UpstreamError:
    return UpstreamError(f"{item}: its {field} cannot be sent in a header")
