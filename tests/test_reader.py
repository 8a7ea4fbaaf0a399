"""Loading manifests: lookups, listings, statistics, and every documented fault."""

from __future__ import annotations

import bisect
import hashlib
from pathlib import Path

import numpy as np
import orjson
import pytest

from tests.manifests import WHEN, sample_files, sample_manifest, varied_files
from zarrdav.errors import ManifestError
from zarrdav.manifests.columns import ColumnBuilder
from zarrdav.manifests.model import Manifest, ManifestDirectory, ManifestFile
from zarrdav.manifests.reader import parse_manifest, read_manifest_file

DOC_EXAMPLE = b"""{
 "schemaVersion": 2,
 "fields": ["versionId","lastModified","size","ETag"],
 "statistics": {
  "entries": 2,
  "depth": 1,
  "totalSize": 8758,
  "lastModified": "2022-06-27T23:07:48+00:00",
  "zarrChecksum": "6ddc4625befef8d6f9796835648162be-509--710206390"
 },
 "entries": {
  ".zattrs": ["VwOSu7IVLAQcQHcqOesmlrEDm2sL_Tfs","2022-06-27T23:07:47+00:00",8312,"cb32b88f6488d55818aba94746bcc19a"],
  "0": {
   ".zarray": ["Ou6TnKwWPmEJrL.0utCWLPxgfr_lA0I1","2022-06-27T23:07:48+00:00",446,"5477ec3da352681e5ba6f6ea550ef740"]
  }
 }
}
"""


def names(manifest: Manifest, path: str) -> list[str]:
    directory = manifest.lookup(path)
    assert isinstance(directory, ManifestDirectory)
    return [entry.name for entry in manifest.children(directory)]


def test_doc_example() -> None:
    manifest = parse_manifest(DOC_EXAMPLE, "example.json")
    zarray = manifest.lookup("0/.zarray")
    assert zarray == ManifestFile(
        path="0/.zarray",
        version_id="Ou6TnKwWPmEJrL.0utCWLPxgfr_lA0I1",
        last_modified=WHEN.replace(second=48),
        size=446,
        etag="5477ec3da352681e5ba6f6ea550ef740",
    )
    assert names(manifest, "") == [".zattrs", "0"]
    stats = manifest.statistics
    assert (stats.entries, stats.depth, stats.total_size) == (2, 1, 8758)
    assert stats.last_modified == WHEN.replace(second=48)
    assert stats.zarr_checksum == "6ddc4625befef8d6f9796835648162be-509--710206390"


def test_lookups_and_sorted_listings() -> None:
    _, body = sample_manifest()
    manifest = parse_manifest(body, "sample")
    assert names(manifest, "") == [".zattrs", ".zgroup", "arr"]
    # Byte order, directories and files merged: "13" < "131".
    assert names(manifest, "arr") == [".zarray", "0", "1", "13", "131"]
    assert names(manifest, "arr/0") == ["0", "1", "10", "2"]
    assert names(manifest, "arr/0/") == ["0", "1", "10", "2"]
    assert manifest.lookup("arr/131").size == 500  # type: ignore[union-attr]
    assert manifest.lookup("arr/0/10").etag == f"{6:032x}"  # type: ignore[union-attr]
    for absent in ["nope", "arr/2", "arr/0/3", "arr/131/x", "arr/0/1/", ".zattrs/x", "arr//0"]:
        assert manifest.lookup(absent) is None, absent
    assert isinstance(manifest.lookup(""), ManifestDirectory)
    stats = manifest.statistics
    assert stats.entries == 10
    assert stats.depth == 2
    assert stats.total_size == sum(f.size for f in sample_files())
    assert stats.last_modified == WHEN.replace(second=10)


def test_files_round_trip() -> None:
    _, body = sample_manifest()
    manifest = parse_manifest(body, "sample")
    assert sorted(manifest.files(), key=lambda f: f.path) == sorted(sample_files(), key=lambda f: f.path)


