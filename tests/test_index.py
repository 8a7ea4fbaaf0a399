"""The manifest index: parsed manifests kept on disk across restarts.

What a user sees: a manifest loaded from the index answers exactly as the
parsed one; a restarted server answers from the index without the manifest
file; a damaged index file is parsed again, never an error; the directory
stays within its size, least recently used first; an unwritable directory
only costs the restart speed.
"""

from __future__ import annotations

import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from pathlib import Path
from typing import IO

import httpx
import orjson
import pytest

from tests.manifests import WHEN, sample_files, sample_manifest, varied_files
from tests.servers import zarrdav_server
from zarrdav.config import Settings
from zarrdav.manifests import cache as cache_module
from zarrdav.manifests import index as index_module
from zarrdav.manifests.cache import PARSES_AT_ONCE, ManifestCache
from zarrdav.manifests.checksum import zarr_checksum
from zarrdav.manifests.index import ManifestIndex
from zarrdav.manifests.layout import manifest_path
from zarrdav.manifests.model import Manifest, ManifestDirectory, ManifestFile
from zarrdav.manifests.reader import parse_manifest, read_manifest
from zarrdav.manifests.trees import LocalTree, Reader
from zarrdav.manifests.writer import render_manifest
from zarrdav.routes import zarr_version_path

ZARR = "1284a14f-fe4f-4dc3-b10d-48e5db8bf18d"
OTHER = "5a8f0c2e-7d3b-4c1a-9e6f-0b1c2d3e4f50"
CHECKSUM, BODY = sample_manifest()
TREE = "/some/tree"
BASE = "http://127.0.0.1:9/bucket/zarr"  # redirect target; never contacted


def manifest_body(files: list[ManifestFile]) -> tuple[str, bytes]:
    checksum = zarr_checksum((f.path, f.size, f.etag) for f in files)
    return checksum, render_manifest(files, checksum)


def index_files(root: Path) -> list[Path]:
    return sorted(root.glob("*.zdx"))


def assert_same(loaded: Manifest, parsed: Manifest) -> None:
    """Every lookup, listing and figure a server uses agrees."""
    assert loaded.source == parsed.source
    assert loaded.statistics == parsed.statistics
    assert loaded.nbytes == parsed.nbytes
    assert list(loaded.files()) == list(parsed.files())
    pending = [parsed.root]
    while pending:
        directory = pending.pop()
        found = loaded.lookup(directory.path + "/" if directory.path else "")
        assert found == directory
        assert loaded.children(directory) == parsed.children(directory)
        pending += [e for e in parsed.children(directory) if isinstance(e, ManifestDirectory)]
    for file in parsed.files():
        assert loaded.lookup(file.path) == file
        for other in (f"{file.path}x", f"{file.path}/", f"{file.path}/x", f"x{file.path}"):
            assert loaded.lookup(other) == parsed.lookup(other)


# 1. A round trip changes nothing


def manifests_to_index() -> list[object]:
    """The reader tests' manifests: every column kind, odd names, empty, odd statistics."""
    escaped = orjson.loads(BODY)
    entry = escaped["entries"][".zattrs"]
    escaped["entries"] = {'q"uote': entry, "ünï": {"c\\d": entry, "日本": {"x y": entry}}}
    mismatch = orjson.loads(BODY)
    mismatch["statistics"]["zarrChecksumMismatch"] = "f" * 32 + "-1--1"
    empty = (
        b'{"schemaVersion": 2, "fields": ["versionId","lastModified","size","ETag"],'
        b' "statistics": {"entries": 0, "lastModified": null}, "entries": {}}'
    )
    return [
        pytest.param(BODY, id="sample"),
        *(
            pytest.param(render_manifest(varied_files(seed).values(), "0" * 32 + "-1--1"), id=f"varied-{seed}")
            for seed in range(4)
        ),
        pytest.param(orjson.dumps(escaped), id="escaped"),
        pytest.param(orjson.dumps(mismatch), id="mismatch"),
        pytest.param(empty, id="empty"),
    ]


