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
tracebacks, upstream calls) still goes through ``logging``, formatted as
JSON too with ``log_format = json`` (``JsonFormatter``).

The same batches feed the metrics (``Observer``): each request's figures
are counted once, off its path, by whoever writes its line.
"""

from __future__ import annotations

import logging
import os
import re
import select
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import quote

import orjson

from zarrdav.edge.answer import one_line
from zarrdav.errors import ZarrdavError

log = logging.getLogger("zarrdav")
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_PLAIN_PATH = re.compile(r"[A-Za-z0-9/._~-]*")
_MILLIS = [f"{n:03d}" for n in range(1000)]  # formatting them costs more
FLUSH_SECONDS = 0.2
# Past this many pending lines a request writes them itself: a stalled log
# slows requests down rather than filling memory.
_MOST_PENDING = 4096
# Paths longer than this are logged as their first _SHOWN characters.
_LONGEST_LOGGED = 1024
_SHOWN = 200
# started, ended (time.perf_counter), method, WSGI PATH_INFO, status, cause, request id
Noted = tuple[float, float, str, str, int, BaseException | None, str]
# Called with each batch of noted requests, from the thread writing them.
Observer = Callable[[Sequence[Noted]], None]


class RequestLog:
    """Writes request lines as ``LOG_FORMAT`` formats INFO records of ``log``.

    A request only notes its line's fields; lines are made and written in
    batches, where one loop over hundreds of them costs a fraction of making
    each on its request's path, between the server's own work.
    """

    def __init__(self, fd: int = 2, *, json: bool = False, observer: Observer | None = None) -> None:
        self._fd = fd  # standard error, where ``zarrdav serve`` sends ``logging`` too
        self._json = json
        self._observer = observer
        # Lines of one second share its formatted stamp (made under _writing).
        self._second = 0
        self._stamp = ""
        # Appends and pops are atomic: no lock per request.
        self._pending: deque[Noted] = deque()
        self._writing = threading.Lock()
        self._flusher: threading.Thread | None = None

    def write(self, method: str, path_info: str, status: int, started: float,
              cause: BaseException | None, request_id: str = "-") -> None:
        """Note a request's line: its method, WSGI ``PATH_INFO``, status, when it
        started (``time.perf_counter``), the cause of a failure and its id."""
        if self._observer is None and not log.isEnabledFor(logging.INFO):
            return
        pending = self._pending
        pending.append((started, time.perf_counter(), method, path_info, status, cause, request_id))
        if self._flusher is None:
            self._start_flusher()
        if status >= 500 or len(pending) > _MOST_PENDING:
            self.flush()

    def flush(self) -> None:
        """Write every pending line now."""
        pending = self._pending
        with self._writing:
            noted = [pending.popleft() for _ in range(len(pending))]
            if self._observer is not None:  # also when idle: it publishes gauges then
                self._observer(noted)
            if log.isEnabledFor(logging.INFO):
                self._write_lines(noted)

    def _write_lines(self, noted: list[Noted]) -> None:
        # Read together, the two clocks place the requests' perf_counter
        # readings in wall-clock time: a request reads one clock, not two.
        wall = time.time() - time.perf_counter()
        batch: list[bytes] = []
        size = 0
        for started, ended, method, path_info, status, cause, request_id in noted:
            now = wall + ended
            if int(now) != self._second:
                self._second = int(now)
                self._stamp = time.strftime("%Y-%m-%d %H:%M:%S,", time.localtime(self._second))
            millis = _MILLIS[int((now - self._second) * 1000)]
            tenths = int((ended - started) * 10_000)
            path = wire_path(path_info)
            if self._json:
                fields: dict[str, Any] = {
                    "time": f"{self._stamp}{millis}", "level": "INFO", "logger": "zarrdav",
                    "method": wire_path(method), "path": path, "status": status,
                    "ms": tenths / 10, "request_id": request_id,
                }
                if cause:
                    fields["cause"] = describe(cause)
                line = orjson.dumps(fields) + b"\n"
            else:
                suffix = f" ({describe(cause)})" if cause else ""
                line = (f"{self._stamp}{millis} INFO zarrdav: {wire_path(method)} {path} {status} "
                        f"{tenths // 10}.{tenths % 10}ms id={request_id}{suffix}\n").encode(errors="replace")
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


class JsonFormatter(logging.Formatter):
    """``logging`` records as one JSON object a line, with the fields a call
    put in ``extra`` (an upstream call's upstream, item, outcome, ms, request id)."""

    def format(self, record: logging.LogRecord) -> str:
        fields: dict[str, Any] = {
            "time": self.formatTime(record), "level": record.levelname, "logger": record.name,
            "message": record.getMessage(),
        }
        for name in _EXTRA_FIELDS:
            if name in record.__dict__:
                fields[name] = record.__dict__[name]
        if record.exc_info:
            fields["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(fields, default=str).decode()


_EXTRA_FIELDS = ("upstream", "where", "outcome", "ms", "request_id")


def wire_path(raw: str) -> str:
    """WSGI ``PATH_INFO`` encoded as on the wire: a decoded newline cannot split
    the log line. A very long path is cut to its beginning."""
    if len(raw) > _LONGEST_LOGGED:
        return f"{wire_path(raw[:_SHOWN])}...({len(raw)} characters)"
    if _PLAIN_PATH.fullmatch(raw):
        return raw
    return quote(raw.encode("latin-1", "replace"), safe="/:@!$&'()*+,;=~")


def describe(cause: BaseException) -> str:
    """The cause of a failure and what caused it, on one line."""
    parts: list[str] = []
    seen: set[int] = set()
    current: BaseException | None = cause
    while current is not None and id(current) not in seen and len(parts) < 5:
        seen.add(id(current))
        text = str(current)
        parts.append(text if isinstance(current, ZarrdavError) and text else
                     f"{type(current).__name__}: {text}" if text else type(current).__name__)
        current = current.__cause__ or (None if current.__suppress_context__ else current.__context__)
    return one_line(" <- ".join(parts), 1000)
