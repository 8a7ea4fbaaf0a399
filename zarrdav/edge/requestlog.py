"""The request log: one line per request, cheap enough for every chunk GET.

Through ``logging`` a line costs about 12 µs more than the request's own
work needs (a ``LogRecord``, the caller's frame, a lock, a flush): a third of
what a redirect costs. Request lines are therefore made by hand, in the
format ``zarrdav serve`` gives ``logging``, and made and written in batches,
as nginx's ``access_log ... buffer= flush=`` writes them: a system call per
request would cost as much again, and more while many threads share the
GIL. A line is written within ``FLUSH_SECONDS``, at once if it reports a
server error (5xx), and before the server ends (``Logged.close``). Each
write holds whole lines and at most ``PIPE_BUF`` bytes, so lines of
processes sharing a pipe never mix. Everything else (errors and their
tracebacks) still goes through ``logging``.
"""

from __future__ import annotations

import logging
import os
import re
import select
import threading
import time
from collections import deque
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
FLUSH_SECONDS = 0.2
# Past this many pending lines a request writes them itself: a stalled log
# slows requests down rather than filling memory.
_MOST_PENDING = 4096


class RequestLog:
    """Writes request lines as ``LOG_FORMAT`` formats INFO records of ``log``.

    A request only notes its line's fields; lines are made and written in
    batches, where one loop over hundreds of them costs a fraction of making
    each on its request's path, between the server's own work.
    """

    def __init__(self, fd: int = 2) -> None:
        self._fd = fd  # standard error, where ``zarrdav serve`` sends ``logging`` too
        # Lines of one second share its formatted stamp (made under _writing).
        self._second = 0
        self._stamp = ""
        # Appends and pops are atomic: no lock per request.
        self._pending: deque[tuple[float, float, str, str, str, str | None]] = deque()
        self._writing = threading.Lock()
        self._flusher: threading.Thread | None = None

    def write(self, method: str, path_info: str, status: str, started: float, cause: str | None) -> None:
        """Note a request's line: its method, WSGI ``PATH_INFO``, status, when it
        started (``time.perf_counter``) and the cause of a failure."""
        if not log.isEnabledFor(logging.INFO):
            return
        pending = self._pending
        pending.append((started, time.perf_counter(), method, path_info, status, cause))
        if self._flusher is None:
            self._start_flusher()
        if status[0] == "5" or len(pending) > _MOST_PENDING:
            self.flush()

    def flush(self) -> None:
        """Write every pending line now."""
        pending = self._pending
        with self._writing:
            # Read together, the two clocks place the requests' perf_counter
            # readings in wall-clock time: a request reads one clock, not two.
            wall = time.time() - time.perf_counter()
            batch: list[bytes] = []
            size = 0
            while pending:
                started, ended, method, path_info, status, cause = pending.popleft()
                now = wall + ended
                if int(now) != self._second:
                    self._second = int(now)
                    self._stamp = time.strftime("%Y-%m-%d %H:%M:%S,", time.localtime(self._second))
                millis = _MILLIS[int((now - self._second) * 1000)]
                tenths = int((ended - started) * 10_000)
                path = wire_path(path_info)
                suffix = f" ({cause})" if cause else ""
                line = (f"{self._stamp}{millis} INFO zarrdav: {method} {path} {status} "
                        f"{tenths // 10}.{tenths % 10}ms{suffix}\n").encode(errors="replace")
                if size + len(line) > select.PIPE_BUF and batch:
                    self._write(b"".join(batch))
                    batch, size = [], 0
                batch.append(line)
                size += len(line)
            if batch:
                self._write(b"".join(batch))

    def _write(self, data: bytes) -> None:
        try:
            while data:
                data = data[os.write(self._fd, data) :]
        except OSError:
            pass  # like logging: a closed or full log never fails a request

    def _start_flusher(self) -> None:
        with self._writing:
            if self._flusher is None:
                # Started on first use, in the process that serves (after any fork).
                self._flusher = threading.Thread(target=self._flush_often, name="zarrdav-log", daemon=True)
                self._flusher.start()

    def _flush_often(self) -> None:
        while True:
            time.sleep(FLUSH_SECONDS)
            self.flush()


def wire_path(raw: str) -> str:
    """WSGI ``PATH_INFO`` encoded as on the wire: a decoded newline cannot split the log line."""
    if _PLAIN_PATH.fullmatch(raw):
        return raw
    return quote(raw.encode("latin-1", "replace"), safe="/:@!$&'()*+,;=~")


class Logged:
    """The WSGI application of ``answer``: one log line per request, and a
    plain 500 instead of any traceback. ``close`` writes the lines still pending."""

    __slots__ = ("_answer", "_requests")

    def __init__(self, answer: Answerer, requests: RequestLog) -> None:
        self._answer = answer
        self._requests = requests

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        started = time.perf_counter()
        try:
            status, headers, body = self._answer(environ)
        except Exception:
            self._requests.flush()  # the lines before it, before its traceback
            log.exception("internal error on %s %s", environ["REQUEST_METHOD"], environ.get("PATH_INFO"))
            status, headers = "500 Internal Server Error", _INTERNAL_ERROR_HEADERS
            body = (b"" if environ["REQUEST_METHOD"] == "HEAD" else _INTERNAL_ERROR,)
        self._requests.write(environ["REQUEST_METHOD"], environ.get("PATH_INFO", ""), status[:3],
                             started, environ.get("zarrdav.error"))
        start_response(status, headers)
        return body

    def close(self) -> None:
        self._requests.flush()


_INTERNAL_ERROR = b"internal error\n"
_INTERNAL_ERROR_HEADERS = [
    ("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(_INTERNAL_ERROR))),
    ("Access-Control-Allow-Origin", "*"),
]
