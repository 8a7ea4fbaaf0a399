"""A client for the subset of the DANDI Archive API that zarrdav needs.

It follows pagination (``next`` is absolute) until it ends, and refuses one
that does not: a ``next`` already seen, on another host than the archive's,
or beyond the pages ``count`` allows. It retries connection errors, 429 and
5xx answers a bounded number of times with backoff (not timeouts: a client
is already waiting), all within one deadline per call, reads at most
``max_page_bytes`` of an answer, and sends the current visitor's API token
(``zarrdav.edge.identity``: each call on behalf of the visitor whose request
causes it) only to the archive's own host: never to S3 or to any other host
a ``next`` link or redirect might name. A refusal becomes ``Unauthorized``
(401) when no token was sent, ``Forbidden`` (403, with the archive's reason)
when one was. Identifiers going into URLs are encoded as path
segments, so a ``?`` or ``#`` in one stays in it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

import httpx
import orjson

from zarrdav import __version__
from zarrdav.edge import identity
from zarrdav.errors import Forbidden, NotFound, Unauthorized, UpstreamError
from zarrdav.upstreams.calls import observed
from zarrdav.upstreams.http import deadline, http_errors, make_http_client, public_url, read_body

KIND = "archive"
# Without a ``count`` to go by, a listing stops here: 10,000 pages of 1000
# is ten times the largest Dandiset.
_MAX_PAGES = 10_000
_RETRY_STATUSES = {429, 500, 502, 503, 504}
# Pages of one listing fetched at once, once its first page told the count:
# a 10,000-asset folder is 10 pages of 1000, so it comes in two round trips
# after the first, without one listing taking every connection to the archive.
PAGES_AT_ONCE = 8


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
        self._page_size = page_size
        self._timeout = timeout
        self._retries = retries
        self._backoff = backoff
        self._max_page_bytes = max_page_bytes
        self._pool = ThreadPoolExecutor(PAGES_AT_ONCE, thread_name_prefix="zarrdav-archive-pages")
        self._client = make_http_client(
            timeout,
            headers={"User-Agent": f"zarrdav/{__version__} (https://pypi.org/project/zarrdav/)"},
            max_connections=max_connections,
        )

    def dandisets(self, *, embargoed: bool = False) -> Iterator[Dandiset]:
        """Every Dandiset; ``embargoed``: with the embargoed ones the visitor may see."""
        params = {"ordering": "identifier", **({"embargoed": "true"} if embargoed else {})}
        for item in self._paginate("dandisets/", params):
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

    def ping(self) -> None:
        """One small call that the archive answers when it is up (readiness)."""
        self._get_json("dandisets/", {"page_size": "1"})

    def item_at(self, dandiset_id: str, version: str, path: str) -> AtPathItem | None:
        """The asset or folder at ``path`` (one call, without its children); None if nothing is there."""
        params = {"dandiset_id": dandiset_id, "version_id": version, "path": path, "metadata": "true"}
        try:
            page = self._get_json("webdav/assets/atpath/", params, where="webdav/assets/atpath/")
        except NotFound:
            return None
        results = page.get("results") if isinstance(page, dict) else None
        if not isinstance(results, list) or len(results) != 1:
            raise UpstreamError(f"{KIND}: webdav/assets/atpath/ did not answer one item for a path")
        item = _at_path_item(results[0])
        if item.path != path:
            raise UpstreamError(f"{KIND}: webdav/assets/atpath/ answered another path than the one asked")
        return item

    def children(self, dandiset_id: str, version: str, path: str) -> list[AtPathItem]:
        """The children of the folder at ``path`` (``""``: the version root), sorted by path."""
        params = {"dandiset_id": dandiset_id, "version_id": version, "metadata": "true", "children": "true"}
        if path:  # the archive refuses a blank path; no path means the root
            params["path"] = path
        items = [_at_path_item(item) for item in self._pages("webdav/assets/atpath/", params)]
        if path:  # a folder comes first, then its children
            if items and isinstance(items[0], Asset) and items[0].path == path:
                raise NotFound(f"{KIND}: {path!r} is a file, not a folder")
            if not items or items[0].path != path:
                raise UpstreamError(f"{KIND}: webdav/assets/atpath/ did not answer the folder {path!r} first")
            items = items[1:]
        return items

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
        """Every result of a listing, page after page, until ``next`` is null."""
        results, count, next_url = self._page(f"{self.api_url}/{path}", self._query(params), path)
        yield from results
        yield from self._follow(path, next_url, _allowed(count, results))

    def _follow(self, path: str, next_url: str | None, allowed: int) -> Iterator[Any]:
        """The results of the pages after the first, following ``next``.

        A ``next`` already followed, on another host, or past what ``count``
        allows would go on for ever (each page looks fine): the listing ends
        with an error instead.
        """
        seen: set[str] = set()
        while next_url:
            if next_url in seen or urlsplit(next_url).netloc != self._host or len(seen) + 1 >= allowed:
                raise UpstreamError(f"{KIND}: {path}: the archive's pagination does not end")
            seen.add(next_url)
            results, _, next_url = self._page(next_url, None, path)  # ``next`` carries the query
            yield from results

    def _pages(self, path: str, params: dict[str, str]) -> list[Any]:
        """Every result of a listing whose pages are numbered: once the first
        has told the count, the others are fetched ``PAGES_AT_ONCE`` at a time.

        Without a count, or with a ``next`` that is not page 2 of the same
        listing on the archive's host, the pages are followed one by one.
        """
        end = time.monotonic() + self._timeout
        visitor = identity.current()  # the pages below are fetched on other threads
        first = f"{self.api_url}/{path}"
        results, count, next_url = self._page(first, self._query(params), path)
        if next_url is None:
            return results
        allowed = _allowed(count, results)
        numbered = urlsplit(next_url)
        if (count is None or allowed > _MAX_PAGES or numbered.netloc != self._host
                or numbered.path != urlsplit(first).path
                or ("page", "2") not in parse_qsl(numbered.query)):
            return [*results, *self._follow(path, next_url, allowed)]

        def page(number: int) -> list[Any]:
            with deadline(max(0.0, end - time.monotonic())), identity.visiting(visitor):
                found, _, following = self._page(_page_url(next_url, number), None, path)
            if number == allowed and following is not None:
                raise UpstreamError(f"{KIND}: {path}: the archive's pagination does not end")
            if number < allowed and following is None:
                raise UpstreamError(f"{KIND}: {path}: the listing changed while it was read")
            return found

        everything = list(results)
        for found in self._pool.map(page, range(2, allowed + 1)):
            everything += found
        if len(everything) != count:
            raise UpstreamError(f"{KIND}: {path}: the listing changed while it was read")
        return everything

    def _query(self, params: dict[str, str]) -> dict[str, str]:
        return {**params, "page_size": str(self._page_size)}

    def _page(self, url: str, query: dict[str, str] | None, path: str) -> tuple[list[Any], int | None, str | None]:
        """One page of a listing: its results, its count and its next link."""
        page = self._get_json(url, query, where=path)
        if not isinstance(page, dict) or not isinstance(page.get("results"), list):
            raise UpstreamError(f"{KIND}: {path} did not answer a page of results")
        next_url = page.get("next")
        if next_url is not None and not isinstance(next_url, str):
            raise UpstreamError(f"{KIND}: {path}: its next link is not a URL")
        return page["results"], _int(page.get("count")), next_url

    def _get_json(self, url: str, params: dict[str, str] | None = None, *, where: str | None = None) -> Any:
        """One call: every attempt and the whole answer within ``timeout``."""
        if not url.startswith(("http://", "https://")):
            url = f"{self.api_url}/{url}"
        where = where or url.removeprefix(f"{self.api_url}/")
        headers = {}
        token = identity.current().token
        if token is not None and urlsplit(url).netloc == self._host:
            headers["Authorization"] = f"token {token}"
        end = time.monotonic() + self._timeout
        with observed(KIND, where), deadline(self._timeout), http_errors(KIND, where):
            for attempt in range(self._retries + 1):
                last = attempt == self._retries
                try:
                    with self._client.stream("GET", url, params=params, headers=headers) as response:
                        if response.status_code not in _RETRY_STATUSES or last:
                            body = read_body(response, self._max_page_bytes, KIND, where)
                            return _json(response, body, where, "Authorization" in headers)
                except httpx.TimeoutException:
                    raise  # not retried: the client waiting on us would wait the timeout again and again
                except httpx.HTTPError:
                    if last:
                        raise
                time.sleep(min(self._backoff * 2**attempt, max(0.0, end - time.monotonic())))
        raise AssertionError("unreachable")


def _allowed(count: int | None, first: list[Any]) -> int:
    """How many pages a listing may have: as many as its count needs, else ``_MAX_PAGES``."""
    if count is None:
        return _MAX_PAGES
    return max(1, math.ceil(count / len(first))) if first else 1


def _page_url(next_url: str, number: int) -> str:
    """Page ``number`` of the listing whose page 2 is ``next_url``: the same query, another page."""
    parts = urlsplit(next_url)
    query = [(name, value) for name, value in parse_qsl(parts.query, keep_blank_values=True) if name != "page"]
    return urlunsplit(parts._replace(query=urlencode([*query, ("page", str(number))])))


def _path(*segments: str) -> str:
    """An API path from identifiers, each encoded as one path segment."""
    return "".join(f"{quote(segment, safe='')}/" for segment in segments)


def _json(response: httpx.Response, body: bytes, where: str, with_token: bool) -> Any:
    status = response.status_code
    if status == 404:
        raise NotFound(_detail(body) or f"{KIND}: {where} not found")
    if status in (401, 403) and not with_token:
        raise Unauthorized(f"{KIND}: {where}: embargoed; sign in with a DANDI API token (as the password)")
    if status in (401, 403):
        raise Forbidden(f"{KIND}: {where}: the archive refused the token: "
                        f"{_detail(body) or 'no reason given'}")
    if status != 200:
        raise UpstreamError(f"{KIND}: {where}: answered {status}")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise UpstreamError(f"{KIND}: {where}: invalid JSON") from error


def _detail(body: bytes) -> str | None:
    """The archive's own message, when it is one line of printable text (at most 200 characters)."""
    try:
        detail = orjson.loads(body).get("detail")
    except (orjson.JSONDecodeError, AttributeError):
        return None
    return detail[:200] if isinstance(detail, str) and detail.isprintable() else None


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
