"""A test double of the DANDI Archive API: a WSGI app over a small data file.

zarrdav's tests run it in place of ``https://api.dandiarchive.org/api``, and
the offline demo serves it. It answers the subset of the API that zarrdav
uses (docs/archive-api.md) with the archive's shapes and quirks: absolute
``next`` links, folder-first ``atpath`` listings that match a path exactly
(nothing under an asset's path; a trailing slash allowed for a folder only),
401/403 on embargoed Dandisets, Django REST framework's error bodies. A
``Meter`` counts what it is asked and holds each answer back a latency.

Data file (YAML; JSON when the name ends in ``.json``)::

    s3_base_url: "http://127.0.0.1:9000/dandiarchive"  # needed if an asset omits contentUrl
    dandisets:
      - identifier: "000001"        # quoted: YAML reads 000001 as a number
        created: "2020-03-15T22:56:55.655000Z"
        modified: "2020-11-06T17:22:06.443914Z"
        contact_person: "Doe, Jane"                    # default ""
        embargo_status: OPEN        # OPEN (default), EMBARGOED or UNEMBARGOING
        owner_tokens: []            # API tokens that may read it while embargoed
        versions:                   # "draft" plus published ones; listed by `created`
          - version: "0.230629.1955"
            name: "A title"
            status: Published       # Published, Valid, Pending, ...
            created: "2023-06-29T19:55:31.000000Z"
            modified: "2023-06-29T19:55:31.000000Z"
            metadata: {}            # served as is at versions/{v}/, key order kept
            assets:
              - path: "sub-RAT123/sub-RAT123.nwb"
                asset_id: "838bab7b-9ab4-4d66-97b3-898a367c9c7e"
                blob: "2dbaf0fd-5003-4a0a-b4c0-bc8cdbdb3826"  # or zarr: "<zarr id>"
                size: 18792
                created: "2023-03-02T22:10:45.985334Z"
                modified: "2023-03-02T22:10:46.064360Z"
                metadata: {}        # served as is, except a missing contentUrl

Timestamps stay the strings written (YAML timestamps are not parsed). An asset
whose metadata has no ``contentUrl`` gets the archive's two URLs:
``<base_url>/assets/<asset_id>/download/`` and its S3 URL,
``<s3_base_url>/blobs/<b[0:3]>/<b[3:6]>/<blob>`` or ``<s3_base_url>/zarr/<zarr>/``.
All other metadata is kept as given, so a test can set ``digest: null``, and
an asset may name neither a blob nor a Zarr to stand for an invalid one.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

import yaml
from cheroot import wsgi

log = logging.getLogger("zarrdav.demo.archive")
StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]
T = TypeVar("T")

EMBARGO_STATUSES = ("OPEN", "EMBARGOED", "UNEMBARGOING")
DEFAULT_PAGE_SIZE = 100
ZARR_DOWNLOAD_REFUSAL = (
    "Unable to provide download link for zarr assets."
    " Please browse the zarr files directly to do so."
)


@dataclass(frozen=True, slots=True)
class Asset:
    """One asset of a version: a blob or a Zarr (neither, or both, to play an invalid asset)."""

    path: str
    asset_id: str
    blob: str | None
    zarr: str | None
    size: int
    created: str
    modified: str
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Version:
    """One version of a Dandiset: ``draft`` or a published ``0.YYMMDD.HHMM``."""

    version: str
    name: str
    status: str
    created: str
    modified: str
    metadata: dict[str, Any] = field(default_factory=dict)
    assets: tuple[Asset, ...] = ()

    def __post_init__(self) -> None:
        """Refuse trees the archive cannot hold, which would make atpath ambiguous."""
        paths = [asset.path for asset in self.assets]
        folders = {folder for path in paths for folder in _folders_of(path)}
        for path in paths:
            if "" in path.split("/"):
                raise ValueError(f"version {self.version}: bad asset path {path!r}")
            if path in folders:
                raise ValueError(f"version {self.version}: {path!r} is both an asset and a folder")
        if len(set(paths)) != len(paths):
            raise ValueError(f"version {self.version}: two assets share a path")


@dataclass(frozen=True, slots=True)
class Dandiset:
    """One Dandiset with all its versions."""

    identifier: str
    created: str
    modified: str
    contact_person: str = ""
    embargo_status: str = "OPEN"
    owner_tokens: frozenset[str] = frozenset()
    versions: tuple[Version, ...] = ()

    def __post_init__(self) -> None:
        if self.embargo_status not in EMBARGO_STATUSES:
            raise ValueError(
                f"Dandiset {self.identifier}: bad embargo_status {self.embargo_status!r}"
            )


@dataclass(frozen=True, slots=True)
class ArchiveData:
    """Everything the double serves."""

    dandisets: tuple[Dandiset, ...]
    s3_base_url: str | None = None

    def __post_init__(self) -> None:
        """Without ``s3_base_url`` a missing ``contentUrl`` could not be filled in."""
        if self.s3_base_url is None and any(
            "contentUrl" not in asset.metadata
            for dandiset in self.dandisets
            for version in dandiset.versions
            for asset in version.assets
        ):
            raise ValueError("an asset has no contentUrl, and there is no s3_base_url to make one")


# Loading the data file.


class _Loader(yaml.SafeLoader):
    """A safe YAML loader that keeps timestamps as the strings written."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}

