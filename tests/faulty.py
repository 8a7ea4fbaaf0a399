"""A fault-injecting upstream that the tests start: a real HTTP server on a real socket.

It answers from a backend (a manifest tree folder, or the archive double's
WSGI app) and, while a fault is injected for the paths containing a given
string, answers those badly instead: hangs, drips its answer a byte at a
time, loops its pagination, sends a huge body, or rewrites the answer (CR LF
in fields). Ending the fault releases every request it still holds, so the
tests can check that zarrdav recovers. Every fault is bounded in time
(``HOLD_LIMIT``), so a test that forgets one cannot hang the suite.
"""

from __future__ import annotations

import io
import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit

Answer = tuple[int, list[tuple[str, str]], bytes]
Backend = Callable[[str], Answer]  # a request target (path and query) -> the answer
HOLD_LIMIT = 60.0  # seconds any fault may hold a request


@dataclass
class Fault:
    """How to answer a request instead of the backend: ``answer(upstream, handler, target)``."""

    answer: Callable[[FaultyUpstream, BaseHTTPRequestHandler, str], None]
    where: str = ""  # the paths it applies to contain this


@dataclass
class FaultyUpstream:
    url: str = ""  # ends in "/"
    backend: Backend | None = None
    targets: list[str] = field(default_factory=list)  # every request target, in order
    fault: Fault | None = None
    released: threading.Event = field(default_factory=threading.Event)

    @contextmanager
    def injected(self, fault: Fault) -> Iterator[None]:
        """The fault, for the duration of the block; then every request it holds is let go."""
        self.released.clear()
        self.fault = fault
        try:
            yield
        finally:
            self.fault = None
            self.released.set()

    def calls(self, containing: str) -> int:
        return sum(containing in target for target in self.targets)

    def answer(self, target: str) -> Answer:
        assert self.backend is not None, "no backend set"
        return self.backend(target)

    def handle(self, handler: BaseHTTPRequestHandler) -> None:
        target = handler.path
        self.targets.append(target)
        fault = self.fault
        if fault is not None and fault.where in target:
            fault.answer(self, handler, target)
        else:
            send(handler, *self.answer(target))

    def hold(self, seconds: float) -> bool:
        """Wait up to ``seconds`` (bounded); True once the fault has ended."""
        return self.released.wait(min(seconds, HOLD_LIMIT))


