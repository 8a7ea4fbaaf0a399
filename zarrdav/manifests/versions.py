"""Every object version and delete marker under one Zarr's S3 prefix.

Building a manifest keeps the latest of them; collecting garbage weighs all
of them against the manifests: both read the bucket through this one listing.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any, NamedTuple

from zarrdav.upstreams.s3 import s3_errors


# A named tuple: a Zarr's history can be millions of versions.
class ObjectVersion(NamedTuple):
    """One version under ``<prefix><zarr_id>/``; ``path`` is relative to it."""

    path: str
    version_id: str
    is_latest: bool
    delete_marker: bool
    last_modified: datetime
    size: int  # 0 for a delete marker
    etag: str  # without quotes; "" for a delete marker


def zarr_versions(client: Any, bucket: str, prefix: str, zarr_id: str) -> Iterator[list[ObjectVersion]]:
    """The Zarr's versions and delete markers, one list per ListObjectVersions page.

    Folder placeholder keys (empty or ending in ``/``) are no Zarr entries
    and are left out.
    """
    zarr_key = f"{prefix}{zarr_id}/"
    with s3_errors(f"s3://{bucket}/{zarr_key}"):
        yield from _pages(client, bucket, zarr_key)


def _pages(client: Any, bucket: str, zarr_key: str) -> Iterator[list[ObjectVersion]]:
    for page in client.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=zarr_key):
        versions = [
            ObjectVersion(
                item["Key"][len(zarr_key) :], item["VersionId"], item["IsLatest"], False,
                item["LastModified"], item["Size"], item["ETag"].strip('"'),
            )
            for item in page.get("Versions", [])
        ]
        versions += [
            ObjectVersion(
                item["Key"][len(zarr_key) :], item["VersionId"], item["IsLatest"], True,
                item["LastModified"], 0, "",
            )
            for item in page.get("DeleteMarkers", [])
        ]
        yield [version for version in versions if version.path and not version.path.endswith("/")]
