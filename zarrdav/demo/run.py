"""``zarrdav demo``: zarrdav and everything it talks to, in one process, offline.

An embedded S3 (moto) holds two Zarrs, each changed once after it was
pinned, and the archive double describes a Dandiset whose published version
pins the first states and whose draft pins the changed ones; zarrdav serves
them exactly as it serves DANDI. Nothing outlives the process: the servers
are threads of it and the data lives in a temporary directory.
"""

from __future__ import annotations

import os
import signal
import socket
import tempfile
import threading
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from types import FrameType

from zarrdav.config import Settings
from zarrdav.demo.archive import serve_archive
from zarrdav.demo.catalog import OME_PATH, README, README_BLOB, TRACES_PATH, demo_archive
from zarrdav.demo.guide import guide
from zarrdav.demo.s3 import HOST as S3_HOST
from zarrdav.demo.s3 import create_public_bucket, embedded_s3, s3_client
from zarrdav.demo.sample import upload_blob, write_ome_zarr, write_traces_zarr
from zarrdav.edge.server import serve
from zarrdav.errors import ZarrdavError
from zarrdav.routes import zarr_version_path

BUCKET = "dandiarchive"
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
Handler = Callable[[int, FrameType | None], None]


class DemoError(ZarrdavError):
    """The demo cannot start (a port is taken)."""


def run_demo(host: str, port: int, s3_port: int, started: float) -> None:
    """Start everything, print the guide, serve until SIGINT or SIGTERM, then clean up.

    ``started`` is the ``time.perf_counter()`` reading when the command began,
    so the startup time printed includes importing zarr and moto.
    """
    port = _bindable(host, port, "zarrdav")
    if s3_port:
        _bindable(S3_HOST, s3_port, "the embedded S3")  # moto's thread would hang on a taken port
    # During startup a signal only asks to stop: an exception raised at a random
    # point could cut a cheroot server's start short and leave its worker
    # threads, which keep the process alive, running.
    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    before = {number: signal.signal(number, request_stop) for number in STOP_SIGNALS}
    try:
        with ExitStack() as stack:
            settings, permanent = _start_upstreams(stack, host, port, s3_port)
            if stop.is_set():
                return  # the stack stops what was started
            _guide_once_serving(_client_host(host), port, started, permanent, request_stop, stop)
            serve(settings)  # returns on SIGINT or SIGTERM; then the stack stops the rest
    finally:
        for number, handler in before.items():
            signal.signal(number, handler)


def _start_upstreams(stack: ExitStack, host: str, port: int, s3_port: int) -> tuple[Settings, str]:
    """Start the S3 and the archive, with the sample data; the settings to serve them with,
    and the permanent path of the traces Zarr as the release pins it."""
    workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="zarrdav-demo-")))
    zarrs, manifests = workdir / "zarrs", workdir / "manifests"
    endpoint = stack.enter_context(embedded_s3(s3_port))
    s3 = s3_client(endpoint)
    create_public_bucket(s3, BUCKET)
    samples = {
        OME_PATH: write_ome_zarr(s3, BUCKET, zarrs, manifests),
        TRACES_PATH: write_traces_zarr(s3, BUCKET, zarrs, manifests),
    }
    readme = upload_blob(s3, BUCKET, README_BLOB, README.encode(), "text/plain")
    s3_base_url = f"{endpoint}/{BUCKET}"
    api_url = stack.enter_context(serve_archive(demo_archive(samples, readme, s3_base_url)))
    traces = samples[TRACES_PATH]
    return Settings(
        host=host,
        port=port,
        manifest_root=str(manifests),
        zarr_base_url=f"{s3_base_url}/zarr",
        api_url=api_url,
        blob_redirect="s3",  # one hop to S3: davfs2 follows no more
        index_dir=str(workdir / "index"),
    ), zarr_version_path(traces.zarr_id, traces.first)


def _bindable(host: str, port: int, who: str) -> int:
    """``port``, or a free one for 0, once it is known to be free: fail before seconds of setup."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the servers bind
        try:
            probe.bind((host, port))
        except OSError as error:
            message = f"{who} cannot listen on {host} port {port}: {error.strerror}"
            raise DemoError(message) from None
        return int(probe.getsockname()[1])


def _guide_once_serving(
    host: str, port: int, started: float, permanent: str, startup_handler: Handler, stop: threading.Event
) -> None:
    """Print the guide once zarrdav accepts connections and ``serve`` handles the signals.

    A signal that came between the last look at ``stop`` and ``serve`` taking
    the signals over reached ``startup_handler`` only: it is sent again, now
    to ``serve``.
    """

    def serving() -> bool:
        if any(signal.getsignal(number) is startup_handler for number in STOP_SIGNALS):
            return False
        try:
            socket.create_connection((host, port), timeout=1).close()
        except OSError:
            return False
        return True

    def wait_then_print() -> None:
        deadline = time.monotonic() + 30
        while not serving():
            if time.monotonic() > deadline:
                return
            time.sleep(0.02)
        if stop.is_set():
            os.kill(os.getpid(), signal.SIGTERM)
            return
        url = f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"
        print(guide(url, time.perf_counter() - started, permanent), flush=True)

    threading.Thread(target=wait_then_print, name="demo-guide", daemon=True).start()


def _client_host(host: str) -> str:
    """Where clients on this machine reach a server listening on ``host``."""
    return "127.0.0.1" if host in ("", "0.0.0.0", "::") else host
