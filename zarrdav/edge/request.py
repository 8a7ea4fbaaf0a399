"""A request as zarrdav reads it: the WSGI environ parsed once, for every method."""

from __future__ import annotations

from typing import Any

from zarrdav.errors import BadRequest, ContentTooLarge, LengthRequired

Environ = dict[str, Any]


class Request:
    """What every layer and handler reads of a request.

    Header values are kept as the client sent them (WSGI's Latin-1 strings);
    each layer interprets the ones it owns. ``path`` is the decoded UTF-8
    path, or None when the bytes are not UTF-8 (a handler answers 404).
    """

    __slots__ = (
        "environ", "method", "target", "raw_path", "path", "query", "script_name", "client",
        "depth", "if_none_match", "if_modified_since", "accept_encoding", "authorization",
    )

    def __init__(self, environ: Environ) -> None:
        self.environ = environ
        self.method: str = environ["REQUEST_METHOD"]
        raw: str = environ.get("PATH_INFO") or "/"
        self.raw_path = raw  # Latin-1 characters, one per byte on the wire
        self.path = raw if raw.isascii() else _decoded(raw)
        self.query: str = environ.get("QUERY_STRING", "")
        # As sent, percent-encoded (cheroot gives it; other servers may not).
        self.target: str = environ.get("REQUEST_URI") or raw
        self.script_name: str = environ.get("SCRIPT_NAME", "").rstrip("/")
        self.client: str = environ.get("REMOTE_ADDR", "")
        self.depth: str | None = environ.get("HTTP_DEPTH")
        self.if_none_match: str | None = environ.get("HTTP_IF_NONE_MATCH")
        self.if_modified_since: str | None = environ.get("HTTP_IF_MODIFIED_SINCE")
        self.accept_encoding: str = environ.get("HTTP_ACCEPT_ENCODING", "")
        self.authorization: str | None = environ.get("HTTP_AUTHORIZATION")

    # Read where a page or an error page is made, never on the path of a chunk GET.
    @property
    def accept(self) -> str:
        return str(self.environ.get("HTTP_ACCEPT", ""))

    @property
    def host(self) -> str:
        """``Host`` as the client sent it (never trusted: shown escaped, never redirected to)."""
        return str(self.environ.get("HTTP_HOST", ""))

    @property
    def scheme(self) -> str:
        return str(self.environ.get("wsgi.url_scheme", "http"))

    @property
    def server_address(self) -> str:
        """``host:port`` the server listens on, as the WSGI server names it."""
        return f"{self.environ.get('SERVER_NAME', '')}:{self.environ.get('SERVER_PORT', '')}"

    def read_body(self, limit: int) -> bytes:
        """The whole request body, at most ``limit`` bytes (413 beyond)."""
        environ = self.environ
        stream = environ["wsgi.input"]
        if environ.get("HTTP_TRANSFER_ENCODING", "").strip().lower() == "chunked":
            if environ.get("CONTENT_LENGTH"):
                raise BadRequest("Content-Length and Transfer-Encoding together")
            body: bytes = stream.read(limit + 1)
        elif environ.get("HTTP_TRANSFER_ENCODING"):
            raise LengthRequired("only chunked request bodies are read")
        else:
            length = self.content_length()
            if length > limit:
                raise ContentTooLarge(f"request bodies are limited to {limit} bytes")
            body = stream.read(length) if length else b""
        if len(body) > limit:
            raise ContentTooLarge(f"request bodies are limited to {limit} bytes")
        return body

    def content_length(self) -> int:
        """The declared body length; 400 unless it is one decimal number."""
        declared: str = self.environ.get("CONTENT_LENGTH") or "0"
        if not declared.isdigit():
            raise BadRequest(f"invalid Content-Length {declared[:40]!r}")
        return int(declared)


def _decoded(raw: str) -> str | None:
    try:
        return raw.encode("latin-1").decode("utf-8")
    except UnicodeError:
        return None
