"""/dandisets/ end to end: `zarrdav serve` over the archive double, moto and real Zarrs.

The archive double (``zarrdav.demo.archive``) serves the Dandisets of
``tests/archive_data.py``; their Zarr assets are Zarrs written by zarr-python
to a versioned moto bucket and pinned by manifests before and after a rewrite,
their blobs are real objects. The server reads the archive with a page size
of 2, so the listings of Dandisets, versions and folders take several pages.
"""

from __future__ import annotations

import hashlib
import html
import re
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import quote, urljoin, urlsplit

import httpx
import pytest
import yaml
import zarr

from tests.archive_data import (
    EMBARGOED_ID,
    EMPTY_ID,
    FIRST_RELEASE,
    INGESTING_PATH,
    LIVE_PATH,
    OPEN_ID,
    OWNER_TOKEN,
    RELEASE,
    SECRET_BLOB_PATH,
    SECRET_ZARR_PATH,
    UNPINNED_ID,
    UNPINNED_RELEASE,
    UNPUBLISHED_ID,
    ZARR_PATHS,
    Archive,
    build_archive,
)
from tests.servers import zarrdav_server
from tests.test_serve import (
    Answer,
    Links,
    assert_absent,
    assert_depth1_lists_direct_children,
    assert_plain_error,
    failing_web_server,
    multistatus,
    propfind,
)
from tests.test_serve_clients import (
    MEMBERS,
    assert_copy_is_pinned,
    assert_values,
    manifest_of,
    rclone,
    webdav_remote,
)
from tests.zarr_data import VersionedZarr
from zarrdav.demo.archive import Asset, Version, serve_archive

OPEN = f"/dandisets/{OPEN_ID}/"
UNPINNED = f"/dandisets/{UNPINNED_ID}/"
EMBARGOED = f"/dandisets/{EMBARGOED_ID}/"
# How a version of OPEN_ID is spelled in URLs -> the version it is.
VERSION_PATHS = {
    "draft": "draft",
    "latest": RELEASE,
    f"releases/{RELEASE}": RELEASE,
    f"releases/{FIRST_RELEASE}": FIRST_RELEASE,
}
# The versions holding the Zarrs -> which of each Zarr's two states they pin.
PINNED = pytest.mark.parametrize(
    ("version_path", "state"), [("draft", 1), ("latest", 0), (f"releases/{RELEASE}", 0)]
)
FORMATS = pytest.mark.parametrize("zarr_format", [2, 3], ids=["v2", "v3"])
UNPINNED_HEADER = "x-zarrdav-unpinned"
LIVE_NOTE = "Live listing: there is no manifest for this Zarr's checksum yet"


# Fixtures: S3, the Zarrs, the archive double and the server.


@dataclass
class Recorder:
    """A front to S3 that keeps the headers of every request passing through it."""

    url: str
    requests: list[dict[str, str]] = field(default_factory=list)


@contextmanager
def recording_front(target: str) -> Iterator[Recorder]:
    """Forwards GETs to ``target`` (boto3's listings only need GET); yields the recorder."""
    recorder = Recorder("")

    class Forward(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            headers = {name.lower(): value for name, value in self.headers.items()}
            recorder.requests.append(headers)
            upstream = httpx.get(
                f"{target}{self.path}",
                headers={k: v for k, v in headers.items() if k not in ("host", "connection")},
            )
            self.send_response(upstream.status_code)
            for name, value in upstream.headers.items():
                if name.lower() in ("content-type", "etag", "last-modified", "x-amz-request-id"):
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(upstream.content)))
            self.end_headers()
            self.wfile.write(upstream.content)

        def log_message(self, format: str, *args: object) -> None:
            pass

    web = ThreadingHTTPServer(("127.0.0.1", 0), Forward)
    threading.Thread(target=web.serve_forever, daemon=True).start()
    recorder.url = f"http://127.0.0.1:{web.server_address[1]}"
    try:
        yield recorder
    finally:
        web.shutdown()
        web.server_close()


@pytest.fixture(scope="module")
def s3_recorder(s3_endpoint: str) -> Iterator[Recorder]:
    with recording_front(s3_endpoint) as recorder:
        yield recorder


@pytest.fixture(scope="module")
def archive(
    s3: Any, s3_endpoint: str, public_bucket: str, zarrs: dict[int, VersionedZarr],
    s3_recorder: Recorder, tmp_path_factory: pytest.TempPathFactory,
) -> Archive:
    workdir = tmp_path_factory.mktemp("unpinned")
    return build_archive(s3, s3_endpoint, public_bucket, workdir, zarrs, s3_recorder.url)


@pytest.fixture(scope="module")
def api(archive: Archive) -> Iterator[str]:
    with serve_archive(archive.data) as base_url:
        yield base_url


