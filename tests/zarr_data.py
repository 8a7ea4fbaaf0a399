"""Real Zarrs for end-to-end tests, written by zarr-python and versioned on S3.

Each Zarr is written locally, uploaded, pinned by a manifest, then rewritten in
place (some chunks overwritten, one chunk deleted) and pinned again, so the
bucket holds two states and the tests can check that a client reading through
the server sees exactly the state a checksum names. An unpinned Zarr is only
uploaded, for the views that must do without a manifest.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import zarr

from zarrdav.cli import main
from zarrdav.manifests.checksum import zarr_checksum
from zarrdav.manifests.layout import zarr_prefix

Values = dict[str, np.ndarray]  # array path in the group -> its contents


@dataclass(frozen=True)
class VersionedZarr:
    """One Zarr with two manifests: as first written (checksums[0]) and after the rewrite."""

    zarr_id: str
    zarr_format: Literal[2, 3]
    checksums: tuple[str, str]
    values: dict[str, Values]  # checksum -> what a reader of that state must see
    deleted_chunk: str  # the entry the rewrite removed

    def url_path(self, checksum: str) -> str:
        """Where the server exposes the Zarr as of ``checksum``, without a leading slash."""
        return f"zarrs/{zarr_prefix(self.zarr_id)}/{checksum}.zarr"


def write_v2_zarr(
    s3: Any, endpoint: str, bucket: str, workdir: Path, manifests: Path
) -> VersionedZarr:
    """A Zarr v2 group, consolidated, with `.`- and `/`-separated chunk keys."""

    def create(local: Path) -> Values:
        group = zarr.open_group(local, mode="w", zarr_format=2, attributes={"title": "v2 sample"})
        ints = np.arange(48, dtype="i4").reshape(6, 8)
        floats = np.linspace(0, 1, 24).reshape(4, 6)
        group.create_array("ints", shape=ints.shape, chunks=(2, 4), dtype=ints.dtype, fill_value=-1)
        group.create_array(
            "floats", shape=floats.shape, chunks=(2, 3), dtype=floats.dtype, fill_value=0.5,
            chunk_key_encoding={"name": "v2", "separator": "/"},
        )
        group["ints"][...] = ints
        group["floats"][...] = floats
        zarr.consolidate_metadata(local, zarr_format=2)
        return {"ints": ints, "floats": floats}

    def rewrite(local: Path, values: Values) -> str:
        group = zarr.open_group(local, mode="r+", zarr_format=2)
        values["ints"][0:2, 0:4] = np.arange(100, 108).reshape(2, 4)
        values["ints"][4:6, 4:8] = -1  # all fill value: zarr deletes the chunk
        values["floats"][2:4, :] *= 10
        group["ints"][0:2, 0:4] = values["ints"][0:2, 0:4]
        group["ints"][4:6, 4:8] = values["ints"][4:6, 4:8]
        group["floats"][2:4, :] = values["floats"][2:4, :]
        return "ints/2.1"

    return _publish(s3, endpoint, bucket, workdir, manifests, 2, create, rewrite)


def write_v3_zarr(
    s3: Any, endpoint: str, bucket: str, workdir: Path, manifests: Path
) -> VersionedZarr:
    """A Zarr v3 group with a plain array and a sharded one in a subgroup (read by ranges)."""

    def create(local: Path) -> Values:
        group = zarr.open_group(local, mode="w", zarr_format=3, attributes={"title": "v3 sample"})
        temperature = (np.arange(64, dtype="f4").reshape(8, 8) - 20) / 4
        counts = np.arange(1, 13, dtype="u2") * 3
        group.create_array("temperature", shape=(8, 8), chunks=(4, 4), dtype="f4", fill_value=0)
        group.create_group("sub").create_array(
            "counts", shape=(12,), chunks=(3,), shards=(6,), dtype="u2", fill_value=0
        )
        group["temperature"][...] = temperature
        group["sub/counts"][...] = counts
        return {"temperature": temperature, "sub/counts": counts}

    def rewrite(local: Path, values: Values) -> str:
        group = zarr.open_group(local, mode="r+", zarr_format=3)
        values["temperature"][0:4, 0:4] = 0  # all fill value: zarr deletes the chunk
        values["temperature"][4:8, 4:8] = -values["temperature"][4:8, 4:8]
        values["sub/counts"][0:3] = [7, 8, 9]
        group["temperature"][0:4, 0:4] = values["temperature"][0:4, 0:4]
        group["temperature"][4:8, 4:8] = values["temperature"][4:8, 4:8]
        group["sub/counts"][0:3] = values["sub/counts"][0:3]
        return "temperature/c/0/0"

    return _publish(s3, endpoint, bucket, workdir, manifests, 3, create, rewrite)


@dataclass(frozen=True)
class UnpinnedZarr:
    """A Zarr uploaded without any manifest, as one is before the manifest job runs."""

    zarr_id: str
    values: Values
    files: dict[str, bytes]  # what S3 holds now, by path inside the Zarr

    @property
    def checksum(self) -> str:
        """Its DANDI checksum: what the archive would report, and no manifest carries."""
        return zarr_checksum(
            (path, len(body), hashlib.md5(body).hexdigest()) for path, body in self.files.items()
        )


def write_unpinned_zarr(s3: Any, bucket: str, workdir: Path) -> UnpinnedZarr:
    """A small Zarr v3 group on S3 with no manifest: only a live listing can show it."""
    zarr_id = str(uuid.uuid4())
    local = workdir / zarr_id
    group = zarr.open_group(local, mode="w", zarr_format=3, attributes={"title": "not pinned yet"})
    depth = np.arange(10, dtype="i2") * 7
    group.create_array("depth", shape=depth.shape, chunks=(4,), dtype=depth.dtype, fill_value=0)
    group["depth"][...] = depth
    files = _files(local)
    _sync(s3, bucket, zarr_id, {}, files)
    return UnpinnedZarr(zarr_id, {"depth": depth}, files)


def _publish(
    s3: Any,
    endpoint: str,
    bucket: str,
    workdir: Path,
    manifests: Path,
    zarr_format: Literal[2, 3],
    create: Callable[[Path], Values],
    rewrite: Callable[[Path, Values], str],
) -> VersionedZarr:
    """Write, upload and pin a Zarr; rewrite, sync and pin it again."""
    zarr_id = str(uuid.uuid4())
    local = workdir / zarr_id
    values = create(local)
    first_values = {name: array.copy() for name, array in values.items()}
    first_files = _files(local)
    _sync(s3, bucket, zarr_id, {}, first_files)
    first = _build_manifest(endpoint, bucket, zarr_id, manifests)

    deleted = rewrite(local, values)
    second_files = _files(local)
    if deleted not in first_files or deleted in second_files:
        raise AssertionError(f"the rewrite was meant to delete {deleted}; zarr did not")
    _sync(s3, bucket, zarr_id, first_files, second_files)
    second = _build_manifest(endpoint, bucket, zarr_id, manifests)
    return VersionedZarr(
        zarr_id, zarr_format, (first, second), {first: first_values, second: values}, deleted
    )


def _files(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` by its ``/``-separated relative path."""
    return {
        path.relative_to(root).as_posix(): path.read_bytes()
        for path in root.rglob("*")
        if path.is_file()
    }


def _sync(
    s3: Any, bucket: str, zarr_id: str, before: dict[str, bytes], after: dict[str, bytes]
) -> None:
    """Make the bucket match ``after`` the way an uploader would: put changes, delete removals."""
    for path, body in after.items():
        if before.get(path) != body:
            s3.put_object(Bucket=bucket, Key=f"zarr/{zarr_id}/{path}", Body=body)
    for path in before.keys() - after.keys():
        s3.delete_object(Bucket=bucket, Key=f"zarr/{zarr_id}/{path}")


def _build_manifest(endpoint: str, bucket: str, zarr_id: str, manifests: Path) -> str:
    """Run `zarrdav manifest build` as a user would; return the new manifest's checksum."""
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        status = main(
            ["manifest", "build", "--bucket", bucket, "--endpoint-url", endpoint,
             "--zarr-id", zarr_id, "--out", str(manifests)]
        )
    if status != 0:
        raise RuntimeError(f"zarrdav manifest build exited with {status}: {printed.getvalue()}")
    return printed.getvalue().split()[1]
