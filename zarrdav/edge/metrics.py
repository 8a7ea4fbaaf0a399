"""``/-/metrics``: Prometheus metrics, cheap enough for every chunk GET.

Nothing is counted on a request's own path: the request log already notes
every request's method, path, status and times, and its flusher hands each
batch (every 0.2 s) to ``Metrics.observe``, which counts the batch in plain
Python and then adds the totals to the Prometheus metrics once per label
set. Manifest cache hits are a lock-free ``Tally``; the figures kept by
other parts (cache, connections, threads) are read at each batch too.
Upstream calls, which are slow anyway, are counted as they end.

With ``--workers N`` the metrics use prometheus_client's multiprocess
mode: each worker writes its values to memory-mapped files in
``PROMETHEUS_MULTIPROC_DIR`` (made and removed by ``zarrdav serve``), and
whoever answers a scrape (any worker on the main port, or the supervisor
on ``metrics_address``) sums them all, so one scrape target sees the whole
server. prometheus_client picks its value store when first imported, from
that variable: it is imported here only inside ``Metrics``, created by
``create_app`` after ``zarrdav serve`` has set the variable.
"""

from __future__ import annotations

import bisect
import os
import shutil
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Literal

from zarrdav.edge.answer import Answer
from zarrdav.edge.layers import Handler
from zarrdav.edge.request import Request
from zarrdav.edge.requestlog import Noted
from zarrdav.errors import StartupError
from zarrdav.upstreams.calls import watch

PATH = "/-/metrics"
MULTIPROCESS_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
# Seconds; a redirect from cache takes well under a millisecond.
REQUEST_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
UPSTREAM_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
READ_SECONDS = 1.0
_METHODS = frozenset(("GET", "HEAD", "OPTIONS", "PROPFIND"))
_NO_STORE = ("Cache-Control", "no-store")

# A part's figures read at each batch: name -> value.
Source = Callable[[], dict[str, int]]


def path_kind(path: str) -> str:
    """The kind of a request path, for the ``kind`` label: a Zarr's entry or
    listing under ``/zarrs/``, anything under ``/dandisets/``, a page (the
    root, robots.txt), or other."""
    if path.startswith("/zarrs/"):
        # An entry is a file inside a <checksum>.zarr/ (one search in C, on every chunk GET).
        return "zarrs_entry" if ".zarr/" in path and path[-1] != "/" else "zarrs_listing"
    if path.startswith("/dandisets/") or path == "/dandisets":
        return "dandisets"
    if path in ("/", "/robots.txt"):
        return "page"
    return "other"


def multiprocess() -> bool:
    """Whether this process shares its metrics through ``PROMETHEUS_MULTIPROC_DIR``."""
    return bool(os.environ.get(MULTIPROCESS_VARIABLE))


def exposition(registry: Any | None = None) -> tuple[bytes, str]:
    """The text format of ``registry``, or, in multiprocess mode, of every process's files."""
    from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
    from prometheus_client.multiprocess import MultiProcessCollector

    if registry is None or multiprocess():
        registry = CollectorRegistry()
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return generate_latest(registry), CONTENT_TYPE_LATEST


