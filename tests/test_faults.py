"""Upstreams that fail slowly, lie, or grow without bound: `zarrdav serve` against a faulty upstream.

``tests.faulty`` serves a manifest tree or the archive double on a real
socket and, while a fault is injected, hangs, drips, loops its pagination,
sends huge bodies or CR LF in fields. Each case checks the status, that the
answer came within the deadline plus a margin (the margin is generous: the
faults would hold a request for a minute), the memory of the zarrdav process
where a body is huge, and that zarrdav serves again once the fault ends.
"""

from __future__ import annotations

import os
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.faulty import (
    FaultyUpstream,
    delay,
    drip,
    faulty_upstream,
    hang,
    huge,
    next_page,
    other_host,
    paginate_forever,
    rewrite,
    same_page,
    tree_backend,
    wsgi_backend,
)
from tests.manifests import one_manifest_tree, sample_manifest
from tests.servers import zarrdav_process
from tests.test_serve import assert_plain_error
from zarrdav.demo.archive import ArchiveData, Asset, Dandiset, Version, create_archive_app
from zarrdav.errors import NotFound, UpstreamError, UpstreamTimeout
from zarrdav.manifests.layout import manifest_path
from zarrdav.manifests.trees import LocalTree, open_tree
from zarrdav.routes import zarr_version_path

DEADLINE = 2.0  # --upstream-timeout of every server here
MARGIN = 6.0  # seconds past the deadline an answer may take on a loaded machine
GROWTH_LIMIT = 50 * 2**20  # bytes of resident memory refusing a huge body may cost

ZARR = "1284a14f-fe4f-4dc3-b10d-48e5db8bf18d"
CHECKSUM, BODY = sample_manifest()
ZARR_ROOT = zarr_version_path(ZARR, CHECKSUM)
ZARR_BASE = "http://127.0.0.1:9/bucket/zarr"  # redirects only; never contacted

DANDISET = "000001"
RELEASE = "0.240101.0000"
ASSETS = 5  # with a page size of 2, listings take three pages


# Measuring.


def peak_rss(process: subprocess.Popen[bytes]) -> int:
    """The process's resident high-water mark (VmHWM), in bytes."""
    for line in Path(f"/proc/{process.pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM")


def timed_get(client: httpx.Client, path: str) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = client.get(path)
    return response, time.monotonic() - started


def assert_refused(response: httpx.Response, elapsed: float, status: int) -> None:
    assert response.status_code == status, response.text
    assert_plain_error(response.headers, response.content)
    assert elapsed < DEADLINE + MARGIN
    assert "127.0.0.1" not in response.text  # the upstream's URL is never in the answer


# The manifest tree role.


@pytest.fixture(scope="module")
def tree_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return one_manifest_tree(tmp_path_factory.mktemp("tree"), ZARR, CHECKSUM, BODY)


@pytest.fixture(scope="module")
def tree(tree_dir: Path) -> Iterator[FaultyUpstream]:
    with faulty_upstream() as upstream:
        upstream.backend = tree_backend(tree_dir)
        yield upstream


@pytest.fixture(scope="module")
def tree_server(tree: FaultyUpstream) -> Iterator[tuple[httpx.Client, subprocess.Popen[bytes]]]:
    args = ["--manifest-root", tree.url, "--zarr-base-url", ZARR_BASE, "--upstream-timeout", str(DEADLINE),
            "--manifest-max-mb", "64", "--listing-max-mb", "4", "--index-dir", ""]
    with zarrdav_process(*args) as (url, process), httpx.Client(base_url=url, timeout=60) as client:
        yield client, process


@pytest.fixture
def fresh_tree_server(tree: FaultyUpstream) -> Iterator[tuple[httpx.Client, subprocess.Popen[bytes]]]:
    """A server of its own, so that nothing is cached yet."""
    args = ["--manifest-root", tree.url, "--zarr-base-url", ZARR_BASE, "--upstream-timeout", str(DEADLINE),
            "--manifest-max-mb", "64", "--listing-max-mb", "4", "--index-dir", "", "--listing-ttl", "0"]
    with zarrdav_process(*args) as (url, process), httpx.Client(base_url=url, timeout=60) as client:
        yield client, process


