"""Resolving routes to resources: the thin map from a path to what is there."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from zarrdav.dav.dandisets import DandisetViews
from zarrdav.dav.resources import UNDATED, Collection, Resource
from zarrdav.dav.zarrs import ZarrViews
from zarrdav.errors import NotFound
from zarrdav.routes import (
    DandisetRoute,
    DandisetsRoute,
    ManifestRoute,
    ReleasesRoute,
    RootRoute,
    Route,
    VersionRoute,
    ZarrPrefixRoute,
    ZarrsRoute,
    ZarrVersionsRoute,
    parse_route,
    zarr_version_path,
)

_DANDISET_ROUTES = (DandisetsRoute, DandisetRoute, ReleasesRoute, VersionRoute)


class Provider:
    """Answers "what is at this path" and "what is in this collection"."""

    def __init__(self, zarrs: ZarrViews, dandisets: DandisetViews) -> None:
        self._zarrs = zarrs
        self._manifests = zarrs.manifests
        self._dandisets = dandisets

    def resource(self, path: str) -> Resource:
        """The resource at a decoded absolute path; NotFound if none."""
        route = parse_route(path)
        if isinstance(route, ManifestRoute) and route.entry:  # a chunk: nearly every request
            # Routes refuse empty and dot segments, so the path is the
            # canonical one: the Zarr's root is what precedes the entry.
            inner = path[:-1] if path[-1] == "/" else path
            root = inner[: len(inner) - len(route.entry)]
            return self._zarrs.entry(route.zarr_id, route.checksum, root, route.entry)
        if route is None:
            raise NotFound(f"nothing at {path}")
        if isinstance(route, _DANDISET_ROUTES):
            return self._dandisets.resource(route, path)
        return self._zarrs_resource(route, path)

    def members(self, collection: Collection) -> Iterable[Resource]:
        """The collection's children, sorted by name.

        Those of a Zarr directory are made as they are read (it may hold
        100,000 chunks); whatever can fail has failed by the time this returns.
        """
        route = parse_route(collection.path)
        if route is None:
            raise NotFound(f"nothing at {collection.path}")
        if isinstance(route, ManifestRoute):
            # A manifest lists in byte order, which is name order: no second
            # sort of what may be 10,000 chunks.
            root = zarr_version_path(route.zarr_id, route.checksum)
            return self._zarrs.members(route.zarr_id, route.checksum, root, route.entry)
        if isinstance(route, _DANDISET_ROUTES):
            members = self._dandisets.members(route, collection)
            if isinstance(members, Iterator):  # a pinned Zarr asset's directory, in name order
                return members
        else:
            members = self._zarrs_members(route, collection)
        return sorted(members, key=lambda member: member.name)

    def _zarrs_resource(self, route: Route, path: str) -> Resource:
        slashed = path if path.endswith("/") else f"{path}/"
        match route:
            case ManifestRoute(zarr_id=zarr_id, checksum=checksum):
                return self._zarrs.version(zarr_id, checksum)
            case RootRoute() | ZarrsRoute():
                return Collection(slashed, "Directory", modified=UNDATED)
            case ZarrPrefixRoute(prefix=prefix):
                self._manifests.listing(prefix)  # NotFound when absent
                return Collection(slashed, "Directory", modified=UNDATED)
            case ZarrVersionsRoute(zarr_id=zarr_id):
                checksums = self._manifests.checksums(zarr_id)
                if not checksums:
                    raise NotFound(f"no manifests for Zarr {zarr_id}")
                return self._versions_collection(slashed, zarr_id, checksums)
        raise NotFound(f"nothing at {path}")

    def _zarrs_members(self, route: Route, collection: Collection) -> list[Resource]:
        base = collection.path
        match route:
            case RootRoute():
                return [Collection("/dandisets/", "Dandisets", modified=UNDATED),
                        Collection("/zarrs/", "Zarrs", modified=UNDATED)]
            case ZarrsRoute():
                listing = self._manifests.listing("")
                return [Collection(f"{base}{name}/", "Directory", modified=UNDATED) for name in listing.directories]
            case ZarrPrefixRoute(prefix=prefix):
                listing = self._manifests.listing(prefix)
                if "/" not in prefix:
                    return [Collection(f"{base}{name}/", "Directory", modified=UNDATED) for name in listing.directories]
                # The Zarrs themselves: a listing of Zarrs without manifests shows them all the same.
                return [self._versions_collection(f"{base}{name}/", name, self._manifests.checksums(name))
                        for name in listing.directories]
            case ZarrVersionsRoute(zarr_id=zarr_id):
                return list(self._zarrs.versions(zarr_id, self._manifests.checksums(zarr_id)))
        raise NotFound(f"nothing at {collection.path}")

    def _versions_collection(self, path: str, zarr_id: str, checksums: list[str]) -> Collection:
        """``<zarr_id>/``, dated by its newest manifest."""
        modified = self._zarrs.newest(zarr_id, checksums) if checksums else UNDATED
        return Collection(path, "Zarr", modified=modified, newest_first=True)