class Metrics:
    """This process's metrics; ``observe`` is the request log's observer."""

    def __init__(self) -> None:
        import prometheus_client as prom

        self.registry = prom.CollectorRegistry()
        registry = self.registry
        counter, gauge, histogram = prom.Counter, prom.Gauge, prom.Histogram
        live: Literal["livesum"] = "livesum"  # gauges: the sum over the processes alive
        self.requests = counter("zarrdav_requests", "Requests answered, by method, kind of path and status",
                                ("method", "kind", "status"), registry=registry)
        self.latency = histogram("zarrdav_request_duration_seconds", "Time from a whole request to its answer",
                                 ("kind",), buckets=REQUEST_BUCKETS, registry=registry)
        self.upstream_calls = counter("zarrdav_upstream_calls", "Calls to upstreams, by upstream and outcome",
                                      ("upstream", "outcome"), registry=registry)
        self.upstream_latency = histogram("zarrdav_upstream_call_duration_seconds",
                                          "Time of a whole upstream call, retries included",
                                          ("upstream",), buckets=UPSTREAM_BUCKETS, registry=registry)
        self.cache_events = counter("zarrdav_manifest_cache", "Manifest cache hits, misses and evictions",
                                    ("event",), registry=registry)
        self.loaded = counter("zarrdav_manifests_loaded", "Manifests loaded on a miss: parsed, or read from the index",
                              ("source",), registry=registry)
        self.cache_bytes = gauge("zarrdav_manifest_cache_bytes", "Memory the manifest cache holds",
                                 multiprocess_mode=live, registry=registry)
        self.cache_manifests = gauge("zarrdav_manifest_cache_manifests", "Manifests the cache holds",
                                     multiprocess_mode=live, registry=registry)
        self.in_flight = gauge("zarrdav_requests_in_flight", "Worker threads busy with a request's connection",
                               multiprocess_mode=live, registry=registry)
        self.queued = gauge("zarrdav_requests_queued", "Whole requests waiting for a worker thread",
                            multiprocess_mode=live, registry=registry)
        self.dropped = counter("zarrdav_connections_dropped", "Connections closed at once by a limit",
                               ("reason",), registry=registry)
        self.clients = gauge("zarrdav_rate_limit_clients", "Clients whose rate limits are remembered",
                             multiprocess_mode=live, registry=registry)
        self._sources: list[tuple[str, Source]] = []
        self._published: dict[tuple[str, str], int] = {}
        self._read_at = 0.0
        self._reading = threading.Lock()  # the flusher and a scrape may read at once
        self.close = watch(self.watch_upstream)

    def read(self, name: str, source: Source) -> None:
        """Read ``source`` at each batch; ``name`` says which metrics its figures go to."""
        self._sources.append((name, source))

    def watch_upstream(self, upstream: str, outcome: str, seconds: float) -> None:
        """``calls.watch``'s watcher: one upstream call ended."""
        self.upstream_calls.labels(upstream, outcome).inc()
        self.upstream_latency.labels(upstream).observe(seconds)

    def observe(self, batch: Sequence[Noted]) -> None:
        """Count a batch of requests, then publish what the other parts report."""
        counts: Counter[tuple[str, str, int]] = Counter()
        buckets: dict[str, list[int]] = {}
        sums: dict[str, float] = {}
        size = len(REQUEST_BUCKETS) + 1
        for started, ended, method, path, status, _, _ in batch:
            # Chunk GETs, nearly every request, without a call of path_kind.
            if path.startswith("/zarrs/") and ".zarr/" in path and path[-1] != "/":
                kind = "zarrs_entry"
            else:
                kind = path_kind(path)
            counts[method if method in _METHODS else "other", kind, status] += 1
            seconds = ended - started
            into = buckets.get(kind)
            if into is None:
                into = buckets[kind] = [0] * size
                sums[kind] = 0.0
            into[bisect.bisect_left(REQUEST_BUCKETS, seconds)] += 1
            sums[kind] += seconds
        for (method, kind, status), count in counts.items():
            self.requests.labels(method, kind, str(status)).inc(count)
        for kind, into in buckets.items():
            _add_observations(self.latency.labels(kind), into, sums[kind])
        # The other parts' figures once a second: a busy server's batches come every 0.2 s.
        if time.monotonic() - self._read_at >= READ_SECONDS:
            self.read_sources()

    def read_sources(self) -> None:
        """Publish what the other parts report now (also before each scrape this process answers)."""
        with self._reading:
            self._read_at = time.monotonic()
            for name, source in self._sources:
                self._publish(name, source())

    def _publish(self, name: str, figures: dict[str, int]) -> None:
        if name == "cache":
            for event in ("hits", "misses", "evictions"):
                self._add(self.cache_events.labels(event), ("cache", event), figures[event])
            for source in ("parsed", "index"):
                self._add(self.loaded.labels(source), ("loaded", source), figures[source])
            self.cache_bytes.set(figures["bytes"])
            self.cache_manifests.set(figures["manifests"])
        elif name == "server":
            self.in_flight.set(figures["busy"])
            self.queued.set(figures["queued"])
            self._add(self.dropped.labels("max_connections"), ("dropped", "max_connections"), figures["dropped"])
        elif name == "limits":
            self.clients.set(figures["clients"])

    def _add(self, counter: Any, key: tuple[str, str], total: int) -> None:
        """Bring ``counter`` up to ``total``, a count kept elsewhere since start."""
        added = total - self._published.get(key, 0)
        if added > 0:
            counter.inc(added)
            self._published[key] = total


