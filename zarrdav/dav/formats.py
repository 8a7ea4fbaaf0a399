"""Encodings that every answer needs, made cheap for the hot paths.

A Zarr's keys (``0.1.2``, ``c/0/1``) rarely need percent-encoding, and a
listing's entries share few timestamps (chunks are written in bursts): both
are worth a shortcut when a GET must cost microseconds and a listing may
hold 10,000 chunks.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from email.utils import format_datetime
from functools import lru_cache
from urllib.parse import quote

# Texts ``quote`` leaves alone: unreserved characters, and "/" in paths.
_UNCHANGED = {
    "/": re.compile(r"[A-Za-z0-9_.~/-]*"),
    "": re.compile(r"[A-Za-z0-9_.~-]*"),
}


def quote_url(text: str, safe: str = "/") -> str:
    """``urllib.parse.quote(text, safe)`` (``safe`` is "/" or ""), without its
    cost when nothing needs encoding."""
    return text if _UNCHANGED[safe].fullmatch(text) else quote(text, safe)


@lru_cache(maxsize=4096)
def http_date(moment: datetime) -> str:
    """RFC 1123, as Last-Modified and getlastmodified want it."""
    return format_datetime(moment.astimezone(UTC), usegmt=True)


@lru_cache(maxsize=4096)
def iso_date(moment: datetime) -> str:
    """RFC 3339 in UTC, as creationdate wants it."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
