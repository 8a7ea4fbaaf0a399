"""Caching in front of a manifest tree.

Manifests are immutable (named by their checksum), so a parsed one is kept
until memory is needed and never revalidated; the cache is weighted by each
manifest's memory size. When many requests miss the same manifest at once,
one of them fetches and parses it and the others wait for that result.
Behind the memory cache, an optional on-disk index keeps parsed manifests
across restarts: a miss looks there before fetching, and a parsed manifest
is saved there in the background once it has answered, then served from the
saved (memory-mapped) copy, so the memory the parse built is freed.
Folder listings of the tree can change (new manifests appear), so they are
reused for a TTL only; concurrent misses of one listing make one call too.
Every miss waits on the tree through the upstream gate, which keeps threads
for answers from cache while the tree is slow.
"""

from __future__ import annotations

import ctypes
import threading
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import IO

from cachetools import TTLCache

from zarrdav.manifests.index import ManifestIndex
from zarrdav.manifests.layout import manifest_checksums, zarr_prefix
from zarrdav.manifests.model import Manifest
from zarrdav.manifests.reader import read_manifest
from zarrdav.manifests.trees import KIND, Listing, ManifestTree
from zarrdav.tally import Tally
from zarrdav.upstreams.flights import Flights, UpstreamGate

# glibc keeps memory freed below its mmap threshold for reuse: after a large
# parse, tens of MB the process may not need again. malloc_trim returns them.
try:
    _MALLOC_TRIM: Callable[[int], int] | None = ctypes.CDLL(None).malloc_trim
except (OSError, AttributeError):  # not glibc
    _MALLOC_TRIM = None

# Parsing is CPU bound (more parses than cores only share them) and holds a
# manifest's transient parsing memory plus its columns until it is indexed,
# about 110 MB at the peak for the largest: bounding parses at once bounds
# that peak when many distinct manifests miss together. Downloads (HTTP or S3
# trees) happen before a parse takes its slot, so they are not held up.
PARSES_AT_ONCE = 2


