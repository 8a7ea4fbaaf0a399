"""The request log: one line per request, cheap enough for every chunk GET.

Through ``logging`` a line costs about 12 µs more than the request's own
work needs (a ``LogRecord``, the caller's frame, a lock, a flush): a third of
what a redirect costs. Request lines are therefore written by hand, in the
format ``zarrdav serve`` gives ``logging``, with one unbuffered ``write`` of
the whole line, so lines of concurrent requests and processes never mix.
Everything else (errors and their tracebacks) still goes through ``logging``.
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any
from urllib.parse import quote

log = logging.getLogger("zarrdav")
StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]
# A whole answer, made before anything is sent: status line, headers, body.
Answer = tuple[str, list[tuple[str, str]], Sequence[bytes]]
Answerer = Callable[[dict[str, Any]], Answer]
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_PLAIN_PATH = re.compile(r"[A-Za-z0-9/._~-]*")
_MILLIS = [f"{n:03d}" for n in range(1000)]  # formatting them costs more


class RequestLog:
    """Writes request lines as ``LOG_FORMAT`` formats INFO records of ``log``."""

    def __init__(self, fd: int = 2) -> None:
        self._fd = fd  # standard error, where ``zarrdav serve`` sends ``logging`` too
        self._second = (0, "")  # one (second, formatted) pair: replaced whole, so thread-safe

    def write(self, method: str, wire_path: str, status: str, elapsed_ms: float, cause: str | None) -> None:
        if not log.isEnabledFor(logging.INFO):
            return
        now = time.time()
        second, stamp = self._second
        if int(now) != second:
            second = int(now)
            stamp = time.strftime("%Y-%m-%d %H:%M:%S,", time.localtime(second))
            self._second = (second, stamp)
        millis = _MILLIS[int((now - second) * 1000)]
        suffix = f" ({cause})" if cause else ""
        line = f"{stamp}{millis} INFO zarrdav: {method} {wire_path} {status} {elapsed_ms:.1f}ms{suffix}\n"
        try:
            os.write(self._fd, line.encode(errors="replace"))
        except OSError:
            pass  # like logging: a closed or full log never fails a request


def wire_path(environ: dict[str, Any]) -> str:
    """PATH_INFO encoded as on the wire: a decoded newline cannot split the log line."""
    raw = environ.get("PATH_INFO", "")
    if _PLAIN_PATH.fullmatch(raw):
        return raw
    return quote(raw.encode("latin-1", "replace"), safe="/:@!$&'()*+,;=~")


def logged(answer: Answerer, requests: RequestLog) -> WSGIApp:
    """The WSGI application of ``answer``: one log line per request, and a
    plain 500 instead of any traceback."""

    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        started = time.perf_counter()
        try:
            status, headers, body = answer(environ)
        except Exception:
            log.exception("internal error on %s %s", environ["REQUEST_METHOD"], environ.get("PATH_INFO"))
            status, headers = "500 Internal Server Error", _INTERNAL_ERROR_HEADERS
            body = (b"" if environ["REQUEST_METHOD"] == "HEAD" else _INTERNAL_ERROR,)
        requests.write(environ["REQUEST_METHOD"], wire_path(environ), status[:3],
                       (time.perf_counter() - started) * 1000, environ.get("zarrdav.error"))
        start_response(status, headers)
        return body

    return app


_INTERNAL_ERROR = b"internal error\n"
_INTERNAL_ERROR_HEADERS = [
    ("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(_INTERNAL_ERROR))),
    ("Access-Control-Allow-Origin", "*"),
]
