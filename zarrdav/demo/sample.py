"""The demo's data on the bucket: two Zarrs written by zarr-python, each changed once, and a blob.

Each Zarr is uploaded, pinned by a manifest, then changed in place the way an
uploader syncs a rewrite (changed chunks put again, one chunk deleted) and
pinned again. The bucket then holds two states of it: what a published
version keeps serving, and what the draft moved on to.
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import zarr

from zarrdav.manifests.builder import ManifestStore, build_manifest

ZARR_PREFIX = "zarr/"
OME_ZARR_ID = "0de3d7c2-8d5a-4c1e-9b6f-3f1f2a7e5d01"
TRACES_ZARR_ID = "7b1e9a40-52c3-4f0d-8e27-6a9d0c4b3e02"
OME_SHAPE = (8, 64, 64)  # z, y, x of the full-resolution level
OME_CHUNKS = (4, 32, 32)
OME_LEVELS = 3
TRACES_SHAPE = (4, 400)  # channels, samples

Writer = Callable[[Path, bool], None]  # writes the first (False) or changed (True) state


@dataclass(frozen=True, slots=True)
class SampleZarr:
    """A Zarr with two states on the bucket, each named by its checksum (and manifest)."""

    zarr_id: str
    first: str  # as first written: what the published version pins
    changed: str  # after the change: what the draft pins


@dataclass(frozen=True, slots=True)
class SampleBlob:
    """A blob stored as the archive stores it, with the digests its asset's metadata carries."""

    blob_id: str
    size: int
    etag: str  # DANDI's multipart-style ETag
    sha256: str


def ome_image(changed: bool) -> np.ndarray:
    """Full resolution: rings brightening with depth; the change paints a square and blanks a chunk.

    The blanked chunk is all fill value, so zarr-python deletes it: the draft
    lacks a key the published version still has.
    """
    z, y, x = np.indices(OME_SHAPE)
    rings = 500 + 500 * np.cos(np.hypot(y - 31.5, x - 31.5) / 3)
    image = (1000 * (z + 1) + rings).astype(np.uint16)
    if changed:
        image[0:4, 8:24, 8:24] = 60000
        image[4:8, 32:64, 32:64] = 0
    return image


def ome_pyramid(image: np.ndarray) -> list[np.ndarray]:
    """``OME_LEVELS`` levels, each halving y and x by 2x2 means (z is kept, as for thick slices)."""
    levels = [image]
    for _ in range(1, OME_LEVELS):
        depth, height, width = levels[-1].shape
        blocks = levels[-1].reshape(depth, height // 2, 2, width // 2, 2)
        levels.append(blocks.mean(axis=(2, 4)).astype(np.uint16))
    return levels


def write_ome_zarr(s3: Any, bucket: str, workdir: Path, manifests: Path) -> SampleZarr:
    """An OME-Zarr (NGFF 0.4, Zarr v2) multiscale image with consolidated metadata."""
    return _versioned(s3, bucket, workdir, manifests, OME_ZARR_ID, _write_ome)


def write_traces_zarr(s3: Any, bucket: str, workdir: Path, manifests: Path) -> SampleZarr:
    """A Zarr v3 group xarray opens: traces by channel and time, and sharded event onsets in a subgroup."""
    return _versioned(s3, bucket, workdir, manifests, TRACES_ZARR_ID, _write_traces)


def upload_blob(s3: Any, bucket: str, blob_id: str, body: bytes, content_type: str) -> SampleBlob:
    """Store ``body`` where the archive keeps blobs: ``blobs/<id[0:3]>/<id[3:6]>/<id>``."""
    key = f"blobs/{blob_id[:3]}/{blob_id[3:6]}/{blob_id}"
    s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType=content_type)
    # One part: the ETag is the md5 of that part's md5, then "-1".
    etag = hashlib.md5(hashlib.md5(body).digest()).hexdigest() + "-1"
    return SampleBlob(blob_id, len(body), etag, hashlib.sha256(body).hexdigest())