class ManifestCache:
    def __init__(
        self, tree: ManifestTree, max_bytes: int, listing_ttl: float,
        index: ManifestIndex | None = None, gate: UpstreamGate | None = None,
    ) -> None:
        self.tree = tree
        self._index = index
        self._gate = gate or UpstreamGate()
        self._listing_flights: Flights[str, Listing] = Flights()
        # Least recently used first, with each manifest's weight. A hit costs
        # one dict lookup and a move (cachetools' LRUCache costs twice that,
        # on every chunk GET).
        self._manifests: OrderedDict[tuple[str, str], tuple[Manifest, int]] = OrderedDict()
        self._max_bytes = max_bytes
        self._bytes = 0
        self._listings: TTLCache[str, Listing] = TTLCache(maxsize=4096, ttl=listing_ttl)
        self._loading: dict[tuple[str, str], Future[Manifest]] = {}
        self._lock = threading.Lock()
        self._parsing = threading.BoundedSemaphore(PARSES_AT_ONCE)
        # One thread saves parsed manifests to the index, in the background.
        # Interpreter exit waits for it, so a stopped server leaves them saved.
        self._indexer = (
            ThreadPoolExecutor(1, thread_name_prefix="zarrdav-index") if index is not None else None
        )
        # For the metrics: hits on every chunk GET, so counted without a lock.
        self._hits = Tally()
        self._misses = Tally()
        self._evictions = 0
        self._parsed = Tally()
        self._from_index = Tally()

    def manifest(self, zarr_id: str, checksum: str) -> Manifest:
        key = (zarr_id, checksum)
        # Hits take no lock: under the GIL, each OrderedDict operation is
        # atomic, and every chunk GET of a busy server comes here.
        cached = self._manifests.get(key)
        if cached is not None:
            self._hits.add()
            try:
                self._manifests.move_to_end(key)
            except KeyError:
                pass  # evicted just now; this request still has it
            return cached[0]
        self._misses.add()
        with self._gate.waiting(KIND):
            return self._missed(key)

    def _missed(self, key: tuple[str, str]) -> Manifest:
        """The manifest fetched, or waited for while another request fetches it."""
        zarr_id, checksum = key
        with self._lock:
            cached = self._manifests.get(key)
            if cached is not None:
                return cached[0]
            loading = self._loading.get(key)
            owner = loading is None
            if loading is None:
                loading = self._loading[key] = Future()
        if owner:
            try:
                manifest, parsed = self._load(zarr_id, checksum)
            except BaseException as error:
                loading.set_exception(error)
            else:
                loading.set_result(manifest)
                self._keep(key, manifest)
                if parsed:
                    self._index_later(key, manifest)
            finally:
                with self._lock:
                    del self._loading[key]
        return loading.result()

    def flush(self) -> None:
        """Wait until every parsed manifest is saved to the index."""
        if self._indexer is not None:
            self._indexer.submit(lambda: None).result()

    def _keep(self, key: tuple[str, str], manifest: Manifest) -> None:
        size = manifest.nbytes
        if size > self._max_bytes:
            return
        with self._lock:
            if key in self._manifests:
                return
            self._manifests[key] = (manifest, size)
            self._bytes += size
            while self._bytes > self._max_bytes:
                _, (_, evicted) = self._manifests.popitem(last=False)
                self._bytes -= evicted
                self._evictions += 1

    def stats(self) -> dict[str, int]:
        """Counts since start (hits, misses, evictions, parsed, index) and what is kept now."""
        with self._lock:
            return {"hits": self._hits.value(), "misses": self._misses.value(), "evictions": self._evictions,
                    "parsed": self._parsed.value(), "index": self._from_index.value(),
                    "bytes": self._bytes, "manifests": len(self._manifests)}

    def _load(self, zarr_id: str, checksum: str) -> tuple[Manifest, bool]:
        """The manifest from the index if it is there, else fetched and parsed
        (True), holding a parse slot until ``_index_later`` is done with it."""
        index = self._index
        indexed = index.load(zarr_id, checksum) if index is not None else None
        if indexed is not None:
            self._from_index.add()
            return indexed, False

        holding = False

        def parse(stream: IO[bytes], source: str) -> Manifest:
            nonlocal holding
            self._parsing.acquire()
            holding = True
            return read_manifest(stream, source)

        try:
            manifest = self.tree.fetch_manifest(zarr_id, checksum, parse)
            self._parsed.add()
            return manifest, True
        except BaseException:
            if holding:
                self._parsing.release()
            raise

    def _index_later(self, key: tuple[str, str], manifest: Manifest) -> None:
        """Save a parsed manifest to the index, after it has answered.

        The first answer need not wait for the save (a tenth of a second for
        the largest). Then the cache serves the saved, memory-mapped copy and
        the memory the parse built is handed back; the parse slot is held
        until then, so parsed copies waiting here stay few.
        """
        index, indexer = self._index, self._indexer
        if index is None or indexer is None:
            self._parsing.release()
            _trim_heap()
            return

        def save() -> None:
            try:
                mapped = index.load(*key) if index.save(*key, manifest) else None
                if mapped is not None:
                    with self._lock:
                        cached = self._manifests.get(key)
                        if cached is not None and cached[0] is manifest:
                            self._manifests[key] = (mapped, cached[1])
            finally:
                self._parsing.release()
                _trim_heap()

        indexer.submit(save)

    def listing(self, path: str) -> Listing:
        with self._lock:
            cached = self._listings.get(path)
        if cached is not None:
            return cached

        def call() -> Listing:
            listing = self.tree.list_directory(path)
            with self._lock:
                self._listings[path] = listing
            return listing

        with self._gate.waiting(KIND):
            return self._listing_flights.run(path, call)

    def checksums(self, zarr_id: str) -> list[str]:
        return manifest_checksums(self.listing(zarr_prefix(zarr_id)).files)


def _trim_heap() -> None:
    """Hand memory a parse freed back to the system (glibc only)."""
    if _MALLOC_TRIM is not None:
        _MALLOC_TRIM(0)
