"""Live, unpinned views of a Zarr's S3 prefix, for drafts without a manifest yet.

What is shown here is whatever S3 holds now, without version ids: it is only
used where the missing-manifest policy allows it, and always marked as such.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote, urlsplit

from botocore.exceptions import BotoCoreError, ClientError, ConnectTimeoutError, ReadTimeoutError

from zarrdav.errors import NotFound, UpstreamError, UpstreamTimeout
from zarrdav.upstreams.s3 import make_s3_client


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
    """Lists and looks up entries under a Zarr's S3 prefix, anonymously."""

    def __init__(self) -> None:
        self._clients: dict[str | None, Any] = {}
        self._lock = threading.Lock()

    def lookup(self, zarr_url: str, entry: str) -> LiveEntry:
        """The file or directory at ``entry`` ("" for the root) under ``zarr_url``."""
        location = parse_s3_url(zarr_url)
        prefix = location.key.rstrip("/") + "/"
        if not entry:
            return LiveDirectory("")
        key = prefix + entry.rstrip("/")
        page = self._list(location, key, delimiter=None, max_keys=2)
        for item in page.get("Contents", []):
            if item["Key"] == key and not entry.endswith("/"):
                return self._file(location, prefix, item)
            if item["Key"].startswith(key + "/"):
                return LiveDirectory(entry.rstrip("/"))
        more = self._list(location, key + "/", delimiter=None, max_keys=1)
        if more.get("Contents"):
            return LiveDirectory(entry.rstrip("/"))
        raise NotFound(f"nothing at {entry!r} in the live Zarr at {zarr_url}")

    def children(self, zarr_url: str, directory: str) -> list[LiveEntry]:
        location = parse_s3_url(zarr_url)
        prefix = location.key.rstrip("/") + "/"
        folder = prefix + (f"{directory}/" if directory else "")
        entries: list[LiveEntry] = []
        token: str | None = None
        while True:
            page = self._list(location, folder, delimiter="/", token=token)
            entries += [LiveDirectory(p["Prefix"][len(prefix) :].rstrip("/")) for p in page.get("CommonPrefixes", [])]
            entries += [self._file(location, prefix, item) for item in page.get("Contents", [])]
            token = page.get("NextContinuationToken")
            if not token:
                break
        return sorted(entries, key=lambda entry: entry.path)

    def _file(self, location: S3Location, prefix: str, item: dict[str, Any]) -> LiveFile:
        path = item["Key"][len(prefix) :]
        return LiveFile(
            path=path,
            size=item["Size"],
            modified=item["LastModified"],
            etag=item["ETag"].strip('"'),
            url=f"{location.base_url}/{quote(item['Key'])}",
        )

    def _list(
        self, location: S3Location, prefix: str, *, delimiter: str | None,
        max_keys: int = 1000, token: str | None = None,
    ) -> dict[str, Any]:
        arguments: dict[str, Any] = {"Bucket": location.bucket, "Prefix": prefix, "MaxKeys": max_keys}
        if delimiter:
            arguments["Delimiter"] = delimiter
        if token:
            arguments["ContinuationToken"] = token
        where = f"s3://{location.bucket}/{prefix}"
        try:
            return dict(self._client(location.endpoint).list_objects_v2(**arguments))
        except (ConnectTimeoutError, ReadTimeoutError):
            raise UpstreamTimeout(f"{where}: S3 timed out") from None
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            raise UpstreamError(f"{where}: S3 error {code}") from None
        except BotoCoreError as error:
            raise UpstreamError(f"{where}: {error}") from None

    def _client(self, endpoint: str | None) -> Any:
        with self._lock:
            if endpoint not in self._clients:
                self._clients[endpoint] = make_s3_client(endpoint, anonymous=True)
            return self._clients[endpoint]