def test_dripping_manifest_is_504_at_the_deadline_then_recovers(
    tree: FaultyUpstream, fresh_tree_server: tuple[httpx.Client, Any]
) -> None:
    client, _ = fresh_tree_server
    with tree.injected(drip(f"{CHECKSUM}.json", interval=0.2)):
        response, elapsed = timed_get(client, ZARR_ROOT)
        assert_refused(response, elapsed, 504)
        assert response.text.startswith("manifest tree: ")
    assert client.get(ZARR_ROOT).status_code == 200


def test_hanging_listing_is_504_then_recovers(
    tree: FaultyUpstream, fresh_tree_server: tuple[httpx.Client, Any]
) -> None:
    client, _ = fresh_tree_server
    with tree.injected(hang()):
        response, elapsed = timed_get(client, "/zarrs/")
        assert_refused(response, elapsed, 504)
    assert client.get("/zarrs/").status_code == 200


@pytest.mark.parametrize("declared", [True, False], ids=["declared", "streamed"])
def test_huge_manifest_is_refused_in_bounded_memory(
    tree: FaultyUpstream, fresh_tree_server: tuple[httpx.Client, subprocess.Popen[bytes]], declared: bool
) -> None:
    client, process = fresh_tree_server
    assert client.get("/zarrs/").status_code == 200
    before = peak_rss(process)
    with tree.injected(huge(f"{CHECKSUM}.json", size=2**31 if declared else 200 * 2**20, declared=declared)):
        response, elapsed = timed_get(client, ZARR_ROOT)
        assert_refused(response, elapsed, 502)
        assert "larger than the 64 MiB allowed" in response.text
    assert peak_rss(process) - before < GROWTH_LIMIT
    assert client.get(ZARR_ROOT).status_code == 200


def test_huge_listing_is_refused(tree: FaultyUpstream, fresh_tree_server: tuple[httpx.Client, Any]) -> None:
    client, _ = fresh_tree_server
    with tree.injected(huge("/128/", size=64 * 2**20, declared=False)):
        response, elapsed = timed_get(client, "/zarrs/128/4a1/")
        assert_refused(response, elapsed, 502)
        assert "larger than the 4 MiB allowed" in response.text
    assert client.get("/zarrs/128/4a1/").status_code == 200


def test_crlf_in_a_manifest_etag_never_reaches_the_wire(
    tree: FaultyUpstream, fresh_tree_server: tuple[httpx.Client, Any]
) -> None:
    client, _ = fresh_tree_server
    entry = ".zattrs"

    def poisoned(document: Any) -> Any:
        document["entries"][entry][3] = "abc\r\nSet-Cookie: pwned=1"
        return document

    with tree.injected(rewrite(poisoned, f"{CHECKSUM}.json")):
        response = client.get(f"{ZARR_ROOT}{entry}")
    assert response.status_code == 502
    assert_plain_error(response.headers, response.content)
    assert "set-cookie" not in response.headers
    assert "ETag" in response.text and entry in response.text


def test_a_segment_stays_a_segment_upstream(tree: FaultyUpstream, tree_server: tuple[httpx.Client, Any]) -> None:
    client, _ = tree_server
    start = len(tree.targets)
    response = client.get("/zarrs/x%3Finjected=1&list-type=2/")
    assert response.status_code == 404
    sent = tree.targets[start:]
    assert sent and all("?" not in target for target in sent), sent
    assert any("x%3Finjected%3D1%26list-type%3D2/" in target for target in sent), sent


# Local trees: special files, huge files, symlinks.


def test_fifo_named_like_a_manifest_is_refused_at_once(tmp_path: Path) -> None:
    target = tmp_path / manifest_path(ZARR, CHECKSUM)
    target.parent.mkdir(parents=True)
    os.mkfifo(target)
    outcome: list[BaseException] = []

    def fetch() -> None:
        try:
            LocalTree(tmp_path).fetch_manifest(ZARR, CHECKSUM)
        except BaseException as error:
            outcome.append(error)

    worker = threading.Thread(target=fetch, daemon=True)
    worker.start()
    worker.join(10)
    if worker.is_alive():  # let it go before failing
        with open(target, "wb"):
            pass
        pytest.fail("opening a FIFO blocked")
    (error,) = outcome
    assert isinstance(error, UpstreamError) and "not a regular file" in str(error)


