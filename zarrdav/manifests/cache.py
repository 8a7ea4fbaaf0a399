"""Caching in front of a manifest tree.

Manifests are immutable (named by their checksum), so a parsed one is kept
until memory is needed and never revalidated; the cache is weighted by each
manifest's memory size. When many requests miss the same manifest at once,
one of them fetches and parses it and the others wait for that result.
Folder listings of the tree can change (new manifests appear), so they are
reused for a TTL only.
"""

from __future__ import annotations

import threading
from concurrent.futures import Future

from cachetools import LRUCache, TTLCache

from zarrdav.manifests.layout import manifest_checksums, zarr_prefix
from zarrdav.manifests.model import Manifest
from zarrdav.manifests.trees import Listing, ManifestTree


class ManifestCache:
    def __init__(self, tree: ManifestTree, max_bytes: int, listing_ttl: float) -> None:
        self.tree = tree
        self._manifests: LRUCache[tuple[str, str], Manifest] = LRUCache(
            maxsize=max_bytes, getsizeof=lambda manifest: manifest.nbytes
        )
        self._listings: TTLCache[str, Listing] = TTLCache(maxsize=4096, ttl=listing_ttl)
        self._loading: dict[tuple[str, str], Future[Manifest]] = {}
        self._lock = threading.Lock()

    def manifest(self, zarr_id: str, checksum: str) -> Manifest:
        key = (zarr_id, checksum)
        with self._lock:
            cached = self._manifests.get(key)
            if cached is not None:
                return cached
            loading = self._loading.get(key)
            owner = loading is None
            if loading is None:
                loading = self._loading[key] = Future()
        if owner:
            try:
                manifest = self.tree.fetch_manifest(zarr_id, checksum)
            except BaseException as error:
                loading.set_exception(error)
            else:
                loading.set_result(manifest)
                with self._lock:
                    if manifest.nbytes <= self._manifests.maxsize:
                        self._manifests[key] = manifest
            finally:
                with self._lock:
                    del self._loading[key]
        return loading.result()

    def listing(self, path: str) -> Listing:
        with self._lock:
            cached = self._listings.get(path)
        if cached is not None:
            return cached
        listing = self.tree.list_directory(path)
        with self._lock:
            self._listings[path] = listing
        return listing

    def checksums(self, zarr_id: str) -> list[str]:
        return manifest_checksums(self.listing(zarr_prefix(zarr_id)).files)
