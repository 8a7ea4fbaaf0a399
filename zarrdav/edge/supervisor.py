"""Worker processes kept alive on one port (``--workers N``).

A worker that dies (SIGKILL, the OOM killer, a crash) is started again on its
CPU after a backoff, and its end is logged. A worker that cannot start at all
(exit status 2 before it served: the port was taken in the meantime) would
fail again at once, so it stops the server instead of a restart loop; and
when workers keep dying, the supervisor gives up rather than serve
half-working, so that whatever runs zarrdav (systemd, Docker) sees it fail.
"""

from __future__ import annotations

import multiprocessing
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from types import FrameType

from zarrdav.errors import StartupError

# serve_on(cpu, ready): serve on ``cpu`` until SIGTERM; call ``ready()`` once listening.
ServeOn = Callable[[int | None, Callable[[], None]], None]

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
FIRST_BACKOFF = 0.5  # seconds before the first restart of a worker; doubles each time
MOST_BACKOFF = 30.0
STEADY_AFTER = 60.0  # a worker up this long died of something new: its backoff starts over
DEATH_WINDOW = 60.0  # more than 2 deaths per worker within this many seconds: give up
_POLL = 0.5  # seconds between looks at the stop flag (signals wake no wait)


@dataclass
class _Slot:
    """One worker's place: its CPU, its process of the moment and its restart state."""

    number: int  # from 1, as the log names it
    cpu: int | None
    backoff: float = FIRST_BACKOFF
    process: BaseProcess | None = None
    report: Connection | None = None  # until the worker said it is ready (None) or failed (a message)
    started: float = 0.0
    ready: bool = False
    failure: str = ""
    restart_at: float = 0.0


def run_workers(serve_on: ServeOn, cpus: Sequence[int | None], stop_within: float = 15.0,
                ended: Callable[[int], None] | None = None) -> int:
    """``serve_on(cpu, ready)`` in a forked process for each of ``cpus``, kept
    alive until SIGINT or SIGTERM; then every worker gets SIGTERM, and SIGKILL
    after ``stop_within`` seconds. ``ended(pid)`` is told of each worker that
    ended, however (its metrics' live gauges are removed).

    Returns the exit status: 0 once stopped by a signal, 1 when workers keep
    dying. Raises ``StartupError`` when a worker fails its startup.
    """
    stopping = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    previous = {number: signal.signal(number, request_stop) for number in STOP_SIGNALS}
    supervisor = _Supervisor(serve_on, cpus, ended)
    try:
        return supervisor.run(stopping)
    finally:
        supervisor.stop(stop_within)
        for number, handler in previous.items():
            signal.signal(number, handler)


class _Supervisor:
    def __init__(self, serve_on: ServeOn, cpus: Sequence[int | None],
                 ended: Callable[[int], None] | None = None) -> None:
        self._serve_on = serve_on
        self._ended = ended
        self._slots = [_Slot(number, cpu) for number, cpu in enumerate(cpus, start=1)]
        self._deaths: deque[float] = deque()
        self._context = multiprocessing.get_context("fork")

    def run(self, stopping: threading.Event) -> int:
        while not stopping.is_set():
            now = time.monotonic()
            for slot in self._slots:
                if slot.process is None and slot.restart_at <= now:
                    self._start(slot, now)
            pending = [slot.restart_at - now for slot in self._slots if slot.process is None]
            awake = wait(self._waitables(), max(0.0, min([_POLL, *pending])))
            for slot in self._slots:
                if slot.report is not None and slot.report in awake:
                    self._read_report(slot)
            for slot in self._slots:
                ended = slot.process is not None and slot.process.sentinel in awake
                if ended and not self._restart(slot, time.monotonic()):
                    return 1
        return 0

    def stop(self, within: float) -> None:
        """SIGTERM to every worker, SIGKILL to those still running ``within`` seconds later."""
        running = [slot for slot in self._slots if slot.process is not None and slot.process.is_alive()]
        for slot in running:
            assert slot.process is not None
            slot.process.terminate()
        deadline = time.monotonic() + within
        for slot in running:
            assert slot.process is not None
            slot.process.join(max(0.0, deadline - time.monotonic()))
            if slot.process.is_alive():
                _say(f"worker {slot.number} (process {slot.process.pid}) did not stop "
                     f"within {within:g} s; killing it")
                slot.process.kill()
                slot.process.join(5)
            if self._ended is not None and slot.process.pid is not None:
                self._ended(slot.process.pid)
        for slot in self._slots:
            if slot.report is not None:
                slot.report.close()
                slot.report = None

    def _waitables(self) -> list[Connection | int]:
        reports: list[Connection | int] = [s.report for s in self._slots if s.report is not None]
        return reports + [s.process.sentinel for s in self._slots if s.process is not None]

    def _start(self, slot: _Slot, now: float) -> None:
        reader, writer = self._context.Pipe(duplex=False)
        process = self._context.Process(
            target=_worker, args=(self._serve_on, slot.cpu, writer),
            name=f"zarrdav-worker-{slot.number}", daemon=True,
        )
        process.start()
        writer.close()  # the worker's copy alone: its end is the reader's end of file
        slot.process, slot.report, slot.started = process, reader, now
        slot.ready, slot.failure = False, ""

    def _read_report(self, slot: _Slot) -> None:
        assert slot.report is not None
        try:
            message: str | None = slot.report.recv()
        except EOFError:  # it died before it said anything
            message = ""
        slot.report.close()
        slot.report = None
        slot.ready = message is None
        slot.failure = message or ""

    def _restart(self, slot: _Slot, now: float) -> bool:
        """Log the end of ``slot``'s worker and plan its next; False when the
        supervisor should give up instead."""
        process = slot.process
        assert process is not None
        process.join()
        if self._ended is not None and process.pid is not None:
            self._ended(process.pid)
        if slot.report is not None and slot.report.poll():
            self._read_report(slot)  # it reported just before it ended
        code = process.exitcode
        if not slot.ready and code == 2:
            raise StartupError(slot.failure or f"worker {slot.number} exited with status 2 before serving")
        slot.process = None
        if slot.report is not None:
            slot.report.close()
            slot.report = None
        self._deaths.append(now)
        while self._deaths[0] < now - DEATH_WINDOW:
            self._deaths.popleft()
        ended = f"worker {slot.number} (process {process.pid}) {_how_it_ended(code)}"
        if len(self._deaths) > 2 * len(self._slots):
            _say(ended)
            _say(f"error: workers keep dying ({len(self._deaths)} deaths within "
                 f"{DEATH_WINDOW:g} s); stopping")
            return False
        if now - slot.started >= STEADY_AFTER:
            slot.backoff = FIRST_BACKOFF
        _say(f"{ended}; restarting in {slot.backoff:g} s")
        slot.restart_at = now + slot.backoff
        slot.backoff = min(slot.backoff * 2, MOST_BACKOFF)
        return True


def _worker(serve_on: ServeOn, cpu: int | None, report: Connection) -> None:
    """A worker's life: serve, or report why it cannot and end with status 2."""
    # The parent's handlers came along with the fork and would only set its
    # flag's copy: until the worker sets its own, a stop request ends it.
    for number in STOP_SIGNALS:
        signal.signal(number, signal.SIG_DFL)
    try:
        serve_on(cpu, lambda: report.send(None))
    except StartupError as error:
        report.send(str(error))
        sys.exit(2)


def _how_it_ended(code: int | None) -> str:
    if code is not None and code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exited with status {code}"


def _say(line: str) -> None:
    print(f"zarrdav: {line}", file=sys.stderr, flush=True)