@pytest.mark.parametrize("layout", ["compact", "pretty", "reordered", "fields-shuffled"])
def test_every_layout_reads_the_same(layout: str) -> None:
    checksum, body = sample_manifest()
    document = orjson.loads(body)
    if layout == "compact":
        body = orjson.dumps(document)
    elif layout == "pretty":
        body = orjson.dumps(document, option=orjson.OPT_INDENT_2)
    elif layout == "reordered":
        document = {"entries": document["entries"], **document}
        document["entries"] = dict(reversed(list(document["entries"].items())))
        body = orjson.dumps(document)
    else:
        document["fields"] = ["size", "ETag", "versionId", "lastModified"]

        def shuffle(tree: dict) -> dict:  # type: ignore[type-arg]
            return {
                k: shuffle(v) if isinstance(v, dict) else [v[2], v[3], v[0], v[1]]
                for k, v in tree.items()
            }

        document["entries"] = shuffle(document["entries"])
        body = orjson.dumps(document)
    manifest = parse_manifest(body, layout)
    assert sorted(manifest.files(), key=lambda f: f.path) == sorted(sample_files(), key=lambda f: f.path)
    assert names(manifest, "arr") == [".zarray", "0", "1", "13", "131"]
    assert manifest.statistics.zarr_checksum == checksum


def test_read_from_file_and_empty_zarr(tmp_path: Path) -> None:
    _, body = sample_manifest()
    (tmp_path / "m.json").write_bytes(body)
    assert read_manifest_file(tmp_path / "m.json").statistics.entries == 10
    empty = b'{"schemaVersion": 2, "fields": ["versionId","lastModified","size","ETag"],' \
        b' "statistics": {"entries": 0, "lastModified": null}, "entries": {}}'
    manifest = parse_manifest(empty, "empty")
    assert manifest.children(manifest.root) == []
    assert manifest.statistics.last_modified is None


def test_escaped_and_unicode_names() -> None:
    document = orjson.loads(sample_manifest()[1])
    entry = document["entries"][".zattrs"]
    document["entries"] = {'q"uote': entry, "ünï": {"c\\d": entry}}
    manifest = parse_manifest(orjson.dumps(document), "unicode")
    assert names(manifest, "") == ['q"uote', "ünï"]
    assert manifest.lookup("ünï/c\\d").size == 20  # type: ignore[union-attr]


ENTRY = ["VwOSu7IVLAQcQHcqOesmlrEDm2sL_Tfs", "2022-06-27T23:07:47+00:00", 8312, "cb32b88f6488d55818aba94746bcc19a"]


def manifest_with(**changes: object) -> bytes:
    document: dict[str, object] = {
        "schemaVersion": 2,
        "fields": ["versionId", "lastModified", "size", "ETag"],
        "statistics": {},
        "entries": {"a": {"b": ENTRY}},
    }
    document.update(changes)
    return orjson.dumps(document, option=orjson.OPT_INDENT_2)


