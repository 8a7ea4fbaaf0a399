"""cheroot's connections, made safe from slow clients and quick for busy ones.

This module is where zarrdav fights cheroot, and only here; each fight was
measured (bench/slowclients.py, bench/instructions.py).

- **Reception.** Stock cheroot hands a new connection to a worker thread at
  once, and the worker blocks until the request's headers have come: 32
  clients sending a header byte every few seconds held all 32 threads.
  ``Reception`` replaces cheroot's connection manager: a connection reaches
  a worker only once its request is whole (headers, and a body within
  ``max_body_bytes``), read by the selector thread from sockets that are
  ready, as nginx and Apache's event MPM do. A request must be whole within
  ``request_timeout`` of its first byte (else 408); its framing is checked
  before any of it is read by cheroot (``Framing``); refusals answer one
  line and close the connection after discarding what else the client
  sends for a moment, so the client reads the answer rather than a reset.
- **Staying on the worker.** Nearly all of zarrdav's traffic is GETs
  answered by a redirect, sent one after another over a kept-alive
  connection (zarr-python, rclone, davfs2). After every answer, stock
  cheroot hands the connection back to the selector thread, which hands it
  to a worker again through a queue once the next request arrives: about a
  quarter of its instructions. ``KeepAliveConnection`` keeps it on the same
  worker while the next whole request comes within ``LINGER_SECONDS`` and
  no other connection waits for a worker, as Apache's worker MPM did.
- **Reading lines.** cheroot reads every request and header line through the
  pure-Python ``_pyio`` reader. ``LineReader`` returns a line already in its
  buffer directly, and leaves everything else to that reader.
- **Closing.** An answer that refuses a request's framing or size, and every
  answer while the server drains, closes its connection instead of letting
  cheroot read (``drain``) the rest of a body that may be gigabytes.
"""

from __future__ import annotations

import errno
import os
import select
import selectors
import socket
import time
from typing import Any

from cheroot.connections import ConnectionManager
from cheroot.makefile import StreamReader, StreamWriter
from cheroot.server import HTTPConnection, HTTPRequest

LINGER_SECONDS = 0.002
# How long a refused or drained connection's further bytes are read and
# dropped before it is closed, so that its client reads the answer first.
CLOSING_SECONDS = 2.0
CLOSING_BYTES = 2**20  # a client sending more than this meanwhile is cut off
_RECEIVE_BYTES = 65536
_WAIT = 0
_READY = 1
_CONTINUE = 2  # headers whole, the body to come once the client hears "100 Continue"


