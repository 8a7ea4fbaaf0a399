"""Running the application on cheroot, in one or several processes."""

from __future__ import annotations

import ctypes
import logging
import os
import resource
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from functools import partial
from types import FrameType

from cheroot import wsgi

from zarrdav.app import create_app
from zarrdav.config import Settings
from zarrdav.edge.connection import Framing, receive_whole_requests
from zarrdav.edge.metrics import metrics_listen_address, serve_metrics, shared_metrics, worker_ended
from zarrdav.edge.requestlog import LOG_FORMAT, JsonFormatter, RequestLog
from zarrdav.edge.startup import check_listen, check_startup
from zarrdav.edge.supervisor import run_workers
from zarrdav.errors import StartupError
from zarrdav.upstreams.http import public_url


def serve(settings: Settings) -> int:
    """Serve until SIGINT or SIGTERM, with ``settings.workers`` processes.

    Returns the exit status: 0, or 1 when worker processes kept dying.
    Raises ``StartupError`` when the settings cannot be served with.
    """
    logging.basicConfig(level=settings.log_level, format=LOG_FORMAT)
    _limit_malloc_arenas()
    # zarrdav logs each request once; the HTTP client's own lines would double them.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    settings = check_startup(settings)
    if settings.log_format == "json":
        for handler in logging.getLogger().handlers:
            handler.setFormatter(JsonFormatter())
    listen = metrics_listen_address(settings.metrics_address)
    workers = max(1, settings.workers)
    cpus = worker_cpus(workers) if settings.pin_cpus else [None] * workers
    if workers == 1:
        _serve_process(settings, reuse_port=False, cpu=cpus[0], metrics_listen=listen)
        return 0
    # Each worker binds the same port with SO_REUSEPORT; the kernel spreads
    # connections across them, and each has its own GIL and caches. A worker
    # drains its requests, then finishes its index saves, before it ends.
    stop_within = settings.drain_seconds + _STOP_MARGIN
    with shared_metrics(settings.metrics_address != "off"):
        # The workers' metrics are summed by whoever answers a scrape: a
        # worker on the main port, or this process on a listener of its own.
        listener = serve_metrics(listen, None) if listen is not None else None
        try:
            return run_workers(partial(_serve_process, settings, True), cpus, stop_within, ended=worker_ended)
        finally:
            if listener is not None:
                listener.shutdown()


_STOP_MARGIN = 5.0  # seconds a worker has to end once its requests are drained


def _limit_malloc_arenas(arenas: int = 2) -> None:
    """Keep glibc from giving each server thread its own malloc arena.

    Memory a thread frees stays in its arena: with 32 threads that parse
    manifests, resident memory settled near 700 MiB behind a 64 MiB manifest
    cache (bench/memory.py), and near 300 MiB with two arenas. This must run
    before the threads start; ``MALLOC_ARENA_MAX`` in the environment wins.
    """
    if "MALLOC_ARENA_MAX" in os.environ:
        return
    try:
        libc = ctypes.CDLL(None)
        libc.mallopt(_M_ARENA_MAX, arenas)
    except (OSError, AttributeError):
        pass  # not glibc: its allocator has no arenas to limit


_M_ARENA_MAX = -8  # from glibc's malloc.h


def worker_cpus(workers: int) -> Sequence[int | None]:
    """One CPU for each worker process: consecutive CPUs of those this process
    may use, from the one it runs on, as the kernel placed it where there was
    room. None for all where CPU affinity cannot be set (not Linux)."""
    try:
        allowed = sorted(os.sched_getaffinity(0))
        with open("/proc/self/stat") as stat:
            # Field 39, "processor"; the command name (field 2) may hold spaces.
            current = int(stat.read().rsplit(")", 1)[1].split()[36])
    except (AttributeError, OSError, IndexError, ValueError):
        return [None] * workers
    return choose_cpus(workers, allowed, current)


def choose_cpus(workers: int, allowed: list[int], current: int) -> list[int]:
    """``workers`` CPUs from ``allowed`` taken in turn, starting at ``current``."""
    start = allowed.index(current) if current in allowed else 0
    return [allowed[(start + n) % len(allowed)] for n in range(workers)]


