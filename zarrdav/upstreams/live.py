"""Live, unpinned views of a Zarr's S3 prefix, for drafts without a manifest yet.

What is shown here is whatever S3 holds now, without version ids: it is only
used where the missing-manifest policy allows it, and always marked as such.
Listings go to the bucket and endpoint of the configured Zarr base URL
only, never to a host an asset's metadata names.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote, urlsplit

from zarrdav.errors import NotFound, UpstreamError, UpstreamTimeout
from zarrdav.upstreams.s3 import S3_ATTEMPTS, make_s3_client, s3_errors
from zarrdav.upstreams.values import header_value


@dataclass(frozen=True, slots=True)
class S3Location:
    """Where a URL points on S3: ``endpoint`` is None for AWS itself."""

    endpoint: str | None
    bucket: str
    key: str
    base_url: str  # the URL up to and including the bucket


def parse_s3_url(url: str) -> S3Location:
    """Virtual-hosted AWS URLs (``<bucket>.s3[.<region>].amazonaws.com``) or path-style ones."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    path = parts.path.lstrip("/")
    if host.endswith(".amazonaws.com") and ".s3" in host:
        bucket = host.split(".s3", 1)[0]
        return S3Location(None, bucket, path, f"{parts.scheme}://{parts.netloc}")
    bucket, _, key = path.partition("/")
    if not bucket:
        raise UpstreamError(f"cannot tell the bucket of {url}")
    endpoint = f"{parts.scheme}://{parts.netloc}"
    return S3Location(endpoint, bucket, key, f"{endpoint}/{bucket}")


@dataclass(frozen=True, slots=True)
class LiveFile:
    path: str
    size: int
    modified: datetime
    etag: str
    url: str


@dataclass(frozen=True, slots=True)
class LiveDirectory:
    path: str


LiveEntry = LiveFile | LiveDirectory


class LiveZarrs:
    """Lists and looks up entries under a Zarr's S3 prefix, anonymously.

    A Zarr's prefix is ``<zarr base>/<zarr_id>/``, on the base's own bucket.
    """

    def __init__(self, zarr_base_url: str, *, timeout: float = 30.0, max_entries: int = 1_000_000) -> None:
        self._base = parse_s3_url(zarr_base_url.rstrip("/") + "/")
        self._client = make_s3_client(self._base.endpoint, anonymous=True, timeout=timeout / S3_ATTEMPTS)
        self._timeout = timeout
        self._max_entries = max_entries

    def lookup(self, zarr_id: str, entry: str) -> LiveEntry:
        """The file or directory at ``entry`` ("" for the root) of the Zarr."""
        prefix = self._prefix(zarr_id)
        if not entry:
            return LiveDirectory("")
        key = prefix + entry.rstrip("/")
        page = self._list(key, delimiter=None, max_keys=2)
        for item in page.get("Contents", []):
            if item["Key"] == key and not entry.endswith("/"):
                return self._file(prefix, item)
            if item["Key"].startswith(key + "/"):
                return LiveDirectory(entry.rstrip("/"))
        more = self._list(key + "/", delimiter=None, max_keys=1)
        if more.get("Contents"):
            return LiveDirectory(entry.rstrip("/"))
        raise NotFound(f"nothing at {entry!r} in the live Zarr {zarr_id}")

    def children(self, zarr_id: str, directory: str) -> list[LiveEntry]:
        prefix = self._prefix(zarr_id)
        folder = prefix + (f"{directory}/" if directory else "")
        entries: list[LiveEntry] = []
        token: str | None = None
        end = time.monotonic() + self._timeout
        while True:
            page = self._list(folder, delimiter="/", token=token)
            entries += [LiveDirectory(p["Prefix"][len(prefix) :].rstrip("/")) for p in page.get("CommonPrefixes", [])]
            entries += [self._file(prefix, item) for item in page.get("Contents", [])]
            token = page.get("NextContinuationToken")
            if not token:
                break
            if len(entries) > self._max_entries:
                raise UpstreamError(f"S3: s3://{self._base.bucket}/{folder}: more than {self._max_entries} entries")
            if time.monotonic() > end:
                raise UpstreamTimeout(f"S3: s3://{self._base.bucket}/{folder}: no complete listing in time")
        return sorted(entries, key=lambda entry: entry.path)

    def _prefix(self, zarr_id: str) -> str:
        if not zarr_id or "/" in zarr_id or zarr_id in (".", ".."):
            raise UpstreamError(f"the archive names an invalid Zarr id {zarr_id!r}")
        return f"{self._base.key}{zarr_id}/"

    def _file(self, prefix: str, item: dict[str, Any]) -> LiveFile:
        path = item["Key"][len(prefix) :]
        return LiveFile(
            path=path,
            size=item["Size"],
            modified=item["LastModified"],
            etag=header_value(item["ETag"].strip('"'), "ETag", f"S3: {item['Key']!r}"),
            url=f"{self._base.base_url}/{quote(item['Key'])}",
        )

    def _list(
        self, prefix: str, *, delimiter: str | None, max_keys: int = 1000, token: str | None = None,
    ) -> dict[str, Any]:
        arguments: dict[str, Any] = {"Bucket": self._base.bucket, "Prefix": prefix, "MaxKeys": max_keys}
        if delimiter:
            arguments["Delimiter"] = delimiter
        if token:
            arguments["ContinuationToken"] = token
        with s3_errors(f"s3://{self._base.bucket}/{prefix}"):
            return dict(self._client.list_objects_v2(**arguments))
