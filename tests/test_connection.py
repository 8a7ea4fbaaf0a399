"""The keep-alive connection zarrdav serves with, on real sockets.

A cheroot server with ``KeepAliveConnection`` answers a small app that names
the path and the thread that answered it; clients are raw sockets, so that
pipelining, pauses and many connections are exactly what the tests send.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from cheroot import wsgi
from cheroot.makefile import StreamReader

from zarrdav.edge.connection import LINGER_SECONDS, Framing, LineReader, receive_whole_requests


def _app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    body = f"{environ['PATH_INFO']} {threading.current_thread().name}".encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


@contextmanager
def _server(threads: int = 4) -> Iterator[wsgi.Server]:
    server = wsgi.Server(("127.0.0.1", 0), _app, numthreads=threads)
    server.keep_alive_conn_limit = 64
    server.prepare()
    receive_whole_requests(server, Framing(65536, 65536), request_timeout=10, max_connections=64)
    loop = threading.Thread(target=server.serve, daemon=True)
    loop.start()
    try:
        yield server
    finally:
        server.stop()
        loop.join(10)


class _Client:
    """One keep-alive connection, reading answers by their Content-Length."""

    def __init__(self, server: wsgi.Server) -> None:
        self.socket = socket.create_connection(server.bind_addr[:2], timeout=10)
        self._buffer = b""
        self.closed_by_server = False

    def send(self, *paths: str) -> None:
        self.socket.sendall(b"".join(
            f"GET {path} HTTP/1.1\r\nHost: test\r\n\r\n".encode() for path in paths
        ))

    def answer(self, closing_ok: bool = False) -> tuple[str, str]:
        """The status line and the body of the next answer, which must keep
        the connection open unless ``closing_ok``."""
        while b"\r\n\r\n" not in self._buffer:
            self._receive()
        head, _, self._buffer = self._buffer.partition(b"\r\n\r\n")
        lines = head.decode().split("\r\n")
        headers = dict(line.lower().split(": ", 1) for line in lines[1:])
        length = int(headers["content-length"])
        while len(self._buffer) < length:
            self._receive()
        body, self._buffer = self._buffer[:length], self._buffer[length:]
        self.closed_by_server = headers.get("connection") == "close"
        if self.closed_by_server and not closing_ok:
            raise AssertionError(f"the server closed the connection after {lines[0]}")
        return lines[0], body.decode()

    def _receive(self) -> None:
        data = self.socket.recv(65536)
        if not data:
            raise ConnectionError("closed by the server")
        self._buffer += data

    def close(self) -> None:
        self.socket.close()


def test_pipelined_requests_are_answered_in_order() -> None:
    with _server() as server:
        client = _Client(server)
        client.send("/a", "/b", "/c")
        answers = [client.answer() for _ in range(3)]
        client.close()
    assert [status for status, _ in answers] == ["HTTP/1.1 200 OK"] * 3
    assert [body.split()[0] for _, body in answers] == ["/a", "/b", "/c"]


def test_a_client_sending_request_after_request_keeps_its_worker() -> None:
    with _server() as server:
        client = _Client(server)
        names = set()
        for n in range(50):
            client.send(f"/{n}")
            status, body = client.answer()
            assert status == "HTTP/1.1 200 OK"
            assert body.split()[0] == f"/{n}"
            names.add(body.split()[1])
        client.close()
    assert len(names) == 1


@pytest.mark.parametrize("pause", [LINGER_SECONDS * 10, 1.2])
def test_a_connection_that_pauses_is_still_answered(pause: float) -> None:
    with _server() as server:
        client = _Client(server)
        client.send("/before")
        assert client.answer()[1].startswith("/before ")
        time.sleep(pause)  # longer than the linger: the connection goes back to cheroot's selector
        client.send("/after")
        assert client.answer()[1].startswith("/after ")
        client.close()


def _hammer(server: wsgi.Server, stop: threading.Event, answered: list[int]) -> None:
    """Send request after request on one connection until ``stop``; a stopping
    server may close the connection."""
    try:
        client = _Client(server)
        while not stop.is_set():
            client.send("/busy")
            client.answer(closing_ok=True)
            answered.append(1)
            if client.closed_by_server:
                assert not server.ready, "closed while serving"
                break
        client.close()
    except (ConnectionError, OSError):
        pass  # the server went away


# A client in its own process (in a thread it would share the GIL with the
# server and pause) that keeps 64 requests ahead of the answers, so the
# server always has its next request: it never pauses, however long it runs.
_PIPELINING_CLIENT = """
import socket, sys
connection = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
request = b"GET /busy HTTP/1.1\\r\\nHost: test\\r\\n\\r\\n"
connection.sendall(request * 64)
unread = b""
while data := connection.recv(65536):
    unread += data
    answers = unread.count(b"\\r\\n\\r\\n")  # answers have no CRLF in their bodies
    unread = unread[unread.rfind(b"\\r\\n\\r\\n") + 4:] if answers else unread[-3:]
    connection.sendall(request * answers)