_REQUIRED = object()


def load_archive(path: Path) -> ArchiveData:
    """The archive described by the data file at ``path`` (format in the module docstring)."""
    text = path.read_text(encoding="utf-8")
    raw = json.loads(text) if path.suffix == ".json" else yaml.load(text, Loader=_Loader)
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: the top level must be a mapping")
    try:
        return ArchiveData(
            dandisets=tuple(_dandiset(item) for item in _get(raw, "dandisets", list, "archive")),
            s3_base_url=_get(raw, "s3_base_url", (str, type(None)), "archive", None),
        )
    except ValueError as error:
        raise ValueError(f"{path}: {error}") from None


def _get(
    raw: Any, key: str, kind: type | tuple[type, ...], where: str, default: Any = _REQUIRED
) -> Any:
    """``raw[key]`` checked against ``kind``, so a bad data file says where it is bad."""
    if not isinstance(raw, dict):
        raise ValueError(f"{where}: expected a mapping, not {raw!r}")
    if key not in raw:
        if default is _REQUIRED:
            raise ValueError(f"{where}: {key!r} is missing")
        return default
    if not isinstance(raw[key], kind):
        raise ValueError(f"{where}: {key!r} has the wrong type: {raw[key]!r}")
    return raw[key]


def _dandiset(raw: Any) -> Dandiset:
    identifier = _get(raw, "identifier", str, "a Dandiset (quote its identifier)")
    where = f"Dandiset {identifier}"
    return Dandiset(
        identifier=identifier,
        created=_get(raw, "created", str, where),
        modified=_get(raw, "modified", str, where),
        contact_person=_get(raw, "contact_person", str, where, ""),
        embargo_status=_get(raw, "embargo_status", str, where, "OPEN"),
        owner_tokens=frozenset(_get(raw, "owner_tokens", list, where, [])),
        versions=tuple(_version(item, where) for item in _get(raw, "versions", list, where, [])),
    )


def _version(raw: Any, dandiset: str) -> Version:
    name = _get(raw, "version", str, f"{dandiset}: a version")
    where = f"{dandiset} version {name}"
    return Version(
        version=name,
        name=_get(raw, "name", str, where),
        status=_get(raw, "status", str, where),
        created=_get(raw, "created", str, where),
        modified=_get(raw, "modified", str, where),
        metadata=_get(raw, "metadata", dict, where, {}),
        assets=tuple(_asset(item, where) for item in _get(raw, "assets", list, where, [])),
    )


def _asset(raw: Any, version: str) -> Asset:
    path = _get(raw, "path", str, f"{version}: an asset")
    where = f"{version} asset {path}"
    return Asset(
        path=path,
        asset_id=_get(raw, "asset_id", str, where),
        blob=_get(raw, "blob", (str, type(None)), where, None),
        zarr=_get(raw, "zarr", (str, type(None)), where, None),
        size=_get(raw, "size", int, where),
        created=_get(raw, "created", str, where),
        modified=_get(raw, "modified", str, where),
        metadata=_get(raw, "metadata", dict, where, {}),
    )


