"""The baseline: a bare cheroot WSGI app answering every request with one fixed response.

    python bench/bare_server.py THREADS STATUS HEADERS_JSON [--zarrdav-connection] [--one-cpu]

Listens on a free port of 127.0.0.1, configured as ``zarrdav serve`` configures
cheroot (same thread count, same keep-alive connection limit), and prints
``http://127.0.0.1:<port>/`` once listening. Stock cheroot is the baseline of
target 1; with ``--zarrdav-connection`` it serves through zarrdav's
``KeepAliveConnection`` too, so that the difference to zarrdav is the
application alone; with ``--one-cpu`` it holds itself to one CPU as
``zarrdav serve`` does by default (``pin_cpus``).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable
from typing import Any

from cheroot import wsgi

from zarrdav.connection import KeepAliveConnection
from zarrdav.server import hold_to_cpu, worker_cpus


def fixed_app(status: str, headers: list[tuple[str, str]]) -> Callable[..., Iterable[bytes]]:
    """A WSGI app answering ``status`` with ``headers`` and an empty body."""

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        start_response(status, headers)
        return [b""]

    return app


def main() -> None:
    threads, status, headers = int(sys.argv[1]), sys.argv[2], json.loads(sys.argv[3])
    if "--one-cpu" in sys.argv[4:]:
        hold_to_cpu(worker_cpus(1)[0])
    app = fixed_app(status, [(name, value) for name, value in headers])
    server = wsgi.Server(("127.0.0.1", 0), app, numthreads=threads, server_name="zarrdav")
    server.keep_alive_conn_limit = max(64, threads * 4)
    if "--zarrdav-connection" in sys.argv[4:]:
        server.ConnectionClass = KeepAliveConnection
    server.prepare()
    print(f"bare cheroot on http://127.0.0.1:{server.bind_addr[1]}/", file=sys.stderr, flush=True)
    server.serve()


if __name__ == "__main__":
    main()