"""


def test_a_new_client_is_answered_while_busy_clients_hold_every_worker() -> None:
    """A connection goes back to cheroot's queue while another waits for a worker."""
    with _server(threads=2) as server:
        busy = [subprocess.Popen([sys.executable, "-c", _PIPELINING_CLIENT, str(server.bind_addr[1])])
                for _ in range(2)]
        try:
            time.sleep(0.5)
            client = _Client(server)
            client.socket.settimeout(5)
            client.send("/newcomer")
            body = client.answer()[1]
            client.close()
            still_busy = [process.poll() is None for process in busy]
        finally:
            for process in busy:
                process.kill()
                process.wait()
    assert body.startswith("/newcomer ")
    assert still_busy == [True, True]


def test_stopping_does_not_wait_for_a_busy_keep_alive_client() -> None:
    stop = threading.Event()
    answered: list[int] = []
    with _server() as server:
        hammer = threading.Thread(target=_hammer, args=(server, stop, answered), daemon=True)
        hammer.start()
        time.sleep(0.3)
        started = time.monotonic()
    stopped_in = time.monotonic() - started
    stop.set()
    hammer.join(10)
    assert answered
    assert stopped_in < 5


def test_a_request_line_longer_than_cheroots_read_size_is_read_whole() -> None:
    path = "/" + "x" * 1000
    with _server() as server:
        client = _Client(server)
        client.send(path, "/next")
        assert client.answer()[1].split()[0] == path
        assert client.answer()[1].split()[0] == "/next"
        client.close()


STREAMS = [
    b"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
    b"no newline at all",
    b"\n\n\r\n" + b"y" * 300 + b"\nlast",
    b"a\nbb\nccc\n" * 50,
]


def _read_lines(reader_class: type[StreamReader], stream: bytes, size: int | None,
                chunk: int) -> tuple[list[bytes], int]:
    """The lines a reader returns while ``stream`` arrives ``chunk`` bytes at a time; bytes read."""
    ours, theirs = socket.socketpair()
    reader = reader_class(ours, "rb", 64)

    def send() -> None:
        for start in range(0, len(stream), chunk):
            theirs.sendall(stream[start:start + chunk])
        theirs.close()

    sender = threading.Thread(target=send)
    sender.start()
    if chunk >= len(stream):
        sender.join()  # all of it is there before the first read
    read = []
    while line := reader.readline(size):
        read.append(line)
    sender.join()
    ours.close()
    return read, reader.bytes_read


@pytest.mark.parametrize("stream", STREAMS)
@pytest.mark.parametrize("size", [-1, None, 1, 2, 5, 256])
def test_line_reader_reads_what_cheroots_reader_reads(stream: bytes, size: int | None) -> None:
    assert _read_lines(LineReader, stream, size, len(stream)) == _read_lines(
        StreamReader, stream, size, len(stream))


@pytest.mark.parametrize("stream", STREAMS)
@pytest.mark.parametrize("size", [-1, 2, 256])
@pytest.mark.parametrize("chunk", [1, 3])
def test_line_reader_splits_a_trickling_stream_at_its_newlines(
    stream: bytes, size: int | None, chunk: int
) -> None:
    """Where lines are cut then depends on timing (in _pyio too); what is read does not."""
    lines, read = _read_lines(LineReader, stream, size, chunk)
    assert b"".join(lines) == stream
    assert read == len(stream)
    assert all(b"\n" not in line[:-1] for line in lines)