def test_symlinks_out_of_a_local_tree_are_not_followed(tmp_path: Path) -> None:
    root = tmp_path / "tree"
    (root / "inside").mkdir(parents=True)
    (root / "sym").symlink_to("/")
    (root / "alias").symlink_to(root / "inside")
    tree = LocalTree(root)
    assert tree.list_directory("").directories == ["alias", "inside"]
    with pytest.raises(NotFound):
        tree.list_directory("sym/proc")
    assert tree.list_directory("alias").directories == []


def test_sparse_2gb_manifest_is_refused_in_bounded_memory(tmp_path: Path) -> None:
    target = tmp_path / manifest_path(ZARR, CHECKSUM)
    target.parent.mkdir(parents=True)
    with target.open("wb") as sparse:
        sparse.truncate(2 * 2**30)
    args = ["--manifest-root", str(tmp_path), "--zarr-base-url", ZARR_BASE, "--index-dir", ""]
    with zarrdav_process(*args) as (url, process), httpx.Client(base_url=url, timeout=60) as client:
        assert client.get("/zarrs/").status_code == 200
        before = peak_rss(process)
        response = client.get(ZARR_ROOT)
        assert response.status_code == 502
        assert_plain_error(response.headers, response.content)
        assert "larger than the 1024 MiB allowed" in response.text
        assert str(tmp_path) not in response.text  # no local directories in answers
        assert peak_rss(process) - before < GROWTH_LIMIT


# The archive role.


def _stamp(day: str) -> str:
    return f"{day}T12:00:00.000000Z"


def archive_data() -> ArchiveData:
    def asset(n: int) -> Asset:
        blob = f"{n:08d}-0000-4000-8000-000000000000"
        return Asset(path=f"file{n}.nwb", asset_id=f"a{n:07d}-0000-4000-8000-000000000000", blob=blob,
                     zarr=None, size=10 + n, created=_stamp("2024-01-01"), modified=_stamp("2024-01-01"),
                     metadata={"encodingFormat": "application/x-nwb",
                               "digest": {"dandi:dandi-etag": f"{n:032x}-1"}})

    assets = tuple(asset(n) for n in range(ASSETS))

    def version(name: str) -> Version:
        return Version(version=name, name="Faults", status="Valid" if name == "draft" else "Published",
                       created=_stamp("2024-01-01"), modified=_stamp("2024-01-01"),
                       metadata={"name": "Faults"}, assets=assets)

    dandiset = Dandiset(identifier=DANDISET, created=_stamp("2024-01-01"), modified=_stamp("2024-01-01"),
                        versions=(version(RELEASE), version("draft")))
    return ArchiveData(dandisets=(dandiset,), s3_base_url="http://127.0.0.1:9/bucket")


@pytest.fixture(scope="module")
def archive() -> Iterator[FaultyUpstream]:
    with faulty_upstream() as upstream:
        upstream.backend = wsgi_backend(create_archive_app(archive_data(), base_url=f"{upstream.url}api"))
        yield upstream


# A folder holding no Zarrs serves as a manifest tree without any.
EMPTY_TREE = str(Path(__file__).parent / "data")


def archive_args(archive: FaultyUpstream, *extra: str) -> list[str]:
    # An empty tree: these cases are the archive's (a root that does not
    # exist is a startup error).
    return ["--manifest-root", EMPTY_TREE, "--zarr-base-url", ZARR_BASE,
            "--api-url", f"{archive.url}api", "--archive-page-size", "2",
            "--upstream-timeout", str(DEADLINE), "--listing-max-mb", "4", *extra]


@pytest.fixture
def archive_server(archive: FaultyUpstream) -> Iterator[tuple[httpx.Client, subprocess.Popen[bytes]]]:
    with zarrdav_process(*archive_args(archive, "--archive-ttl", "1")) as (url, process), \
            httpx.Client(base_url=url, timeout=60) as client:
        yield client, process


DRAFT = f"/dandisets/{DANDISET}/draft/"
RELEASED = f"/dandisets/{DANDISET}/releases/{RELEASE}/"


def test_dripping_archive_is_504_at_the_deadline_then_recovers(
    archive: FaultyUpstream, archive_server: tuple[httpx.Client, Any]
) -> None:
    client, _ = archive_server
    with archive.injected(drip("/api/dandisets/", interval=0.2)):
        response, elapsed = timed_get(client, "/dandisets/")
        assert_refused(response, elapsed, 504)
        assert response.text.startswith("archive: ")
    assert client.get("/dandisets/").status_code == 200


