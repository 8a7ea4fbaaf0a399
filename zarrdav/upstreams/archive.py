"""A client for the subset of the DANDI Archive API that zarrdav needs.

It follows pagination (``next`` is absolute) until it ends, and refuses one
that does not: a ``next`` already seen, on another host than the archive's,
or beyond the pages ``count`` allows. It retries connection errors, 429 and
5xx answers a bounded number of times with backoff (not timeouts: a client
is already waiting), all within one deadline per call, reads at most
``max_page_bytes`` of an answer, and sends the API token only to the
archive's own host: never to S3 or to any other host a ``next`` link or
redirect might name. Identifiers going into URLs are encoded as path
segments, so a ``?`` or ``#`` in one stays in it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
import orjson

from zarrdav import __version__
from zarrdav.errors import Forbidden, NotFound, UpstreamError
from zarrdav.upstreams.http import deadline, http_errors, make_http_client, public_url, read_body

KIND = "archive"
# Without a ``count`` to go by, a listing stops here: 10,000 pages of 1000
# is ten times the largest Dandiset.
_MAX_PAGES = 10_000
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
    # From the version's metadata, which only its info answer carries.
    citation: str | None = None
    doi: str | None = None


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
    def blob_md5(self) -> str | None:
        """The ``dandi:md5`` digest, when the archive has one (checked where it is used)."""
        digest = self.metadata.get("digest")
        value = digest.get("dandi:md5") if isinstance(digest, dict) else None
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
        max_page_bytes: int = 64 * 2**20,
    ) -> None:
        self.api_url = api_url.rstrip("/")
        # What answers and links show: the URL without any user info in it.
        self.public_url = public_url(self.api_url)
        self._host = urlsplit(self.api_url).netloc
        self._token = token
        self._page_size = page_size
        self._timeout = timeout
        self._retries = retries
        self._backoff = backoff
        self._max_page_bytes = max_page_bytes
        self._client = make_http_client(
            timeout,
            headers={"User-Agent": f"zarrdav/{__version__} (https://pypi.org/project/zarrdav/)"},
            max_connections=max_connections,
        )

    def dandisets(self) -> Iterator[Dandiset]:
        for item in self._paginate("dandisets/", {"ordering": "identifier"}):
            yield _dandiset(item)

    def dandiset(self, dandiset_id: str) -> Dandiset:
        return _dandiset(self._get_json(_path("dandisets", dandiset_id)))

    def published_versions(self, dandiset_id: str) -> list[VersionSummary]:
        versions = [_version(item) for item in self._paginate(_path("dandisets", dandiset_id, "versions"), {})]
        return [v for v in versions if v.version != "draft"]

    def version_info(self, dandiset_id: str, version: str) -> VersionSummary:
        return _version(self._get_json(_path("dandisets", dandiset_id, "versions", version, "info")))

    def version_metadata(self, dandiset_id: str, version: str) -> dict[str, Any]:
        document = self._get_json(_path("dandisets", dandiset_id, "versions", version))
        if not isinstance(document, dict):
            raise UpstreamError(f"{KIND}: version metadata of {dandiset_id}/{version} is not an object")
        return document

    def at_path(self, dandiset_id: str, version: str, path: str) -> list[AtPathItem]:
        """The item at ``path`` and, for a folder, its children (folder first)."""
        params = {"dandiset_id": dandiset_id, "version_id": version, "metadata": "true", "children": "true"}
        if path:  # the archive refuses a blank path; no path means the root
            params["path"] = path
        return [_at_path_item(item) for item in self._paginate("webdav/assets/atpath/", params)]

    def zarr(self, zarr_id: str) -> ZarrRecord:
        item = self._get_json(f"zarr/{quote(zarr_id, safe='')}/")
        try:
            checksum = item.get("checksum")
            return ZarrRecord(
                zarr_id=str(item["zarr_id"]), dandiset=str(item["dandiset"]), name=str(item["name"]),
                checksum=checksum if isinstance(checksum, str) else None,
            )
        except (KeyError, TypeError, AttributeError):
            raise UpstreamError(f"{KIND}: the archive answered an invalid record for Zarr {zarr_id}") from None

    def _paginate(self, path: str, params: dict[str, str]) -> Iterator[Any]:
        """Every result of a listing, page after page, until ``next`` is null.

        A ``next`` already followed, on another host, or past what ``count``
        allows would go on for ever (each page looks fine): the listing ends
        with an error instead.
        """
        next_url: str | None = f"{self.api_url}/{path}"
        query: dict[str, str] | None = {**params, "page_size": str(self._page_size)}
        seen: set[str] = set()
        allowed = _MAX_PAGES
        while next_url:
            if next_url in seen or urlsplit(next_url).netloc != self._host or len(seen) >= allowed:
                raise UpstreamError(f"{KIND}: {path}: the archive's pagination does not end")
            seen.add(next_url)
            page = self._get_json(next_url, query, where=path)
            query = None  # ``next`` carries the query
            if not isinstance(page, dict) or not isinstance(page.get("results"), list):
                raise UpstreamError(f"{KIND}: {path} did not answer a page of results")
            results = page["results"]
            count = _int(page.get("count"))
            if len(seen) == 1 and count is not None:
                allowed = max(1, math.ceil(count / len(results))) if results else 1
            yield from results
            next_url = page.get("next")
            if next_url is not None and not isinstance(next_url, str):
                raise UpstreamError(f"{KIND}: {path}: its next link is not a URL")

    def _get_json(self, url: str, params: dict[str, str] | None = None, *, where: str | None = None) -> Any:
        """One call: every attempt and the whole answer within ``timeout``."""
        if not url.startswith(("http://", "https://")):
            url = f"{self.api_url}/{url}"
        where = where or url.removeprefix(f"{self.api_url}/")
        headers = {}
        if self._token and urlsplit(url).netloc == self._host:
            headers["Authorization"] = f"token {self._token}"
        end = time.monotonic() + self._timeout
        with deadline(self._timeout), http_errors(KIND, where):
            for attempt in range(self._retries + 1):
                last = attempt == self._retries
                try:
                    with self._client.stream("GET", url, params=params, headers=headers) as response:
                        if response.status_code not in _RETRY_STATUSES or last:
                            return _json(response, read_body(response, self._max_page_bytes, KIND, where), where)
                except httpx.TimeoutException:
                    raise  # not retried: the client waiting on us would wait the timeout again and again
                except httpx.HTTPError:
                    if last:
                        raise
                time.sleep(min(self._backoff * 2**attempt, max(0.0, end - time.monotonic())))
        raise AssertionError("unreachable")


def _path(*segments: str) -> str:
    """An API path from identifiers, each encoded as one path segment."""
    return "".join(f"{quote(segment, safe='')}/" for segment in segments)


def _json(response: httpx.Response, body: bytes, where: str) -> Any:
    status = response.status_code
    if status == 404:
        raise NotFound(_detail(body) or f"{KIND}: {where} not found")
    if status in (401, 403):
        raise Forbidden(_detail(body) or f"{KIND}: {where}: the archive refused access")
    if status != 200:
        raise UpstreamError(f"{KIND}: {where}: answered {status}")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise UpstreamError(f"{KIND}: {where}: invalid JSON") from error


def _detail(body: bytes) -> str | None:
    """The archive's own message, when it is one line of printable text."""
    try:
        detail = orjson.loads(body).get("detail")
    except (orjson.JSONDecodeError, AttributeError):
        return None
    return detail if isinstance(detail, str) and detail.isprintable() else None


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
        metadata = item.get("metadata")
        if not isinstance(metadata, dict):
            metadata = {}
        return VersionSummary(
            version=str(item["version"]),
            name=str(item.get("name") or ""),
            size=_int(item.get("size")),
            asset_count=_int(item.get("asset_count")),
            status=str(item.get("status") or ""),
            created=_time(item.get("created")),
            modified=_time(item.get("modified")),
            citation=_text(metadata.get("citation")),
            doi=_text(metadata.get("doi")),
        )
    except (KeyError, TypeError, AttributeError):
        raise UpstreamError("the archive answered an invalid version record") from None


def _text(value: Any) -> str | None:
    """A non-blank string from the archive, else None."""
    return (value.strip() or None) if isinstance(value, str) else None


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