@pytest.mark.parametrize("mapped", [False, True], ids=["read", "mapped"])
@pytest.mark.parametrize("body", manifests_to_index())
def test_round_trip_answers_as_parsed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, body: bytes, mapped: bool
) -> None:
    if mapped:  # small files are read; map them as well, as large ones are
        monkeypatch.setattr(index_module, "_MAP_FROM", 0)
    parsed = parse_manifest(body, f"{TREE}/manifest.json")
    index = ManifestIndex(tmp_path, 2**30, TREE)
    assert index.load(ZARR, CHECKSUM) is None
    assert index.save(ZARR, CHECKSUM, parsed)
    loaded = index.load(ZARR, CHECKSUM)
    assert loaded is not None
    assert_same(loaded, parsed)


def test_keys_stay_inside_the_directory(tmp_path: Path) -> None:
    index = ManifestIndex(tmp_path / "index", 2**30, TREE)
    parsed = parse_manifest(BODY, "sample")
    for zarr_id, checksum in [("../evil", CHECKSUM), ("..", CHECKSUM), ("a/b", CHECKSUM), ("", CHECKSUM),
                              (ZARR, "../../x"), (ZARR, "not-a-checksum")]:
        assert not index.save(zarr_id, checksum, parsed)
        assert index.load(zarr_id, checksum) is None
    assert list(tmp_path.rglob("*")) == []


def test_trees_sharing_a_directory_keep_apart(tmp_path: Path) -> None:
    """Checksums cover ETags, not version ids: another tree may pin other versions."""
    mine, theirs = ManifestIndex(tmp_path, 2**30, TREE), ManifestIndex(tmp_path, 2**30, "s3://b/")
    assert mine.save(ZARR, CHECKSUM, parse_manifest(BODY, "sample"))
    assert theirs.load(ZARR, CHECKSUM) is None
    assert mine.load(ZARR, CHECKSUM) is not None


# 2. A damaged file is a miss, never an error


def with_header(valid: bytes, change: dict[str, object]) -> bytes:
    """``valid`` with its JSON header changed, the buffers after it kept."""
    prefix, aligned = index_module._PREFIX, index_module._aligned
    magic, version, length = prefix.unpack_from(valid)
    header = orjson.dumps({**orjson.loads(valid[prefix.size : prefix.size + length]), **change})
    padding = bytes(aligned(prefix.size + len(header)) - prefix.size - len(header))
    buffers = valid[aligned(prefix.size + length) :]
    return prefix.pack(magic, version, len(header)) + header + padding + buffers


