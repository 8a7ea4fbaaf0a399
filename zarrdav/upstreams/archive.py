"""A client for the subset of the DANDI Archive API that zarrdav needs.

It follows pagination (``next`` is absolute), retries connection errors, 429
and 5xx answers a bounded number of times with backoff (not timeouts: a
client is already waiting), and sends the API
token only to the archive's own host: never to S3 or to any other host a
``next`` link or redirect might name.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import httpx

from zarrdav import __version__
from zarrdav.errors import Forbidden, NotFound, UpstreamError, UpstreamTimeout

_RETRY_STATUSES = {429, 500, 502, 503, 504}


@dataclass(frozen=True, slots=True)
class VersionSummary:
    version: str
    name: str
    size: int | None
    asset_count: int | None
    status: str
    created: datetime | None
    modified: datetime | None


@dataclass(frozen=True, slots=True)
class Dandiset:
    identifier: str
    created: datetime | None
    modified: datetime | None
    embargo_status: str
    draft: VersionSummary | None
    most_recent_published: VersionSummary | None


@dataclass(frozen=True, slots=True)
class Folder:
    path: str
    total_assets: int | None
    total_size: int | None


@dataclass(frozen=True, slots=True)
class Asset:
    asset_id: str
    path: str
    size: int | None
    created: datetime | None
    modified: datetime | None
    blob: str | None
    zarr: str | None
    metadata: dict[str, Any]

    @property
    def zarr_checksum(self) -> str | None:
        digest = self.metadata.get("digest")
        value = digest.get("dandi:dandi-zarr-checksum") if isinstance(digest, dict) else None
        return value if isinstance(value, str) else None

    @property
    def blob_etag(self) -> str | None:
        digest = self.metadata.get("digest")
        value = digest.get("dandi:dandi-etag") if isinstance(digest, dict) else None
        return value if isinstance(value, str) else None

    @property
    def s3_url(self) -> str | None:
        """The asset's S3 URL from ``contentUrl`` (not the API download URL)."""
        urls = self.metadata.get("contentUrl")
        if not isinstance(urls, list):
            return None
        for url in urls:
            if isinstance(url, str) and "/api/" not in urlsplit(url).path and url.startswith("http"):
                return url
        return None


AtPathItem = Folder | Asset


@dataclass(frozen=True, slots=True)
class ZarrRecord:
    """What the archive says of a Zarr: its Dandiset, its name (the draft asset's path)."""

    zarr_id: str
    dandiset: str
    name: str
    checksum: str | None


class ArchiveClient:
    def __init__(
        self,
        api_url: str,
        *,
        token: str | None = None,
        page_size: int = 1000,
        timeout: float = 30.0,
        retries: int = 3,
        backoff: float = 0.25,
        max_connections: int = 32,
    ) -> None:
        self.api_url = api_url.rstrip("/")
        self._host = urlsplit(self.api_url).netloc
        self._token = token
        self._page_size = page_size
        self._retries = retries
        self._backoff = backoff
        self._client = httpx.Client(
            timeout=timeout,
            headers={"User-Agent": f"zarrdav/{__version__} (https://pypi.org/project/zarrdav/)"},
            limits=httpx.Limits(max_connections=max_connections),
        )

    def dandisets(self) -> Iterator[Dandiset]:
        for item in self._paginate(f"{self.api_url}/dandisets/", {"ordering": "identifier"}):
            yield _dandiset(item)

    def dandiset(self, dandiset_id: str) -> Dandiset:
        return _dandiset(self._get_json(f"{self.api_url}/dandisets/{dandiset_id}/"))

    def published_versions(self, dandiset_id: str) -> list[VersionSummary]:
        url = f"{self.api_url}/dandisets/{dandiset_id}/versions/"
        versions = [_version(item) for item in self._paginate(url, {})]
        return [v for v in versions if v.version != "draft"]

    def version_info(self, dandiset_id: str, version: str) -> VersionSummary:
        return _version(self._get_json(f"{self.api_url}/dandisets/{dandiset_id}/versions/{version}/info/"))

    def version_metadata(self, dandiset_id: str, version: str) -> dict[str, Any]:
        document = self._get_json(f"{self.api_url}/dandisets/{dandiset_id}/versions/{version}/")
        if not isinstance(document, dict):
            raise UpstreamError(f"version metadata of {dandiset_id}/{version} is not an object")
        return document

    def at_path(self, dandiset_id: str, version: str, path: str) -> list[AtPathItem]:
        """The item at ``path`` and, for a folder, its children (folder first)."""
        params = {"dandiset_id": dandiset_id, "version_id": version, "metadata": "true", "children": "true"}
        if path:  # the archive refuses a blank path; no path means the root
            params["path"] = path
        return [_at_path_item(item) for item in self._paginate(f"{self.api_url}/webdav/assets/atpath/", params)]

    def zarr(self, zarr_id: str) -> ZarrRecord:
        item = self._get_json(f"{self.api_url}/zarr/{zarr_id}/")
        try:
            checksum = item.get("checksum")
            return ZarrRecord(
                zarr_id=str(item["zarr_id"]), dandiset=str(item["dandiset"]), name=str(item["name"]),
                checksum=checksum if isinstance(checksum, str) else None,
            )
        except (KeyError, TypeError, AttributeError):
            raise UpstreamError(f"the archive answered an invalid record for Zarr {zarr_id}") from None

    def _paginate(self, url: str, params: dict[str, str]) -> Iterator[Any]:
        next_url: str | None = url
        query: dict[str, str] | None = {**params, "page_size": str(self._page_size)}
        while next_url:
            page = self._get_json(next_url, query)
            query = None  # ``next`` carries the query
            if not isinstance(page, dict) or not isinstance(page.get("results"), list):
                raise UpstreamError(f"{next_url} did not answer a page of results")
            yield from page["results"]
            next_url = page.get("next")

    def _get_json(self, url: str, params: dict[str, str] | None = None) -> Any:
        headers = {}
        if self._token and urlsplit(url).netloc == self._host:
            headers["Authorization"] = f"token {self._token}"
        for attempt in range(self._retries + 1):
            last = attempt == self._retries
            try:
                response = self._client.get(url, params=params, headers=headers)
            except httpx.TimeoutException:
                # Not retried: the client waiting on us would wait the timeout again and again.
                raise UpstreamTimeout(f"the archive did not answer in time ({url})") from None
            except httpx.HTTPError as error:
                if last:
                    raise UpstreamError(f"the archive is unreachable ({error.__class__.__name__})") from None
            else:
                if response.status_code not in _RETRY_STATUSES or last:
                    return _json(response)
            time.sleep(self._backoff * 2**attempt)
        raise AssertionError("unreachable")