@pytest.mark.parametrize(
    ("body", "fault"),
    [
        (DOC_EXAMPLE[: len(DOC_EXAMPLE) // 2], "not valid JSON"),
        (DOC_EXAMPLE[:-4], "not valid JSON"),
        (b"", "not valid JSON"),
        (b"[1, 2]", "not a JSON object"),
        (manifest_with(schemaVersion=3), "unsupported schemaVersion 3"),
        (manifest_with(fields=["versionId", "size", "ETag"]), "'fields' lacks 'lastModified'"),
        (manifest_with(fields="versionId"), "'fields' must be a list"),
        (manifest_with(entries=[]), "'entries' is missing or not an object"),
        (manifest_with(entries={"a": ENTRY[:3]}), "entry 'a' has 3 values, expected 4"),
        (manifest_with(entries={"a": [*ENTRY, "x"]}), "entry 'a' has 5 values, expected 4"),
        (manifest_with(entries={"a": {"b": [1, *ENTRY[1:]]}}), "entry 'a/b': versionId must be"),
        (manifest_with(entries={"a": [ENTRY[0], "yesterday", *ENTRY[2:]]}), "lastModified 'yesterday'"),
        (manifest_with(entries={"a": [*ENTRY[:2], "8312", ENTRY[3]]}), "size '8312' is not a byte count"),
        (manifest_with(entries={"a": [*ENTRY[:2], -1, ENTRY[3]]}), "size -1 is not a byte count"),
        (manifest_with(entries={"a": [*ENTRY[:3], None]}), "entry 'a': ETag must be"),
        (manifest_with(entries={"a": 5}), "entry 'a' is a int, not a file or directory"),
        (manifest_with(entries={"a": {"b": "text"}}), "entry 'a/b' is a str"),
        (manifest_with(entries={"a/b": ENTRY}), "entry name 'a/b'"),
        (manifest_with(entries={"x": {".": ENTRY}}), "entry name '.' at 'x/.'"),
        (manifest_with(entries={"..": {"b": ENTRY}}), "entry name '..'"),
        (manifest_with(entries={"": ENTRY}), "entry name ''"),
    ],
)
def test_malformed_manifests_raise_one_documented_error(body: bytes, fault: str) -> None:
    with pytest.raises(ManifestError) as raised:
        parse_manifest(body, "zarrs/bad.json")
    assert str(raised.value).startswith("zarrs/bad.json: ")
    assert fault in str(raised.value)
    assert raised.value.source == "zarrs/bad.json"


def test_fast_and_full_paths_agree() -> None:
    """The canonical layout takes the fast path; the full path must see the same."""
    import io

    from zarrdav.manifests import reader

    _, body = sample_manifest()
    fast = reader._parse_fast(io.BytesIO(body), "sample")
    full = reader._parse_full(body, "sample")
    assert list(fast.files()) == list(full.files()) == list(parse_manifest(body, "sample").files())
    assert fast.statistics == full.statistics


@pytest.mark.parametrize("seed", range(6))
def test_fast_path_matches_full_path_on_varied_manifests(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Random trees, odd values and tiny blocks (many block boundaries): both paths agree."""
    import io
    import random

    from zarrdav.manifests import reader
    from zarrdav.manifests.writer import render_manifest

    files = varied_files(seed)
    body = render_manifest(files.values(), "0" * 32 + "-1--1")
    monkeypatch.setattr(reader, "_CHUNK", random.Random(seed).randint(200, 2000))
    fast = reader._parse_fast(io.BytesIO(body), "varied")
    full = reader._parse_full(body, "varied")
    assert sorted(fast.files(), key=lambda f: f.path) == sorted(files.values(), key=lambda f: f.path)
    assert list(fast.files()) == list(full.files())
    assert fast.statistics == full.statistics
    for path in files:
        parent = path.rpartition("/")[0]
        directory = fast.lookup(parent)
        assert isinstance(directory, ManifestDirectory)
        assert [e.name for e in fast.children(directory)] == [e.name for e in full.children(directory)]  # type: ignore[arg-type]


@pytest.mark.parametrize("seed", range(4))
def test_listing_rows_follow_children(seed: int) -> None:
    """Subdirectories placed among the files, columns read a range at a time: as ``children``."""
    import random
    from datetime import timedelta

    from zarrdav.manifests.writer import render_manifest

    rng = random.Random(seed)
    # Even seeds: one-byte names (a fixed-width column); odd: packed ones.
    # Seeds 0 and 1: MD5 ETags (a digest column); 2 and 3: multipart ones.
    alphabet, longest = ("ab019_-", 1) if seed % 2 == 0 else ("ab019._-\u00e9", 4)
    files: dict[str, ManifestFile] = {}
    for _ in range(300):
        parts = ["".join(rng.choices(alphabet, k=rng.randint(1, longest))) for _ in range(rng.randint(1, 3))]
        path = "/".join(parts)
        clashes = any(f.startswith(path + "/") or path.startswith(f + "/") for f in files)
        if any(p in (".", "..") for p in parts) or clashes:
            continue
        etag = f"{rng.getrandbits(128):032x}" + ("" if seed < 2 else f"-{rng.randint(2, 9)}")
        modified = WHEN + timedelta(seconds=rng.randint(0, 9))
        files[path] = ManifestFile(path, "v" * 32, modified, rng.randint(0, 10**12), etag)
    manifest = parse_manifest(render_manifest(files.values(), "0" * 32 + "-1--1"), "varied")
    pending = [manifest.root]
    while pending:
        directory = pending.pop()
        children = manifest.children(directory)
        assert list(manifest.listing(directory)) == [
            child if isinstance(child, ManifestDirectory)
            else (child.name, child.size, child.last_modified, child.etag)
            for child in children
        ]
        pending += [child for child in children if isinstance(child, ManifestDirectory)]


@pytest.mark.parametrize("column", ["packed", "fixed", "digests"])
def test_columns_bisect_and_find_as_bisect_does(column: str) -> None:
    values = sorted({b"0", b"0.1", b"1", b"10", b"2", b"a", b"\xc3\xa9"}) if column == "packed" else (
        [b"%02d" % n for n in range(0, 40, 3)] if column == "fixed"
        else sorted(hashlib.md5(b"%d" % n).hexdigest().encode() for n in range(9)))
    builder = ColumnBuilder(digests=column == "digests")
    builder.extend(b"".join(values), np.array([len(v) for v in values]))
    built = builder.build()
    assert type(built).__name__ == {"packed": "PackedBytes", "fixed": "FixedBytes", "digests": "HexDigests"}[column]
    keys = [*values, b"", b"00", b"9", b"zz", b"\xff", values[0][:-1] + b"~"]
    for key in keys:
        for low, high in ((0, len(values)), (1, len(values) - 1), (2, 2)):
            assert built.bisect_left(key, low, high) == bisect.bisect_left(values, key, low, high)
            found = built.index_of(key, low, high)
            assert found == (values.index(key) if key in values[low:high] else None)


@pytest.mark.parametrize("limits", ["as shipped", "tiny"])
def test_lookups_of_large_and_small_directories_again_and_again(
    limits: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A chunk directory of 5,000 files beside small ones: every file is
    found, twice, and no absent or misplaced name is; with a tiny bound the
    remembered directories are dropped and resolved again as the test goes."""
    import zarrdav.manifests.model as model
    from zarrdav.manifests.writer import render_manifest

    if limits == "tiny":
        monkeypatch.setattr(model, "_DIRECTORIES_KEPT", 3)
    paths = [f"big/0.{n}" for n in range(5000)] + [
        f"arr/{z}/{y}/{x}" for z in range(3) for y in range(4) for x in range(12)
    ] + [".zattrs", "arr/.zarray"]
    files = {
        path: ManifestFile(path, f"v{n:031d}", WHEN, n, f"{n:032x}") for n, path in enumerate(paths)
    }
    manifest = parse_manifest(render_manifest(files.values(), "0" * 32 + "-1--1"), "many")
    for _ in range(2):
        for path, file in files.items():
            assert manifest.lookup(path) == file
    for absent in ["big/0.5000", "big/0.", "arr/0/0/12", "arr/0/9/0", ".zattrs/x", "big/0.1/",
                   "arr/.zarray/", "nope", "arr/0/0/0/0"]:
        assert manifest.lookup(absent) is None, absent
    directory = manifest.lookup("arr/0/0/")
    assert isinstance(directory, ManifestDirectory) and manifest.lookup("arr/0/0") == directory
    assert [entry.name for entry in manifest.children(directory)] == sorted(str(x) for x in range(12))
