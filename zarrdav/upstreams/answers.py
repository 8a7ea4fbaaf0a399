"""Answers of an upstream, kept: lock-free hits, one loader per missing key.

Every request under ``/dandisets/`` asks several of them (the version, the
Zarr asset on its path), so a hit must cost what a dict lookup costs: under
the GIL each ``OrderedDict`` operation is atomic, so hits take no lock, as
the manifest cache's do. Misses wait on the upstream through the gate (the
one place where an archive call a request causes is counted), and
concurrent misses of one key share one call.

Answers that never change (about published versions) are kept until room
is needed, least recently used first; others for ``ttl`` seconds. A falsy
answer (an empty listing, nothing at a path) may come from an upstream
recovering from a fault, so it is kept for ``ttl`` only, wherever it is from.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

from zarrdav.upstreams.flights import Flights, UpstreamGate

T = TypeVar("T")
MISSING: Any = object()


class Answers:
    def __init__(self, kind: str, gate: UpstreamGate, *, ttl: float, max_entries: int = 50_000) -> None:
        self._kind = kind
        self._gate = gate
        self._ttl = ttl
        self._max_entries = max_entries
        self._fixed: OrderedDict[Hashable, Any] = OrderedDict()
        self._fresh: OrderedDict[Hashable, tuple[float, Any]] = OrderedDict()  # (expires, answer)
        self._flights: Flights[Hashable, Any] = Flights()
        self._lock = threading.Lock()

    def peek(self, key: Hashable, fixed: bool) -> Any:
        """The kept answer, or ``MISSING``; never waits."""
        if fixed:
            found = self._fixed.get(key, MISSING)
            if found is not MISSING:
                try:
                    self._fixed.move_to_end(key)
                except KeyError:
                    pass  # evicted just now; this request still has it
                return found
        kept = self._fresh.get(key)
        if kept is not None and kept[0] > time.monotonic():
            return kept[1]
        return MISSING

    def get(self, key: Hashable, fixed: bool, load: Callable[[], T]) -> T:
        """The kept answer, else ``load()``'s (one call for concurrent misses); errors are never kept."""
        found = self.peek(key, fixed)
        if found is not MISSING:
            return found  # type: ignore[no-any-return]

        def call() -> T:
            again = self.peek(key, fixed)  # a flight that ended just before this one began
            if again is not MISSING:
                return again  # type: ignore[no-any-return]
            value = load()
            self.keep(key, fixed, value)
            return value

        with self._gate.waiting(self._kind):
            loaded: T = self._flights.run(key, call)
            return loaded

    def keep(self, key: Hashable, fixed: bool, value: Any) -> None:
        """Keep an answer learnt on the way (a folder's child, say) as if it had been loaded."""
        with self._lock:
            if fixed and value:
                self._fixed[key] = value
                self._fixed.move_to_end(key)
                while len(self._fixed) > self._max_entries:
                    self._fixed.popitem(last=False)
                return
            self._fresh.pop(key, None)
            self._fresh[key] = (time.monotonic() + self._ttl, value)
            now = time.monotonic()
            while self._fresh and (len(self._fresh) > self._max_entries or next(iter(self._fresh.values()))[0] <= now):
                self._fresh.popitem(last=False)