def hold_to_cpu(cpu: int | None) -> None:
    """Run this process on ``cpu`` from now on (None: leave it to the kernel).

    Only one thread runs Python at a time. On several CPUs, threads woken by
    their sockets take Python's lock from each other across CPUs at every
    system call, which under 16 clients costs a third or more of the
    throughput (bench/README.md). Call before any thread starts, as threads
    inherit the affinity of the thread that starts them.
    """
    if cpu is not None:
        os.sched_setaffinity(0, {cpu})


def _serve_process(
    settings: Settings, reuse_port: bool, cpu: int | None, ready: Callable[[], None] | None = None,
    metrics_listen: tuple[str, int] | None = None,
) -> None:
    """Serve in this process until SIGINT or SIGTERM; ``ready()`` once listening.

    ``metrics_listen``: where this process serves its metrics itself (one process only).
    """
    hold_to_cpu(cpu)
    app = create_app(settings)
    server = wsgi.Server(
        (settings.host, settings.port), app,
        numthreads=settings.threads, server_name="zarrdav", reuse_port=reuse_port,
    )
    server.request_queue_size = settings.listen_backlog
    connections = min(settings.max_connections, _open_files_allowed() - 64)
    # cheroot closes keep-alive connections beyond this many (default 10).
    server.keep_alive_conn_limit = connections
    try:
        server.prepare()
    except OSError as error:
        # Checked before, so taken since: the probe says why in a sentence
        # (cheroot's message lists every address it tried).
        app.close()
        check_listen(settings.host, settings.port, reuse_port)
        raise StartupError(f"cannot listen on {settings.host}:{settings.port}: {error}") from error
    reception = receive_whole_requests(
        server, Framing(settings.max_header_bytes, settings.max_body_bytes),
        settings.request_timeout, connections,
    )
    server.log_refusal = _refusal_logger(app.requests)  # type: ignore[attr-defined]
    listener = None
    if app.metrics is not None:
        pool = server.requests
        app.metrics.read("server", lambda: {"busy": len(pool._threads) - pool.idle, "queued": pool.qsize,
                                            "dropped": reception.dropped})
        if metrics_listen is not None:
            try:
                listener = serve_metrics(metrics_listen, app.metrics.registry)
            except StartupError:
                app.close()
                raise
    if ready is not None:
        ready()
    host, port = server.bind_addr[:2]
    on_cpu = "" if cpu is None else f", CPU {cpu}"
    print(f"zarrdav serving {public_url(settings.manifest_root)} on http://{host}:{port}/ "
          f"(process {os.getpid()}{on_cpu})",
          file=sys.stderr, flush=True)
    # The serving loop runs in a thread and is stopped from the main thread:
    # stopping cheroot from inside its own loop (a signal handler) deadlocks.
    loop = threading.Thread(target=server.serve, name="cheroot", daemon=True)
    loop.start()
    _wait_for_stop(loop.is_alive)
    # Drain: no new connections; requests in flight finish, and each
    # connection closes after its answer or, idle, cleanly at once.
    reception.drain()
    deadline = time.monotonic() + settings.drain_seconds
    while not reception.drained() and time.monotonic() < deadline:
        time.sleep(0.05)
    server.stop()
    loop.join(10)
    if listener is not None:
        listener.shutdown()
    app.close()


def _open_files_allowed() -> int:
    """The open-file limit, raised to its hard limit: each connection is a file."""
    try:
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if hard == resource.RLIM_INFINITY or hard > soft:
            wanted = 1 << 20 if hard == resource.RLIM_INFINITY else hard
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
            soft = wanted
        return int(soft)
    except (ValueError, OSError):
        return 1024


def _refusal_logger(requests: RequestLog) -> Callable[[bytes, int], None]:
    """The request log's line for a request refused before any worker saw it."""

    def log_refusal(received: bytes, status: int) -> None:
        words = received[:_SHOWN_TARGET].split(b"\r\n", 1)[0].split(b" ")
        method = words[0].decode("latin-1") if words[0] else "-"
        target = words[1].decode("latin-1") if len(words) > 1 else "-"
        requests.write(method[:20], target, status, time.perf_counter(), None)

    return log_refusal


_SHOWN_TARGET = 2048


def _wait_for_stop(running: Callable[[], bool]) -> None:
    """Block until SIGINT or SIGTERM, or until ``running()`` turns false."""
    stopping = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    while not stopping.wait(0.5) and running():
        pass
