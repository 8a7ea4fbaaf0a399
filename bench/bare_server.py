"""The baseline: a bare cheroot WSGI app answering every request with one fixed response.

    python bench/bare_server.py THREADS STATUS HEADERS_JSON [--zarrdav-connection] [--processes N]

Listens on a free port of 127.0.0.1, configured as ``zarrdav serve`` configures
cheroot (same thread count, same keep-alive connection limit), and prints
``http://127.0.0.1:<port>/`` once listening (once per process). Stock cheroot
is the baseline of target 1; with ``--zarrdav-connection`` it serves through
zarrdav's ``KeepAliveConnection`` too, so that the difference to zarrdav is
the application alone; with ``--processes N`` it runs as ``zarrdav serve
--workers N`` does by default: N processes sharing the port, each held to a
CPU of its own (``pin_cpus``).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable
from typing import Any

from cheroot import wsgi
from common import free_port

from zarrdav.edge.connection import Framing, receive_whole_requests
from zarrdav.edge.server import hold_to_cpu, worker_cpus
from zarrdav.edge.supervisor import run_workers


def fixed_app(status: str, headers: list[tuple[str, str]]) -> Callable[..., Iterable[bytes]]:
    """A WSGI app answering ``status`` with ``headers`` and an empty body."""

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        start_response(status, headers)
        return [b""]

    return app


def main() -> None:
    threads, status, headers = int(sys.argv[1]), sys.argv[2], json.loads(sys.argv[3])
    options = sys.argv[4:]
    app = fixed_app(status, [(name, value) for name, value in headers])

    def serve(port: int, reuse_port: bool, ready: Callable[[], None] = lambda: None) -> None:
        server = wsgi.Server(("127.0.0.1", port), app, numthreads=threads, server_name="zarrdav",
                             reuse_port=reuse_port)
        server.keep_alive_conn_limit = max(64, threads * 4)
        server.prepare()
        if "--zarrdav-connection" in options:
            receive_whole_requests(server, Framing(65536, 65536), 10.0, server.keep_alive_conn_limit)
        ready()
        print(f"bare cheroot on http://127.0.0.1:{server.bind_addr[1]}/", file=sys.stderr, flush=True)
        server.serve()

    if "--processes" not in options:
        serve(0, reuse_port=False)
        return
    port = free_port()

    def serve_on(cpu: int | None, ready: Callable[[], None]) -> None:
        hold_to_cpu(cpu)
        serve(port, reuse_port=True, ready=ready)

    run_workers(serve_on, worker_cpus(int(options[options.index("--processes") + 1])))


if __name__ == "__main__":
    main()
