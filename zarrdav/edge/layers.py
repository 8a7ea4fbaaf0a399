"""The layers every request passes, GET and HEAD included, in the order
``zarrdav.app.create_app`` declares them.

A layer is a function from the handler it wraps to a handler; a handler
takes a ``Request`` and returns an ``Answer``. The outermost layer sees the
answer that is sent; a layer placed after ``answer_safely`` may raise any
``ZarrdavError`` and let it become its status.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence

from zarrdav.edge.answer import Answer
from zarrdav.edge.request import Request
from zarrdav.edge.requestlog import RequestLog
from zarrdav.errors import UnsendableHeader, URITooLong, ZarrdavError
from zarrdav.upstreams.calls import REQUEST_ID

Handler = Callable[[Request], Answer]
Layer = Callable[[Handler], Handler]
log = logging.getLogger("zarrdav")


def stacked(handler: Handler, layers: Sequence[Layer]) -> Handler:
    """``handler`` wrapped in ``layers``, the first of them outermost."""
    for layer in reversed(layers):
        handler = layer(handler)
    return handler


def request_log(requests: RequestLog) -> Layer:
    """One line per request: method, path, the status sent, time, its id, cause of a 5xx."""

    def layer(inner: Handler) -> Handler:
        def logged(request: Request) -> Answer:
            started = time.perf_counter()
            answer = inner(request)
            requests.write(request.method, request.raw_path, answer.status, started, answer.cause, REQUEST_ID.get())
            return answer

        return logged

    return layer


def answer_safely(inner: Handler) -> Handler:
    """Every answer is one the edge can send.

    An error zarrdav raises becomes its status and one line of text, any
    other exception a plain 500 (its traceback goes to the log, never to the
    client), and a header value that could not be sent as it is (a CR LF
    from an upstream would write headers of its own) a 502 naming the field.
    """

    def safe(request: Request) -> Answer:
        try:
            answer = inner(request)
        except ZarrdavError as error:
            return Answer.of_error(error)
        except Exception as error:
            log.exception("internal error on %s %s", request.method, request.raw_path[:200])
            return Answer.plain(500, "internal error", cause=error)
        for name, value in answer.headers:
            # Printable ASCII is nearly every value, and checked in C.
            if not (value.isascii() and value.isprintable()) and not _sendable(value):
                return Answer.of_error(UnsendableHeader(name))
        return answer

    return safe


def _sendable(value: str) -> bool:
    """Latin-1 without control characters (horizontal tab allowed), as RFC 9110 field values."""
    return all(char == "\t" or " " <= char <= "~" or "\xa0" <= char <= "\xff" for char in value)


def limits(max_path_bytes: int) -> Layer:
    """Refuse what is too large to be worth parsing further."""

    def layer(inner: Handler) -> Handler:
        def limited(request: Request) -> Answer:
            if max(len(request.target), len(request.raw_path) + len(request.query)) > max_path_bytes:
                raise URITooLong(f"request targets are limited to {max_path_bytes} bytes")
            return inner(request)

        return limited

    return layer


# Marks an answer that depends on who asks (a private object's bytes or its
# signed URL): no shared cache keeps it, and CORS offers it to no origin at large.
PRIVATE_ANSWER = ("Cache-Control", "private, no-store")


def dav_class(inner: Handler) -> Handler:
    """``DAV: 1`` on every answer, errors included, as dandidav and Apache send it:
    clients (davfs2, Windows) probe any answer for it, not only OPTIONS."""

    def with_dav(request: Request) -> Answer:
        answer = inner(request)
        answer.headers.append(_DAV)
        return answer

    return with_dav


_DAV = ("DAV", "1")


def cors(credentialed_origins: frozenset[str]) -> Layer:
    """Let browser-based Zarr viewers read through the server.

    Answers anyone may read are offered to every origin (``*``). Answers that
    depend on credentials (the request carries ``Authorization``, or the
    answer is ``PRIVATE_ANSWER``) are offered only to the origins named in
    ``cors_credentialed_origins``, with ``Access-Control-Allow-Credentials``,
    and to no other.
    """

    def layer(inner: Handler) -> Handler:
        def with_cors(request: Request) -> Answer:
            answer = inner(request)
            origin: str | None = request.environ.get("HTTP_ORIGIN")
            named = origin is not None and origin in credentialed_origins
            if request.method == "OPTIONS":
                # A preflight carries no credentials; it asks for the request that will.
                answer.headers += [*_credentialed(origin), *_OPTIONS] if named and origin else _CORS_OPTIONS
            elif request.authorization is None and PRIVATE_ANSWER not in answer.headers:
                answer.headers += _CORS
            elif named and origin:
                answer.headers += _credentialed(origin)
            elif credentialed_origins:
                answer.headers.append(_VARY)
            return answer

        return with_cors

    return layer


def _credentialed(origin: str) -> list[tuple[str, str]]:
    return [("Access-Control-Allow-Origin", origin), ("Access-Control-Allow-Credentials", "true"), _VARY, _EXPOSE]


_VARY = ("Vary", "Origin")
_EXPOSE = ("Access-Control-Expose-Headers", "ETag, Content-Length, Content-Range, Location, DAV")
_CORS = [("Access-Control-Allow-Origin", "*"), _EXPOSE]
_OPTIONS = [
    ("Access-Control-Allow-Methods", "GET, HEAD, OPTIONS, PROPFIND"),
    ("Access-Control-Allow-Headers", "Range, Depth, Content-Type, Authorization"),
]
_CORS_OPTIONS = _CORS + _OPTIONS