# Serving.


@dataclass(frozen=True, slots=True)
class _Request:
    method: str
    path: str  # below the API base, e.g. "/dandisets/"
    query: dict[str, str]  # the last value of each parameter, as Django's QueryDict.get
    token: str | None


@dataclass(frozen=True, slots=True)
class _Response:
    status: int
    body: Any  # JSON-able; None for an empty body
    headers: tuple[tuple[str, str], ...] = ()


class _Refusal(Exception):
    """An error answer, raised from wherever a handler finds the fault."""

    def __init__(self, status: int, body: Any, headers: tuple[tuple[str, str], ...] = ()) -> None:
        super().__init__(status)
        self.response = _Response(status, body, headers)


def _encode(body: Any) -> bytes:
    """The JSON of ``body``; None is an empty body, a redirect's."""
    return b"" if body is None else json.dumps(body, ensure_ascii=False).encode()


def _not_found(detail: str = "Not found.") -> _Refusal:
    return _Refusal(404, {"detail": detail})


@dataclass(frozen=True, slots=True)
class _Tree:
    """A version's assets and the folders they imply, as atpath sees them."""

    assets: dict[str, Asset]
    folders: dict[str, tuple[int, int]]  # path -> (total_assets, total_size)
    children: dict[str, list[str]]  # folder path ("" = root) -> child paths, sorted


def _tree(assets: Sequence[Asset]) -> _Tree:
    totals: dict[str, list[int]] = {}
    children: dict[str, set[str]] = {"": set()}
    for asset in assets:
        parent = ""
        for folder in _folders_of(asset.path):
            counts = totals.setdefault(folder, [0, 0])
            counts[0] += 1
            counts[1] += asset.size
            children.setdefault(parent, set()).add(folder)
            parent = folder
        children.setdefault(parent, set()).add(asset.path)
    return _Tree(
        assets={asset.path: asset for asset in assets},
        folders={path: (count, size) for path, (count, size) in totals.items()},
        children={path: sorted(paths) for path, paths in children.items()},
    )


def _folders_of(path: str) -> list[str]:
    """The folders above ``path``, outermost first."""
    parts = path.split("/")
    return ["/".join(parts[:depth]) for depth in range(1, len(parts))]


def _by_creation(dandiset: Dandiset) -> list[Version]:
    return sorted(dandiset.versions, key=lambda version: version.created)


def _dandiset_fields(dandiset: Dandiset) -> dict[str, Any]:
    return {
        "identifier": dandiset.identifier,
        "created": dandiset.created,
        "modified": dandiset.modified,
        "contact_person": dandiset.contact_person,
        "embargo_status": dandiset.embargo_status,
    }


def _version_fields(version: Version) -> dict[str, Any]:
    return {
        "version": version.version,
        "name": version.name,
        "asset_count": len(version.assets),
        "size": sum(asset.size for asset in version.assets),
        "status": version.status,
        "created": version.created,
        "modified": version.modified,
    }


def _version_summary(dandiset: Dandiset, version: Version) -> dict[str, Any]:
    """A version as the archive's VersionSerializer shows it: with its Dandiset nested."""
    return {**_version_fields(version), "dandiset": _dandiset_fields(dandiset)}


def _dandiset_json(dandiset: Dandiset, *, nested: bool) -> dict[str, Any]:
    """A Dandiset; the detail view nests the Dandiset in its versions, the listing does not."""
    versions = _by_creation(dandiset)
    published = [version for version in versions if version.version != "draft"]
    draft = next((version for version in versions if version.version == "draft"), None)

    def summary(version: Version | None) -> dict[str, Any] | None:
        if version is None:
            return None
        return _version_summary(dandiset, version) if nested else _version_fields(version)

    return {
        **_dandiset_fields(dandiset),
        "most_recent_published_version": summary(published[-1] if published else None),
        "draft_version": summary(draft),
    }


