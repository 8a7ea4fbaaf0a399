"""What an upstream call knows of the request it serves, and what it reports.

The edge sets two context variables for each request (each worker thread has
its own context): the request's id, which every upstream call's log line
carries, and the client's archive budget, which each archive call charges
(``UpstreamGate.waiting``). ``observed`` wraps one whole upstream call: a
log line with its upstream, item, outcome, time and request id, and the
same figures to whoever ``watch``es (the metrics).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Protocol

from zarrdav.edge.answer import one_line
from zarrdav.errors import Forbidden, NotFound, UpstreamTimeout

log = logging.getLogger("zarrdav.upstream")

REQUEST_ID: ContextVar[str] = ContextVar("zarrdav_request_id", default="-")


class Budget(Protocol):
    def charge(self, kind: str) -> None:
        """Take one call of ``kind`` from the client's budget; ``TooManyRequests`` when spent."""


BUDGET: ContextVar[Budget | None] = ContextVar("zarrdav_budget", default=None)

# (upstream, outcome, seconds) of every call that ended.
Watcher = Callable[[str, str, float], None]
_watchers: list[Watcher] = []


def watch(watcher: Watcher) -> Callable[[], None]:
    """Call ``watcher`` with every upstream call's figures once it ends, until
    the function returned is called."""
    _watchers.append(watcher)
    return lambda: _watchers.remove(watcher)


def charge(kind: str) -> None:
    """Charge the current request's client for a call of ``kind`` (no client: nothing)."""
    budget = BUDGET.get()
    if budget is not None:
        budget.charge(kind)


@contextmanager
def observed(upstream: str, where: str) -> Iterator[None]:
    """Report the call made inside the block, however it ends.

    The outcome is what the call's error means (absent, refused, timeout,
    error), so the block goes outside the upstream's own error mapping.
    """
    started = time.perf_counter()
    outcome = "ok"
    try:
        yield
    except NotFound:
        outcome = "absent"
        raise
    except Forbidden:
        outcome = "refused"
        raise
    except UpstreamTimeout:
        outcome = "timeout"
        raise
    except BaseException:
        outcome = "error"
        raise
    finally:
        seconds = time.perf_counter() - started
        for watcher in _watchers:
            watcher(upstream, outcome, seconds)
        if log.isEnabledFor(logging.INFO):
            request_id = REQUEST_ID.get()
            where = one_line(where, 300)  # names from upstreams may hold newlines
            log.info("%s %s %s %.1fms id=%s", upstream, where, outcome, seconds * 1000, request_id,
                     extra={"upstream": upstream, "where": where, "outcome": outcome,
                            "ms": round(seconds * 1000, 1), "request_id": request_id})