@pytest.mark.parametrize("next_link", [same_page, next_page, other_host], ids=["itself", "past-count", "other-host"])
def test_pagination_that_does_not_end_is_502(
    archive: FaultyUpstream, archive_server: tuple[httpx.Client, Any], next_link: Any
) -> None:
    client, _ = archive_server
    start = len(archive.targets)
    with archive.injected(paginate_forever(next_link, "/atpath/")):
        response, elapsed = timed_get(client, DRAFT)
        assert_refused(response, elapsed, 502)
        assert "the archive's pagination does not end" in response.text
    assert archive.calls("/atpath/") - sum("/atpath/" in t for t in archive.targets[:start]) <= 4
    assert client.get(DRAFT).status_code == 200


def test_huge_archive_page_is_refused_in_bounded_memory(
    archive: FaultyUpstream, archive_server: tuple[httpx.Client, subprocess.Popen[bytes]]
) -> None:
    client, process = archive_server
    assert client.get("/").status_code == 200
    before = peak_rss(process)
    with archive.injected(huge("/api/dandisets/", size=200 * 2**20, declared=False, prefix=b'{"results": ["')):
        response, elapsed = timed_get(client, "/dandisets/")
        assert_refused(response, elapsed, 502)
    assert peak_rss(process) - before < GROWTH_LIMIT
    assert client.get("/dandisets/").status_code == 200


def poison(field: str, value: Any) -> Any:
    """A change to atpath pages setting one field of every asset."""

    def change(page: Any) -> Any:
        for item in page["results"]:
            if item["type"] == "asset":
                resource = item["resource"]
                if field == "asset_id":
                    resource["asset_id"] = value
                else:
                    resource["metadata"]["digest" if field == "etag" else "contentUrl"] = (
                        {"dandi:dandi-etag": value} if field == "etag" else value
                    )
        return page

    return change


def test_crlf_in_an_archive_etag_is_502_naming_it(
    archive: FaultyUpstream, archive_server: tuple[httpx.Client, Any]
) -> None:
    client, _ = archive_server
    with archive.injected(rewrite(poison("etag", "x\r\nSet-Cookie: pwned=1"), "/atpath/")):
        response = client.get(f"{DRAFT}file0.nwb")
    assert response.status_code == 502
    assert "set-cookie" not in response.headers
    assert "ETag" in response.text and "file0.nwb" in response.text


def test_crlf_in_an_asset_id_stays_inside_the_url(
    archive: FaultyUpstream, archive_server: tuple[httpx.Client, Any]
) -> None:
    client, _ = archive_server
    with archive.injected(rewrite(poison("asset_id", "x\r\nSet-Cookie: pwned=1"), "/atpath/")):
        response = client.get(f"{DRAFT}file0.nwb")
    assert response.status_code == 307
    assert "set-cookie" not in response.headers
    assert response.headers["location"].endswith("/assets/x%0D%0ASet-Cookie%3A%20pwned%3D1/download/")


@pytest.mark.parametrize("content_url", [
    "https://evil.example/phish",
    "http://127.0.0.1:9/bucket/x\r\nSet-Cookie: pwned=1",
])
def test_blob_redirects_only_to_named_hosts(archive: FaultyUpstream, content_url: str) -> None:
    args = archive_args(archive, "--blob-redirect", "s3")
    with zarrdav_process(*args) as (url, _), httpx.Client(base_url=url, timeout=60) as client:
        direct = client.get(f"{DRAFT}file1.nwb")
        assert direct.status_code == 307
        assert direct.headers["location"].startswith("http://127.0.0.1:9/bucket/blobs/")  # the zarr base's host
        with archive.injected(rewrite(poison("contentUrl", [content_url]), "/atpath/")):
            response = client.get(f"{RELEASED}file1.nwb")
    assert "set-cookie" not in response.headers
    if "evil" in content_url:
        assert response.status_code == 307
        assert response.headers["location"] == f"{archive.url}api/assets/a0000001-0000-4000-8000-000000000000/download/"
    else:
        assert response.status_code == 502
        assert "Location" in response.text