def _check_access(dandiset: Dandiset, request: _Request) -> None:
    """Only owners read an embargoed Dandiset: 401 without a token, 403 with a stranger's."""
    if dandiset.embargo_status == "OPEN":
        return
    if request.token is None:
        raise _Refusal(
            401,
            {"detail": "Authentication credentials were not provided."},
            (("WWW-Authenticate", "Token"),),
        )
    if request.token not in dandiset.owner_tokens:
        raise _Refusal(403, {"detail": "You do not have permission to perform this action."})


def _page_size(raw: str | None, cap: int) -> int:
    """REST framework's rule: a positive integer, else the default; never above ``cap``."""
    try:
        size = int(raw or "")
    except ValueError:
        size = DEFAULT_PAGE_SIZE
    return min(size if size > 0 else DEFAULT_PAGE_SIZE, cap)


def _page_number(raw: str | None) -> int:
    try:
        number = int(raw or "1")
    except ValueError:
        raise _not_found("Invalid page.") from None
    if number < 1:
        raise _not_found("Invalid page.")
    return number


_TRUE = {"t", "true", "y", "yes", "on", "1"}
_FALSE = {"f", "false", "n", "no", "off", "0"}


@dataclass(frozen=True, slots=True)
class _AtPath:
    dandiset_id: str
    version_id: str
    path: str
    metadata: bool
    children: bool


def _atpath_query(query: dict[str, str]) -> _AtPath:
    """atpath's parameters, refused with REST framework's 400 body as the archive does."""
    errors: dict[str, list[str]] = {}

    def text(name: str, default: str | None) -> str:
        value = query.get(name, default)
        if value is None:
            errors[name] = ["This field is required."]
        elif value == "" and name in query:
            errors[name] = ["This field may not be blank."]
        return value or ""

    def flag(name: str) -> bool:
        value = query.get(name, "false").lower()
        if value not in _TRUE | _FALSE:
            errors[name] = ["Must be a valid boolean."]
        return value in _TRUE

    params = _AtPath(text("dandiset_id", None), text("version_id", None), text("path", ""),
                     flag("metadata"), flag("children"))
    if errors:
        raise _Refusal(400, errors)
    return params


def _atpath_paths(tree: _Tree, asked: str, children: bool) -> list[str]:
    """What atpath lists: the root's children only; a folder first, then its children.

    As the archive: the path matches exactly (nothing is found under an
    asset's path, a Zarr's included), and a trailing slash is allowed for a
    folder, refused for an asset.
    """
    path = asked.rstrip("/")
    if path == "":
        return tree.children[""] if children else []
    if path in tree.assets:
        if asked.endswith("/"):
            raise _not_found(f"Folder not found at {path}")
        return [path]
    if path in tree.folders:
        return [path, *tree.children[path]] if children else [path]
    raise _not_found(f"Folder or asset not found at {path}")


class Meter:
    """What the double is asked: requests, body bytes and targets; each answer
    held back ``latency`` seconds first, as over the internet (benchmarks)."""

    def __init__(self, latency: float = 0.0) -> None:
        self.latency = latency
        self.requests = 0
        self.bytes = 0
        self.targets: list[str] = []  # path and query of each request, in order
        self._lock = threading.Lock()

    def record(self, target: str, size: int) -> None:
        if self.latency:
            time.sleep(self.latency)
        with self._lock:
            self.requests += 1
            self.bytes += size
            self.targets.append(target)

    def reset(self) -> tuple[int, int]:
        """The requests and bytes counted so far, and counting from zero again."""
        with self._lock:
            counted = self.requests, self.bytes
            self.requests, self.bytes, self.targets = 0, 0, []
            return counted


