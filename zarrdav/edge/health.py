"""``/-/healthz`` and ``/-/readyz``, outside the WebDAV hierarchy.

``/-/healthz`` says the process answers and touches nothing else (a
liveness probe must not fail because the archive is down: restarting
zarrdav would not bring it back). ``/-/readyz`` says whether the manifest
tree and the archive answer, naming the one that does not; it checks them
at most every ``interval`` seconds, one probe at a time, HTTP calls within
``PROBE_SECONDS`` (an S3 tree's within its client's timeouts), and a probe arriving while a check is under way gets the
last verdict at once. Both are plain text, ``Cache-Control: no-store``,
answered before the rate limits (``edge/operator.py``): a load balancer
probing often is never refused, and never spends a client's tokens.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from zarrdav.edge.answer import Answer, one_line
from zarrdav.edge.layers import Handler
from zarrdav.edge.request import Request
from zarrdav.errors import ZarrdavError
from zarrdav.upstreams.http import deadline

PROBE_SECONDS = 3.0
NO_STORE = ("Cache-Control", "no-store")

Check = Callable[[], object]  # raises a ZarrdavError (or anything) when its upstream fails


class Readiness:
    """The last verdict on the upstreams, renewed at most every ``interval`` seconds."""

    def __init__(self, checks: dict[str, Check], interval: float) -> None:
        self._checks = checks
        self._interval = interval
        self._checking = threading.Lock()
        self._verdict: str | None = None  # "" when ready, else why not
        self._checked = 0.0

    def verdict(self) -> str:
        """"" when every upstream answered the last check, else which failed and how."""
        if self._fresh() or not self._checking.acquire(blocking=self._verdict is None):
            return self._verdict or ""
        try:
            if not self._fresh():  # another probe may have checked while this one waited
                self._verdict = self._check()
                self._checked = time.monotonic()
        finally:
            self._checking.release()
        return self._verdict or ""

    def _fresh(self) -> bool:
        return self._verdict is not None and time.monotonic() - self._checked < self._interval

    def _check(self) -> str:
        failures = []
        for name, check in self._checks.items():
            try:
                with deadline(PROBE_SECONDS):
                    check()
            except ZarrdavError as error:
                failures.append(f"{name}: {one_line(str(error), 300)}")
            except Exception as error:
                failures.append(f"{name}: {type(error).__name__}")
        return "; ".join(failures)


def probes(readiness: Readiness) -> dict[str, Handler]:
    """The two probes, by path (``operator.operator_pages`` answers them)."""

    def healthz(request: Request) -> Answer:
        return Answer.plain(200, "ok", (NO_STORE,))

    def readyz(request: Request) -> Answer:
        why = readiness.verdict()
        return Answer.plain(503, f"not ready: {why}", (NO_STORE,)) if why else Answer.plain(200, "ready", (NO_STORE,))

    return {"/-/healthz": healthz, "/-/readyz": readyz}
