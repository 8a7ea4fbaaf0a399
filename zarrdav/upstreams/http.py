"""HTTP calls to upstreams: a deadline for the whole call, a bound on what is read.

httpx's timeouts apply to each socket operation, so an upstream sending one
byte a second never trips them: a whole call is bounded here instead. Every
socket operation of a call made under ``deadline`` gets at most the time the
call has left (connect, TLS, request, headers and body alike), enforced in
the network backend the client's transport uses, so a dripping upstream ends
at the deadline to within one scheduling tick.

Bodies are read through ``read_body`` / ``copy_body``, which refuse one
larger than its bound from its ``Content-Length`` before reading it, and
while streaming (counting decoded bytes, so a compressed body cannot grow
past the bound either) when it has none.
"""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, Any
from urllib.parse import urlsplit, urlunsplit

import httpcore
import httpx

from zarrdav.errors import Forbidden, NotFound, UpstreamError, UpstreamTimeout
from zarrdav.upstreams.calls import observed

_local = threading.local()


@contextmanager
def deadline(seconds: float) -> Iterator[None]:
    """Bound every HTTP call this thread makes inside the block to ``seconds`` from now.

    Nested blocks keep the earlier of the two ends.
    """
    outer: float | None = getattr(_local, "end", None)
    end = time.monotonic() + seconds
    _local.end = end if outer is None else min(outer, end)
    try:
        yield
    finally:
        _local.end = outer


def _left(timeout: float | None, timed_out: type[Exception]) -> float | None:
    """The time one socket operation may take: its own timeout, cut to what the call has left."""
    end: float | None = getattr(_local, "end", None)
    if end is None:
        return timeout
    left = end - time.monotonic()
    if left <= 0:
        raise timed_out("the call's deadline has passed")
    return left if timeout is None else min(timeout, left)


class _DeadlineStream(httpcore.NetworkStream):
    def __init__(self, stream: httpcore.NetworkStream) -> None:
        self._stream = stream

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._stream.read(max_bytes, _left(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._stream.write(buffer, _left(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._stream.close()

    def start_tls(
        self, ssl_context: Any, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.NetworkStream:
        tls = self._stream.start_tls(ssl_context, server_hostname, _left(timeout, httpcore.ConnectTimeout))
        return _DeadlineStream(tls)

    def get_extra_info(self, info: str) -> Any:
        return self._stream.get_extra_info(info)


class _DeadlineBackend(httpcore.NetworkBackend):
    def __init__(self) -> None:
        self._backend = httpcore.SyncBackend()

    def connect_tcp(
        self, host: str, port: int, timeout: float | None = None,
        local_address: str | None = None, socket_options: Any = None,
    ) -> httpcore.NetworkStream:
        stream = self._backend.connect_tcp(
            host, port, _left(timeout, httpcore.ConnectTimeout), local_address, socket_options
        )
        return _DeadlineStream(stream)

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Any = None
    ) -> httpcore.NetworkStream:
        stream = self._backend.connect_unix_socket(path, _left(timeout, httpcore.ConnectTimeout), socket_options)
        return _DeadlineStream(stream)

    def sleep(self, seconds: float) -> None:
        self._backend.sleep(seconds)


class _DeadlineTransport(httpx.HTTPTransport):
    """httpx's own transport (its exception mapping and response streams), over
    a connection pool whose sockets keep the thread's deadline."""

    def __init__(self, limits: httpx.Limits) -> None:
        super().__init__(limits=limits)
        # httpx 0.28 takes no network backend; its pool is replaced by the same
        # pool built with one.
        self._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=_DeadlineBackend(),
        )


def make_http_client(
    timeout: float, *, max_connections: int = 32, follow_redirects: bool = False,
    headers: dict[str, str] | None = None,
) -> httpx.Client:
    """An httpx client whose calls keep the deadline their thread set with ``deadline``."""
    limits = httpx.Limits(max_connections=max_connections)
    return httpx.Client(
        transport=_DeadlineTransport(limits),
        timeout=timeout,
        follow_redirects=follow_redirects,
        headers=headers,
    )


@contextmanager
def get(
    client: httpx.Client, url: str, kind: str, where: str, seconds: float, **options: Any
) -> Iterator[httpx.Response]:
    """``GET url`` within ``seconds``, its body still to read, its failures as zarrdav errors.

    ``kind`` and ``where`` name the upstream and the item in it for messages
    ("manifest tree", "128/4a1/"), never the URL itself, which may carry
    credentials or local paths.
    """
    with observed(kind, where), deadline(seconds), http_errors(kind, where):
        with client.stream("GET", url, **options) as response:
            status = response.status_code
            if status == 404:
                raise NotFound(f"{kind}: {where} does not exist")
            if status in (401, 403):
                raise Forbidden(f"{kind}: {where} is not accessible ({status})")
            if status != 200:
                raise UpstreamError(f"{kind}: {where}: answered {status}")
            yield response


@contextmanager
def http_errors(kind: str, where: str) -> Iterator[None]:
    """httpx's failures as zarrdav's: a timeout or passed deadline is 504, anything else 502."""
    try:
        yield
    except httpx.TimeoutException as error:
        raise UpstreamTimeout(f"{kind}: {where}: no complete answer in time") from error
    except httpx.HTTPError as error:
        raise UpstreamError(f"{kind}: {where}: {error.__class__.__name__}") from error


def read_body(response: httpx.Response, limit: int, kind: str, where: str) -> bytes:
    """The whole body, refused once it is known to pass ``limit`` bytes."""
    sink = io.BytesIO()
    copy_body(response, sink, limit, kind, where)
    return sink.getvalue()


def copy_body(response: httpx.Response, sink: IO[bytes], limit: int, kind: str, where: str) -> None:
    """The body written to ``sink``, refused once it is known to pass ``limit`` bytes."""
    _refuse_declared(response, limit, kind, where)
    size = 0
    for block in response.iter_bytes():
        size += len(block)
        if size > limit:
            raise _too_large(limit, kind, where)
        sink.write(block)


def _refuse_declared(response: httpx.Response, limit: int, kind: str, where: str) -> None:
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _too_large(limit, kind, where)


def _too_large(limit: int, kind: str, where: str) -> UpstreamError:
    return UpstreamError(f"{kind}: {where}: larger than the {limit // 2**20} MiB allowed")


def public_url(url: str) -> str:
    """``url`` without its user info (``https://user:pass@host/`` -> ``https://host/``), for showing and logging."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))
