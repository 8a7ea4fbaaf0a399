"""The methods of a read-only WebDAV server: GET, HEAD, PROPFIND, OPTIONS.

Each handler turns a decoded path into a resource through the provider and
answers; every error zarrdav raises on purpose becomes a short plain-text
answer with its status (see ``zarrdav.errors``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from zarrdav.dav.formats import http_date, quote_url
from zarrdav.dav.html import render_listing
from zarrdav.dav.propfind import BadPropfind, parse_propfind, render_multistatus, MAX_BODY
from zarrdav.dav.provider import Provider
from zarrdav.dav.resources import Collection, File, Resource
from zarrdav.errors import NotFound, ZarrdavError
from zarrdav.edge.requestlog import Answer

StartResponse = Callable[..., Any]
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
_NO_BODY = (b"",)
_STATUS = {
    200: "200 OK",
    207: "207 Multi-Status",
    301: "301 Moved Permanently",
    307: "307 Temporary Redirect",
    400: "400 Bad Request",
    403: "403 Forbidden",
    404: "404 Not Found",
    405: "405 Method Not Allowed",
    413: "413 Content Too Large",
    500: "500 Internal Server Error",
    502: "502 Bad Gateway",
    503: "503 Service Unavailable",
    504: "504 Gateway Timeout",
}


class Handlers:
    """A WSGI application answering every method for the provider's resources."""

    METHODS = frozenset(("GET", "HEAD", "PROPFIND", "OPTIONS"))

    def __init__(self, provider: Provider) -> None:
        self._provider = provider
        self._by_method = {
            "GET": self._get,
            "HEAD": self._get,
            "PROPFIND": self._propfind,
            "OPTIONS": self._options,
        }

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        status, headers, body = self.answer(environ)
        start_response(status, headers)
        return body

    def answer(self, environ: dict[str, Any]) -> Answer:
        """The whole answer to a request, made before anything is sent."""
        method = environ["REQUEST_METHOD"]
        handler = self._by_method.get(method)
        if handler is None:
            return _plain(405, f"{method} is not allowed: zarrdav is read-only", [("Allow", ALLOW)])
        try:
            status, headers, body = handler(environ, _decoded_path(environ))
        except ZarrdavError as error:
            status, headers, body = _error(environ, error)
        # HEAD gets GET's headers, errors included, and never a body: one would
        # be read as the next answer on a kept-alive connection.
        return status, headers, _NO_BODY if method == "HEAD" else body

    def _options(self, environ: dict[str, Any], path: str) -> Answer:
        if path != "*":
            self._provider.resource(path)
        return _STATUS[200], [("DAV", "1"), ("Allow", ALLOW), ("MS-Author-Via", "DAV"),
                              ("Content-Length", "0")], _NO_BODY

    def _get(self, environ: dict[str, Any], path: str) -> Answer:
        resource = self._provider.resource(path)
        if isinstance(resource, File):
            if path[-1] == "/":
                raise NotFound(f"{path} is a file, not a folder")
            if resource.body is not None:
                headers = [("Content-Type", resource.content_type), ("Content-Length", str(len(resource.body)))]
                return _STATUS[200], headers + _validators(resource), [resource.body]
            assert resource.location is not None
            return _redirect(307, resource.location, _validators(resource))
        script_name = environ.get("SCRIPT_NAME", "").rstrip("/")
        if path[-1] != "/":
            location = quote_url(f"{script_name}{path}/")
            if environ.get("QUERY_STRING"):
                location += f"?{environ['QUERY_STRING']}"
            return _redirect(301, location)
        notes = () if resource.pinned else (UNPINNED_NOTE,)
        page = render_listing(resource, self._provider.members(resource), script_name, notes)
        headers = [("Content-Type", "text/html; charset=utf-8"), ("Content-Length", str(len(page)))]
        return _STATUS[200], headers + _validators(resource), [page]

    def _propfind(self, environ: dict[str, Any], path: str) -> Answer:
        depth = environ.get("HTTP_DEPTH", "infinity").strip().lower()
        if depth not in ("0", "1", "infinity"):
            return _plain(400, f"Depth must be 0, 1 or infinity, not {depth!r}")
        length = _content_length(environ)
        if length > MAX_BODY:
            return _plain(413, f"PROPFIND bodies are limited to {MAX_BODY} bytes")
        body = environ["wsgi.input"].read(length) if length else b""
        resource = self._provider.resource(path)
        if isinstance(resource, File) and path.endswith("/"):
            raise NotFound(f"{path} is a file, not a folder")
        if depth == "infinity" and resource.is_collection:
            return _STATUS[403], [("Content-Type", "application/xml; charset=utf-8"),
                                  ("Content-Length", str(len(FINITE_DEPTH)))], [FINITE_DEPTH]
        try:
            request = parse_propfind(body)
        except BadPropfind as error:
            return _plain(400, str(error))
        resources: list[Resource] = [resource]
        if depth == "1" and isinstance(resource, Collection):
            resources += self._provider.members(resource)
        script_name = environ.get("SCRIPT_NAME", "").rstrip("/")
        answer = render_multistatus(request, resources, script_name)
        return _STATUS[207], [("Content-Type", "application/xml; charset=utf-8"),
                              ("Content-Length", str(len(answer)))], [answer]


def _decoded_path(environ: dict[str, Any]) -> str:
    raw = environ.get("PATH_INFO", "") or "/"
    if raw.isascii():
        return raw  # the same in latin-1 and UTF-8
    try:
        return raw.encode("latin-1").decode("utf-8")
    except UnicodeError:
        raise NotFound("the path is not valid UTF-8") from None


def _content_length(environ: dict[str, Any]) -> int:
    try:
        return max(0, int(environ.get("CONTENT_LENGTH") or 0))
    except ValueError:
        return 0


def _validators(resource: Resource) -> list[tuple[str, str]]:
    headers = [] if resource.pinned else [UNPINNED_HEADER]
    if resource.etag is not None:
        headers.append(("ETag", f'"{resource.etag}"'))
    if resource.modified is not None:
        headers.append(("Last-Modified", http_date(resource.modified)))
    return headers


def _redirect(status: int, location: str, extra: Sequence[tuple[str, str]] = ()) -> Answer:
    # WsgiDAV closes the connection after a 3xx without Content-Length.
    return _STATUS[status], [("Location", location), ("Content-Length", "0"), *extra], _NO_BODY


def _plain(status: int, message: str, extra: Sequence[tuple[str, str]] = ()) -> Answer:
    body = f"{message}\n".encode()
    headers = [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body))), *extra]
    return _STATUS[status], headers, [body]


def _error(environ: dict[str, Any], error: ZarrdavError) -> Answer:
    status = error.status
    if status >= 500:
        environ["zarrdav.error"] = str(error)
    return _plain(status, str(error))