def test_an_empty_answer_about_a_release_heals(
    archive: FaultyUpstream, archive_server: tuple[httpx.Client, Any]
) -> None:
    client, _ = archive_server
    with archive.injected(rewrite(lambda page: {**page, "count": 0, "next": None, "results": []}, "/atpath/")):
        assert "file0.nwb" not in client.get(RELEASED).text
    deadline = time.monotonic() + 30
    while "file0.nwb" not in client.get(RELEASED).text:
        assert time.monotonic() < deadline, "the release still lists no assets"
        time.sleep(0.3)


def test_misses_of_one_key_make_one_call(
    archive: FaultyUpstream, archive_server: tuple[httpx.Client, Any]
) -> None:
    client, _ = archive_server
    start = len(archive.targets)
    with archive.injected(delay("/atpath/", seconds=0.4)), ThreadPoolExecutor(40) as pool:
        statuses = list(pool.map(lambda _: client.get(DRAFT).status_code, range(40)))
    assert statuses.count(200) + statuses.count(503) == 40 and 200 in statuses
    first_pages = [t for t in archive.targets[start:] if "/atpath/" in t and "page=" not in t]
    assert len(first_pages) <= 3, first_pages


def test_cached_answers_flow_while_requests_wait_on_a_dripping_archive(
    archive: FaultyUpstream, archive_server: tuple[httpx.Client, Any]
) -> None:
    client, _ = archive_server
    cached = f"{RELEASED}file2.nwb"
    assert client.get(cached).status_code == 307  # now cached: a release does not expire
    with archive.injected(drip("/api/dandisets/", interval=0.5)), ThreadPoolExecutor(40) as pool:
        waiting = [pool.submit(timed_get, client, f"/dandisets/?n={n}") for n in range(40)]
        time.sleep(0.5)  # let them reach zarrdav
        fast = [client.get(cached).status_code for _ in range(20)]
        still_waiting = sum(not future.done() for future in waiting)
        slow = [future.result() for future in waiting]
    assert fast == [307] * 20
    assert still_waiting > 0  # the cached answers came while requests were held upstream
    assert {response.status_code for response, _ in slow} <= {503, 504}
    assert all(response.headers["retry-after"] == "1" for response, _ in slow if response.status_code == 503)
    assert all(elapsed < DEADLINE + MARGIN for _, elapsed in slow)
    assert client.get("/dandisets/").status_code == 200


def test_credentials_in_the_api_url_stay_out_of_answers(archive: FaultyUpstream) -> None:
    api = f"{archive.url}api".replace("http://", "http://someone:s3cret@")
    args = [*archive_args(archive)[:4], "--api-url", api, "--upstream-timeout", str(DEADLINE)]
    with zarrdav_process(*args) as (url, _), httpx.Client(base_url=url, timeout=60) as client:
        page = client.get(f"/dandisets/{DANDISET}/")
        assert page.status_code == 200
        assert f"{archive.url}api/dandisets/{DANDISET}/" in page.text  # the Metadata link, without user info
        with archive.injected(drip("/api/dandisets/", interval=0.2)):
            refused = client.get("/dandisets/")
        assert refused.status_code == 504
        for response in (page, refused):
            assert "s3cret" not in response.text and "someone" not in response.text


def test_a_lone_surrogate_in_an_asset_path_is_502(
    archive: FaultyUpstream, archive_server: tuple[httpx.Client, Any]
) -> None:
    client, _ = archive_server

    def lone_surrogate(page: Any) -> Any:
        for item in page["results"]:
            item["resource"]["path"] += "\ud800"
        return page

    with archive.injected(rewrite(lone_surrogate, "/atpath/")):
        response = client.get(DRAFT)
    assert response.status_code == 502
    assert_plain_error(response.headers, response.content)
    assert client.get(DRAFT).status_code == 200


def test_silent_s3_tree_is_504_within_the_deadline() -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(64)  # connections are accepted by the kernel, never answered
        endpoint = f"http://127.0.0.1:{silent.getsockname()[1]}"
        tree = open_tree("s3://bucket/zarr-manifest/", s3_endpoint_url=endpoint, timeout=DEADLINE)
        started = time.monotonic()
        with pytest.raises(UpstreamTimeout):
            tree.list_directory("")
        assert time.monotonic() - started < DEADLINE + MARGIN
