"""The manifest cache: one fetch for many concurrent misses, bounded by memory."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.manifests import sample_manifest
from zarrdav.errors import ManifestError, NotFound
from zarrdav.manifests.cache import PARSES_AT_ONCE, ManifestCache
from zarrdav.manifests.index import ManifestIndex
from zarrdav.manifests.layout import manifest_path
from zarrdav.manifests.model import Manifest
from zarrdav.manifests.reader import read_manifest
from zarrdav.manifests.trees import LocalTree, Reader

ZARRS = [f"{n:03d}abc-0000-4000-8000-000000000000" for n in range(4)]


class CountingTree(LocalTree):
    """A local tree that counts (and slows down) manifest fetches."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.fetches = 0
        self._lock = threading.Lock()

    def fetch_manifest(self, zarr_id: str, checksum: str, read: Reader = read_manifest) -> Manifest:
        with self._lock:
            self.fetches += 1
        time.sleep(0.2)
        return super().fetch_manifest(zarr_id, checksum, read)


@pytest.fixture
def tree(tmp_path: Path) -> tuple[CountingTree, str]:
    checksum, body = sample_manifest()
    for zarr_id in ZARRS:
        path = tmp_path / manifest_path(zarr_id, checksum)
        path.parent.mkdir(parents=True)
        path.write_bytes(body)
    return CountingTree(tmp_path), checksum


def test_concurrent_misses_fetch_once(tree: tuple[CountingTree, str]) -> None:
    counting, checksum = tree
    cache = ManifestCache(counting, max_bytes=2**30, listing_ttl=60)
    with ThreadPoolExecutor(16) as pool:
        manifests = list(pool.map(lambda _: cache.manifest(ZARRS[0], checksum), range(16)))
    assert counting.fetches == 1
    assert all(manifest is manifests[0] for manifest in manifests)
    cache.manifest(ZARRS[0], checksum)
    assert counting.fetches == 1  # never revalidated


def test_failures_reach_every_waiter_and_are_not_cached(tree: tuple[CountingTree, str]) -> None:
    counting, _ = tree
    cache = ManifestCache(counting, max_bytes=2**30, listing_ttl=60)
    missing = "ffffffffffffffffffffffffffffffff-1--1"
    with ThreadPoolExecutor(8) as pool:
        futures = [pool.submit(cache.manifest, ZARRS[0], missing) for _ in range(8)]
    for future in futures:
        with pytest.raises(NotFound):
            future.result()
    assert counting.fetches == 1
    with pytest.raises(NotFound):
        cache.manifest(ZARRS[0], missing)
    assert counting.fetches == 2


def test_memory_bound_evicts_least_recent(tree: tuple[CountingTree, str]) -> None:
    counting, checksum = tree
    size = counting.fetch_manifest(ZARRS[0], checksum).nbytes
    counting.fetches = 0
    cache = ManifestCache(counting, max_bytes=2 * size, listing_ttl=60)
    for zarr_id in ZARRS:
        cache.manifest(zarr_id, checksum)
    assert counting.fetches == 4
    cache.manifest(ZARRS[3], checksum)  # still held
    assert counting.fetches == 4
    cache.manifest(ZARRS[0], checksum)  # evicted long ago
    assert counting.fetches == 5


def test_listings_expire(tree: tuple[CountingTree, str], tmp_path: Path) -> None:
    counting, checksum = tree
    cache = ManifestCache(counting, max_bytes=2**30, listing_ttl=0.3)
    assert cache.checksums(ZARRS[0]) == [checksum]
    extra = "00000000000000000000000000000000-0--0"
    (tmp_path / manifest_path(ZARRS[0], extra)).write_bytes(b"{}")
    assert cache.checksums(ZARRS[0]) == [checksum]  # cached listing
    time.sleep(0.4)
    assert cache.checksums(ZARRS[0]) == sorted([extra, checksum])


def outcome(call: Callable[[], object], seconds: float = 10) -> object:
    """What ``call()`` returns or raises, or "blocked" if it has not ended in
    ``seconds`` (it runs in a daemon thread, which cannot hang the run)."""
    ended: list[object] = []

    def run() -> None:
        try:
            ended.append(call())
        except Exception as error:  # noqa: BLE001 - the outcome is the point
            ended.append(error)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    return ended[0] if ended else "blocked"


@pytest.mark.parametrize("indexed", [False, True])
def test_broken_manifests_do_not_use_up_the_parse_slots(
    tree: tuple[CountingTree, str], tmp_path: Path, indexed: bool
) -> None:
    """More broken manifests than parses may run at once, then a good one:
    each failure gives its slot back, so every one of them is answered."""
    counting, checksum = tree
    broken = "eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee-1--1"
    for zarr_id in ZARRS[1:]:
        (tmp_path / manifest_path(zarr_id, broken)).write_bytes(b'{"schemaVersion": 2, "entr')
    index = ManifestIndex(tmp_path / "index", 2**30, counting.root) if indexed else None
    cache = ManifestCache(counting, max_bytes=2**30, listing_ttl=60, index=index)
    assert len(ZARRS[1:]) > PARSES_AT_ONCE
    for zarr_id in ZARRS[1:]:
        assert isinstance(outcome(lambda zarr_id=zarr_id: cache.manifest(zarr_id, broken)), ManifestError)
    good = outcome(lambda: cache.manifest(ZARRS[0], checksum))
    assert isinstance(good, Manifest) and good.statistics.entries == 10
