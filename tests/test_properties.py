"""Dates, validators, hashes and permanent names: the same on every kind of resource.

Every resource has a ``getlastmodified``; ``getetag``/``getlastmodified`` of
a PROPFIND are the ``ETag``/``Last-Modified`` of a HEAD, and a member's row
in its folder's listing says what the member's own PROPFIND says. What a
``draft/`` or ``latest/`` path shows names its permanent URL. Runs against
the archive double and the Zarrs of ``test_dandisets``.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from email.utils import parsedate_to_datetime
from urllib.parse import quote

import httpx
import pytest

from tests import test_dandisets
from tests.archive_data import EMBARGOED_ID, LIVE_PATH, RELEASE, UNPINNED_ID, ZARR_PATHS
from tests.test_dandisets import OPEN
from tests.test_serve import Answer, multistatus, propfind
from tests.zarr_data import VersionedZarr
from zarrdav.manifests.layout import zarr_prefix

OC = "{http://owncloud.org/ns}"
ZD = "{https://github.com/dandi/zarrdav/ns}"
EPOCH = "Thu, 01 Jan 1970 00:00:00 GMT"
ZARR3 = quote(ZARR_PATHS[3])

# The archive double and the server of test_dandisets, shared with it.
s3_recorder = test_dandisets.s3_recorder
archive = test_dandisets.archive
api = test_dandisets.api
base_args = test_dandisets.base_args
serve_args = test_dandisets.serve_args
server = test_dandisets.server
client = test_dandisets.client


def paths_of_every_kind(zarrs: dict[int, VersionedZarr]) -> list[str]:
    versioned = zarrs[3]
    zarr_root = f"/{versioned.url_path(versioned.checksums[1])}/"
    prefix = zarr_prefix(versioned.zarr_id)
    return [
        "/", "/zarrs/", f"/zarrs/{prefix[:3]}/", f"/zarrs/{prefix[:7]}/", f"/zarrs/{prefix}/",
        zarr_root, f"{zarr_root}sub/", f"{zarr_root}zarr.json",
        "/dandisets/", OPEN, f"{OPEN}releases/", f"{OPEN}draft/", f"{OPEN}latest/",
        f"{OPEN}releases/{RELEASE}/", f"{OPEN}draft/dandiset.yaml", f"{OPEN}latest/dandiset.yaml",
        f"{OPEN}draft/sub-01/", f"{OPEN}latest/sub-01/", f"{OPEN}draft/sub-01/sub-01_ses-1.nwb",
        f"{OPEN}draft/{ZARR3}/", f"{OPEN}latest/{ZARR3}/sub/", f"{OPEN}draft/{ZARR3}/zarr.json",
        f"/dandisets/{UNPINNED_ID}/draft/{LIVE_PATH}/", f"/dandisets/{UNPINNED_ID}/draft/{LIVE_PATH}/zarr.json",
    ]


def own(client: httpx.Client, path: str) -> Answer:
    (answer,) = multistatus(propfind(client, path, "0"))
    return answer


def test_head_and_propfind_agree_on_every_kind_of_resource(
    client: httpx.Client, zarrs: dict[int, VersionedZarr]
) -> None:
    for path in paths_of_every_kind(zarrs):
        answer = own(client, path)
        head = client.head(path)
        assert head.status_code in (200, 307), path
        modified = answer.text("getlastmodified")
        assert modified is not None, path
        assert head.headers["last-modified"] == modified, path
        assert head.headers.get("etag") == answer.text("getetag"), path
        assert head.headers["dav"] == "1"


def test_a_listing_row_is_what_the_member_says_of_itself(
    client: httpx.Client, zarrs: dict[int, VersionedZarr]
) -> None:
    """obstore refuses a listing with a row lacking getlastmodified; rclone compares rows with HEADs."""
    for path in paths_of_every_kind(zarrs):
        if not path.endswith("/"):
            continue
        for row in multistatus(propfind(client, path, "1"))[1:]:
            assert row.text("getlastmodified") is not None, row.href
            if row.href.startswith(f"/dandisets/{EMBARGOED_ID}/"):
                continue  # its own answer is a 401 without a token (tests/test_dandisets.py)
            itself = own(client, row.href)
            for name in ("getlastmodified", "getetag", "getcontentlength"):
                assert row.text(name) == itself.text(name), (row.href, name)


def test_fixed_collections_have_the_epoch(client: httpx.Client) -> None:
    for path in ("/", "/zarrs/", "/dandisets/"):
        assert own(client, path).text("getlastmodified") == EPOCH


def test_a_directory_has_the_date_of_the_newest_file_below_it(
    client: httpx.Client, zarrs: dict[int, VersionedZarr]
) -> None:
    versioned = zarrs[3]
    for checksum in versioned.checksums:
        root = f"/{versioned.url_path(checksum)}/"
        for directory in ("", "sub/", "temperature/"):
            rows = multistatus(propfind(client, f"{root}{directory}", "1"))
            dates = [parsedate_to_datetime(row.text("getlastmodified") or "") for row in rows]
            assert dates[0] == max(dates[1:]), directory  # a folder's date is its newest member's
    newest = max(parsedate_to_datetime(own(client, f"/{versioned.url_path(c)}/").text("getlastmodified") or "")
                 for c in versioned.checksums)
    versions = own(client, f"/zarrs/{zarr_prefix(versioned.zarr_id)}/")
    assert parsedate_to_datetime(versions.text("getlastmodified") or "") == newest


def test_dandiset_yaml_has_an_etag_and_an_md5(client: httpx.Client) -> None:
    path = f"{OPEN}draft/dandiset.yaml"
    body = client.get(path).content
    answer = own(client, path)
    digest = hashlib.md5(body).hexdigest()
    assert answer.text("getetag") == f'"{digest}"'
    assert answer.found[f"{OC}checksums"].findtext(f"{OC}checksum") == f"MD5:{digest}"


def test_md5s_of_zarr_entries_and_none_for_folders(
    client: httpx.Client, zarrs: dict[int, VersionedZarr]
) -> None:
    versioned = zarrs[2]
    rows = multistatus(propfind(client, f"/{versioned.url_path(versioned.checksums[0])}/ints/", "1"))
    assert f"{OC}checksums" not in rows[0].found
    files = [row for row in rows[1:] if not row.is_collection]
    assert files
    for row in files:
        etag = (row.text("getetag") or "").strip('"')
        assert row.found[f"{OC}checksums"].findtext(f"{OC}checksum") == f"MD5:{etag}"


def canonical(answer: Answer) -> str | None:
    element = answer.found.get(f"{ZD}canonical")
    return None if element is None else element.text


@pytest.mark.parametrize(
    ("path", "permanent"),
    [
        (f"{OPEN}latest/", f"{OPEN}releases/{RELEASE}/"),
        (f"{OPEN}latest/dandiset.yaml", f"{OPEN}releases/{RELEASE}/dandiset.yaml"),
        (f"{OPEN}latest/sub-01/", f"{OPEN}releases/{RELEASE}/sub-01/"),
        (f"{OPEN}latest/sub-01/sub-01_ses-1.nwb", f"{OPEN}releases/{RELEASE}/sub-01/sub-01_ses-1.nwb"),
    ],
)
def test_latest_names_its_release(client: httpx.Client, path: str, permanent: str) -> None:
    url = f"{client.base_url}{permanent}"
    assert canonical(own(client, path)) == url
    assert client.head(path).headers["link"] == f'<{url}>; rel="canonical"'
    assert "link" not in client.head(permanent).headers
    assert canonical(own(client, permanent)) is None


@pytest.mark.parametrize("version", ["draft", "latest", f"releases/{RELEASE}"])
def test_inside_a_zarr_asset_the_zarrs_path_wins(
    client: httpx.Client, zarrs: dict[int, VersionedZarr], version: str
) -> None:
    versioned = zarrs[3]
    checksum = versioned.checksums[1 if version == "draft" else 0]
    zarr_root = f"{client.base_url}/{versioned.url_path(checksum)}/"
    for inner in ("", "sub/", "zarr.json"):
        path = f"{OPEN}{version}/{ZARR3}/{inner}"
        assert canonical(own(client, path)) == f"{zarr_root}{inner}"
        assert client.head(path).headers["link"] == f'<{zarr_root}{inner}>; rel="canonical"'


def test_the_draft_and_live_views_name_nothing(client: httpx.Client) -> None:
    for path in (f"{OPEN}draft/", f"{OPEN}draft/sub-01/", f"{OPEN}draft/dandiset.yaml",
                 f"/dandisets/{UNPINNED_ID}/draft/{LIVE_PATH}/zarr.json"):
        assert canonical(own(client, path)) is None, path
        assert "link" not in client.head(path).headers, path


def test_the_canonical_url_follows_the_host_asked_for(client: httpx.Client) -> None:
    path = f"{OPEN}latest/dandiset.yaml"
    renamed = client.head(path, headers={"Host": "dav.example.org:8443"})
    assert renamed.headers["link"] == (
        f'<http://dav.example.org:8443{OPEN}releases/{RELEASE}/dandiset.yaml>; rel="canonical"'
    )
    hostile = client.head(path, headers={"Host": 'evil"><x'})
    assert hostile.status_code == 200
    assert "evil" not in hostile.headers["link"]



@pytest.mark.slow
@pytest.mark.skipif(shutil.which("cadaver") is None, reason="cadaver is not installed")
def test_cadaver_lists_a_version_without_errors(server: str) -> None:
    """cadaver's ls said ``Error: dandiset.yaml 404 Not Found`` while dandiset.yaml had no date."""
    listed = subprocess.run(["cadaver", "-t", f"{server}{OPEN}latest/"], input="ls\nquit\n",
                            capture_output=True, text=True, timeout=60, env={**os.environ, "HOME": "/nonexistent"})
    output = listed.stdout + listed.stderr
    assert "Error" not in output, output
    assert "dandiset.yaml" in output and "sub-01" in output and "succeeded" in output, output