def damaged(valid: bytes, damage: str) -> bytes:
    prefix, aligned = index_module._PREFIX, index_module._aligned
    magic, version, length = prefix.unpack_from(valid)
    header = orjson.loads(valid[prefix.size : prefix.size + length])
    if damage == "empty":
        return b""
    if damage == "short":
        return valid[:10]
    if damage == "truncated-header":
        return valid[: prefix.size + length // 2]
    if damage == "truncated-buffers":
        return valid[: len(valid) // 2]
    if damage == "truncated-last-buffer":
        return valid[:-9]  # more than the padding (under 8 bytes) after it
    if damage == "other-magic":
        return b"NOTMAGIC" + valid[8:]
    if damage == "other-version":
        return prefix.pack(magic, version + 1, length) + valid[prefix.size :]
    if damage == "garbage-header":
        return valid[: prefix.size] + b"{" * length + valid[prefix.size + length :]
    if damage == "other-byte-order":
        return with_header(valid, {"byteorder": "big" if header["byteorder"] == "little" else "little"})
    if damage == "missing-column":
        return with_header(valid, {"files": {k: v for k, v in header["files"].items() if k != "etags"}})
    assert damage == "ranges-out-of-bounds"  # well-formed, but the root's children lie beyond the table
    at = aligned(prefix.size + length) + header["directories"]["first_child"]["at"]
    return valid[:at] + (10**6).to_bytes(8, sys.byteorder) + valid[at + 8 :]


DAMAGES = [
    "empty", "short", "truncated-header", "truncated-buffers", "truncated-last-buffer", "other-magic",
    "other-version", "garbage-header", "other-byte-order", "missing-column", "ranges-out-of-bounds",
]


@pytest.mark.parametrize("damage", DAMAGES)
def test_damaged_file_is_a_miss_and_is_deleted(
    tmp_path: Path, damage: str, caplog: pytest.LogCaptureFixture
) -> None:
    index = ManifestIndex(tmp_path, 2**30, TREE)
    assert index.save(ZARR, CHECKSUM, parse_manifest(BODY, "sample"))
    (path,) = index_files(tmp_path)
    valid = path.read_bytes()
    assert damaged(valid, damage) != valid
    path.write_bytes(damaged(valid, damage))
    assert index.load(ZARR, CHECKSUM) is None
    assert not path.exists()
    assert "unreadable" in caplog.text
    path.write_bytes(with_header(valid, {}))  # the rebuilding itself harms nothing
    assert index.load(ZARR, CHECKSUM) is not None


# 3. Bounded by size, least recently used first


def test_size_bound_evicts_least_recently_used(tmp_path: Path) -> None:
    parsed = parse_manifest(BODY, "sample")
    probe = ManifestIndex(tmp_path / "probe", 2**30, TREE)
    probe.save(ZARR, CHECKSUM, parsed)
    size = index_files(tmp_path / "probe")[0].stat().st_size
    zarrs = [f"{n:03d}abc-0000-4000-8000-000000000000" for n in range(3)]
    index = ManifestIndex(tmp_path / "index", 2 * size, TREE)
    assert index.save(zarrs[0], CHECKSUM, parsed)
    assert index.save(zarrs[1], CHECKSUM, parsed)
    assert index.load(zarrs[0], CHECKSUM) is not None  # now the most recently used
    assert index.save(zarrs[2], CHECKSUM, parsed)
    assert index.load(zarrs[1], CHECKSUM) is None
    assert index.load(zarrs[0], CHECKSUM) is not None
    assert index.load(zarrs[2], CHECKSUM) is not None
    assert len(index_files(tmp_path / "index")) == 2


def test_a_file_over_the_bound_is_not_kept(tmp_path: Path) -> None:
    index = ManifestIndex(tmp_path, 1, TREE)
    index.save(ZARR, CHECKSUM, parse_manifest(BODY, "sample"))
    assert index.load(ZARR, CHECKSUM) is None
    assert list(tmp_path.iterdir()) == []


def test_deleting_a_mapped_file_keeps_the_manifest_usable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(index_module, "_MAP_FROM", 0)
    index = ManifestIndex(tmp_path, 2**30, TREE)
    parsed = parse_manifest(BODY, "sample")
    index.save(ZARR, CHECKSUM, parsed)
    loaded = index.load(ZARR, CHECKSUM)
    assert loaded is not None
    for path in index_files(tmp_path):
        path.unlink()  # as another worker's eviction would
    assert_same(loaded, parsed)


# 4. The cache in front of the tree


class CountingTree(LocalTree):
    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.fetches = 0

    def fetch_manifest(self, zarr_id: str, checksum: str, read: Reader = read_manifest) -> Manifest:
        self.fetches += 1
        return super().fetch_manifest(zarr_id, checksum, read)


@pytest.fixture
def tree(tmp_path: Path) -> CountingTree:
    path = tmp_path / "tree" / manifest_path(ZARR, CHECKSUM)
    path.parent.mkdir(parents=True)
    path.write_bytes(BODY)
    return CountingTree(tmp_path / "tree")


def test_cache_serves_the_indexed_copy_and_a_new_cache_needs_no_tree(
    tree: CountingTree, tmp_path: Path
) -> None:
    index = ManifestIndex(tmp_path / "index", 2**30, tree.root)
    cache = ManifestCache(tree, 2**30, 60, index)
    parsed = cache.manifest(ZARR, CHECKSUM)
    cache.flush()  # saved in the background, after the first answer
    assert tree.fetches == 1
    assert index_files(tmp_path / "index")
    first = cache.manifest(ZARR, CHECKSUM)
    assert first is not parsed  # the saved copy took the parsed one's place
    assert_same(first, parsed)
    (tmp_path / "tree" / manifest_path(ZARR, CHECKSUM)).unlink()
    again = ManifestCache(tree, 2**30, 60, index).manifest(ZARR, CHECKSUM)  # a restart
    assert tree.fetches == 1
    assert_same(again, first)
    assert_same(again, parse_manifest(BODY, first.source))


def test_cache_with_an_unwritable_index_serves_the_parsed_manifest(
    tree: CountingTree, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_bytes(b"")
    index = ManifestIndex(blocker / "index", 2**30, tree.root)  # its parent is a file
    cache = ManifestCache(tree, 2**30, 60, index)
    served = cache.manifest(ZARR, CHECKSUM)
    cache.flush()
    assert cache.manifest(ZARR, CHECKSUM) is served
    assert_same(served, parse_manifest(BODY, served.source))
    assert "cannot write to the manifest index" in caplog.text


def test_parses_at_once_are_bounded(
    tree: CountingTree, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    zarrs = [f"{n:03d}abc-0000-4000-8000-000000000000" for n in range(8)]
    for zarr_id in zarrs:
        path = tmp_path / "tree" / manifest_path(zarr_id, CHECKSUM)
        path.parent.mkdir(parents=True)
        path.write_bytes(BODY)
    running, most = 0, 0
    lock = threading.Lock()

    def slow_read(stream: IO[bytes], source: str) -> Manifest:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        time.sleep(0.05)  # lets other misses arrive meanwhile; nothing is timed
        with lock:
            running -= 1
        return read_manifest(stream, source)

    monkeypatch.setattr(cache_module, "read_manifest", slow_read)
    cache = ManifestCache(tree, 2**30, 60, ManifestIndex(tmp_path / "index", 2**30, tree.root))
    with ThreadPoolExecutor(len(zarrs)) as pool:
        manifests = list(pool.map(lambda zarr_id: cache.manifest(zarr_id, CHECKSUM), zarrs))
    assert 1 <= most <= PARSES_AT_ONCE
    assert all(m.statistics.entries == len(sample_files()) for m in manifests)


# 5. A real server, restarted


SPECIAL_FILES = [
    ManifestFile("my data/\u00e9t\u00e9 #1?.bin", "v0/+=", WHEN, 10, f"{100:032x}"),
    ManifestFile("my data/a&b<c>'\".txt", "v1", WHEN, 11, f"{101:032x}"),
]
SPECIAL_CHECKSUM, SPECIAL_BODY = manifest_body(SPECIAL_FILES)


@pytest.fixture
def server_tree(tmp_path: Path) -> Path:
    root = tmp_path / "tree"
    for zarr_id, checksum, body in [(ZARR, CHECKSUM, BODY), (OTHER, SPECIAL_CHECKSUM, SPECIAL_BODY)]:
        path = root / manifest_path(zarr_id, checksum)
        path.parent.mkdir(parents=True)
        path.write_bytes(body)
    return root


def answers(url: str) -> list[tuple[int, str | None, bytes]]:
    """Status, Location and body of what clients ask of both Zarrs."""
    sample, special = zarr_version_path(ZARR, CHECKSUM), zarr_version_path(OTHER, SPECIAL_CHECKSUM)
    requests = [
        ("PROPFIND", sample, "0"), ("PROPFIND", sample, "1"), ("PROPFIND", f"{sample}arr/0/", "1"),
        ("PROPFIND", f"{special}my%20data/", "1"), ("GET", f"{sample}arr/", None),
        ("GET", f"{sample}arr/0/10", None), ("GET", f"{special}my%20data/a%26b%3Cc%3E'%22.txt", None),
        ("GET", f"{sample}nope", None),
    ]
    with httpx.Client(base_url=url, timeout=10) as client:
        result = []
        for method, path, depth in requests:
            response = client.request(method, path, headers={"Depth": depth} if depth else {})
            result.append((response.status_code, response.headers.get("Location"), response.content))
    return result


def serve(tree: Path, index: Path, log: Path) -> AbstractContextManager[str]:
    return zarrdav_server(
        "--manifest-root", str(tree), "--zarr-base-url", BASE, "--index-dir", str(index), log=log
    )


def test_restarted_server_answers_from_the_index_alone(server_tree: Path, tmp_path: Path) -> None:
    index = tmp_path / "index"
    with serve(server_tree, index, tmp_path / "first.log") as url:
        first = answers(url)
    assert [status for status, _, _ in first] == [207, 207, 207, 207, 200, 307, 307, 404]
    assert len(index_files(index)) == 2
    for path in server_tree.rglob("*.json"):
        path.unlink()  # the restarted server cannot have read them
    with serve(server_tree, index, tmp_path / "second.log") as url:
        assert answers(url) == first
    assert "unreadable" not in (tmp_path / "second.log").read_text()


def test_damaged_index_file_is_parsed_again(server_tree: Path, tmp_path: Path) -> None:
    index = tmp_path / "index"
    with serve(server_tree, index, tmp_path / "first.log") as url:
        first = answers(url)
    files = index_files(index)
    sizes = {path: path.stat().st_size for path in files}
    files[0].write_bytes(files[0].read_bytes()[: sizes[files[0]] // 2])  # as a crash would leave it
    files[1].write_bytes(b"\0" * sizes[files[1]])
    log = tmp_path / "second.log"
    with serve(server_tree, index, log) as url:
        assert answers(url) == first
    assert log.read_text().count("unreadable") == 2
    assert {path: path.stat().st_size for path in index_files(index)} == sizes  # written anew


def test_unwritable_default_index_dir_still_serves(server_tree: Path, tmp_path: Path) -> None:
    # An index dir given explicitly must be writable (test_startup.py); the
    # default one only costs its speed when it cannot be written.
    blocker = tmp_path / "a-file"
    blocker.write_bytes(b"")  # a home under a file: not even root can create ~/.cache in it
    with serve(server_tree, tmp_path / "index", tmp_path / "indexed.log") as url:
        expected = answers(url)
    log = tmp_path / "unindexed.log"
    default = {"HOME": str(blocker), "ZARRDAV_INDEX_DIR": Settings().index_dir}
    args = ["--manifest-root", str(server_tree), "--zarr-base-url", BASE]
    with zarrdav_server(*args, env=default, log=log) as url:
        assert answers(url) == expected
    # Said once, though both manifests failed to be saved.
    assert log.read_text().count("cannot write to the manifest index") == 1


def test_home_is_expanded_and_an_empty_index_dir_means_none(server_tree: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    args = ["--manifest-root", str(server_tree), "--zarr-base-url", BASE]
    with zarrdav_server(*args, env={"HOME": str(home), "ZARRDAV_INDEX_DIR": ""}) as url:
        expected = answers(url)
    assert list(home.iterdir()) == []
    with zarrdav_server(*args, env={"HOME": str(home), "ZARRDAV_INDEX_DIR": "~/idx"}) as url:
        assert answers(url) == expected
    assert len(index_files(home / "idx")) == 2


def test_workers_share_one_index(server_tree: Path, tmp_path: Path) -> None:
    index = tmp_path / "index"
    with zarrdav_server("--manifest-root", str(server_tree), "--zarr-base-url", BASE,
                        "--index-dir", str(index), "--workers", "2") as url:
        first = answers(url)
        for _ in range(4):  # the kernel spreads connections over both workers
            assert answers(url) == first
    assert len(index_files(index)) == 2
    assert not [p for p in index.iterdir() if p.name.endswith(".zdx-tmp")]
