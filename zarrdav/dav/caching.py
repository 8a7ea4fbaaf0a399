"""What a browser or proxy may keep of an answer, and conditional GETs: decided here only.

Whatever is reached through a pinned path never changes: a Zarr as of a
manifest (``/zarrs/<p1>/<p2>/<zarr_id>/<checksum>.zarr/...``) and a
published version (``/dandisets/<id>/releases/<version>/...``, which serves
Zarr assets as of the checksums it pinned). Those answers, redirects
included, may be kept for a year without asking again. Everything else can
change (drafts, ``latest/``, the listings of Dandisets, releases, Zarrs and
manifests, live views of Zarrs without a manifest): such answers may be
kept ``max_age`` seconds, and errors too, since a missing manifest or an
archive fault may be gone in a moment; a 5xx is never stored.

A GET or HEAD of a folder (its HTML page) or of a file served inline
(``dandiset.yaml``) is answered ``304`` when the client's copy is current
(RFC 9110 §13.1.2, §13.1.3). A redirect is never a 304: RFC 9110 §13.2.1
evaluates preconditions only for answers that would be 2xx, and a file's
bytes are revalidated where the redirect leads.
"""

from __future__ import annotations

import re
from datetime import UTC
from email.utils import parsedate_to_datetime
from functools import lru_cache

from zarrdav.dav.resources import UNDATED, Collection, File, Resource
from zarrdav.edge.answer import Answer, Headers
from zarrdav.edge.compression import VARY  # a folder's page may be gzipped
from zarrdav.edge.layers import PRIVATE_ANSWER, Handler
from zarrdav.edge.request import Request

IMMUTABLE = "public, max-age=31536000, immutable"
NO_STORE = "no-store"
CACHE_CONTROL = "Cache-Control"
# A folder's page differs for browsers (zarrdav.dav.pages); its 304 says so as its 200 does.
ACCEPT_VARY = ("Vary", "Accept")
_TAG = re.compile(r'(?:W/)?"([^"]*)"')


class CachePolicy:
    """``Cache-Control`` of every answer; ``max_age`` for what may change."""

    def __init__(self, max_age: int) -> None:
        self.changing = f"public, max-age={max_age}"

    def control(self, resource: Resource) -> str:
        """The ``Cache-Control`` of an answer about ``resource`` (found: 2xx or 3xx)."""
        if isinstance(resource, File) and resource.private:
            return PRIVATE_ANSWER[1]
        path = resource.path
        if path.startswith("/zarrs/"):
            # /zarrs/<p1>/<p2>/<zarr_id>/<checksum>.zarr/...: a path that
            # resolved with a segment after the Zarr id is inside a manifest.
            return IMMUTABLE if path.count("/") >= 6 else self.changing
        if path.startswith("/dandisets/") and resource.pinned:
            parts = path.split("/", 5)
            if len(parts) == 6 and parts[3] == "releases":
                return IMMUTABLE
        return self.changing

    def not_modified(self, request: Request, resource: Resource, headers: Headers) -> Answer | None:
        """The ``304`` for a GET or HEAD of ``resource`` whose client copy is current, else None.

        ``headers`` are the resource's validators; the 304 carries them and
        ``Cache-Control`` (and ``Vary`` for a folder), as its 200 would.
        """
        if not _current(request, resource):
            return None
        return Answer(304, [*headers, (CACHE_CONTROL, self.control(resource)),
                            *((ACCEPT_VARY, VARY) if isinstance(resource, Collection) else ())])

    def layer(self, inner: Handler) -> Handler:
        """Errors, which the handlers never mark: kept briefly, and a 5xx not at all."""

        def marked(request: Request) -> Answer:
            answer = inner(request)
            status = answer.status
            if status >= 400 and all(name != CACHE_CONTROL for name, _ in answer.headers):
                answer.headers.append((CACHE_CONTROL, NO_STORE if status >= 500 else self.changing))
            return answer

        return marked


def _current(request: Request, resource: Resource) -> bool:
    """Whether the client's copy is current: If-None-Match, or else If-Modified-Since."""
    if request.if_none_match is not None:
        # Weak comparison (§13.1.2): a gzipped page's W/"x" is the page "x".
        tags = request.if_none_match.strip()
        return tags == "*" or (resource.etag is not None and resource.etag in _TAG.findall(tags))
    if request.if_modified_since is None or resource.modified is None or resource.modified == UNDATED:
        return False  # UNDATED: the top folders' fixed date, which their contents change without
    since = _http_date(request.if_modified_since)
    return since is not None and resource.modified.timestamp() // 1 <= since


def _http_date(field: str) -> float | None:
    """Seconds since the epoch of an HTTP-date; None for anything else (ignored, §13.1.3)."""
    return _parsed_date(field) if len(field) <= _DATE_CHARS else None


_DATE_CHARS = 64  # "Sun, 06 Nov 1994 08:49:37 GMT" and its obsolete forms fit; no cache of long junk


@lru_cache(maxsize=256)
def _parsed_date(field: str) -> float | None:
    try:
        moment = parsedate_to_datetime(field)
    except (TypeError, ValueError, IndexError):
        return None
    if moment.tzinfo is None:  # "-0000": UTC, as every HTTP-date is
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()
