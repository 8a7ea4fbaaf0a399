"""How /dandisets/ paths are resolved: what the archive is asked, and that the answer is right.

zarrdav runs in process over the archive double (served on a real socket,
counting what it is asked) and a local manifest tree. A path costs at most
two archive calls, the archive's own answers (never names) decide what is a
Zarr, and a folder is listed only when its listing is asked for.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.manifests import sample_manifest
from zarrdav.app import create_app
from zarrdav.config import Settings
from zarrdav.demo.archive import ArchiveData, Asset, Dandiset, Meter, Version, serve_archive
from zarrdav.manifests.layout import manifest_path

DANDISET = "000123"
ROOT = f"/dandisets/{DANDISET}/draft/"
BIG = "sub-1/ses-1/micr/big"  # a folder of many blobs and one Zarr, four levels deep
BLOBS = 21
PAGE = 4  # the server's page size: the big folder takes six pages
CHECKSUM, MANIFEST = sample_manifest()
STAMP = "2024-01-01T00:00:00.000000Z"
# Zarr assets by path -> their Zarr ids.
ZARRS = {
    f"{BIG}/img.zarr": "10000000-0000-0000-0000-000000000001",
    "sub-1/data": "10000000-0000-0000-0000-000000000002",  # a Zarr not named like one
    "sub-2/x.zarr/y.zarr": "10000000-0000-0000-0000-000000000003",  # in a folder named like a Zarr
    "sub-3/img.zarr": "10000000-0000-0000-0000-000000000004",  # a prefix of other assets' paths
}
BLOB_PATHS = [
    *(f"{BIG}/blob-{n:03d}.nwb" for n in range(BLOBS)),
    "sub-2/x.zarr/file.nwb",
    "sub-3/img.zarr.json",
    "sub-3/img.zarr2/file.nwb",
]


def _asset(path: str, n: int, zarr: str | None) -> Asset:
    digest = {"dandi:dandi-zarr-checksum": CHECKSUM} if zarr else {"dandi:dandi-etag": f"{n:032x}-1"}
    return Asset(path=path, asset_id=f"20000000-0000-0000-0000-{n:012d}",
                 blob=None if zarr else f"30000000-0000-0000-0000-{n:012d}", zarr=zarr,
                 size=1000 + n, created=STAMP, modified=STAMP, metadata={"digest": digest})


def archive_data() -> ArchiveData:
    assets = [_asset(path, n, None) for n, path in enumerate(BLOB_PATHS)]
    assets += [_asset(path, 100 + n, zarr) for n, (path, zarr) in enumerate(ZARRS.items())]
    draft = Version(version="draft", name="paths", status="Valid", created=STAMP, modified=STAMP,
                    assets=tuple(assets))
    dandiset = Dandiset(identifier=DANDISET, created=STAMP, modified=STAMP, versions=(draft,))
    return ArchiveData(dandisets=(dandiset,), s3_base_url="http://127.0.0.1:9/bucket")


@dataclass
class Served:
    client: httpx.Client
    meter: Meter
    app: httpx.WSGITransport


@pytest.fixture(scope="module")
def manifest_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("tree")
    for zarr_id in ZARRS.values():
        path = root / manifest_path(zarr_id, CHECKSUM)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(MANIFEST)
    return root


@pytest.fixture
def served(manifest_root: Path) -> Iterator[Served]:
    """A fresh zarrdav (nothing kept yet) over a freshly counting archive."""
    meter = Meter()
    with serve_archive(archive_data(), meter=meter) as api:
        app = create_app(Settings(manifest_root=str(manifest_root), index_dir="", api_url=api,
                                  zarr_base_url="http://127.0.0.1:9/bucket/zarr",
                                  archive_page_size=PAGE))
        transport = httpx.WSGITransport(app=app)
        try:
            with httpx.Client(transport=transport, base_url="http://127.0.0.1") as client:
                # Whether the Dandiset is embargoed is asked once (anonymously, shared for the
                # TTL; for an open one its record is kept with it): not what these tests count.
                assert propfind(client, f"/dandisets/{DANDISET}/").status_code == 207
                assert meter.reset()[0] == 1
                yield Served(client, meter, transport)
        finally:
            app.close()


def propfind(client: httpx.Client, path: str, depth: str = "0") -> httpx.Response:
    return client.request("PROPFIND", path, headers={"Depth": depth})


def chunk_location(zarr_path: str, entry: str = "arr/0/1") -> str:
    return f"http://127.0.0.1:9/bucket/zarr/{ZARRS[zarr_path]}/{entry}"


def assert_no_listing(meter: Meter) -> None:
    assert not [target for target in meter.targets if "children=true" in target], meter.targets


def test_a_chunk_costs_two_archive_calls_cold_and_none_warm(served: Served) -> None:
    zarr_path = f"{BIG}/img.zarr"
    answer = served.client.get(f"{ROOT}{zarr_path}/arr/0/1")
    assert answer.status_code == 307
    assert answer.headers["location"].startswith(chunk_location(zarr_path) + "?versionId=")
    # The path itself (nothing there), then the Zarr asset: never the folders on the way.
    assert served.meter.requests == 2
    assert_no_listing(served.meter)
    assert served.meter.targets[1].count("path=sub-1%2Fses-1%2Fmicr%2Fbig%2Fimg.zarr&") == 1
    served.meter.reset()
    for entry in ("arr/0/0", "arr/.zarray", ".zattrs"):
        assert served.client.get(f"{ROOT}{zarr_path}/{entry}").status_code == 307
    assert propfind(served.client, f"{ROOT}{zarr_path}/arr/", "1").status_code == 207
    assert served.meter.requests == 0


def test_a_zarr_asset_costs_one_call(served: Served) -> None:
    answer = propfind(served.client, f"{ROOT}{BIG}/img.zarr/")
    assert answer.status_code == 207 and "<D:collection" in answer.text.replace("d:", "D:")
    assert served.meter.requests == 1
    assert_no_listing(served.meter)


def test_concurrent_misses_make_one_call_per_question(served: Served) -> None:
    served.meter.latency = 0.2
    statuses: list[int] = []

    def get() -> None:
        with httpx.Client(transport=served.app, base_url="http://127.0.0.1") as client:
            statuses.append(client.get(f"{ROOT}{BIG}/img.zarr/arr/1/0").status_code)

    threads = [threading.Thread(target=get) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == [307] * 8
    assert served.meter.requests == 2


def test_a_zarr_not_named_like_one_is_a_zarr(served: Served) -> None:
    answer = served.client.get(f"{ROOT}sub-1/data/arr/0/1")
    assert answer.status_code == 307
    assert answer.headers["location"].startswith(chunk_location("sub-1/data") + "?versionId=")
    assert_no_listing(served.meter)
    assert served.client.get(f"{ROOT}sub-1/data/arr/9/9").status_code == 404


def test_a_folder_named_like_a_zarr_is_a_folder(served: Served) -> None:
    blob = served.client.get(f"{ROOT}sub-2/x.zarr/file.nwb")
    assert blob.status_code == 307 and blob.headers["location"].endswith("/download/")
    assert served.meter.requests == 1
    chunk = served.client.get(f"{ROOT}sub-2/x.zarr/y.zarr/arr/0/1")
    assert chunk.status_code == 307
    assert chunk.headers["location"].startswith(chunk_location("sub-2/x.zarr/y.zarr") + "?versionId=")
    assert served.client.get(f"{ROOT}sub-2/x.zarr/arr/0/1").status_code == 404
    assert_no_listing(served.meter)
    listing = propfind(served.client, f"{ROOT}sub-2/x.zarr/", "1")
    assert listing.status_code == 207
    assert f"{ROOT}sub-2/x.zarr/file.nwb" in listing.text
    assert f"{ROOT}sub-2/x.zarr/y.zarr/" in listing.text


def test_an_asset_path_that_prefixes_others(served: Served) -> None:
    zarr = served.client.get(f"{ROOT}sub-3/img.zarr/arr/0/1")
    assert zarr.status_code == 307
    assert zarr.headers["location"].startswith(chunk_location("sub-3/img.zarr") + "?versionId=")
    for path in ("sub-3/img.zarr.json", "sub-3/img.zarr2/file.nwb"):
        blob = served.client.get(f"{ROOT}{path}")
        assert blob.status_code == 307 and blob.headers["location"].endswith("/download/"), path
    assert served.client.get(f"{ROOT}sub-3/img.zarr2/arr/0/1").status_code == 404
    assert served.client.get(f"{ROOT}sub-3/img.zarr.json/arr").status_code == 404


@pytest.mark.parametrize("path", [
    "nothing", "nothing/at/all", f"{BIG}/blob-000.nwb/under", f"{BIG}/img.zarr/no/such/entry",
    "sub-1/ses-1/nothing.zarr/0/0",
])
def test_absent_paths_are_404(served: Served, path: str) -> None:
    assert served.client.get(f"{ROOT}{path}").status_code == 404
    assert_no_listing(served.meter)
    assert served.meter.requests <= 3


def test_a_big_folder_is_listed_when_asked_and_page_by_page(served: Served) -> None:
    answer = propfind(served.client, f"{ROOT}{BIG}/", "1")
    assert answer.status_code == 207
    members = BLOBS + 1
    for n in range(BLOBS):
        assert f"{ROOT}{BIG}/blob-{n:03d}.nwb" in answer.text
    assert f"{ROOT}{BIG}/img.zarr/" in answer.text
    pages = -(-(members + 1) // PAGE)  # the folder itself comes first
    listed = [target for target in served.meter.targets if "children=true" in target]
    assert len(listed) == pages
    assert sorted(target.partition("page=")[2].partition("&")[0] for target in listed[1:]) == sorted(
        str(n) for n in range(2, pages + 1))
    # The folder itself, its version (whose date a folder shows), then its listing.
    assert served.meter.requests == 2 + pages
    served.meter.reset()
    # Its members are known now: asking about one asks the archive nothing.
    assert served.client.get(f"{ROOT}{BIG}/blob-007.nwb").status_code == 307
    assert served.client.get(f"{ROOT}{BIG}/img.zarr/arr/0/1").status_code == 307
    page = served.client.get(f"{ROOT}{BIG}/")
    assert page.status_code == 200 and "blob-020.nwb" in page.text
    assert served.meter.targets == []
