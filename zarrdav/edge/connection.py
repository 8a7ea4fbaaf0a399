"""cheroot's HTTP connection, tuned for clients that send request after request.

Nearly all of zarrdav's traffic is GETs answered by a redirect, sent one after
another over a kept-alive connection (zarr-python, rclone, davfs2). Around
each such request, stock cheroot spends about a quarter of its instructions
on two things this module skips when it safely can (``bench/instructions.py``):

- After every answer, the worker hands the connection back to cheroot's
  selector thread, which hands it to a worker again through a queue once the
  next request arrives. ``KeepAliveConnection`` keeps it on the same worker
  while the next request comes within ``LINGER_SECONDS`` and no other
  connection waits for a worker, as Apache's worker MPM and threaded servers
  before cheroot's selector did; otherwise it goes back to the selector as
  before.
- cheroot reads every request and header line through the pure-Python
  ``_pyio`` reader. ``LineReader`` returns a line already in its buffer
  directly, and leaves everything else to that reader.
"""

from __future__ import annotations

import select
import socket
from typing import Any

from cheroot.makefile import StreamReader, StreamWriter
from cheroot.server import HTTPConnection

LINGER_SECONDS = 0.002


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


class KeepAliveConnection(HTTPConnection):
    """An HTTP connection that stays on its worker while its client keeps sending."""

    def __init__(self, server: Any, sock: socket.socket, makefile: Any = None) -> None:
        # cheroot passes its own MakeFile (or a TLS adapter's, which zarrdav never configures).
        super().__init__(server, sock, make_file)
        self._poller: select.poll | None = None

    def communicate(self) -> bool:
        """Answer requests until the connection closes or its client pauses;
        true if it stays open."""
        while True:
            keep_open: bool = super().communicate()
            if not (keep_open and self._next_request_comes()):
                return keep_open

    def _next_request_comes(self) -> bool:
        server = self.server
        if not server.ready or server.requests.qsize:
            # Stopping, or other connections wait for a worker: this one
            # queues behind them, even with a pipelined request in its buffer.
            return False
        if self.rfile.has_data():
            return True
        if self._poller is None:
            self._poller = select.poll()
            self._poller.register(self.socket.fileno(), select.POLLIN)
        return bool(self._poller.poll(LINGER_SECONDS * 1000))
