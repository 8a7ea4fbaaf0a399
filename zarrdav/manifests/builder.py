"""Building manifests from a versioned S3 bucket.

The state of a Zarr is the latest version of each key under
``<prefix><zarr_id>/``; keys whose latest version is a delete marker are
gone. The manifest is named by the checksum of that state, so building
twice from the same state yields the same file, byte for byte.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zarrdav.errors import NotFound, UpstreamError
from zarrdav.manifests.checksum import zarr_checksum
from zarrdav.manifests.layout import manifest_path
from zarrdav.manifests.model import ManifestFile
from zarrdav.manifests.progress import Meter
from zarrdav.manifests.versions import zarr_versions
from zarrdav.manifests.writer import render_manifest
from zarrdav.upstreams.s3 import s3_errors, split_s3_url


@dataclass(frozen=True, slots=True)
class BuildResult:
    zarr_id: str
    checksum: str
    entries: int
    location: str
    written: bool  # False when an identical manifest was already there


def current_files(
    client: Any, bucket: str, prefix: str, zarr_id: str, meter: Meter | None = None
) -> list[ManifestFile]:
    """The latest live version of every key of the Zarr."""
    files = []
    seen = 0
    for page in zarr_versions(client, bucket, prefix, zarr_id):
        seen += len(page)
        files += [
            ManifestFile(v.path, v.version_id, v.last_modified, v.size, v.etag)
            for v in page
            if v.is_latest and not v.delete_marker
        ]
        if meter:
            meter.note(f"{zarr_id}: {seen} versions listed, {len(files)} current entries")
    return files


def zarr_ids(client: Any, bucket: str, prefix: str) -> Iterator[str]:
    """Every Zarr id (first-level folder) under ``prefix``."""
    with s3_errors(f"s3://{bucket}/{prefix}"):
        for page in client.get_paginator("list_objects_v2").paginate(
            Bucket=bucket, Prefix=prefix, Delimiter="/"
        ):
            for common in page.get("CommonPrefixes", []):
                yield common["Prefix"][len(prefix) :].rstrip("/")


class ManifestStore:
    """Where built manifests are written: a local folder or an ``s3://`` root."""

    def __init__(self, root: str, s3_client: Any = None) -> None:
        self.root = root
        self._s3 = s3_client
        if root.startswith("s3://"):
            self._bucket, self._prefix = split_s3_url(root)

    def write(self, relative: str, body: bytes) -> tuple[str, bool]:
        """Write ``body`` at ``relative`` unless it is already there; (location, written)."""
        if self.root.startswith("s3://"):
            return self._write_s3(relative, body)
        target = Path(self.root, relative)
        if target.is_file() and target.read_bytes() == body:
            return str(target), False
        target.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=target.parent, delete=False, prefix=".tmp-") as temp:
            temp.write(body)
        Path(temp.name).replace(target)
        return str(target), True

    def _write_s3(self, relative: str, body: bytes) -> tuple[str, bool]:
        key = self._prefix + relative
        location = f"s3://{self._bucket}/{key}"
        try:
            with s3_errors(location):
                existing = self._s3.get_object(Bucket=self._bucket, Key=key)["Body"].read()
        except NotFound:
            existing = None
        if existing == body:
            return location, False
        with s3_errors(location):
            self._s3.put_object(Bucket=self._bucket, Key=key, Body=body, ContentType="application/json")
        return location, True


def build_manifest(
    client: Any,
    bucket: str,
    prefix: str,
    zarr_id: str,
    store: ManifestStore,
    meter: Meter | None = None,
) -> BuildResult:
    """Build and store the manifest of the Zarr's current state."""
    files = current_files(client, bucket, prefix, zarr_id, meter)
    _refuse_file_folders(files, f"s3://{bucket}/{prefix}{zarr_id}/")
    checksum = zarr_checksum((file.path, file.size, file.etag) for file in files)
    location, written = store.write(manifest_path(zarr_id, checksum), render_manifest(files, checksum))
    return BuildResult(zarr_id, checksum, len(files), location, written)


def _refuse_file_folders(files: list[ManifestFile], where: str) -> None:
    """S3 may hold both ``a`` and ``a/b``; a manifest's tree cannot, nor can a Zarr."""
    folders: set[str] = set()
    for file in files:
        folder = file.path.rpartition("/")[0]
        while folder and folder not in folders:
            folders.add(folder)
            folder = folder.rpartition("/")[0]
    clash = next((file.path for file in files if file.path in folders), None)
    if clash is not None:
        raise UpstreamError(f"{where}{clash} is both a file and a folder: no manifest can hold it")
