"""Rate limits: per client, X-Forwarded-For from trusted proxies only, a tighter archive budget."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.manifests import one_manifest_tree, sample_manifest
from tests.servers import zarrdav_server
from zarrdav.app import create_app
from zarrdav.config import Settings
from zarrdav.demo.archive import load_archive, serve_archive
from zarrdav.edge.ratelimit import Rate, RateLimits
from zarrdav.edge.request import Request
from zarrdav.errors import TooManyRequests

ARCHIVE = Path(__file__).parent / "data" / "archive.yaml"
ZARR = "1284a14f-fe4f-4dc3-b10d-48e5db8bf18d"
CHECKSUM, MANIFEST = sample_manifest()
ENTRY = f"/zarrs/128/4a1/{ZARR}/{CHECKSUM}.zarr/.zattrs"


@pytest.fixture(scope="module")
def api() -> Iterator[str]:
    with serve_archive(load_archive(ARCHIVE)) as base_url:
        yield base_url


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    return one_manifest_tree(tmp_path / "tree", ZARR, CHECKSUM, MANIFEST)


def client_of(settings: Settings, address: str = "192.0.2.1") -> httpx.Client:
    app = create_app(settings)
    return httpx.Client(transport=httpx.WSGITransport(app=app, remote_addr=address), base_url="http://127.0.0.1")


def test_past_the_burst_a_client_gets_429_with_retry_after(tree: Path) -> None:
    settings = Settings(manifest_root=str(tree), index_dir="", rate_limit_burst=5, rate_limit_per_second=0.5)
    with client_of(settings) as client:
        statuses = [client.get(ENTRY).status_code for _ in range(5)]
        refused = client.get(ENTRY)
    assert statuses == [307] * 5
    assert refused.status_code == 429 and refused.headers["Retry-After"] == "2"
    assert refused.text.startswith("too many requests") and refused.text.count("\n") == 1
    # Another client has its own bucket.
    app_client = client_of(settings, "192.0.2.2")
    with app_client:
        assert app_client.get(ENTRY).status_code == 307


def test_probes_and_robots_are_never_limited(tree: Path) -> None:
    settings = Settings(manifest_root=str(tree), index_dir="", rate_limit_burst=1, rate_limit_per_second=0.001)
    with client_of(settings) as client:
        assert [client.get(p).status_code for p in ("/-/healthz", "/-/healthz", "/robots.txt", "/-/metrics")] == \
            [200] * 4
        assert client.get(ENTRY).status_code == 307  # the probes spent nothing
        assert client.get(ENTRY).status_code == 429
        assert client.get("/-/healthz").status_code == 200


def request_from(peer: str, forwarded: str | None = None) -> Request:
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/", "REMOTE_ADDR": peer}
    if forwarded is not None:
        environ["HTTP_X_FORWARDED_FOR"] = forwarded
    return Request(environ)


def limits(trusted: str = "") -> RateLimits:
    return RateLimits(Rate(1, 0.001), Rate(1, 0.001), 100, trusted)


def test_x_forwarded_for_counts_from_trusted_proxies_only() -> None:
    untrusted = limits()
    untrusted.client(request_from("198.51.100.7", "203.0.113.1"))
    with pytest.raises(TooManyRequests):  # the header is ignored: the same peer, its token spent
        untrusted.client(request_from("198.51.100.7", "203.0.113.2"))
    trusted = limits("10.0.0.0/8 198.51.100.7")
    trusted.client(request_from("198.51.100.7", "203.0.113.1"))
    trusted.client(request_from("198.51.100.7", "203.0.113.2"))  # two clients behind the proxy
    # The rightmost untrusted address is the client; what a client wrote before it is not believed.
    trusted.client(request_from("198.51.100.7", "1.1.1.1, 203.0.113.3, 10.1.2.3"))
    with pytest.raises(TooManyRequests):
        trusted.client(request_from("198.51.100.7", "9.9.9.9, 203.0.113.3"))
    # Garbage in the header: the proxy itself is the client.
    trusted.client(request_from("198.51.100.7", "not an address"))
    with pytest.raises(TooManyRequests):
        trusted.client(request_from("198.51.100.7", "<script>"))


def test_an_ipv6_client_is_its_64() -> None:
    shared = limits()
    shared.client(request_from("2001:db8:1:2::1"))
    with pytest.raises(TooManyRequests):
        shared.client(request_from("2001:db8:1:2:ffff::9"))
    shared.client(request_from("2001:db8:1:3::1"))


def test_memory_is_bounded_by_the_clients_remembered() -> None:
    few = RateLimits(Rate(1, 0.001), Rate(1, 0.001), 100)
    for n in range(5000):
        few.client(request_from(f"10.{n // 65536}.{n // 256 % 256}.{n % 256}"))
    assert few.remembered() == 100
    # The latest are remembered (their tokens spent); the first was forgotten (a fresh bucket).
    with pytest.raises(TooManyRequests):
        few.client(request_from("10.0.19.135"))  # n = 4999
    few.client(request_from("10.0.0.0"))


def test_uncached_dandisets_paths_spend_the_tighter_archive_budget(tree: Path, api: str) -> None:
    settings = Settings(manifest_root=str(tree), index_dir="", api_url=api, archive_ttl=3600,
                        archive_limit_burst=5, archive_limit_per_second=0.01)
    with client_of(settings) as client:
        assert client.get("/dandisets/000001/").status_code == 200
        statuses = [client.get(path).status_code for path in
                    ("/dandisets/000001/draft/", "/dandisets/000001/releases/", "/dandisets/000001/latest/")]
        assert 429 in statuses
        refused = client.get("/dandisets/000001/draft/sub-RAT123/")
        assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1
        assert "needing the archive" in refused.text
        # Cached answers and Zarr entries cost no archive call: they keep coming.
        assert [client.get("/dandisets/000001/").status_code for _ in range(10)] == [200] * 10
        assert client.get(ENTRY).status_code == 307
    with client_of(settings, "192.0.2.9") as other:
        assert other.get("/dandisets/000001/draft/").status_code in (200, 404)


@pytest.mark.slow
def test_a_served_zarrdav_limits_by_forwarded_client(tree: Path) -> None:
    env = {"ZARRDAV_RATE_LIMIT_BURST": "2", "ZARRDAV_RATE_LIMIT_PER_SECOND": "0.01"}
    with zarrdav_server("--manifest-root", str(tree), "--index-dir", "", "--trusted-proxies", "127.0.0.1",
                        env=env) as url, httpx.Client(base_url=url) as client:
        first = [client.get(ENTRY, headers={"X-Forwarded-For": "203.0.113.5"}).status_code for _ in range(3)]
        other = client.get(ENTRY, headers={"X-Forwarded-For": "203.0.113.6"}).status_code
    assert first == [307, 307, 429] and other == 307