def _json(response: httpx.Response) -> Any:
    status = response.status_code
    if status == 404:
        raise NotFound(_detail(response) or f"{response.url} not found")
    if status in (401, 403):
        raise Forbidden(_detail(response) or "the archive refused access")
    if status != 200:
        raise UpstreamError(f"the archive answered {status} for {response.url.path}")
    try:
        return response.json()
    except ValueError:
        raise UpstreamError(f"the archive answered invalid JSON for {response.url.path}") from None


def _detail(response: httpx.Response) -> str | None:
    try:
        detail = response.json().get("detail")
    except (ValueError, AttributeError):
        return None
    return detail if isinstance(detail, str) else None


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _version(item: Any) -> VersionSummary:
    try:
        return VersionSummary(
            version=str(item["version"]),
            name=str(item.get("name") or ""),
            size=_int(item.get("size")),
            asset_count=_int(item.get("asset_count")),
            status=str(item.get("status") or ""),
            created=_time(item.get("created")),
            modified=_time(item.get("modified")),
        )
    except (KeyError, TypeError, AttributeError):
        raise UpstreamError("the archive answered an invalid version record") from None


def _dandiset(item: Any) -> Dandiset:
    try:
        draft = item.get("draft_version")
        published = item.get("most_recent_published_version")
        return Dandiset(
            identifier=str(item["identifier"]),
            created=_time(item.get("created")),
            modified=_time(item.get("modified")),
            embargo_status=str(item.get("embargo_status") or "OPEN"),
            draft=_version(draft) if draft else None,
            most_recent_published=_version(published) if published else None,
        )
    except (KeyError, TypeError, AttributeError):
        raise UpstreamError("the archive answered an invalid Dandiset record") from None


def _at_path_item(item: Any) -> AtPathItem:
    try:
        resource = item["resource"]
        if item["type"] == "folder":
            return Folder(
                path=str(resource["path"]),
                total_assets=_int(resource.get("total_assets")),
                total_size=_int(resource.get("total_size")),
            )
        if item["type"] != "asset":
            raise KeyError("type")
        blob, zarr = resource.get("blob"), resource.get("zarr")
        if (blob is None) == (zarr is None):
            raise UpstreamError(f"asset {resource.get('path')!r} is neither exactly a blob nor a Zarr")
        metadata = resource.get("metadata") or {}
        if not isinstance(metadata, dict):
            raise TypeError("metadata")
        return Asset(
            asset_id=str(resource["asset_id"]),
            path=str(resource["path"]),
            size=_int(resource.get("size")),
            created=_time(resource.get("created")),
            modified=_time(resource.get("modified")),
            blob=blob,
            zarr=zarr,
            metadata=metadata,
        )
    except (KeyError, TypeError, AttributeError):
        raise UpstreamError("the archive answered an invalid atpath item") from None
