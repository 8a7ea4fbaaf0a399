"""Running the application on cheroot."""

from __future__ import annotations

import logging
import signal
import sys
from types import FrameType

from cheroot import wsgi

from zarrdav.app import create_app
from zarrdav.config import Settings


def serve(settings: Settings) -> None:
    """Serve until SIGINT or SIGTERM."""
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    server = wsgi.Server((settings.host, settings.port), create_app(settings),
                         numthreads=settings.threads, server_name="zarrdav")
    # cheroot closes keep-alive connections beyond this many (default 10).
    server.keep_alive_conn_limit = max(64, settings.threads * 4)

    def stop(signum: int, frame: FrameType | None) -> None:
        # Only interrupt the serving loop here: server.stop() waits for that loop.
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    server.prepare()
    host, port = server.bind_addr[:2]
    print(f"zarrdav serving {settings.manifest_root} on http://{host}:{port}/", file=sys.stderr, flush=True)
    try:
        server.serve()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
