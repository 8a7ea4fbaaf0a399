"""An answer as every layer sees it, made whole before anything is sent."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from http import HTTPStatus

from zarrdav.errors import ZarrdavError

Headers = list[tuple[str, str]]
# Bytes, or an iterable of them for an answer produced as it is sent.
Body = bytes | Iterable[bytes]


class Answer:
    """Status, headers, body, and the cause of a failure, for the log.

    Layers may replace ``headers`` and ``body``; the edge sends ``status``
    with its standard reason phrase and never sends a body to HEAD.
    """

    __slots__ = ("status", "headers", "body", "cause")

    def __init__(self, status: int, headers: Headers, body: Body = b"",
                 cause: BaseException | None = None) -> None:
        self.status = status
        self.headers = headers
        self.body = body
        self.cause = cause

    @classmethod
    def plain(cls, status: int, message: str, extra: Sequence[tuple[str, str]] = (),
              cause: BaseException | None = None) -> Answer:
        """A one-line text answer, as every error gets."""
        body = f"{message}\n".encode()
        headers = [("Content-Type", "text/plain; charset=utf-8"),
                   ("Content-Length", str(len(body))), *extra]
        return cls(status, headers, body, cause)

    @classmethod
    def redirect(cls, status: int, location: str, extra: Sequence[tuple[str, str]] = ()) -> Answer:
        # Content-Length keeps the connection open: cheroot closes it after a
        # 3xx that has neither a length nor a chunked body.
        return cls(status, [("Location", location), ("Content-Length", "0"), *extra])

    @classmethod
    def of_error(cls, error: ZarrdavError) -> Answer:
        """The error's own status and message; a 5xx keeps the error as its cause."""
        status = error.status
        extra = [*error.headers, *_CLOSE] if status in _CLOSING else error.headers
        return cls.plain(status, one_line(str(error)), extra, error if status >= 500 else None)


def status_line(status: int) -> str:
    """``307 Temporary Redirect``, as WSGI's ``start_response`` wants it."""
    return _STATUS_LINES.get(status) or f"{status} {_reason(status)}"


def one_line(text: str, most: int = 500) -> str:
    """``text`` on one line of at most ``most`` characters, control characters escaped."""
    if not text.isprintable():
        text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
    return text if len(text) <= most else f"{text[:most]}..."


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


_STATUS_LINES = {status.value: f"{status.value} {status.phrase}" for status in HTTPStatus}
# Refusals of how a request was framed or sized: what follows on the
# connection cannot be trusted to be the next request.
_CLOSING = frozenset((400, 411, 413, 414, 431))
_CLOSE = (("Connection", "close"),)
