"""/-/metrics: what it counts, with one process and with --workers 2."""

from __future__ import annotations

import re
import time
from pathlib import Path

import httpx
import pytest

from tests.manifests import one_manifest_tree, sample_manifest
from tests.servers import free_port, in_process, zarrdav_server
from zarrdav.config import Settings
from zarrdav.edge.metrics import REQUEST_BUCKETS, _add_observations, path_kind

ZARR = "1284a14f-fe4f-4dc3-b10d-48e5db8bf18d"
CHECKSUM, MANIFEST = sample_manifest()
ROOT = f"/zarrs/128/4a1/{ZARR}/{CHECKSUM}.zarr/"


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    return one_manifest_tree(tmp_path / "tree", ZARR, CHECKSUM, MANIFEST)


def sample(text: str, name: str, **labels: str) -> float:
    """The value of one sample of the text format (0 when absent)."""
    total = 0.0
    for line in text.splitlines():
        found = re.fullmatch(rf"{name}(?:\{{(.*)\}})? (\S+)", line)
        if found:
            have = dict(re.findall(r'(\w+)="([^"]*)"', found.group(1) or ""))
            if all(have.get(key) == value for key, value in labels.items()):
                total += float(found.group(2))
    return total


def test_path_kinds() -> None:
    assert path_kind(f"{ROOT}.zattrs") == "zarrs_entry"
    assert path_kind(f"{ROOT}0/0") == "zarrs_entry"
    assert [path_kind(p) for p in ("/zarrs/", ROOT, f"{ROOT}0/", "/zarrs/128/")] == ["zarrs_listing"] * 4
    assert path_kind("/dandisets/000001/draft/a.nwb") == "dandisets"
    assert [path_kind(p) for p in ("/", "/robots.txt")] == ["page", "page"]
    assert [path_kind(p) for p in ("/-/healthz", "/favicon.ico", "/zarrsx")] == ["other"] * 3


def test_a_batch_adds_up_as_observing_each_value_would() -> None:
    from prometheus_client import CollectorRegistry, Histogram, generate_latest

    values = [0.0001, 0.0005, 0.0007, 0.003, 0.2, 7.0, 45.0, 0.0005]
    one_by_one, batched = CollectorRegistry(), CollectorRegistry()
    observed = Histogram("h", "h", buckets=REQUEST_BUCKETS, registry=one_by_one)
    for value in values:
        observed.observe(value)
    counts = [0] * (len(REQUEST_BUCKETS) + 1)
    for value in values:
        counts[next((i for i, bound in enumerate(REQUEST_BUCKETS) if value <= bound), len(REQUEST_BUCKETS))] += 1
    _add_observations(Histogram("h", "h", buckets=REQUEST_BUCKETS, registry=batched), counts, sum(values))

    def without_created(registry: CollectorRegistry) -> str:
        return "\n".join(line for line in generate_latest(registry).decode().splitlines() if "_created" not in line)

    assert without_created(batched) == without_created(one_by_one)


def scrape(url: str, count: int, path: str = "/-/metrics", seconds: float = 10) -> str:
    """A scrape once every request's batch was counted (the request log flushes within 0.2 s)."""
    deadline = time.monotonic() + seconds
    while True:
        text = httpx.get(url + path).text
        if sample(text, "zarrdav_requests_total", kind="zarrs_entry") >= count or time.monotonic() > deadline:
            return text
        time.sleep(0.2)


def test_one_process_counts_requests_cache_and_latency(tree: Path) -> None:
    with in_process(Settings(manifest_root=str(tree), index_dir="")) as client:
        for _ in range(5):
            assert client.get(f"{ROOT}.zattrs").status_code == 307
        assert client.get(f"{ROOT}absent").status_code == 404
        assert client.request("PROPFIND", ROOT, headers={"Depth": "1"}).status_code == 207
        time.sleep(0.6)
        answer = client.get("/-/metrics")
    text = answer.text
    assert answer.headers["Content-Type"].startswith("text/plain") and answer.headers["Cache-Control"] == "no-store"
    assert sample(text, "zarrdav_requests_total", method="GET", kind="zarrs_entry", status="307") == 5
    assert sample(text, "zarrdav_requests_total", method="GET", kind="zarrs_entry", status="404") == 1
    assert sample(text, "zarrdav_requests_total", method="PROPFIND", kind="zarrs_listing", status="207") == 1
    assert sample(text, "zarrdav_request_duration_seconds_count", kind="zarrs_entry") == 6
    assert sample(text, "zarrdav_request_duration_seconds_bucket", kind="zarrs_entry", le="+Inf") == 6
    assert sample(text, "zarrdav_manifest_cache_total", event="misses") == 1
    assert sample(text, "zarrdav_manifest_cache_total", event="hits") >= 6
    assert sample(text, "zarrdav_manifests_loaded_total", source="parsed") == 1
    assert sample(text, "zarrdav_manifest_cache_bytes") > 0
    assert sample(text, "zarrdav_upstream_calls_total") == 0  # a local tree: no network upstream


def test_metrics_off_answers_nothing(tree: Path) -> None:
    with in_process(Settings(manifest_root=str(tree), index_dir="", metrics_address="off")) as client:
        assert client.get("/-/metrics").status_code == 404


@pytest.mark.parametrize(("workers", "separate"), [(2, False), (2, True), (1, True)],
                         ids=["2 workers, main port", "2 workers, own address", "1 process, own address"])
def test_workers_are_summed_in_one_scrape(tree: Path, workers: int, separate: bool) -> None:
    metrics_port = free_port()
    extra = ["--metrics-address", f"127.0.0.1:{metrics_port}"] if separate else []
    with zarrdav_server("--manifest-root", str(tree), "--workers", str(workers), "--no-pin-cpus", *extra) as url:
        for _ in range(40):
            # New connections: the kernel spreads them over both workers.
            assert httpx.get(f"{url}{ROOT}.zattrs").status_code == 307
        where = f"http://127.0.0.1:{metrics_port}" if separate else url
        text = scrape(where, 40, "/metrics" if separate else "/-/metrics")
        # Whichever process answers, the sum is the same.
        again = scrape(where, 40, "/metrics" if separate else "/-/metrics")
        main = httpx.get(f"{url}/-/metrics").status_code
    assert sample(text, "zarrdav_requests_total", kind="zarrs_entry", status="307") == 40
    assert sample(again, "zarrdav_requests_total", kind="zarrs_entry", status="307") == 40
    # Each worker parsed (or read from the shared index) the manifest once.
    loaded = sample(text, "zarrdav_manifests_loaded_total")
    assert 1 <= loaded <= workers
    assert sample(text, "zarrdav_manifest_cache_total", event="misses") == loaded
    assert main == (404 if separate else 200)


def test_a_metrics_address_that_is_not_host_port_is_a_startup_error() -> None:
    from zarrdav.edge.metrics import metrics_listen_address
    from zarrdav.errors import StartupError

    assert metrics_listen_address("") is None and metrics_listen_address("off") is None
    assert metrics_listen_address("[::1]:9090") == ("::1", 9090)
    for bad in ("9090", "host:", "host:99999", ":9090", "host:port"):
        with pytest.raises(StartupError):
            metrics_listen_address(bad)
