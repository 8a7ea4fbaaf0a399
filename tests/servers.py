"""Real servers the tests start: moto's S3 server, a JSON-listing web server, zarrdav, its demo."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import IO
from urllib.parse import unquote, urlsplit

import httpx

from zarrdav.app import create_app
from zarrdav.config import Settings
from zarrdav.demo.guide import READY

DEMO_STARTUP_LIMIT = 60  # seconds; the demo takes a few, more on a loaded CI machine
DEMO_STOP_LIMIT = 20  # seconds; it stops in one or two


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_until_up(url: str, process: subprocess.Popen[bytes] | None = None, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"server for {url} exited with {process.returncode}")
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.05)
    raise RuntimeError(f"{url} did not come up in {timeout} s")


@contextmanager
def moto_server() -> Iterator[str]:
    """moto's standalone S3 server in its own process; yields its endpoint URL."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "MOTO_ALLOW_NONEXISTENT_REGION": "1"},
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(endpoint, process)
        yield endpoint
    finally:
        process.terminate()
        process.wait(10)


class _ListingHandler(SimpleHTTPRequestHandler):
    """Serves files, and folders as the manifest mirror does: JSON listings."""

    def log_message(self, format: str, *args: object) -> None:
        pass

    def send_head(self):  # type: ignore[no-untyped-def]
        path = Path(self.translate_path(self.path))
        if not path.is_dir():
            return super().send_head()
        if not urlsplit(self.path).path.endswith("/"):
            self.send_response(301)
            self.send_header("Location", self.path + "/")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return None
        entries = sorted(path.iterdir())
        body = json.dumps(
            {
                "path": unquote(urlsplit(self.path).path),
                "files": [e.name for e in entries if e.is_file()],
                "directories": [e.name for e in entries if e.is_dir()],
            }
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body) if self.command == "GET" else None
        return None


@contextmanager
def json_listing_server(root: Path) -> Iterator[str]:
    """A web server of ``root`` whose folders answer JSON listings; yields its URL."""

    def handler(*args: object) -> _ListingHandler:
        return _ListingHandler(*args, directory=str(root))  # type: ignore[arg-type]

    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def in_process(settings: Settings) -> Iterator[httpx.Client]:
    """zarrdav's whole application in this process, no sockets: for handler
    logic, in milliseconds and with tracebacks where it breaks."""
    app = create_app(settings)
    try:
        with httpx.Client(transport=httpx.WSGITransport(app=app), base_url="http://127.0.0.1") as client:
            yield client
    finally:
        app.close()


@contextmanager
def zarrdav_server(
    *args: str, log: Path | None = None, env: Mapping[str, str] | None = None
) -> Iterator[str]:
    """`zarrdav serve` in its own process, as users run it; yields its base URL (see ``zarrdav_process``)."""
    with zarrdav_process(*args, log=log, env=env) as (url, _):
        yield url


# Rate limits on, and out of reach: every test client is 127.0.0.1. Tests of
# the limits themselves set their own.
UNLIMITED = {"ZARRDAV_RATE_LIMIT_BURST": "1000000", "ZARRDAV_RATE_LIMIT_PER_SECOND": "1000000",
             "ZARRDAV_ARCHIVE_LIMIT_BURST": "1000000", "ZARRDAV_ARCHIVE_LIMIT_PER_SECOND": "1000000"}


@contextmanager
def zarrdav_process(
    *args: str, log: Path | None = None, env: Mapping[str, str] | None = None
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """`zarrdav serve` in its own process, as users run it; yields its base URL and the process.

    Its output goes to ``log`` (default a temporary file) so a failed start can
    say why and tests can read the request log. It is configured by ``args``
    and ``env`` alone: the caller's ZARRDAV_* variables (ZARRDAV_UPDATE_GOLDEN,
    say) would be unknown settings to it. Its manifest index is a fresh
    temporary directory, never the user's, unless ``args`` give ``--index-dir``.
    """
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "zarrdav", "serve", "--host", "127.0.0.1", "--port", str(port)]
    environment = {k: v for k, v in os.environ.items() if not k.startswith("ZARRDAV_")}
    environment.update(env or {})
    with (
        tempfile.TemporaryDirectory(prefix="zarrdav-index-") as index,
        (log.open("w+b") if log is not None else tempfile.TemporaryFile()) as output,
    ):
        environment.setdefault("ZARRDAV_INDEX_DIR", index)
        for name, value in UNLIMITED.items():
            environment.setdefault(name, value)
        process = subprocess.Popen(
            [*command, *args], stdout=output, stderr=subprocess.STDOUT, env=environment
        )
        try:
            try:
                wait_until_up(url, process)
            except RuntimeError as error:
                output.seek(0)
                said = output.read().decode(errors="replace")
                raise RuntimeError(f"{error}; zarrdav serve said:\n{said}") from None
            yield url, process
        finally:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)


@dataclass
class Demo:
    """A running `zarrdav demo`."""

    process: subprocess.Popen[str]
    url: str  # ends in "/"
    stderr: IO[bytes]  # the log
    stdout: list[str] = field(default_factory=list)  # lines printed so far

    @property
    def printed(self) -> str:
        return "".join(self.stdout)

    def log(self) -> str:
        self.stderr.seek(0)
        return self.stderr.read().decode(errors="replace")


@contextmanager
def zarrdav_demo() -> Iterator[Demo]:
    """`python -m zarrdav demo` on a free port, as users run it, once it has printed its guide."""
    port = free_port()
    with tempfile.TemporaryFile() as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "zarrdav", "demo", "--port", str(port)],
            stdout=subprocess.PIPE, stderr=stderr, text=True,
        )
        running = Demo(process, f"http://127.0.0.1:{port}/", stderr)
        ready = threading.Event()
        threading.Thread(
            target=_collect, args=(process, running.stdout, ready), daemon=True
        ).start()
        try:
            if not ready.wait(DEMO_STARTUP_LIMIT) or process.poll() is not None:
                raise RuntimeError(f"zarrdav demo did not start:\n{running.printed}{running.log()}")
            yield running
        finally:
            if process.poll() is None:
                # SIGTERM, as a user's Ctrl-C would: the demo deletes its
                # working directory on the way out (SIGKILL left it in /tmp).
                process.terminate()
                try:
                    process.wait(DEMO_STOP_LIMIT)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(10)


def _collect(process: subprocess.Popen[str], lines: list[str], ready: threading.Event) -> None:
    """Keep what the demo prints; signal once it printed its guide, or exited."""
    assert process.stdout is not None
    for line in process.stdout:
        lines.append(line)
        if line.startswith(READY):
            ready.set()
    ready.set()  # let the fixture fail now rather than at the deadline