def _add_observations(child: Any, counts: list[int], total: float) -> None:
    """Add a batch to a histogram child: ``counts[i]`` observations in bucket
    ``i`` summing to ``total``.

    prometheus_client offers ``observe`` one value at a time only: per
    request, that is a lock and a search of the buckets in Python each time.
    Its children keep one value per bucket (not cumulative) and their sum,
    which this adds to directly; tests/test_metrics.py checks the result
    against ``observe``, so a prometheus_client that changes this fails there.
    """
    child._sum.inc(total)
    for value, count in zip(child._buckets, counts, strict=True):
        if count:
            value.inc(count)


def metrics_listen_address(setting: str) -> tuple[str, int] | None:
    """``metrics_address`` as (host, port) for a listener of its own; None for
    the main address or off. ``host:port``, ``[v6]:port``."""
    if setting in ("", "off"):
        return None
    host, colon, port = setting.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not colon or not host or not port.isdigit() or int(port) > 65535:
        raise StartupError(f"metrics_address must be host:port, empty or off, not {setting!r}")
    return host, int(port)


class Listener:
    """A metrics listener running in a thread of its own."""

    def __init__(self, server: Any) -> None:
        self._server = server

    def shutdown(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def serve_metrics(address: tuple[str, int], registry: Any | None) -> Listener:
    """Serve the text format of ``registry`` (None: every worker's, summed) on ``address``, any path."""
    from prometheus_client import CollectorRegistry, start_http_server
    from prometheus_client.multiprocess import MultiProcessCollector

    if registry is None:
        registry = CollectorRegistry()
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    try:
        server, _ = start_http_server(address[1], address[0], registry)
    except OSError as error:
        raise StartupError(f"cannot listen for metrics on {address[0]}:{address[1]}: {error.strerror}") from None
    return Listener(server)


@contextmanager
def shared_metrics(wanted: bool) -> Iterator[None]:
    """Worker processes' metrics shared through files, in a directory made for
    the block (one given in ``PROMETHEUS_MULTIPROC_DIR`` is used, and left)."""
    if not wanted or multiprocess():
        yield
        return
    folder = tempfile.mkdtemp(prefix="zarrdav-metrics-")
    os.environ[MULTIPROCESS_VARIABLE] = folder
    try:
        yield
    finally:
        del os.environ[MULTIPROCESS_VARIABLE]
        shutil.rmtree(folder, ignore_errors=True)


def worker_ended(pid: int) -> None:
    """A worker ended: its live gauges go (its counters stay in the sums)."""
    if multiprocess():
        from prometheus_client.multiprocess import mark_process_dead

        mark_process_dead(pid)  # type: ignore[no-untyped-call]


def metrics_page(metrics: Metrics) -> dict[str, Handler]:
    """``/-/metrics``: the text format, never cached (``operator.operator_pages`` answers it)."""

    def exposed(request: Request) -> Answer:
        metrics.read_sources()
        body, content_type = exposition(metrics.registry)
        headers = [("Content-Type", content_type), ("Content-Length", str(len(body))), _NO_STORE]
        return Answer(200, headers, body)

    return {PATH: exposed}
