"""Running the application on cheroot."""

from __future__ import annotations

import logging
import signal
import sys
import threading
from types import FrameType

from cheroot import wsgi

from zarrdav.app import create_app
from zarrdav.config import Settings


def serve(settings: Settings) -> None:
    """Serve until SIGINT or SIGTERM."""
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # zarrdav logs each request once; the HTTP client's own lines would double them.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    server = wsgi.Server(
        (settings.host, settings.port), create_app(settings),
        numthreads=settings.threads, server_name="zarrdav",
    )
    # cheroot closes keep-alive connections beyond this many (default 10).
    server.keep_alive_conn_limit = max(64, settings.threads * 4)
    server.prepare()
    host, port = server.bind_addr[:2]
    print(f"zarrdav serving {settings.manifest_root} on http://{host}:{port}/", file=sys.stderr, flush=True)

    # The serving loop runs in a thread and is stopped from the main thread:
    # stopping cheroot from inside its own loop (a signal handler) deadlocks.
    stopping = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    loop = threading.Thread(target=server.serve, name="cheroot", daemon=True)
    loop.start()
    while not stopping.wait(1.0) and loop.is_alive():
        pass
    server.stop()
    loop.join(10)
