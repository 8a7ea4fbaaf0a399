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
    cost when nothing needs encoding. A lone surrogate (an upstream's JSON may
    hold one) is encoded as its UTF-8-like bytes rather than failing."""
    return text if _UNCHANGED[safe].fullmatch(text) else quote(text, safe, errors="surrogatepass")


# What XML 1.0 cannot hold at all, not even as a character reference: C0
# controls but tab, LF and CR; lone surrogates; U+FFFE and U+FFFF.
_UNREPRESENTABLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def representable(text: str) -> str:
    """``text`` with each character XML 1.0 cannot hold replaced by U+FFFD.

    Names are shown this way in PROPFIND and HTML text; their hrefs keep the
    exact name, percent-encoded, so the resource stays reachable.
    """
    return text if text.isprintable() else _UNREPRESENTABLE.sub("\ufffd", text)


@lru_cache(maxsize=4096)
def http_date(moment: datetime) -> str:
    """RFC 1123, as Last-Modified and getlastmodified want it."""
    return format_datetime(moment.astimezone(UTC), usegmt=True)


@lru_cache(maxsize=4096)
def iso_date(moment: datetime) -> str:
    """RFC 3339 in UTC, as creationdate wants it."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