class _ArchiveApp:
    """The WSGI app: routes a request to one handler and turns its answer into JSON."""

    def __init__(self, data: ArchiveData, base_url: str, max_page_size: int, meter: Meter | None) -> None:
        self._meter = meter
        self._base_url = base_url.rstrip("/")
        self._prefix = urlsplit(self._base_url).path
        self._max_page_size = max_page_size
        self._s3_base_url = (data.s3_base_url or "").rstrip("/")
        self._dandisets = {dandiset.identifier: dandiset for dandiset in data.dandisets}
        self._trees = {
            (dandiset.identifier, version.version): _tree(version.assets)
            for dandiset in data.dandisets
            for version in dandiset.versions
        }
        self._assets = {
            asset.asset_id: (dandiset, asset)
            for dandiset in data.dandisets
            for version in dandiset.versions
            for asset in version.assets
        }
        # A Zarr is as its draft asset has it: put the draft last so that it wins.
        self._zarrs = {
            asset.zarr: (dandiset, asset)
            for dandiset in data.dandisets
            for version in sorted(dandiset.versions, key=lambda v: v.version == "draft")
            for asset in version.assets
            if asset.zarr is not None
        }
        in_dandiset = r"/dandisets/(?P<dandiset_id>[^/]+)"
        in_version = rf"{in_dandiset}/versions/(?P<version_id>[^/]+)"
        self._routes: tuple[tuple[re.Pattern[str], Callable[..., _Response]], ...] = (
            (re.compile(r"/dandisets/"), self._list_dandisets),
            (re.compile(rf"{in_dandiset}/"), self._get_dandiset),
            (re.compile(rf"{in_dandiset}/versions/"), self._list_versions),
            (re.compile(rf"{in_version}/"), self._get_version_metadata),
            (re.compile(rf"{in_version}/info/"), self._get_version_info),
            (re.compile(rf"{in_version}/assets/(?P<asset_id>[^/]+)/"), self._get_asset_metadata),
            (re.compile(r"/webdav/assets/atpath/"), self._atpath),
            (re.compile(r"/zarr/(?P<zarr_id>[^/]+)/"), self._get_zarr),
            (re.compile(r"/assets/(?P<asset_id>[^/]+)/download/"), self._download),
        )

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        try:
            response = self._respond(environ)
        except Exception:
            log.exception("the demo archive failed on %s", environ.get("PATH_INFO"))
            response = _Response(500, {"detail": "A server error occurred."})
        body = _encode(response.body)
        if self._meter is not None:
            query = environ.get("QUERY_STRING", "")
            self._meter.record(environ.get("PATH_INFO", "") + (f"?{query}" if query else ""), len(body))
        headers = [("Content-Length", str(len(body))), *response.headers]
        if response.body is not None:
            headers.append(("Content-Type", "application/json"))
        start_response(f"{response.status} {HTTPStatus(response.status).phrase}", headers)
        return [] if environ.get("REQUEST_METHOD") == "HEAD" else [body]

    def _respond(self, environ: dict[str, Any]) -> _Response:
        try:
            request = self._request(environ)
            handler, params = self._route(request.path)
            if request.method not in ("GET", "HEAD"):
                raise _Refusal(405, {"detail": f'Method "{request.method}" not allowed.'},
                               (("Allow", "GET, HEAD"),))
            return handler(request, **params)
        except _Refusal as refusal:
            return refusal.response

    def _route(self, path: str) -> tuple[Callable[..., _Response], dict[str, str]]:
        """The handler of ``path`` and its parameters; unknown paths are 404 before any 405."""
        for pattern, handler in self._routes:
            match = pattern.fullmatch(path)
            if match is not None:
                return handler, match.groupdict()
        raise _not_found()

    def _request(self, environ: dict[str, Any]) -> _Request:
        """The request below the API base; elsewhere is 404, as an unknown route."""
        raw_path = environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")
        try:
            path = raw_path.encode("latin-1").decode("utf-8")  # PEP 3333 hands bytes as latin-1
        except UnicodeError:
            raise _not_found() from None
        if not path.startswith(self._prefix + "/"):
            raise _not_found()
        scheme, _, token = environ.get("HTTP_AUTHORIZATION", "").partition(" ")
        return _Request(
            method=environ.get("REQUEST_METHOD", "GET"),
            path=path[len(self._prefix):],
            query=dict(parse_qsl(environ.get("QUERY_STRING", ""), keep_blank_values=True)),
            token=(token.strip() or None) if scheme.lower() == "token" else None,
        )

    # Pagination.

    def _paginate(
        self, request: _Request, items: Sequence[T], render: Callable[[T], Any]
    ) -> _Response:
        size = _page_size(request.query.get("page_size"), self._max_page_size)
        number = _page_number(request.query.get("page"))
        last = max(1, -(-len(items) // size))
        if number > last:
            raise _not_found("Invalid page.")
        return _Response(200, {
            "count": len(items),
            "next": self._page_link(request, number + 1) if number < last else None,
            "previous": self._page_link(request, number - 1) if number > 1 else None,
            "results": [render(item) for item in items[(number - 1) * size:number * size]],
        })

    def _page_link(self, request: _Request, number: int) -> str:
        """The absolute URL of page ``number``, the other parameters kept (sorted, as in DRF)."""
        query = {key: value for key, value in request.query.items() if key != "page"}
        if number > 1:
            query["page"] = str(number)
        url = self._base_url + quote(request.path)
        return f"{url}?{urlencode(sorted(query.items()))}" if query else url

    # Lookups.

    def _dandiset(self, dandiset_id: str) -> Dandiset:
        dandiset = self._dandisets.get(dandiset_id)
        if dandiset is None:
            raise _not_found()
        return dandiset

    def _version(
        self, request: _Request, dandiset_id: str, version_id: str
    ) -> tuple[Dandiset, Version]:
        """A readable version: 404 for an unknown Dandiset, then the embargo, then 404 again."""
        dandiset = self._dandiset(dandiset_id)
        _check_access(dandiset, request)
        version = next((v for v in dandiset.versions if v.version == version_id), None)
        if version is None:
            raise _not_found()
        return dandiset, version

    def _asset_metadata(self, asset: Asset) -> dict[str, Any]:
        """The asset's metadata, with the archive's contentUrl when the data file gives none."""
        if "contentUrl" in asset.metadata:
            return asset.metadata
        download = f"{self._base_url}/assets/{asset.asset_id}/download/"
        return {**asset.metadata, "contentUrl": [download, *self._storage_urls(asset)]}

    def _storage_urls(self, asset: Asset) -> list[str]:
        """The asset's S3 URL in the archive's bucket layout; none for an invalid asset."""
        if asset.blob is not None:
            blob = asset.blob
            return [f"{self._s3_base_url}/blobs/{blob[:3]}/{blob[3:6]}/{blob}"]
        if asset.zarr is not None:
            return [f"{self._s3_base_url}/zarr/{asset.zarr}/"]
        return []

    def _asset_json(self, asset: Asset, metadata: bool) -> dict[str, Any]:
        resource = {
            "asset_id": asset.asset_id,
            "blob": asset.blob,
            "zarr": asset.zarr,
            "path": asset.path,
            "size": asset.size,
            "created": asset.created,
            "modified": asset.modified,
        }
        return (resource | {"metadata": self._asset_metadata(asset)}) if metadata else resource

    def _path_item(self, tree: _Tree, path: str, metadata: bool) -> dict[str, Any]:
        asset = tree.assets.get(path)
        if asset is not None:
            return {"type": "asset", "resource": self._asset_json(asset, metadata)}
        total_assets, total_size = tree.folders[path]
        return {"type": "folder",
                "resource": {"path": path, "total_assets": total_assets, "total_size": total_size}}

    # Handlers, one per route.

    def _list_dandisets(self, request: _Request) -> _Response:
        dandisets = sorted(self._dandisets.values(), key=lambda dandiset: dandiset.identifier)
        return self._paginate(request, dandisets, lambda d: _dandiset_json(d, nested=False))

    def _get_dandiset(self, request: _Request, dandiset_id: str) -> _Response:
        return _Response(200, _dandiset_json(self._dandiset(dandiset_id), nested=True))

    def _list_versions(self, request: _Request, dandiset_id: str) -> _Response:
        dandiset = self._dandiset(dandiset_id)
        _check_access(dandiset, request)
        versions = _by_creation(dandiset)
        return self._paginate(request, versions, lambda v: _version_summary(dandiset, v))

    def _get_version_metadata(
        self, request: _Request, dandiset_id: str, version_id: str
    ) -> _Response:
        return _Response(200, self._version(request, dandiset_id, version_id)[1].metadata)

    def _get_version_info(self, request: _Request, dandiset_id: str, version_id: str) -> _Response:
        dandiset, version = self._version(request, dandiset_id, version_id)
        return _Response(200, {
            **_version_summary(dandiset, version),
            "asset_validation_errors": [],
            "version_validation_errors": [],
            "metadata": version.metadata,
            "contact_person": dandiset.contact_person,
        })

    def _get_asset_metadata(
        self, request: _Request, dandiset_id: str, version_id: str, asset_id: str
    ) -> _Response:
        """The asset's metadata document, as zarrdav's pages link it."""
        version = self._version(request, dandiset_id, version_id)[1]
        asset = next((asset for asset in version.assets if asset.asset_id == asset_id), None)
        if asset is None:
            raise _not_found()
        return _Response(200, self._asset_metadata(asset))

    def _atpath(self, request: _Request) -> _Response:
        query = _atpath_query(request.query)
        dandiset, version = self._version(request, query.dandiset_id, query.version_id)
        tree = self._trees[(dandiset.identifier, version.version)]
        paths = _atpath_paths(tree, query.path, query.children)
        return self._paginate(request, paths, lambda p: self._path_item(tree, p, query.metadata))

    def _get_zarr(self, request: _Request, zarr_id: str) -> _Response:
        found = self._zarrs.get(zarr_id)
        if found is None:
            raise _not_found()
        dandiset, asset = found
        _check_access(dandiset, request)
        checksum = (asset.metadata.get("digest") or {}).get("dandi:dandi-zarr-checksum")
        return _Response(200, {
            "zarr_id": zarr_id,
            "name": asset.path,
            "dandiset": dandiset.identifier,
            "status": "Complete" if checksum else "Pending",
            "checksum": checksum,
        })

    def _download(self, request: _Request, asset_id: str) -> _Response:
        """302 to the blob's S3 URL: the asset's contentUrl that is not an API download URL."""
        found = self._assets.get(asset_id)
        if found is None:
            raise _not_found()
        dandiset, asset = found
        _check_access(dandiset, request)
        if asset.blob is None:
            raise _Refusal(400, ZARR_DOWNLOAD_REFUSAL)
        urls = self._asset_metadata(asset).get("contentUrl") or []
        target = next((url for url in urls if not url.endswith("/download/")), None)
        if target is None:
            raise _not_found()
        return _Response(302, None, (("Location", target),))


def create_archive_app(
    data: ArchiveData, *, base_url: str, max_page_size: int = 1000, meter: Meter | None = None
) -> WSGIApp:
    """The archive API over ``data`` as a WSGI app.

    ``base_url`` is the API base as clients see it (``http://host:port/api``):
    the app answers under its path and writes it into ``next`` links and
    filled-in ``contentUrl`` download URLs. ``meter`` counts (and delays) every answer.
    """
    return _ArchiveApp(data, base_url, max_page_size, meter)


@contextmanager
def serve_archive(
    data: ArchiveData, host: str = "127.0.0.1", port: int = 0, meter: Meter | None = None
) -> Iterator[str]:
    """Serve ``data`` on cheroot in a background thread; yields the API base URL.

    The server binds before the app exists, because the app's absolute links
    need the port (``port=0`` picks a free one).
    """
    # Threads enough for a client's concurrent listing pages, each held back by the meter's latency.
    server = wsgi.Server((host, port), None, numthreads=16, server_name="zarrdav-demo-archive",
                         shutdown_timeout=1)
    server.prepare()
    thread = threading.Thread(target=server.serve, name="demo-archive", daemon=True)
    try:
        bound_host, bound_port = server.bind_addr[:2]
        url_host = f"[{bound_host}]" if ":" in bound_host else bound_host
        base_url = f"http://{url_host}:{bound_port}/api"
        server.wsgi_app = create_archive_app(data, base_url=base_url, meter=meter)
        thread.start()
        yield base_url
    finally:
        server.stop()
        if thread.is_alive():
            thread.join()
