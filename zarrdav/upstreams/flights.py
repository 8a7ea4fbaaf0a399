"""Waiting on upstreams: one call per key, and a bound on the threads that wait.

A slow upstream must not delay answers that need nothing from it. Each
request waiting on an upstream holds a worker thread, so ``UpstreamGate``
lets only a share of them wait at once: past it, a request that needs an
upstream is refused at once with 503, and the remaining threads keep
answering from cache. ``Flights`` makes concurrent misses of one key share
one upstream call.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from typing import Generic, TypeVar

from zarrdav.errors import Unavailable
from zarrdav.upstreams.calls import charge

# A refusal for load says "shortly": the slots free as upstream calls end,
# within upstream_timeout at worst.
_RETRY_AFTER = 1
K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class UpstreamGate:
    """At most ``slots`` threads waiting on upstreams at once (None: no bound)."""

    def __init__(self, slots: int | None = None) -> None:
        self._slots = threading.BoundedSemaphore(slots) if slots is not None else None
        self._depth = threading.local()

    @contextmanager
    def waiting(self, kind: str) -> Iterator[None]:
        """Hold a slot for the block; a thread already holding one takes no second.

        Each block is charged to the client's budget for ``kind`` first.
        """
        charge(kind)
        depth: int = getattr(self._depth, "value", 0)
        if depth == 0 and self._slots is not None and not self._slots.acquire(blocking=False):
            raise Unavailable(f"{kind}: too many requests are waiting on upstreams; try again shortly", _RETRY_AFTER)
        self._depth.value = depth + 1
        try:
            yield
        finally:
            self._depth.value = depth
            if depth == 0 and self._slots is not None:
                self._slots.release()


class Flights(Generic[K, V]):
    """Concurrent calls for one key make one call; the others wait for its result."""

    def __init__(self) -> None:
        self._calls: dict[K, Future[V]] = {}
        self._lock = threading.Lock()

    def run(self, key: K, call: Callable[[], V]) -> V:
        """``call()``'s result, or that of the same key's call already under way.

        Errors are shared the same way and never kept: the next miss calls again.
        """
        with self._lock:
            future = self._calls.get(key)
            owner = future is None
            if future is None:
                future = self._calls[key] = Future()
        if owner:
            try:
                future.set_result(call())
            except BaseException as error:
                future.set_exception(error)
            finally:
                with self._lock:
                    del self._calls[key]
        return future.result()
