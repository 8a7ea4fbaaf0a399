"""Building manifests from a versioned S3 bucket.

The state of a Zarr is the latest version of each key under
``<prefix><zarr_id>/``; keys whose latest version is a delete marker are
gone. The manifest is named by the checksum of that state, so building
twice from the same state yields the same file, byte for byte.
"""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zarrdav.errors import NotFound
from zarrdav.manifests.checksum import zarr_checksum
from zarrdav.manifests.layout import manifest_path
from zarrdav.manifests.model import ManifestFile
from zarrdav.manifests.writer import render_manifest
from zarrdav.upstreams.s3 import s3_errors, split_s3_url

Progress = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class BuildResult:
    zarr_id: str
    checksum: str
    entries: int
    location: str
    written: bool  # False when an identical manifest was already there


def current_files(
    client: Any, bucket: str, prefix: str, zarr_id: str, progress: Progress | None = None
) -> list[ManifestFile]:
    """The latest live version of every key of the Zarr."""
    zarr_key = f"{prefix}{zarr_id}/"
    with s3_errors(f"s3://{bucket}/{zarr_key}"):
        return _current_files(client, bucket, zarr_key, zarr_id, progress)


def _current_files(
    client: Any, bucket: str, zarr_key: str, zarr_id: str, progress: Progress | None
) -> list[ManifestFile]:
    files = []
    seen = 0
    for page in client.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=zarr_key):
        for version in page.get("Versions", []):
            seen += 1
            path = version["Key"][len(zarr_key) :]
            if version["IsLatest"] and path and not path.endswith("/"):
                files.append(
                    ManifestFile(
                        path=path,
                        version_id=version["VersionId"],
                        last_modified=version["LastModified"],
                        size=version["Size"],
                        etag=version["ETag"].strip('"'),
                    )
                )
        if progress:
            progress(f"{zarr_id}: {seen} versions listed, {len(files)} current entries")
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
    progress: Progress | None = None,
) -> BuildResult:
    """Build and store the manifest of the Zarr's current state."""
    files = current_files(client, bucket, prefix, zarr_id, progress)
    checksum = zarr_checksum((file.path, file.size, file.etag) for file in files)
    location, written = store.write(manifest_path(zarr_id, checksum), render_manifest(files, checksum))
    return BuildResult(zarr_id, checksum, len(files), location, written)


def terminal_progress() -> Progress | None:
    """A progress line that rewrites itself, only when stderr is a terminal."""
    if not sys.stderr.isatty():
        return None

    def show(message: str) -> None:
        sys.stderr.write(f"\r\x1b[K{message}")
        sys.stderr.flush()

    return show
