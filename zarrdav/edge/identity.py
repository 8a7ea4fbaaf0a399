"""Who asks: the DANDI API token a visitor brings, parsed once per request.

A visitor brings a token as HTTP Basic (any user name, the token as the
password: what davfs2, rclone, cadaver, Windows and browsers send), or as
``Authorization: token <t>`` / ``Bearer <t>``. The visitor is carried in a
context variable for the request's thread, so that the archive client sends
exactly this visitor's token and kept answers that depended on it are kept
under ``key``: a keyed hash of the token under a secret drawn at start, so
that no cache key, log line or page ever holds the token itself.

Whatever reads a visitor-dependent answer calls ``depends_on_visitor``; the
layer then marks the answer ``Cache-Control: private, no-store`` (which
also keeps the CORS layer from offering it to every origin).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TypeVar

from zarrdav.edge.answer import Answer
from zarrdav.edge.layers import PRIVATE_ANSWER, Handler
from zarrdav.edge.request import Request
from zarrdav.errors import BadRequest

T = TypeVar("T")
_SECRET = secrets.token_bytes(32)
# A DANDI token is 40 hex characters; anything this long is not one.
_MAX_TOKEN = 512


@dataclass(slots=True)
class Visitor:
    token: str | None
    key: str  # "" for anonymous visitors; never derived reversibly from the token
    depended: bool = field(default=False)  # an answer for this request depended on the token

    def __repr__(self) -> str:  # never the token, in a traceback or a log
        return f"Visitor(key={self.key!r})"


def visitor_for(token: str | None) -> Visitor:
    if token is None:
        return Visitor(None, "")
    digest = hmac.new(_SECRET, token.encode(), hashlib.sha256).hexdigest()[:32]
    return Visitor(token, digest)


_ANONYMOUS = Visitor(None, "")
_current: ContextVar[Visitor] = ContextVar("zarrdav_visitor", default=_ANONYMOUS)


def current() -> Visitor:
    """The visitor of the request being answered (anonymous outside any request)."""
    return _current.get()


def depends_on_visitor() -> None:
    """Mark the current answer as one that depended on who asks."""
    visitor = _current.get()
    if visitor.token is not None:
        visitor.depended = True


@contextmanager
def visiting(visitor: Visitor) -> Iterator[None]:
    """Act for ``visitor`` within the block (on a thread a request's work moved to)."""
    reset = _current.set(visitor)
    try:
        yield
    finally:
        _current.reset(reset)


def as_anonymous(load: Callable[[], T]) -> Callable[[], T]:
    """``load`` asking the upstream as an anonymous visitor would: its answer may be shared."""

    def anonymous_load() -> T:
        with visiting(_ANONYMOUS):
            return load()

    return anonymous_load


def token_of(authorization: str | None) -> str | None:
    """The token in an ``Authorization`` value; None without one; 400 if it cannot be read."""
    if authorization is None:
        return None
    scheme, _, credentials = authorization.strip().partition(" ")
    credentials = credentials.strip()
    scheme = scheme.lower()
    if scheme == "basic":
        try:
            decoded = base64.b64decode(credentials, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise BadRequest("Authorization: Basic credentials are not base64 of user:token") from None
        _, colon, token = decoded.partition(":")
        if not colon:
            raise BadRequest("Authorization: Basic credentials are not base64 of user:token")
    elif scheme in ("token", "bearer"):
        token = credentials
    else:
        raise BadRequest("Authorization: only Basic, token and Bearer credentials are read")
    if not token:
        return None  # a client that sends an empty password is anonymous
    if len(token) > _MAX_TOKEN or not (token.isascii() and token.isprintable()) or " " in token:
        raise BadRequest("Authorization: the token is not a DANDI API token")
    return token


def identify(inner: Handler) -> Handler:
    """The request's visitor, for everything inside; private answers marked so."""

    def identified(request: Request) -> Answer:
        visitor = visitor_for(token_of(request.authorization))
        reset = _current.set(visitor)
        try:
            answer = inner(request)
        finally:
            _current.reset(reset)
        if visitor.depended and PRIVATE_ANSWER not in answer.headers:
            answer.headers = [header for header in answer.headers if header[0] != "Cache-Control"]
            answer.headers.append(PRIVATE_ANSWER)
        return answer

    return identified