@pytest.fixture(scope="module")
def base_args(manifest_root: Path, s3_endpoint: str, public_bucket: str) -> list[str]:
    """Everything but the archive: the manifests and where pinned entries redirect."""
    return ["--manifest-root", str(manifest_root),
            "--zarr-base-url", f"{s3_endpoint}/{public_bucket}/zarr"]


@pytest.fixture(scope="module")
def serve_args(base_args: list[str], api: str) -> list[str]:
    # Any Host: tests/test_properties.py asks for absolute URLs under a Host of its own.
    return [*base_args, "--api-url", api, "--archive-page-size", "2", "--allowed-hosts", "*"]


@pytest.fixture(scope="module")
def server(serve_args: list[str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with zarrdav_server(*serve_args, log=tmp_path_factory.mktemp("log") / "zarrdav.log") as url:
        yield url


@pytest.fixture(scope="module")
def client(server: str) -> Iterator[httpx.Client]:
    # Without gzip, whose weak ETags of pages tests/test_compression.py checks.
    with httpx.Client(base_url=server, follow_redirects=False, timeout=30,
                      headers={"Accept-Encoding": "identity"}) as client:
        yield client


# What the answers should say, from the archive's records.


def rfc3339(stamp: str) -> str:
    """An archive time as ``creationdate`` shows it: UTC, to the second."""
    return datetime.fromisoformat(stamp).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def http_date(stamp: str) -> str:
    return format_datetime(datetime.fromisoformat(stamp).astimezone(UTC), usegmt=True)


def child_links(response: httpx.Response) -> list[str]:
    """The rows of an HTML listing: relative links, without ``../``."""
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    return [href for href in Links(response.content).hrefs
            if not href.startswith(("/", "../", "http:", "https:"))]


def top_level(version: Version) -> list[str]:
    """A version root's children as hrefs end: folders and Zarr assets with a slash."""
    names = {"dandiset.yaml"}
    for asset in version.assets:
        first, _, rest = asset.path.partition("/")
        names.add(quote(first) + ("/" if rest or asset.zarr else ""))
    return sorted(names, key=lambda name: name.rstrip("/"))


def assert_version_properties(answer: Answer, version: Version) -> None:
    assert answer.is_collection
    assert answer.text("getcontentlength") is None  # folders have no getcontentlength; their pages show totals
    assert answer.text("creationdate") == rfc3339(version.created)
    assert answer.text("getlastmodified") == http_date(version.modified)


def assert_asset_properties(answer: Answer, asset: Asset) -> None:
    assert answer.text("getcontentlength") == (None if answer.is_collection else str(asset.size))
    assert answer.text("creationdate") == rfc3339(asset.created)
    assert answer.text("getlastmodified") == http_date(asset.modified)


def blob_assets(archive: Archive, version_id: str) -> list[Asset]:
    return [asset for asset in archive.version(OPEN_ID, version_id).assets if asset.blob]


def zarr_directories(files: list[str]) -> list[str]:
    """Every directory holding ``files``, as paths ending in ``/`` (the root is ``""``)."""
    found = {""}
    for path in files:
        parts = path.split("/")[:-1]
        found.update("/".join(parts[: n + 1]) + "/" for n in range(len(parts)))
    return sorted(found)


# 1. The hierarchy down to the version roots


def test_dandisets_lists_every_dandiset(client: httpx.Client, archive: Archive) -> None:
    """Five Dandisets come from three archive pages."""
    dandisets = {dandiset.identifier: dandiset for dandiset in archive.data.dandisets}
    answers = multistatus(propfind(client, "/dandisets/"))
    assert [answer.href for answer in answers] == ["/dandisets/"] + [
        f"/dandisets/{identifier}/" for identifier in sorted(dandisets)
    ]
    for answer in answers[1:]:
        dandiset = dandisets[answer.text("displayname") or ""]
        assert answer.is_collection
        assert answer.text("creationdate") == rfc3339(dandiset.created)
        assert answer.text("getlastmodified") == http_date(dandiset.modified)
    page = client.get("/dandisets/")
    assert child_links(page) == [f"{identifier}/" for identifier in sorted(dandisets)]
    (row,) = [line for line in page.text.splitlines() if f'href="{EMBARGOED_ID}/"' in line]
    assert "(embargoed)" in row


@pytest.mark.parametrize(
    ("dandiset_id", "children"),
    [
        (OPEN_ID, ["draft/", "latest/", "releases/"]),
        (UNPINNED_ID, ["draft/", "latest/", "releases/"]),
        (UNPUBLISHED_ID, ["draft/"]),
        (EMPTY_ID, ["draft/"]),
    ],
)
def test_dandiset_has_latest_and_releases_once_published(
    client: httpx.Client, api: str, dandiset_id: str, children: list[str]
) -> None:
    path = f"/dandisets/{dandiset_id}/"
    assert [answer.href for answer in multistatus(propfind(client, path))] == [
        path, *(f"{path}{child}" for child in children)
    ]
    assert [answer.href for answer in multistatus(propfind(client, path, "0"))] == [path]
    page = client.get(path)
    assert child_links(page) == children
    metadata = f"{api}/dandisets/{dandiset_id}/"
    assert metadata in Links(page.content).hrefs
    assert httpx.get(metadata, timeout=10).json()["identifier"] == dandiset_id


def test_releases_lists_each_published_version(client: httpx.Client, archive: Archive) -> None:
    path = f"{OPEN}releases/"
    answers = multistatus(propfind(client, path))
    assert [answer.href for answer in answers] == [
        path, f"{path}{FIRST_RELEASE}/", f"{path}{RELEASE}/"
    ]
    for answer in answers[1:]:
        version = archive.version(OPEN_ID, answer.text("displayname") or "")
        assert_version_properties(answer, version)
    assert child_links(client.get(path)) == [f"{FIRST_RELEASE}/", f"{RELEASE}/"]


@pytest.mark.parametrize("version_path", VERSION_PATHS)
def test_version_root_lists_dandiset_yaml_and_the_top_level(
    client: httpx.Client, archive: Archive, api: str, version_path: str
) -> None:
    version = archive.version(OPEN_ID, VERSION_PATHS[version_path])
    root = f"{OPEN}{version_path}/"
    answers = multistatus(propfind(client, root))
    assert answers[0].href == root
    assert_version_properties(answers[0], version)
    children = [f"{root}{name}" for name in top_level(version)]
    assert [answer.href for answer in answers[1:]] == children
    (alone,) = multistatus(propfind(client, root, "0"))
    assert alone.href == root
    page = client.get(root)
    assert child_links(page) == top_level(version)
    metadata = f"{api}/dandisets/{OPEN_ID}/versions/{version.version}/"
    assert metadata in Links(page.content).hrefs
    assert httpx.get(metadata, timeout=10).json() == version.metadata


def test_version_without_assets_holds_only_dandiset_yaml(client: httpx.Client) -> None:
    root = f"/dandisets/{EMPTY_ID}/draft/"
    assert [answer.href for answer in multistatus(propfind(client, root))] == [
        root, f"{root}dandiset.yaml"
    ]


@pytest.mark.parametrize("version_path", VERSION_PATHS)
def test_dandiset_yaml_is_the_version_metadata_in_its_order(
    client: httpx.Client, archive: Archive, version_path: str
) -> None:
    metadata = archive.version(OPEN_ID, VERSION_PATHS[version_path]).metadata
    path = f"{OPEN}{version_path}/dandiset.yaml"
    response = client.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/yaml; charset=utf-8"
    loaded = yaml.safe_load(response.text)
    assert loaded == metadata
    assert list(loaded) == list(metadata)  # the archive's order, not sorted
    assert list(loaded["contributor"][0]) == list(metadata["contributor"][0])
    assert "Ünïcödé" in response.text
    (answer,) = multistatus(propfind(client, path, "0"))
    assert not answer.is_collection
    assert answer.text("getcontentlength") == str(len(response.content))
    assert answer.text("getcontenttype") == "text/yaml; charset=utf-8"
    digest = hashlib.md5(response.content).hexdigest()
    assert answer.text("getetag") == response.headers["etag"] == f'"{digest}"'
    version = archive.version(OPEN_ID, VERSION_PATHS[version_path])
    assert answer.text("getlastmodified") == response.headers["last-modified"] == http_date(version.modified)
    head = client.head(path)
    assert (head.status_code, head.content) == (200, b"")
    assert head.headers["content-length"] == str(len(response.content))


def test_folders_list_their_assets_and_subfolders(client: httpx.Client, archive: Archive) -> None:
    draft = archive.version(OPEN_ID, "draft")
    expected = {
        "sub-01/": ["ses-1/", "sub-01_ses-1.nwb"],
        "sub-01/ses-1/micr/": [ZARR_PATHS[3].rpartition("/")[2] + "/"],
        "sub-02/": ["sub-02.nwb", "sub-02_v2.zarr/"],
        "docs/": [quote("lab notes #1.txt")],
    }
    for folder, children in expected.items():
        path = f"{OPEN}draft/{folder}"
        answers = multistatus(propfind(client, path))
        assert [answer.href for answer in answers] == [path, *(f"{path}{c}" for c in children)]
        inside = [asset for asset in draft.assets if asset.path.startswith(folder)]
        assert answers[0].is_collection
        assert answers[0].text("getcontentlength") is None  # its total is on its parent's page
        parent = path[: path.rstrip("/").rfind("/") + 1]
        assert f'title="{sum(asset.size for asset in inside)} bytes"' in client.get(parent).text
        assert answers[0].text("getlastmodified") == http_date(draft.modified)  # a folder has its version's date
        assert child_links(client.get(path)) == children


# 2. Blob assets


@pytest.mark.parametrize("version_path", VERSION_PATHS)
def test_blob_asset_redirects_to_the_archive_download(
    client: httpx.Client, server: str, archive: Archive, api: str, version_path: str
) -> None:
    """The download URL then redirects to S3, where the blob's bytes are."""
    for asset in blob_assets(archive, VERSION_PATHS[version_path]):
        path = f"{OPEN}{version_path}/{quote(asset.path)}"
        (answer,) = multistatus(propfind(client, path, "0"))
        assert not answer.is_collection
        assert_asset_properties(answer, asset)
        assert answer.text("getcontenttype") == asset.metadata["encodingFormat"]
        assert answer.text("getetag") == f'"{asset.metadata["digest"]["dandi:dandi-etag"]}"'
        for method in ("GET", "HEAD"):
            response = client.request(method, path)
            assert response.status_code == 307
            assert response.headers["location"] == f"{api}/assets/{asset.asset_id}/download/"
            assert response.headers["content-length"] == "0"
            assert response.headers["etag"] == answer.text("getetag")
        downloaded = httpx.get(f"{server}{path}", follow_redirects=True, timeout=10)
        assert len(downloaded.history) == 2  # zarrdav, then the archive
        assert downloaded.content == archive.blobs[asset.blob or ""]


def test_blob_redirect_s3_goes_straight_to_the_object(
    serve_args: list[str], archive: Archive, s3_endpoint: str, public_bucket: str
) -> None:
    with zarrdav_server(*serve_args, "--blob-redirect", "s3") as url:
        for asset in blob_assets(archive, "draft"):
            path = f"{url}{OPEN}draft/{quote(asset.path)}"
            blob = asset.blob or ""
            response = httpx.get(path, timeout=10)
            assert response.status_code == 307
            assert response.headers["location"] == (
                f"{s3_endpoint}/{public_bucket}/blobs/{blob[:3]}/{blob[3:6]}/{blob}"
            )
            assert httpx.get(path, follow_redirects=True, timeout=10).content == archive.blobs[blob]


# 3. Zarr assets, pinned


@PINNED
@FORMATS
def test_zarr_asset_is_a_collection_tagged_with_its_checksum(
    client: httpx.Client, archive: Archive, zarrs: dict[int, VersionedZarr],
    version_path: str, state: int, zarr_format: int,
) -> None:
    checksum = zarrs[zarr_format].checksums[state]
    asset = archive.asset(OPEN_ID, VERSION_PATHS[version_path], ZARR_PATHS[zarr_format])
    path = f"{OPEN}{version_path}/{ZARR_PATHS[zarr_format]}/"
    (answer,) = multistatus(propfind(client, path, "0"))
    assert answer.is_collection
    assert answer.text("getetag") == f'"{checksum}"'
    assert_asset_properties(answer, asset)
    page = client.get(path)
    assert page.status_code == 200
    assert page.headers["etag"] == f'"{checksum}"'
    assert UNPINNED_HEADER not in page.headers
    permanent = f"/{zarrs[zarr_format].url_path(checksum)}/"
    assert permanent in Links(page.content).hrefs
    assert client.get(permanent).status_code == 200
    slashless = client.get(path.rstrip("/"))
    assert (slashless.status_code, slashless.headers["location"]) == (301, path)


@PINNED
@FORMATS
def test_zarr_asset_lists_and_redirects_as_its_zarrs_version(
    client: httpx.Client, zarrs: dict[int, VersionedZarr], manifest_root: Path,
    version_path: str, state: int, zarr_format: int,
) -> None:
    """Inside a Zarr asset everything is /zarrs/.../<checksum>.zarr/ under another name."""
    versioned = zarrs[zarr_format]
    checksum = versioned.checksums[state]
    files = [file.path for file in manifest_of(manifest_root, versioned, checksum).files()]
    asset_root = quote(f"{OPEN}{version_path}/{ZARR_PATHS[zarr_format]}/")
    zarrs_root = f"/{versioned.url_path(checksum)}/"
    for directory in zarr_directories(files):
        mine = propfind(client, f"{asset_root}{directory}")
        theirs = propfind(client, f"{zarrs_root}{directory}")
        assert mine.status_code == theirs.status_code == 207
        # Each of mine names its /zarrs/ twin as canonical, which theirs need not.
        canonical = re.compile(rb"<zd:canonical>http://[^/<]+(/[^<]*)</zd:canonical>")
        named = [match.group(1).decode() for match in canonical.finditer(mine.content)]
        assert named == [answer.href for answer in multistatus(theirs)]
        renamed = canonical.sub(b"", mine.content).replace(
            f"<D:href>{asset_root}".encode(), f"<D:href>{zarrs_root}".encode()
        )
        if directory:
            assert renamed == theirs.content
        else:  # the root is the asset, with the asset's own dates: compare its children
            assert renamed.split(b"<D:response>")[2:] == theirs.content.split(b"<D:response>")[2:]
    for path in files:
        for method in ("GET", "HEAD"):
            mine, theirs = (client.request(method, f"{root}{quote(path)}")
                            for root in (asset_root, zarrs_root))
            assert mine.status_code == theirs.status_code == 307
            assert mine.headers["location"] == theirs.headers["location"]
            assert "?versionId=" in mine.headers["location"]
            assert mine.headers["etag"] == theirs.headers["etag"]
            assert mine.headers["link"] == f'<{client.base_url}{zarrs_root}{quote(path)}>; rel="canonical"'
            assert "link" not in theirs.headers


@FORMATS
def test_the_draft_moved_on_but_the_release_did_not(
    client: httpx.Client, zarrs: dict[int, VersionedZarr], zarr_format: int
) -> None:
    """The chunk the rewrite deleted: still in the release, absent (404) from the draft."""
    chunk = f"{ZARR_PATHS[zarr_format]}/{zarrs[zarr_format].deleted_chunk}"
    assert client.get(f"{OPEN}latest/{chunk}").status_code == 307
    assert client.get(f"{OPEN}releases/{RELEASE}/{chunk}").status_code == 307
    gone = f"{OPEN}draft/{chunk}"
    for response in (client.get(gone), propfind(client, gone, "0")):
        assert response.status_code == 404
        assert_plain_error(response.headers, response.content)


# 4. What every client relies on


HIERARCHY = [
    "/dandisets/",
    OPEN,
    f"{OPEN}releases/",
    f"{OPEN}draft/",
    f"{OPEN}latest/",
    f"{OPEN}releases/{RELEASE}/",
    f"{OPEN}draft/sub-01/",
    f"{OPEN}draft/sub-01/ses-1/micr/",
    f"{OPEN}draft/docs/",
    f"{OPEN}draft/{ZARR_PATHS[3]}/",
    f"{OPEN}draft/{ZARR_PATHS[3]}/temperature/",
    f"{OPEN}latest/{ZARR_PATHS[2]}/",
    f"{OPEN}latest/{ZARR_PATHS[2]}/ints/",
    f"{UNPINNED}draft/",
    f"{UNPINNED}draft/{LIVE_PATH}/",
    f"{UNPINNED}draft/{LIVE_PATH}/depth/",
    f"{UNPINNED}draft/{INGESTING_PATH}/",
]


@pytest.mark.parametrize("path", HIERARCHY)
def test_depth1_hrefs_lie_under_the_requested_path(client: httpx.Client, path: str) -> None:
    assert_depth1_lists_direct_children(client, path)


def crawl(client: httpx.Client, server: str, start: str) -> dict[str, int]:
    """Every link reachable from ``start``'s pages, with the status a GET answers.

    Pages under ``start`` are crawled; links leaving it (breadcrumbs, permanent
    /zarrs/ links) are only requested; the archive's metadata links are on
    another host.
    """
    host = urlsplit(server).netloc
    pages, statuses = [start], {start: 200}
    while pages:
        page = pages.pop()
        response = client.get(page)
        assert response.status_code == 200, page
        for href in Links(response.content).hrefs:
            url = urlsplit(urljoin(f"{server}{page}", href))
            target = url.path
            if url.netloc != host or target in statuses:
                continue
            answer = client.get(target)
            statuses[target] = answer.status_code
            if answer.status_code == 301:
                assert answer.headers["location"] == f"{target}/"
            elif answer.status_code == 200 and target.startswith(start) and target.endswith("/"):
                pages.append(target)
    return statuses


def test_every_link_of_a_dandiset_answers(
    client: httpx.Client, server: str, archive: Archive, zarrs: dict[int, VersionedZarr],
    manifest_root: Path,
) -> None:
    """Folders answer pages, files redirect, nothing is dead; every file is reached."""
    statuses = crawl(client, server, OPEN)
    assert {path: status for path, status in statuses.items() if status not in (200, 307)} == {}
    expected = set()
    for version_path, version_id in VERSION_PATHS.items():
        assert statuses[f"{OPEN}{version_path}/dandiset.yaml"] == 200
        for asset in archive.version(OPEN_ID, version_id).assets:
            root = f"{OPEN}{version_path}/{quote(asset.path)}"
            if asset.blob:
                expected.add(root)
                continue
            versioned = next(z for z in zarrs.values() if z.zarr_id == asset.zarr)
            checksum = asset.metadata["digest"]["dandi:dandi-zarr-checksum"]
            expected |= {f"{root}/{quote(f.path)}"
                         for f in manifest_of(manifest_root, versioned, checksum).files()}
    assert {path for path, status in statuses.items() if status == 307} == expected


@pytest.mark.parametrize(
    ("dandiset_id", "refused"),
    [
        # A release is never shown unpinned (tested below).
        (UNPINNED_ID, {f"{UNPINNED}releases/{UNPINNED_RELEASE}/{LIVE_PATH}/": 503,
                       f"{UNPINNED}latest/{LIVE_PATH}/": 503}),
        (UNPUBLISHED_ID, {}),
        (EMPTY_ID, {}),
    ],
)
def test_every_link_of_the_other_dandisets_answers(
    client: httpx.Client, server: str, dandiset_id: str, refused: dict[str, int]
) -> None:
    statuses = crawl(client, server, f"/dandisets/{dandiset_id}/")
    assert {path: status for path, status in statuses.items()
            if status not in (200, 301, 307)} == refused


# 5. Real clients


@pytest.mark.slow
@PINNED
@FORMATS
def test_zarr_python_3_reads_the_values_the_version_pins(
    server: str, zarrs: dict[int, VersionedZarr], version_path: str, state: int, zarr_format: int
) -> None:
    """Old values through the releases and latest, new ones through the draft."""
    versioned = zarrs[zarr_format]
    checksum = versioned.checksums[state]
    group = zarr.open_group(
        f"{server}{OPEN}{version_path}/{ZARR_PATHS[zarr_format]}", mode="r",
        zarr_format=zarr_format, use_consolidated=zarr_format == 2,
    )
    assert_values({name: group[name][...] for name in versioned.values[checksum]},
                  versioned.values[checksum])


@pytest.mark.slow
@FORMATS
def test_zarr_python_3_lists_a_zarr_asset(server: str, zarr_format: int) -> None:
    """The asset page's extra links (permanent, metadata) stay out of fsspec's listing."""
    group = zarr.open_group(f"{server}{OPEN}draft/{ZARR_PATHS[zarr_format]}", mode="r",
                            zarr_format=zarr_format, use_consolidated=False)
    assert sorted(name for name, _ in group.members(max_depth=None)) == MEMBERS[zarr_format]


@pytest.mark.slow
@PINNED
@FORMATS
def test_rclone_copy_is_the_pinned_objects(
    s3: Any, public_bucket: str, server: str, zarrs: dict[int, VersionedZarr], manifest_root: Path,
    tmp_path: Path, version_path: str, state: int, zarr_format: int,
) -> None:
    versioned = zarrs[zarr_format]
    checksum = versioned.checksums[state]
    remote = f"dandisets/{OPEN_ID}/{version_path}/{ZARR_PATHS[zarr_format]}"
    rclone("copy", *webdav_remote(server, remote), str(tmp_path / "copy"))
    assert_copy_is_pinned(tmp_path / "copy", s3, public_bucket, manifest_root, versioned, checksum)


@pytest.mark.slow
def test_zarr_python_3_reads_a_live_draft_zarr(server: str, archive: Archive) -> None:
    live = archive.unpinned[LIVE_PATH]
    group = zarr.open_group(f"{server}{UNPINNED}draft/{LIVE_PATH}", mode="r", zarr_format=3,
                            use_consolidated=False)
    assert_values({name: group[name][...] for name in live.values}, live.values)


# 6. Zarr assets without a manifest


@pytest.mark.parametrize("asset_path", [LIVE_PATH, INGESTING_PATH])
def test_draft_zarr_without_manifest_is_a_live_listing(
    client: httpx.Client, archive: Archive, s3_endpoint: str, public_bucket: str, asset_path: str
) -> None:
    """What S3 holds now, marked as unpinned; files redirect to the current objects."""
    unpinned = archive.unpinned[asset_path]
    root = f"{UNPINNED}draft/{asset_path}/"
    answers = multistatus(propfind(client, root))
    assert [answer.href for answer in answers] == [root, f"{root}depth/", f"{root}zarr.json"]
    (metadata,) = [answer for answer in answers if answer.href.endswith("zarr.json")]
    assert metadata.text("getcontentlength") == str(len(unpinned.files["zarr.json"]))
    for folder, children in (("", ["depth/", "zarr.json"]), ("depth/", ["c/", "zarr.json"])):
        page = client.get(f"{root}{folder}")
        assert UNPINNED_HEADER in page.headers
        assert LIVE_NOTE in html.unescape(page.text)
        assert child_links(page) == children
        assert [href for href in Links(page.content).hrefs if href.startswith("/zarrs/")] == []
    for name, body in unpinned.files.items():
        response = client.get(f"{root}{name}")
        assert response.status_code == 307
        assert UNPINNED_HEADER in response.headers
        assert response.headers["location"] == (
            f"{s3_endpoint}/{public_bucket}/zarr/{unpinned.zarr_id}/{name}"
        )
        assert httpx.get(response.headers["location"], timeout=10).content == body


def test_release_zarr_without_manifest_is_503(client: httpx.Client, archive: Archive) -> None:
    """A release is never shown unpinned: it says which manifest is missing."""
    root = f"{UNPINNED}releases/{UNPINNED_RELEASE}/{LIVE_PATH}/"
    checksum = archive.unpinned[LIVE_PATH].checksum
    for response in (client.get(root), propfind(client, root, "0"), propfind(client, root),
                     client.get(f"{root}zarr.json")):
        assert response.status_code == 503
        assert response.headers["retry-after"] == "600"  # missing_manifest_retry_after's default
        assert_plain_error(response.headers, response.content)
        assert checksum in response.text and "manifest" in response.text
        assert "missing" in response.text
    listing = multistatus(propfind(client, f"{UNPINNED}releases/{UNPINNED_RELEASE}/"))
    assert f"{UNPINNED}releases/{UNPINNED_RELEASE}/{LIVE_PATH}/" in [a.href for a in listing]


def test_missing_manifest_error_refuses_the_draft_too(serve_args: list[str]) -> None:
    with zarrdav_server(
        *serve_args, "--missing-manifest", "error", "--missing-manifest-retry-after", "45"
    ) as url, httpx.Client(
        base_url=url, timeout=10
    ) as client:
        for asset_path, why in ((LIVE_PATH, "missing"), (INGESTING_PATH, "ingested")):
            for response in (client.get(f"{UNPINNED}draft/{asset_path}/"),
                             client.get(f"{UNPINNED}draft/{asset_path}/zarr.json")):
                assert response.status_code == 503
                assert response.headers["retry-after"] == "45"
                assert_plain_error(response.headers, response.content)
                assert why in response.text
        assert client.get(f"{OPEN}draft/{ZARR_PATHS[3]}/").status_code == 200


# 7. Embargo and the API token


EMBARGOED_PATHS = [
    f"{EMBARGOED}draft/",
    f"{EMBARGOED}draft/dandiset.yaml",
    f"{EMBARGOED}draft/{SECRET_BLOB_PATH}",
    f"{EMBARGOED}draft/{SECRET_ZARR_PATH}/",
    f"{EMBARGOED}draft/{SECRET_ZARR_PATH}/zarr.json",
]


STRANGER_TOKEN = "stranger-token-77e1"


@pytest.mark.parametrize("path", EMBARGOED_PATHS)
def test_embargoed_versions_ask_anonymous_visitors_for_a_token(client: httpx.Client, path: str) -> None:
    for response in (client.get(path), propfind(client, path, "0")):
        assert response.status_code == 401, response.text
        assert response.headers["www-authenticate"] == 'Basic realm="zarrdav"'
        assert_plain_error(response.headers, response.content)
    assert client.get(EMBARGOED).status_code == 401


@pytest.mark.parametrize("path", EMBARGOED_PATHS)
def test_a_token_that_is_not_an_owners_is_refused_with_the_archives_reason(client: httpx.Client, path: str) -> None:
    for response in (client.get(path, auth=("x", STRANGER_TOKEN)),
                     propfind(client, path, "0", auth=("x", STRANGER_TOKEN))):
        assert response.status_code == 403, response.text
        assert "You do not have permission to perform this action." in response.text
        assert STRANGER_TOKEN not in response.text and response.text.count("\n") == 1
        # Asked with credentials: offered to no origin at large.
        assert "access-control-allow-origin" not in response.headers


@pytest.mark.parametrize("authorization", ["Basic !!!", "Basic " + "eA==", "Negotiate abc", "token a\tb"])
def test_malformed_authorization_is_400(client: httpx.Client, authorization: str) -> None:
    response = client.get(f"{EMBARGOED}draft/", headers={"Authorization": authorization})
    assert response.status_code == 400 and response.text.count("\n") == 1, response.text


def test_owner_token_serves_the_embargoed_dandiset_to_that_visitor_only(
    serve_args: list[str], archive: Archive, s3_recorder: Recorder, tmp_path: Path,
) -> None:
    """The visitor's token reaches the archive, never S3, a page, a header or the log.

    Owner, stranger and anonymous visitors interleave: none is ever shown
    what the archive answered another (the answers are kept per identity).
    Files are presigned; listings and pages are private answers.
    """
    root = f"{EMBARGOED}draft/"
    log = tmp_path / "zarrdav.log"
    start = len(s3_recorder.requests)
    owner = ("anyone", OWNER_TOKEN)
    with zarrdav_server(*serve_args, log=log) as url, httpx.Client(base_url=url, timeout=10) as client:
        for _ in range(2):
            answers = multistatus(propfind(client, root, auth=owner))
            assert [answer.href for answer in answers] == [
                root, f"{root}dandiset.yaml", f"{root}{SECRET_BLOB_PATH}", f"{root}{SECRET_ZARR_PATH}/"
            ]
            assert propfind(client, root, auth=("x", STRANGER_TOKEN)).status_code == 403
            assert propfind(client, root).status_code == 401
            assert client.get(f"{root}dandiset.yaml", headers={"Authorization": f"token {STRANGER_TOKEN}"}
                              ).status_code == 403
            yaml_file = client.get(f"{root}dandiset.yaml", headers={"Authorization": f"Bearer {OWNER_TOKEN}"})
            assert yaml_file.status_code == 200 and yaml_file.headers["cache-control"] == "private, no-store"
            assert "access-control-allow-origin" not in yaml_file.headers
        page = client.get(root, auth=owner)
        assert page.status_code == 200 and page.headers["cache-control"] == "private, no-store"
        assert SECRET_BLOB_PATH in page.text and OWNER_TOKEN not in page.text
        listing = client.get("/dandisets/", auth=owner)
        assert listing.headers["cache-control"] == "private, no-store" and OWNER_TOKEN not in listing.text
        assert client.get("/dandisets/").headers["cache-control"].startswith("public")  # shared, as before
        blob = client.get(f"{root}{SECRET_BLOB_PATH}", auth=owner)
        assert blob.status_code == 307 and blob.headers["cache-control"] == "private, no-store"
        asset = archive.asset(EMBARGOED_ID, "draft", SECRET_BLOB_PATH)
        location = blob.headers["location"]
        assert "X-Amz-Signature=" in location and f"/blobs/{asset.blob[:3]}/" in location  # type: ignore[index]
        assert OWNER_TOKEN not in str(blob.headers.raw)
        assert httpx.get(location).content == archive.blobs[asset.blob or ""]  # one hop: S3's bytes
        assert client.get(f"{root}{SECRET_BLOB_PATH}", auth=("x", STRANGER_TOKEN)).status_code == 403
        # An embargoed Zarr without a manifest is not listed live (S3 refuses anonymous listings).
        assert propfind(client, f"{root}{SECRET_ZARR_PATH}/", auth=owner).status_code == 503
    assert all(OWNER_TOKEN not in value for headers in s3_recorder.requests[start:] for value in headers.values())
    said = log.read_text()
    assert f"{root}dandiset.yaml" in said  # the request log is there
    assert OWNER_TOKEN not in said and STRANGER_TOKEN not in said


# 8. Absent things and upstream faults


NOT_FOUND = [
    "/dandisets/999999/",
    "/dandisets/999999/draft/",
    "/dandisets/999999/latest/",
    "/dandisets/999999/releases/",
    "/dandisets/12345/",  # ids have six digits or more
    f"{OPEN}nightly/",
    f"{OPEN}releases/0.999999.9999/",
    f"{OPEN}releases/0.999999.9999/dandiset.yaml",
    f"{OPEN}releases/not-a-version/",
    f"/dandisets/{UNPUBLISHED_ID}/latest/",
    f"/dandisets/{UNPUBLISHED_ID}/releases/",
    f"{OPEN}draft/nope",
    f"{OPEN}draft/sub-0",  # a prefix of a folder's name
    f"{OPEN}draft/sub-01/nope.nwb",
    f"{OPEN}draft/README.md/",  # a file as a folder
    f"{OPEN}draft/README.md/x",  # under a file
    f"{OPEN}releases/{FIRST_RELEASE}/sub-01/",  # in the draft, not in that release
    f"{OPEN}draft/{ZARR_PATHS[3]}/nope",
    f"{OPEN}draft/{ZARR_PATHS[3]}/temperature/c/9/9",
    f"{OPEN}draft/{ZARR_PATHS[2]}/.zarray/x",
    f"{UNPINNED}draft/{LIVE_PATH}/nope",
    f"{UNPINNED}draft/{LIVE_PATH}/depth/c/9",
    f"{UNPINNED}draft/{LIVE_PATH}/zarr.json/",
    f"{UNPINNED}draft/{LIVE_PATH}/dep",  # a prefix of a folder's name
]


@pytest.mark.parametrize("path", NOT_FOUND)
def test_absent_paths_are_404(client: httpx.Client, path: str) -> None:
    assert_absent(client, path)


def assert_still_serving(client: httpx.Client) -> None:
    """The manifest side does not depend on the archive."""
    assert client.get("/").status_code == 200
    assert client.get("/zarrs/").status_code == 200


def test_failing_archive_is_502(base_args: list[str]) -> None:
    with failing_web_server() as web, zarrdav_server(
        *base_args, "--api-url", f"{web}api"
    ) as url, httpx.Client(base_url=url, timeout=30) as client:
        for response in (client.get("/dandisets/"), propfind(client, f"{OPEN}draft/")):
            assert response.status_code == 502
            assert_plain_error(response.headers, response.content)
            assert response.text.startswith("archive: ") and "answered 500" in response.text
        assert_still_serving(client)


def test_silent_archive_is_504(base_args: list[str]) -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(64)  # connections are accepted by the kernel, never answered
        api = f"http://127.0.0.1:{silent.getsockname()[1]}/api"
        with zarrdav_server(*base_args, "--api-url", api, "--upstream-timeout", "1") as url, \
                httpx.Client(base_url=url, timeout=60) as client:
            started = time.perf_counter()
            response = client.get(f"{OPEN}draft/")
            elapsed = time.perf_counter() - started
            assert response.status_code == 504
            assert_plain_error(response.headers, response.content)
            assert 1 <= elapsed < 15
            assert_still_serving(client)
