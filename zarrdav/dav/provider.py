"""Resolving routes to resources: the thin map from a path to what is there."""

from __future__ import annotations

from urllib.parse import quote

from zarrdav.errors import NotFound
from zarrdav.manifests.cache import ManifestCache
from zarrdav.manifests.model import Manifest, ManifestDirectory, ManifestEntry, ManifestFile
from zarrdav.routes import (
    ManifestRoute,
    RootRoute,
    Route,
    ZarrPrefixRoute,
    ZarrsRoute,
    ZarrVersionsRoute,
    parse_route,
    zarr_version_path,
)
from zarrdav.dav.resources import Collection, File, Resource


class Provider:
    """Answers "what is at this path" and "what is in this collection"."""

    def __init__(self, manifests: ManifestCache, zarr_base_url: str) -> None:
        self._manifests = manifests
        self._zarr_base_url = zarr_base_url.rstrip("/")

    def resource(self, path: str) -> Resource:
        """The resource at a decoded absolute path; NotFound if none."""
        route = parse_route(path)
        if route is None:
            raise NotFound(f"nothing at {path}")
        return self._resource(route, path)

    def members(self, collection: Collection) -> list[Resource]:
        """The collection's children, sorted by name."""
        route = parse_route(collection.path)
        base = collection.path
        match route:
            case RootRoute():
                return [Collection("/zarrs/", "Zarrs")]
            case ZarrsRoute():
                listing = self._manifests.listing("")
                return [Collection(f"{base}{name}/", "Directory") for name in listing.directories]
            case ZarrPrefixRoute(prefix=prefix):
                listing = self._manifests.listing(prefix)
                kind = "Directory" if "/" not in prefix else "Zarr"
                return [Collection(f"{base}{name}/", kind) for name in listing.directories]
            case ZarrVersionsRoute(zarr_id=zarr_id):
                return [
                    self._version(zarr_id, checksum, self._manifests.manifest(zarr_id, checksum))
                    for checksum in self._manifests.checksums(zarr_id)
                ]
            case ManifestRoute(zarr_id=zarr_id, checksum=checksum, entry=entry):
                manifest = self._manifests.manifest(zarr_id, checksum)
                directory = manifest.lookup(entry)
                if not isinstance(directory, ManifestDirectory):
                    raise NotFound(f"no directory {collection.path}")
                root = zarr_version_path(zarr_id, checksum)
                return [self._entry(zarr_id, root, child) for child in manifest.children(directory)]
        raise NotFound(f"nothing at {collection.path}")

    def _resource(self, route: Route, path: str) -> Resource:
        slashed = path if path.endswith("/") else f"{path}/"
        match route:
            case RootRoute() | ZarrsRoute():
                return Collection(slashed, "Directory")
            case ZarrPrefixRoute(prefix=prefix):
                self._manifests.listing(prefix)  # NotFound when absent
                return Collection(slashed, "Directory")
            case ZarrVersionsRoute(zarr_id=zarr_id):
                if not self._manifests.checksums(zarr_id):
                    raise NotFound(f"no manifests for Zarr {zarr_id}")
                return Collection(slashed, "Zarr")
            case ManifestRoute(zarr_id=zarr_id, checksum=checksum, entry=""):
                return self._version(zarr_id, checksum, self._manifests.manifest(zarr_id, checksum))
            case ManifestRoute(zarr_id=zarr_id, checksum=checksum, entry=entry):
                manifest = self._manifests.manifest(zarr_id, checksum)
                found = manifest.lookup(entry)
                if found is None:
                    raise NotFound(f"no entry {entry!r} in Zarr {zarr_id} as of {checksum}")
                return self._entry(zarr_id, zarr_version_path(zarr_id, checksum), found)
        raise NotFound(f"nothing at {path}")

    def _version(self, zarr_id: str, checksum: str, manifest: Manifest) -> Collection:
        stats = manifest.statistics
        return Collection(
            zarr_version_path(zarr_id, checksum),
            "Zarr version",
            size=stats.total_size,
            modified=stats.last_modified,
            etag=checksum,
            details=f"{stats.entries:,} entries",
        )

    def _entry(self, zarr_id: str, root: str, entry: ManifestEntry) -> Resource:
        if isinstance(entry, ManifestDirectory):
            return Collection(f"{root}{entry.path}/", "Directory")
        return self._file(zarr_id, root, entry)

    def _file(self, zarr_id: str, root: str, file: ManifestFile) -> File:
        location = (
            f"{self._zarr_base_url}/{zarr_id}/{quote(file.path)}"
            f"?versionId={quote(file.version_id, safe='')}"
        )
        return File(
            f"{root}{file.path}",
            "File",
            size=file.size,
            modified=file.last_modified,
            etag=file.etag,
            location=location,
        )