def _write_ome(local: Path, changed: bool) -> None:
    multiscales: list[dict[str, Any]] = [{
        "version": "0.4",
        "name": "sample-01",
        "axes": [{"name": axis, "type": "space", "unit": "micrometer"} for axis in "zyx"],
        "datasets": [
            {"path": str(level), "coordinateTransformations": [
                {"type": "scale", "scale": [2.0, 0.5 * 2**level, 0.5 * 2**level]}
            ]}
            for level in range(OME_LEVELS)
        ],
        "type": "mean",
    }]
    group = zarr.open_group(local, mode="w", zarr_format=2, attributes={"multiscales": multiscales})
    for level, data in enumerate(ome_pyramid(ome_image(changed))):
        chunks = tuple(min(c, s) for c, s in zip(OME_CHUNKS, data.shape, strict=True))
        array = group.create_array(
            str(level), shape=data.shape, chunks=chunks, dtype=data.dtype, fill_value=0,
            # NGFF 0.4 wants "/"-separated chunk keys in Zarr v2.
            chunk_key_encoding={"name": "v2", "separator": "/"},
        )
        array[...] = data
    zarr.consolidate_metadata(local, zarr_format=2)


def traces(changed: bool) -> np.ndarray:
    """Four channels of sines; the change flips a stretch of channel 1 and blanks a chunk."""
    channels, samples = TRACES_SHAPE
    time = np.arange(samples) / 1000.0
    values = np.sin(2 * np.pi * np.outer(np.arange(1, channels + 1), time) * 5).astype("f4")
    if changed:
        values[0, 0:100] *= -1
        values[2:4, 300:400] = 0  # a whole chunk of fill value: zarr deletes it
    return values


def _write_traces(local: Path, changed: bool) -> None:
    """Named dimensions and coordinate arrays (``channel``, ``time``), so xarray opens it."""
    channels, samples = TRACES_SHAPE
    time = np.arange(samples) / 1000.0
    onsets = np.arange(12, dtype="u4") * 30 + 10
    if changed:
        onsets += 5
    group = zarr.open_group(local, mode="w", zarr_format=3,
                            attributes={"description": "four channels sampled at 1 kHz"})
    group.create_array("traces", shape=TRACES_SHAPE, chunks=(2, 100), dtype="f4", fill_value=0,
                       dimension_names=("channel", "time"), attributes={"units": "mV"})[...] = traces(changed)
    group.create_array("time", shape=time.shape, chunks=(200,), dtype="f8", fill_value=0,
                       dimension_names=("time",), attributes={"units": "s"})[...] = time
    group.create_array("channel", shape=(channels,), chunks=(channels,), dtype="u1", fill_value=0,
                       dimension_names=("channel",))[...] = np.arange(1, channels + 1)
    events = group.create_group("events")
    events.create_array("onsets", shape=onsets.shape, chunks=(4,), shards=(12,), dtype="u4",
                        fill_value=0, dimension_names=("event",))[...] = onsets
    # Consolidated, xarray opens it in one read without warning; zarr-python
    # warns that v3 does not specify consolidation yet (xarray reads it).
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        zarr.consolidate_metadata(local, zarr_format=3)


def _versioned(
    s3: Any, bucket: str, workdir: Path, manifests: Path, zarr_id: str, write: Writer
) -> SampleZarr:
    """Write, upload and pin the first state; write, sync and pin the changed one."""
    store = ManifestStore(str(manifests))
    uploaded: dict[str, bytes] = {}
    checksums = []
    for changed in (False, True):
        local = workdir / zarr_id / ("changed" if changed else "first")
        write(local, changed)
        files = _files(local)
        _sync(s3, bucket, f"{ZARR_PREFIX}{zarr_id}/", uploaded, files)
        uploaded = files
        checksums.append(build_manifest(s3, bucket, ZARR_PREFIX, zarr_id, store).checksum)
    return SampleZarr(zarr_id, checksums[0], checksums[1])


def _files(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` by its ``/``-separated relative path."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def _sync(
    s3: Any, bucket: str, prefix: str, before: dict[str, bytes], after: dict[str, bytes]
) -> None:
    """Make the bucket match ``after`` as an uploader would: put what changed, delete what went."""
    for path, body in after.items():
        if before.get(path) != body:
            s3.put_object(Bucket=bucket, Key=prefix + path, Body=body)
    for path in before.keys() - after.keys():
        s3.delete_object(Bucket=bucket, Key=prefix + path)
