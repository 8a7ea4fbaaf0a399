"""Resources of ``/dandisets/``: Dandisets, versions, folders and assets.

Listings come from the archive's atpath endpoint. A path is resolved from
the version root down, one cached listing per folder, so every chunk request
under a Zarr asset reuses the listings of its ancestors, and Zarr assets are
recognised by what the archive says (``zarr`` set), never by their name.

A Zarr asset is shown as of the checksum in its metadata, through the same
``ZarrViews`` as ``/zarrs/``. Without a manifest for that checksum (not
built yet, or no checksum while the Zarr is ingesting) the missing-manifest
policy decides: ``live-draft`` serves a live, unpinned listing under
``draft`` only and refuses published versions with 503; ``error`` refuses
everywhere.

Answers about published versions are kept without expiry, except an empty
listing, which may be a transient fault of the archive: it is kept for
``ttl`` like a draft's. Concurrent misses of one key make one archive call.
Values the archive gives for headers (ETags, media types, S3 URLs) are
checked before use, and a blob redirects straight to S3 only on the hosts
the operator named.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import quote, urlsplit

import yaml
from cachetools import LRUCache, TTLCache

from zarrdav.dav.resources import UNDATED, Collection, File, Resource, md5_of
from zarrdav.dav.zarrs import ZarrViews
from zarrdav.errors import NotFound, Unavailable
from zarrdav.routes import (
    DandisetRoute,
    DandisetsRoute,
    ReleasesRoute,
    Route,
    VersionRoute,
    zarr_version_path,
)
from zarrdav.upstreams.archive import KIND, ArchiveClient, Asset, Dandiset, Folder, VersionSummary
from zarrdav.upstreams.flights import Flights, UpstreamGate
from zarrdav.upstreams.live import LiveDirectory, LiveEntry, LiveZarrs
from zarrdav.upstreams.values import header_value

T = TypeVar("T")


class DandisetViews:
    def __init__(
        self,
        archive: ArchiveClient,
        zarrs: ZarrViews,
        live: LiveZarrs,
        *,
        ttl: float,
        blob_redirect: str = "archive",
        redirect_hosts: frozenset[str] = frozenset(),
        missing_manifest: str = "live-draft",
        retry_after: int = 600,
        gate: UpstreamGate | None = None,
    ) -> None:
        """``redirect_hosts``: the hosts (``host[:port]``) blobs may redirect to with ``blob_redirect = "s3"``."""
        self._archive = archive
        self._zarrs = zarrs
        self._live = live
        self._blob_redirect = blob_redirect
        self._redirect_hosts = frozenset(host.lower() for host in redirect_hosts)
        self._missing_manifest = missing_manifest
        self._retry_after = retry_after  # seconds, for the 503 of a missing manifest
        self._gate = gate or UpstreamGate()
        self._fixed: LRUCache[tuple[Any, ...], Any] = LRUCache(maxsize=50_000)
        self._fresh: TTLCache[tuple[Any, ...], Any] = TTLCache(maxsize=50_000, ttl=ttl)
        self._flights: Flights[tuple[Any, ...], Any] = Flights()
        self._lock = threading.Lock()

    # -- the two questions a provider asks ------------------------------------

    def resource(self, route: Route, path: str) -> Resource:
        match route:
            case DandisetsRoute():
                return Collection("/dandisets/", "Directory", modified=UNDATED)
            case DandisetRoute(dandiset_id=dandiset_id):
                return self._dandiset_collection(self._dandiset(dandiset_id))
            case ReleasesRoute(dandiset_id=dandiset_id):
                if not self._published(dandiset_id):
                    raise NotFound(f"Dandiset {dandiset_id} has no published versions")
                return self._releases_collection(self._dandiset(dandiset_id))
            case VersionRoute(path=""):
                return self._version_root(route)
            case VersionRoute(path="dandiset.yaml"):
                return self._dandiset_yaml(route)
            case VersionRoute():
                return self._inside_version(route)
        raise NotFound(f"nothing at {path}")

    def members(self, route: Route, collection: Collection) -> list[Resource]:
        match route:
            case DandisetsRoute():
                dandisets = self._cached(("dandisets",), False, lambda: list(self._archive.dandisets()))
                return [self._dandiset_collection(dandiset) for dandiset in dandisets]
            case DandisetRoute(dandiset_id=dandiset_id):
                dandiset = self._dandiset(dandiset_id)
                base = f"/dandisets/{dandiset_id}/"
                members: list[Resource] = []
                if dandiset.draft is not None:
                    members.append(self._version_collection(
                        dandiset_id, f"{base}draft/", "Draft version", dandiset.draft))
                if dandiset.most_recent_published is not None:
                    latest = dandiset.most_recent_published
                    members.append(self._version_collection(dandiset_id, f"{base}latest/", "Latest release", latest,
                                                            canonical=f"{base}releases/{latest.version}/"))
                    members.append(self._releases_collection(dandiset))
                return members
            case ReleasesRoute(dandiset_id=dandiset_id):
                return [
                    self._version_collection(dandiset_id, f"{collection.path}{v.version}/", "Published version", v)
                    for v in self._published(dandiset_id)
                ]
            case VersionRoute(path=""):
                version, fixed = self._resolve(route)
                yaml_file = self._dandiset_yaml(route)
                children = self._children(route.dandiset_id, version, fixed, "")
                return [yaml_file, *(self._item(route, item, version) for item in children)]
            case VersionRoute():
                return self._members_inside(route)
        raise NotFound(f"nothing at {collection.path}")

    # -- Dandisets and versions -----------------------------------------------

    def _dandiset(self, dandiset_id: str) -> Dandiset:
        return self._cached(("dandiset", dandiset_id), False, lambda: self._archive.dandiset(dandiset_id))

    def _published(self, dandiset_id: str) -> list[VersionSummary]:
        return self._cached(
            ("published", dandiset_id), False, lambda: self._archive.published_versions(dandiset_id)
        )

    def _dandiset_collection(self, dandiset: Dandiset) -> Collection:
        current = dandiset.draft or dandiset.most_recent_published  # its title and size now
        return Collection(
            f"/dandisets/{dandiset.identifier}/",
            "Dandiset",
            size=None if current is None else current.size,
            created=dandiset.created,
            modified=dandiset.modified or UNDATED,
            details="embargoed" if dandiset.embargo_status != "OPEN" else None,
            links=(("Metadata", f"{self._archive.public_url}/dandisets/{_segment(dandiset.identifier)}/"),),
            title=None if current is None else current.name or None,
        )

    def _releases_collection(self, dandiset: Dandiset) -> Collection:
        """``releases/``, dated by its latest release."""
        latest = dandiset.most_recent_published
        modified = None if latest is None else latest.modified
        return Collection(f"/dandisets/{dandiset.identifier}/releases/", "Directory", modified=modified or UNDATED)

    def _version_collection(
        self, dandiset_id: str, path: str, kind: str, version: VersionSummary, canonical: str | None = None
    ) -> Collection:
        return Collection(
            path,
            kind,
            size=version.size,
            created=version.created,
            modified=version.modified or UNDATED,
            canonical=canonical,
            details=version.version if version.asset_count is None
            else f"{version.version}, {version.asset_count} assets",
            links=(("Metadata", f"{self._archive.public_url}/dandisets/{_segment(dandiset_id)}/versions/"
                                f"{_segment(version.version)}/"),),
            title=version.name or None,
            citation=version.citation,
            doi=version.doi,
            version=version.version,
        )

    def _resolve(self, route: VersionRoute) -> tuple[str, bool]:
        """The version id a route names, and whether its content is fixed (published)."""
        if route.version == "draft":
            return "draft", False
        if route.version == "latest":
            latest = self._dandiset(route.dandiset_id).most_recent_published
            if latest is None:
                raise NotFound(f"Dandiset {route.dandiset_id} has no published version")
            return latest.version, True
        return route.version, True

    def _version_root(self, route: VersionRoute) -> Collection:
        version, fixed = self._resolve(route)
        info = self._version_info(route.dandiset_id, version, fixed)
        kind = {"draft": "Draft version", "latest": "Latest release"}.get(route.version, "Published version")
        return self._version_collection(route.dandiset_id, route.root, kind, info, self._canonical(route, version, ""))

    def _version_info(self, dandiset_id: str, version: str, fixed: bool) -> VersionSummary:
        return self._cached(
            ("info", dandiset_id, version), fixed, lambda: self._archive.version_info(dandiset_id, version)
        )

    def _canonical(self, route: VersionRoute, version: str, path: str) -> str | None:
        """The permanent path of ``path`` (inside the version) when the route reaches it through ``latest``."""
        if route.version != "latest":
            return None
        return f"/dandisets/{route.dandiset_id}/releases/{version}/{path}"

    def _dandiset_yaml(self, route: VersionRoute) -> File:
        version, fixed = self._resolve(route)
        body = self._cached(
            ("yaml", route.dandiset_id, version), fixed,
            lambda: yaml.safe_dump(
                self._archive.version_metadata(route.dandiset_id, version),
                sort_keys=False, allow_unicode=True, default_flow_style=False,
            ).encode(),
        )
        md5 = hashlib.md5(body).hexdigest()
        return File(f"{route.root}dandiset.yaml", "Metadata", size=len(body), body=body,
                    media_type="text/yaml; charset=utf-8", etag=md5, md5=md5,
                    modified=self._version_info(route.dandiset_id, version, fixed).modified or UNDATED,
                    canonical=self._canonical(route, version, "dandiset.yaml"))

    # -- folders and assets ---------------------------------------------------

    def _children(self, dandiset_id: str, version: str, fixed: bool, path: str) -> list[Folder | Asset]:
        items = self._cached(
            ("atpath", dandiset_id, version, path), fixed,
            lambda: self._archive.at_path(dandiset_id, version, path),
        )
        return items if not path else items[1:]  # a folder comes first, then its children

    def _locate(self, route: VersionRoute) -> tuple[Folder | Asset, str, str]:
        """The folder or asset a path reaches, the rest of the path inside a Zarr asset, the version."""
        version, fixed = self._resolve(route)
        segments = route.path.rstrip("/").split("/")
        children = self._children(route.dandiset_id, version, fixed, "")
        prefix = ""
        for position, segment in enumerate(segments):
            prefix = f"{prefix}/{segment}" if prefix else segment
            item = next((child for child in children if child.path == prefix), None)
            if item is None:
                break
            rest = "/".join(segments[position + 1 :])
            if isinstance(item, Asset):
                if rest and not item.zarr:
                    break  # a path under a file
                return item, rest, version
            if not rest:
                return item, "", version
            children = self._children(route.dandiset_id, version, fixed, prefix)
        raise NotFound(f"nothing at {route.path!r} in Dandiset {route.dandiset_id} {route.version}")

    def _inside_version(self, route: VersionRoute) -> Resource:
        item, rest, version = self._locate(route)
        if isinstance(item, Folder) or not item.zarr:
            return self._item(route, item, version)
        checksum = self._pinned_checksum(route, item)
        if not rest:
            return self._item(route, item, version, pinned=checksum is not None)
        root = f"{route.root}{item.path}/"
        if checksum is None:
            with self._gate.waiting("S3"):
                return self._live_resource(root, self._live.lookup(item.zarr, rest))
        return self._zarrs.entry(item.zarr, checksum, root, rest)

    def _members_inside(self, route: VersionRoute) -> list[Resource]:
        item, rest, version = self._locate(route)
        if isinstance(item, Folder):
            _, fixed = self._resolve(route)
            children = self._children(route.dandiset_id, version, fixed, item.path)
            return [self._item(route, child, version) for child in children]
        if not item.zarr:
            raise NotFound(f"{item.path} is a file")
        root = f"{route.root}{item.path}/"
        checksum = self._pinned_checksum(route, item)
        if checksum is None:
            with self._gate.waiting("S3"):
                entries = self._live.children(item.zarr, rest)
            return [self._live_resource(root, entry) for entry in entries]
        return self._zarrs.members(item.zarr, checksum, root, rest)

    def _item(
        self, route: VersionRoute, item: Folder | Asset, version: str, *, pinned: bool = True
    ) -> Resource:
        """``pinned=False``: a Zarr asset shown live, which has no permanent /zarrs/ link."""
        path = f"{route.root}{item.path}"
        canonical = self._canonical(route, version, item.path)
        if isinstance(item, Folder):
            # A folder has no date of its own in the archive: its version's.
            modified = self._version_info(route.dandiset_id, version, route.version != "draft").modified
            return Collection(f"{path}/", "Directory", size=item.total_size, modified=modified or UNDATED,
                              details=None if item.total_assets is None else f"{item.total_assets} assets",
                              canonical=None if canonical is None else f"{canonical}/")
        api = self._archive.public_url
        metadata_url = (f"{api}/dandisets/{_segment(route.dandiset_id)}/versions/{_segment(version)}"
                        f"/assets/{_segment(item.asset_id)}/")
        what = f"{KIND}: asset {item.path!r}"
        if item.zarr:
            checksum = item.zarr_checksum
            if checksum is not None:
                header_value(checksum, "ETag", what)
            links: tuple[tuple[str, str], ...] = (("Metadata", metadata_url),)
            permanent = None
            if checksum is not None and pinned:
                permanent = zarr_version_path(item.zarr, checksum)  # the Zarr's own name wins over releases/
                links = (("Permanent link", permanent), *links)
            return Collection(f"{path}/", "Zarr", size=item.size, created=item.created,
                              modified=item.modified or UNDATED, etag=checksum if pinned else None, links=links,
                              pinned=pinned, canonical=permanent, version=version, zarr=True,
                              metadata_url=metadata_url)
        location = f"{api}/assets/{_segment(item.asset_id)}/download/"
        if self._blob_redirect == "s3" and item.s3_url and self._may_redirect_to(item.s3_url):
            location = header_value(item.s3_url, "Location", what)
        media_type = item.metadata.get("encodingFormat")
        etag = item.blob_etag
        return File(path, "File", size=item.size, created=item.created, modified=item.modified or UNDATED,
                    etag=None if etag is None else header_value(etag, "ETag", what), location=location,
                    media_type=header_value(media_type, "Content-Type", what) if isinstance(media_type, str) else None,
                    md5=md5_of(item.blob_md5) or md5_of(etag), canonical=canonical, metadata_url=metadata_url)

    def _may_redirect_to(self, url: str) -> bool:
        """Whether ``url`` is on a host blobs may redirect to; elsewhere the archive's download URL serves."""
        parts = urlsplit(url)
        return parts.scheme in ("http", "https") and parts.netloc.lower() in self._redirect_hosts

    # -- Zarr assets: pinned or, by policy, live ---------------------------------

    def _pinned_checksum(self, route: VersionRoute, asset: Asset) -> str | None:
        """The checksum to serve the Zarr asset as of; None where a live view is allowed."""
        zarr_id, checksum = asset.zarr or "", asset.zarr_checksum
        if checksum is not None:
            try:
                self._zarrs.manifests.manifest(zarr_id, checksum)
                return checksum
            except NotFound:
                pass
        live_allowed = self._missing_manifest == "live-draft" and route.version == "draft"
        if live_allowed:
            return None
        why = (
            f"Zarr {zarr_id} has no checksum yet (it is still being ingested)"
            if checksum is None
            else f"the manifest of Zarr {zarr_id} at checksum {checksum} is missing from the manifest tree"
        )
        if route.version == "draft":
            raise Unavailable(f"{why}; not serving it unpinned (missing_manifest = error)", self._retry_after)
        raise Unavailable(f"{why}; a published version is never served unpinned", self._retry_after)

    def _live_resource(self, root: str, entry: LiveEntry) -> Resource:
        if isinstance(entry, LiveDirectory):
            path = f"{root}{entry.path}/" if entry.path else root
            # S3 gives a prefix no date, and the newest key below it would take a walk.
            return Collection(path, "Directory (live)", pinned=False, modified=UNDATED)
        return File(f"{root}{entry.path}", "File (live)", size=entry.size, modified=entry.modified,
                    etag=entry.etag, location=entry.url, pinned=False, md5=md5_of(entry.etag))

    def _cached(self, key: tuple[Any, ...], fixed: bool, load: Callable[[], T]) -> T:
        """``load()``'s answer, kept without expiry if ``fixed``, else for the TTL.

        Errors are never kept. An empty answer is never kept for ever: an
        archive recovering from a fault may have answered it.
        """
        with self._lock:
            for cache in (self._fixed, self._fresh) if fixed else (self._fresh,):
                if key in cache:
                    return cache[key]  # type: ignore[no-any-return]

        def call() -> T:
            value = load()
            with self._lock:
                lasting = fixed and not (isinstance(value, list) and not value)
                (self._fixed if lasting else self._fresh)[key] = value
            return value

        with self._gate.waiting(KIND):
            loaded: T = self._flights.run(key, call)
            return loaded


def _segment(value: str) -> str:
    """An identifier from the archive as one URL path segment."""
    return quote(value, safe="")
