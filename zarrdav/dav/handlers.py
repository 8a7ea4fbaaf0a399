"""The methods of a read-only WebDAV server: GET, HEAD, PROPFIND, OPTIONS.

Each handler turns a decoded path into a resource through the provider and
answers; every error zarrdav raises on purpose becomes a short plain-text
answer with its status (see ``zarrdav.errors``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from itertools import chain

from zarrdav.dav.caching import ACCEPT_VARY, CACHE_CONTROL, CachePolicy
from zarrdav.dav.delivery import Delivery
from zarrdav.dav.formats import http_date, quote_url
from zarrdav.dav.pages import collection_page, site_url
from zarrdav.dav.propfind import BadPropfind, parse_propfind, render_multistatus
from zarrdav.dav.provider import Provider
from zarrdav.dav.resources import Collection, File, Resource
from zarrdav.edge.answer import Answer, Body
from zarrdav.edge.request import Request
from zarrdav.errors import BadRequest, MethodNotAllowed, NotFound, NotImplementedMethod

ALLOW = "OPTIONS, GET, HEAD, PROPFIND"
# Marks answers about a live, unpinned view of a Zarr (no manifest yet).
UNPINNED_HEADER = ("X-Zarrdav-Unpinned", "live S3 listing; no manifest for this checksum")
UNPINNED_NOTE = (
    "Live listing: there is no manifest for this Zarr's checksum yet, so these are the "
    "Zarr's current files on S3, not pinned to versions."
)
FINITE_DEPTH = (
    b'<?xml version="1.0" encoding="utf-8"?>\n'
    b'<D:error xmlns:D="DAV:"><D:propfind-finite-depth/></D:error>\n'
)
# Methods of HTTP and WebDAV that change things: known, and refused (405).
WRITE_METHODS = frozenset((
    "PUT", "POST", "DELETE", "PATCH", "MKCOL", "COPY", "MOVE", "LOCK", "UNLOCK", "PROPPATCH",
))
_XML = "application/xml; charset=utf-8"


class Handlers:
    """Answers every method for the provider's resources: the innermost handler."""

    def __init__(
        self, provider: Provider, max_body_bytes: int, delivery: Delivery, caching: CachePolicy,
        html_page_size: int = 1000,
    ) -> None:
        self._provider = provider
        self._caching = caching
        self._max_body_bytes = max_body_bytes
        self._delivery = delivery
        self._html_page_size = max(1, html_page_size)
        self._by_method: dict[str, Callable[[Request, str], Answer]] = {
            "GET": self._get,
            "HEAD": self._get,
            "PROPFIND": self._propfind,
            "OPTIONS": self._options,
        }

    def __call__(self, request: Request) -> Answer:
        handler = self._by_method.get(request.method)
        if handler is None:
            if request.method in WRITE_METHODS:
                raise MethodNotAllowed(f"{request.method} is not allowed: zarrdav is read-only", ALLOW)
            raise NotImplementedMethod(f"{request.method[:40]} is not a method zarrdav knows")
        path = request.path
        if path is None:
            raise NotFound("the path is not valid UTF-8")
        return handler(request, path)

    def _options(self, request: Request, path: str) -> Answer:
        if path != "*":
            self._provider.resource(path)
        return Answer(200, [("Allow", ALLOW), ("MS-Author-Via", "DAV"), ("Content-Length", "0"),
                            (CACHE_CONTROL, self._caching.changing)])

    def _get(self, request: Request, path: str) -> Answer:
        resource = self._provider.resource(path)
        caching = self._caching
        cache = (CACHE_CONTROL, caching.control(resource))
        if isinstance(resource, File):
            if path[-1] == "/":
                raise NotFound(f"{path} is a file, not a folder")
            if resource.body is not None:
                validators = _validators(resource, request)
                unchanged = caching.not_modified(request, resource, validators)
                if unchanged is not None:
                    return unchanged
                headers = [("Content-Type", resource.content_type), ("Content-Length", str(len(resource.body)))]
                return Answer(200, [*headers, *validators, cache], resource.body)
            return self._delivery.answer(request, resource, [*_validators(resource, request), cache])
        if path[-1] != "/":
            location = quote_url(f"{request.script_name}{path}/")
            if request.query:
                location += f"?{request.query}"
            return Answer.redirect(301, location, [cache])
        validators = _validators(resource, request)
        unchanged = caching.not_modified(request, resource, validators)
        if unchanged is not None:
            return unchanged
        notes = () if resource.pinned else (UNPINNED_NOTE,)
        members = list(self._provider.members(resource))
        page = collection_page(resource, members, request, self._html_page_size, notes)
        # Browsers get the listing in pages, other clients whole (zarrdav.dav.pages): it varies by Accept.
        headers = [("Content-Type", "text/html; charset=utf-8"), ("Content-Length", str(len(page))),
                   ACCEPT_VARY]
        return Answer(200, [*headers, *validators, cache], page)

    def _propfind(self, request: Request, path: str) -> Answer:
        depth = (request.depth or "infinity").strip().lower()
        if depth not in ("0", "1", "infinity"):
            raise BadRequest(f"Depth must be 0, 1 or infinity, not {depth[:20]!r}")
        body = request.read_body(self._max_body_bytes)
        resource = self._provider.resource(path)
        if isinstance(resource, File) and path.endswith("/"):
            raise NotFound(f"{path} is a file, not a folder")
        if depth == "infinity" and resource.is_collection:
            return Answer(403, [("Content-Type", _XML), ("Content-Length", str(len(FINITE_DEPTH)))],
                          FINITE_DEPTH)
        try:
            wanted = parse_propfind(body)
        except BadPropfind as error:
            raise BadRequest(str(error)) from error
        resources: Iterable[Resource] = (resource,)
        if depth == "1" and isinstance(resource, Collection):
            resources = chain(resources, self._provider.members(resource))
        # Past this point only formatting happens: the answer is sent as it is written.
        answer = _sized(render_multistatus(wanted, resources, request.script_name, site_url(request)))
        headers = [("Content-Type", _XML), (CACHE_CONTROL, self._caching.control(resource))]
        if isinstance(answer, bytes):
            headers.append(("Content-Length", str(len(answer))))
        return Answer(207, headers, answer)


def _sized(chunks: Iterator[bytes]) -> Body:
    """A short answer whole, with its length; a long one as the stream it is."""
    first = next(chunks, b"")
    second = next(chunks, None)
    if second is None:
        return first
    return chain((first, second), chunks)


def _validators(resource: Resource, request: Request) -> list[tuple[str, str]]:
    """ETag and Last-Modified as PROPFIND has them, and the permanent URL of a draft/ or latest/ path."""
    headers = [] if resource.pinned else [UNPINNED_HEADER]
    if resource.etag is not None:
        headers.append(("ETag", f'"{resource.etag}"'))
    if resource.modified is not None:
        headers.append(("Last-Modified", http_date(resource.modified)))
    if resource.canonical is not None:
        url = f"{site_url(request)}{quote_url(resource.canonical)}"
        headers.append(("Link", f'<{url}>; rel="canonical"'))
    return headers

