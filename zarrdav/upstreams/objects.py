"""Streaming one S3 object's bytes through zarrdav, for clients that cannot follow a redirect.

Memory stays bounded whatever the object's size: the body is passed on in
chunks of 64 KiB as the client takes them, never held whole. The answer's
head must come within ``upstream_timeout``, and so must each chunk after
it, so a stalled or dripping S3 ends the download rather than holding a
thread. A download holds one of the upstream slots (``upstream_share``)
while it streams: past them, a request answers 503 at once.
"""

from __future__ import annotations

import errno
import logging
import re
from collections.abc import Iterator, Mapping
from contextlib import ExitStack
from dataclasses import dataclass

import httpx

from zarrdav.errors import NotFound, UpstreamError
from zarrdav.upstreams.flights import UpstreamGate
from zarrdav.upstreams.http import deadline, http_errors, make_http_client
from zarrdav.upstreams.values import sendable, unsendable

CHUNK = 64 * 1024
# What S3 keeps of the object and of the part asked for; all else is S3's own.
_KEPT = ("Content-Length", "Content-Range", "Content-Type", "Content-Encoding", "ETag",
         "Last-Modified", "Accept-Ranges")
_PASSED_ON = frozenset((200, 206, 304))
_GONE = re.compile(rb"<Code>(NoSuchKey|NoSuchVersion)</Code>")
_ERROR_BYTES = 4096  # of an S3 error body, enough for its <Code>
log = logging.getLogger("zarrdav")


@dataclass(slots=True)
class Fetched:
    """S3's answer as zarrdav passes it on: status, the headers kept, and the body."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes | ObjectBody


class ObjectReader:
    """GET or HEAD of one object URL on S3, its body streamed."""

    def __init__(self, timeout: float, gate: UpstreamGate, max_connections: int = 32) -> None:
        self._client = make_http_client(timeout, max_connections=max_connections)
        self._timeout = timeout
        self._gate = gate

    def fetch(self, method: str, url: str, headers: Mapping[str, str], where: str) -> Fetched:
        """``method url`` with the client's ``headers`` (Range, conditionals).

        ``where`` names the object in messages (``url`` may carry a signature,
        which must never reach a log line). S3 saying the key or version does
        not exist is a 404; any other refusal or fault a 502, a timeout a 504.
        """
        stack = ExitStack()
        try:
            stack.enter_context(self._gate.waiting("S3"))
            with deadline(self._timeout), http_errors("S3", where):
                response = self._client.send(self._client.build_request(method, url, headers=headers), stream=True)
                stack.callback(response.close)
                status = response.status_code
                if status not in _PASSED_ON and status != 416:
                    raise _refusal(response, method, where)
            kept = _kept(response, where)
            if status == 416:
                stack.close()
                body = b"the requested range is not satisfiable\n"
                kept = [(n, v) for n, v in kept if n == "Content-Range"]
                return Fetched(416, [("Content-Type", "text/plain; charset=utf-8"),
                                     ("Content-Length", str(len(body))), *kept], body)
            if method == "HEAD" or status == 304:
                stack.close()
                return Fetched(status, kept, b"")
            return Fetched(status, kept, ObjectBody(response, stack.pop_all(), self._timeout, where))
        finally:
            stack.close()


class ObjectBody:
    """The object's bytes as an iterable the server writes out; ``close`` frees the connection.

    Once the head is sent, a failure can only cut the connection: the client
    sees fewer bytes than ``Content-Length`` said, never a wrong byte.
    """

    __slots__ = ("_response", "_held", "_timeout", "_where")

    def __init__(self, response: httpx.Response, held: ExitStack, timeout: float, where: str) -> None:
        self._response = response
        self._held = held
        self._timeout = timeout
        self._where = where

    def __iter__(self) -> Iterator[bytes]:
        chunks = self._response.iter_raw(CHUNK)
        sent = 0
        while True:
            try:
                with deadline(self._timeout):
                    chunk = next(chunks, None)
            except httpx.HTTPError as error:
                self.close()
                log.warning("S3: %s: cut after %d bytes: %s", self._where, sent, error.__class__.__name__)
                # An error cheroot drops quietly, closing the connection.
                raise ConnectionAbortedError(errno.ECONNABORTED, "upstream cut") from error
            if chunk is None:
                return
            sent += len(chunk)
            yield chunk

    def close(self) -> None:
        self._held.close()


def _kept(response: httpx.Response, where: str) -> list[tuple[str, str]]:
    kept = []
    for name in _KEPT:
        value = response.headers.get(name)
        if value is None:
            continue
        # Checked as any field value: S3's ETag comes quoted, as it is sent on.
        if not sendable(value, "S3 header") or (name == "Content-Length" and not value.isdigit()):
            raise unsendable(name, f"S3: {where}")
        kept.append((name, value))
    return kept


def _refusal(response: httpx.Response, method: str, where: str) -> Exception:
    status = response.status_code
    if status == 404:
        head = b"" if method == "HEAD" else _start(response)
        if method == "HEAD" or _GONE.search(head):
            return NotFound(f"S3: {where}: this version is no longer in the bucket")
    return UpstreamError(f"S3: {where}: answered {status}")


def _start(response: httpx.Response) -> bytes:
    """The first bytes of an error body, enough to read its code."""
    read = b""
    for chunk in response.iter_raw(_ERROR_BYTES):
        read += chunk
        if len(read) >= _ERROR_BYTES:
            break
    return read