class Refusal:
    """A request refused before it reaches a worker: status line and one line of text."""

    __slots__ = ("status", "message")

    def __init__(self, status: str, message: str) -> None:
        self.status = status
        self.message = message

    def answer(self) -> bytes:
        body = f"{self.message}\n".encode()
        return (f"HTTP/1.1 {self.status}\r\nContent-Type: text/plain; charset=utf-8\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode() + body


_TIMED_OUT = Refusal("408 Request Timeout", "the request did not arrive in time")


class Framing:
    """Whether the bytes buffered for a connection hold one whole request.

    The rules are HTTP/1.1's (RFC 9112) where request smuggling lives: one
    Content-Length, made of digits, never beside Transfer-Encoding; chunked
    as the only transfer coding; a Host header in HTTP/1.1.
    """

    def __init__(self, max_header_bytes: int, max_body_bytes: int) -> None:
        self.max_header_bytes = max_header_bytes
        self.max_body_bytes = max_body_bytes

    def examine(self, buffered: bytes) -> int | Refusal:
        if buffered.startswith(b"\r\n"):
            # One empty line before a request is allowed (RFC 9112, 2.2), as
            # cheroot allows it; more is no request.
            if buffered.startswith(b"\r\n\r\n"):
                return Refusal("400 Bad Request", "empty request line")
            buffered = buffered[2:]
        end = buffered.find(b"\r\n\r\n")
        if end < 0 or end + 4 > self.max_header_bytes:
            if len(buffered) > self.max_header_bytes:
                return Refusal("431 Request Header Fields Too Large",
                               f"request headers are limited to {self.max_header_bytes} bytes")
            return _WAIT
        head = buffered[: end + 2].lower()
        line_end = head.find(b"\r\n")
        http11 = head.endswith(b"http/1.1", 0, line_end)
        if b"content-length" not in head and b"transfer-encoding" not in head:
            if http11 and b"\r\nhost:" not in head:
                return Refusal("400 Bad Request", "HTTP/1.1 requests need a Host header")
            return _READY  # nearly every request: no body
        return self._with_body(buffered, head, end + 4, http11)

    def _with_body(self, buffered: bytes, head: bytes, body_start: int, http11: bool) -> int | Refusal:
        lengths: list[bytes] = []
        codings: list[bytes] = []
        host = expect = False
        for line in head.split(b"\r\n")[1:-1]:
            name, colon, value = line.partition(b":")
            if not colon or name != name.strip():
                return Refusal("400 Bad Request", "malformed header line")
            if name == b"content-length":
                lengths.append(value.strip())
            elif name == b"transfer-encoding":
                codings += [coding.strip() for coding in value.split(b",")]
            elif name == b"host":
                host = True
            elif name == b"expect":
                expect = value.strip() == b"100-continue"
        if http11 and not host:
            return Refusal("400 Bad Request", "HTTP/1.1 requests need a Host header")
        if lengths and codings:
            return Refusal("400 Bad Request", "Content-Length and Transfer-Encoding together")
        if len(lengths) > 1:
            return Refusal("400 Bad Request", "more than one Content-Length")
        if codings:
            if codings != [b"chunked"]:
                return Refusal("501 Not Implemented", "chunked is the only transfer coding accepted")
            complete = _chunked_body_complete(buffered, body_start, self.max_body_bytes)
        elif lengths:
            if not lengths[0].isdigit():
                return Refusal("400 Bad Request", "Content-Length must be a number of bytes")
            length = int(lengths[0])
            # A body beyond the limit is the handler's to refuse (413), unread.
            complete = length > self.max_body_bytes or len(buffered) - body_start >= length
        else:
            return _READY
        if isinstance(complete, Refusal):
            return complete
        if complete:
            return _READY
        return _CONTINUE if expect and len(buffered) == body_start else _WAIT


def _chunked_body_complete(buffered: bytes, start: int, limit: int) -> bool | Refusal:
    """True once the last chunk has come, or once the body has passed ``limit``."""
    position = start
    while True:
        if position - start > limit:
            return True
        line_end = buffered.find(b"\r\n", position)
        if line_end < 0:
            return len(buffered) - start > limit
        size_text = buffered[position:line_end].split(b";", 1)[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError:
            return Refusal("400 Bad Request", "malformed chunk size")
        if size < 0 or not size_text.isalnum():
            return Refusal("400 Bad Request", "malformed chunk size")
        if size == 0:
            # The trailer section ends with an empty line.
            return buffered.startswith(b"\r\n", line_end + 2) or buffered.find(b"\r\n\r\n", line_end) >= 0
        position = line_end + 2 + size + 2
        if position > len(buffered):
            return position - start > limit


class LineReader(StreamReader):
    """cheroot's socket reader, with a fast path for a line already buffered."""

    # At run time StreamReader is a _pyio.BufferedReader; cheroot's own
    # has_data reads the same two attributes of its buffer.
    _read_buf: bytes
    _read_pos: int

    def readline(self, size: int | None = -1) -> bytes:
        buffered, start = self._read_buf, self._read_pos
        end = buffered.find(b"\n", start) + 1
        if end and (size is None or size < 0 or end - start <= size):
            self._read_pos = end
            self.bytes_read += end - start
            return buffered[start:end]
        return super().readline(size)


def make_file(sock: socket.socket, mode: str, bufsize: int) -> StreamReader | StreamWriter:
    """cheroot's ``MakeFile``, reading through ``LineReader``."""
    return (LineReader if "r" in mode else StreamWriter)(sock, mode, bufsize)


class ClosingRequest(HTTPRequest):
    """cheroot's request, closing its connection where reading on would not pay."""

    def send_headers(self) -> None:
        if not self.close_connection and (
            (b"Connection", b"close") in self.outheaders
            or getattr(self.server, "draining", False)
            or (self.chunked_read and not self.rfile.closed)
            # cheroot would read what is left of the body, however large.
            or getattr(self.rfile, "remaining", 0) > _RECEIVE_BYTES
        ):
            self.close_connection = True
            self.conn.close_softly = True
        super().send_headers()


class KeepAliveConnection(HTTPConnection):
    """An HTTP connection that stays on its worker while its client keeps sending."""

    RequestHandlerClass = ClosingRequest

    def __init__(self, server: Any, sock: socket.socket, makefile: Any = None) -> None:
        # cheroot passes its own MakeFile (or a TLS adapter's, which zarrdav never configures).
        super().__init__(server, sock, make_file)
        self._poller: select.poll | None = None
        # When the first byte of a request still incomplete came (None: none pending).
        self.receiving_since: float | None = None
        # When a refused or drained connection started closing (None: it is not).
        self.closing_since: float | None = None
        self.continued = False  # "100 Continue" sent for the request pending
        self.close_softly = False  # the answer closes it, and the client may still send
        self.discarded = 0  # bytes read and dropped while closing

    def communicate(self) -> bool:
        """Answer requests until the connection closes or its client pauses;
        true if it stays open."""
        while True:
            keep_open: bool = super().communicate()  # type: ignore[no-untyped-call]
            if not keep_open and self.close_softly and self.server.ready:
                # Reception closes it once the client has read the answer.
                Reception.close_softly(self, time.time())
                return True
            if not (keep_open and self._next_request_comes()):
                return keep_open

    def _next_request_comes(self) -> bool:
        """True when a whole request is buffered, read now if it has come;
        otherwise the connection goes back to ``Reception.put``."""
        server = self.server
        if not server.ready or server.requests.qsize:
            # Stopping, or other connections wait for a worker: this one
            # queues behind them, even with a pipelined request in its buffer.
            return False
        if not self.rfile.has_data():
            if self._poller is None:
                self._poller = select.poll()
                self._poller.register(self.socket.fileno(), select.POLLIN)
            if not self._poller.poll(LINGER_SECONDS * 1000) or not receive(self):
                return False
        framing: Framing = server.framing
        return framing.examine(buffered(self)) == _READY


def buffered(connection: KeepAliveConnection) -> bytes:
    """What the connection has received and cheroot has not read yet."""
    rfile = connection.rfile
    waiting: bytes = rfile._read_buf[rfile._read_pos :]
    return waiting


def receive(connection: KeepAliveConnection) -> bool:
    """Add what the socket holds to the connection's buffer, without waiting;
    false when nothing came (closed by the client, or not ready after all)."""
    try:
        data = os.read(connection.socket.fileno(), _RECEIVE_BYTES)
    except OSError:
        return False
    if not data:
        return False
    rfile = connection.rfile
    rfile._read_buf = rfile._read_buf[rfile._read_pos :] + data
    rfile._read_pos = 0
    return True


class Reception(ConnectionManager):
    """cheroot's connection manager, giving workers only whole requests.

    Runs in cheroot's selector thread, except ``put`` (a worker hands its
    connection back after an answer).
    """

    # cheroot's own, which its type stubs do not declare.
    _selector: Any
    _stop_requested: bool
    _num_connections: int
    _remove_invalid_sockets: Any
    _from_server_socket: Any

    def __init__(self, server: Any, request_timeout: float, max_connections: int) -> None:
        super().__init__(server)
        self._request_timeout = request_timeout
        self._max_connections = max_connections
        self.dropped = 0  # connections closed at once, beyond max_connections
        self._draining_since: float | None = None

    def put(self, conn: KeepAliveConnection) -> None:
        conn.last_used = time.time()
        if conn.closing_since is not None:
            self._selector.register(conn.socket.fileno(), selectors.EVENT_READ, data=conn)
        else:
            self._examine(conn, conn.last_used)

    def drain(self) -> None:
        """Stop accepting; answer what comes on open connections with
        ``Connection: close``, and close idle ones cleanly."""
        self.server.draining = True
        self._draining_since = time.time()
        listening = self.server.socket
        self._selector.unregister(listening.fileno())
        # Closed, so that the kernel gives new connections to the other
        # workers on the port rather than queueing them here; cheroot's
        # stop then has no socket left to close.
        listening.close()
        self.server.socket = None

    def drained(self) -> bool:
        """True once no connection is open but those closing."""
        return all(
            conn is self.server or conn.closing_since is not None
            for _, conn in self._selector.connections
        ) and self.server.requests.idle == len(self.server.requests._threads)

    def _examine(self, conn: KeepAliveConnection, now: float) -> None:
        """Hand the connection to a worker, refuse its request, or wait for more."""
        verdict = self.server.framing.examine(buffered(conn))
        if verdict == _READY:
            conn.receiving_since = None
            conn.continued = False
            self.server.process_conn(conn)
            return
        if isinstance(verdict, Refusal):
            self._refuse(conn, verdict, now)
        else:
            if conn.rfile.has_data() and conn.receiving_since is None:
                conn.receiving_since = now
            if verdict == _CONTINUE and not conn.continued:
                conn.continued = True
                _send(conn, b"HTTP/1.1 100 Continue\r\n\r\n")
        self._selector.register(conn.socket.fileno(), selectors.EVENT_READ, data=conn)

    def _refuse(self, conn: KeepAliveConnection, refusal: Refusal, now: float) -> None:
        _send(conn, refusal.answer())
        self.close_softly(conn, now)
        log = getattr(self.server, "log_refusal", None)
        if log is not None:
            log(buffered(conn), int(refusal.status[:3]))
        conn.rfile._read_buf, conn.rfile._read_pos = b"", 0

    @staticmethod
    def close_softly(conn: KeepAliveConnection, now: float) -> None:
        # Closing with unread bytes would reset the connection, and the
        # client might lose the answer: say we are done, read what still
        # comes, and close on the client's end or after CLOSING_SECONDS.
        conn.closing_since = now
        try:
            conn.socket.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def _run(self, expiration_interval: float) -> None:
        last_expiration_check = time.time()
        while not self._stop_requested:
            try:
                ready = list(self._selector.select(timeout=expiration_interval))
            except OSError:
                self._remove_invalid_sockets()
                continue
            now = time.time()
            for fd, conn in ready:
                if conn is self.server:
                    self._accept(now)
                    continue
                if not receive(conn):
                    if conn.closing_since is not None or not _would_block(conn):
                        self._selector.unregister(fd)
                        conn.close()
                    continue
                if conn.closing_since is not None:
                    conn.discarded += len(conn.rfile._read_buf)
                    conn.rfile._read_buf, conn.rfile._read_pos = b"", 0
                    if conn.discarded > CLOSING_BYTES:
                        self._selector.unregister(fd)
                        conn.close()
                    continue
                conn.last_used = now
                self._selector.unregister(fd)
                self._examine(conn, now)
            if now - last_expiration_check > expiration_interval:
                self._expire_all(now)
                last_expiration_check = now

    def _accept(self, now: float) -> None:
        conn = self._from_server_socket(self.server.socket)
        if conn is None:
            return
        if self._num_connections >= self._max_connections:
            self.dropped += 1
            conn.close()
            return
        conn.last_used = now
        self._selector.register(conn.socket.fileno(), selectors.EVENT_READ, data=conn)

    def _expire_all(self, now: float) -> None:
        idle_since = now - self.server.timeout
        for fd, conn in list(self._selector.connections):
            if conn is self.server:
                continue
            if conn.closing_since is not None:
                if now - conn.closing_since > CLOSING_SECONDS:
                    self._selector.unregister(fd)
                    conn.close()
            elif conn.receiving_since is not None:
                if now - conn.receiving_since > self._request_timeout:
                    self._refuse(conn, _TIMED_OUT, now)
            elif self._draining_since is not None or conn.last_used < idle_since:
                self.close_softly(conn, now)


def _would_block(conn: KeepAliveConnection) -> bool:
    """True if the socket is open with nothing to read yet (a spurious wake-up)."""
    try:
        peeked: bytes = conn.socket.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
        return peeked != b""
    except BlockingIOError:
        return True
    except OSError as error:
        return error.errno == errno.EINTR


def _send(conn: KeepAliveConnection, data: bytes) -> None:
    """Best effort, without waiting: a short answer fits an empty send buffer."""
    try:
        os.write(conn.socket.fileno(), data)
    except OSError:
        pass


def receive_whole_requests(server: Any, framing: Framing, request_timeout: float,
                           max_connections: int) -> Reception:
    """Serve a prepared cheroot server's connections as ``KeepAliveConnection``
    through ``Reception``, in place of its own connection manager."""
    server.ConnectionClass = KeepAliveConnection
    server.framing = framing
    server.draining = False
    server._connections._selector.close()
    reception = Reception(server, request_timeout, max_connections)
    server._connections = reception
    return reception