def send(handler: BaseHTTPRequestHandler, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
    handler.send_response(status)
    for name, value in headers:
        if name.lower() != "content-length":
            handler.send_header(name, value)
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


# The faults.


def hang(where: str = "") -> Fault:
    """Accept the request and never answer, until the fault ends."""

    def answer(upstream: FaultyUpstream, handler: BaseHTTPRequestHandler, target: str) -> None:
        upstream.hold(HOLD_LIMIT)
        handler.close_connection = True

    return Fault(answer, where)


def delay(where: str = "", seconds: float = 0.5) -> Fault:
    """The backend's answer, after ``seconds`` (or once the fault ends)."""

    def answer(upstream: FaultyUpstream, handler: BaseHTTPRequestHandler, target: str) -> None:
        upstream.hold(seconds)
        send(handler, *upstream.answer(target))

    return Fault(answer, where)


def drip(where: str = "", interval: float = 0.5) -> Fault:
    """The backend's answer, its body one byte per ``interval``, until the fault ends."""

    def answer(upstream: FaultyUpstream, handler: BaseHTTPRequestHandler, target: str) -> None:
        status, headers, body = upstream.answer(target)
        handler.send_response(status)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.flush()
        started = time.monotonic()
        for position in range(len(body)):
            if upstream.hold(interval) or time.monotonic() - started > HOLD_LIMIT:
                break
            try:
                handler.wfile.write(body[position : position + 1])
                handler.wfile.flush()
            except OSError:
                break  # zarrdav gave up on it: the deadline worked
        handler.close_connection = True

    return Fault(answer, where)


def huge(where: str = "", size: int = 2**31, declared: bool = True, prefix: bytes = b'{"files": ["') -> Fault:
    """A 200 answer of ``size`` bytes (``prefix`` then filler), its length declared or not.

    Without a declared length the body ends when the connection closes, as
    HTTP/1.0 allows: zarrdav can only tell its size by reading it.
    """

    def answer(upstream: FaultyUpstream, handler: BaseHTTPRequestHandler, target: str) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        if declared:
            handler.send_header("Content-Length", str(size))
        handler.end_headers()
        block = b"a" * (1 << 20)
        sent = 0
        try:
            handler.wfile.write(prefix)
            while sent < size and not upstream.released.is_set():
                handler.wfile.write(block)
                sent += len(block)
        except OSError:
            pass  # zarrdav stopped reading: refused
        handler.close_connection = True

    return Fault(answer, where)


def rewrite(change: Callable[[Any], Any], where: str = "") -> Fault:
    """The backend's JSON answer, changed by ``change`` (which returns the new document)."""

    def answer(upstream: FaultyUpstream, handler: BaseHTTPRequestHandler, target: str) -> None:
        status, headers, body = upstream.answer(target)
        send(handler, status, [("Content-Type", "application/json")], json.dumps(change(json.loads(body))).encode())

    return Fault(answer, where)


def paginate_forever(next_link: Callable[[FaultyUpstream, str], str], where: str = "") -> Fault:
    """The backend's page, with its ``next`` link as ``next_link(upstream, target)`` makes it."""

    def change_for(upstream: FaultyUpstream, target: str) -> Callable[[Any], Any]:
        def change(page: Any) -> Any:
            return {**page, "next": next_link(upstream, target)}
        return change

    def answer(upstream: FaultyUpstream, handler: BaseHTTPRequestHandler, target: str) -> None:
        rewrite(change_for(upstream, target)).answer(upstream, handler, target)

    return Fault(answer, where)


def same_page(upstream: FaultyUpstream, target: str) -> str:
    """``next`` pointing at the page itself."""
    return upstream.url.rstrip("/") + target


def next_page(upstream: FaultyUpstream, target: str) -> str:
    """``next`` always one page further, whatever ``count`` says."""
    parts = urlsplit(target)
    query = dict(parse_qsl(parts.query))
    query["page"] = str(int(query.get("page", "1")) + 1)
    return f"{upstream.url.rstrip('/')}{parts.path}?{urlencode(query)}"


def other_host(upstream: FaultyUpstream, target: str) -> str:
    """``next`` on another host than the archive's (the same server, named differently)."""
    return (upstream.url.rstrip("/") + target).replace("127.0.0.1", "localhost", 1)


# Backends.


def tree_backend(root: Path) -> Backend:
    """Files under ``root``; folders as the manifest mirror lists them (JSON)."""

    def answer(target: str) -> Answer:
        path = root / unquote(urlsplit(target).path).lstrip("/")
        if path.is_dir():
            entries = sorted(path.iterdir())
            body = json.dumps({
                "files": [entry.name for entry in entries if entry.is_file()],
                "directories": [entry.name for entry in entries if entry.is_dir()],
            }).encode()
            return 200, [("Content-Type", "application/json")], body
        if path.is_file():
            return 200, [("Content-Type", "application/json")], path.read_bytes()
        return 404, [], b"not found"

    return answer


def wsgi_backend(app: Callable[..., Any]) -> Backend:
    """The answers of a WSGI app (the archive double)."""

    def answer(target: str) -> Answer:
        parts = urlsplit(target)
        environ = {
            "REQUEST_METHOD": "GET",
            "PATH_INFO": unquote(parts.path).encode().decode("latin-1"),
            "QUERY_STRING": parts.query,
            "SCRIPT_NAME": "",
            "wsgi.input": io.BytesIO(),
        }
        started: list[Any] = []
        body = b"".join(app(environ, lambda status, headers, exc_info=None: started.extend((status, headers))))
        status, headers = started
        return int(status.split()[0]), headers, body

    return answer


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        self.server.upstream.handle(self)

    def log_message(self, format: str, *args: object) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    upstream: FaultyUpstream


@contextmanager
def faulty_upstream() -> Iterator[FaultyUpstream]:
    """The server, bound and serving; set its ``backend`` before the first request."""
    server = _Server(("127.0.0.1", 0), _Handler)
    server.upstream = FaultyUpstream(url=f"http://127.0.0.1:{server.server_address[1]}/")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.upstream
    finally:
        server.upstream.released.set()
        server.shutdown()
        server.server_close()
