"""`zarrdav manifest diff` of two states written to moto, against the test's own diff."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from zarrdav.cli import main
from zarrdav.manifests.diff import summarize
from zarrdav.manifests.layout import manifest_path
from zarrdav.manifests.reader import read_manifest_file

ZARR = "d1ff0a2b-3c4d-4e5f-8a9b-0c1d2e3f4a5b"

# Names whose key order is not the tree's ("a-c" < "a/b/c" as keys, folder "a" < "a-c"
# as names), a folder that becomes a file, a file rewritten with the same bytes.
BEFORE = {
    ".zgroup": b'{"zarr_format":2}',
    "0/.zarray": b'{"chunks":[1]}',
    "0/0.0": b"aaaa",
    "0/0.1": b"bbbbbb",
    "1/0.0": b"c",
    "1/0.1": b"dd",
    "13": b"thirteen",
    "131/0": b"x" * 10,
    "a/b/c": b"same",
    "swap/inner": b"was a folder",
}
AFTER = {
    ".zgroup": b'{"zarr_format":2}',
    "0/.zarray": b'{"chunks":[1]}',
    "0/0.0": b"AAAAAAA",
    "13": b"thirteen",
    "130/x": b"new",
    "131/0": b"y" * 10,
    "2/0.0": b"eee",
    "a/b/c": b"same",
    "a/b/d": b"ddd",
    "a-c": b"dash",
    "swap": b"now a file",
}


def own_diff(old: dict[str, bytes], new: dict[str, bytes]) -> dict[str, Any]:
    added = sorted(set(new) - set(old))
    removed = sorted(set(old) - set(new))
    changed = sorted(path for path in set(old) & set(new) if old[path] != new[path])
    return {
        "added": {path: len(new[path]) for path in added},
        "removed": {path: len(old[path]) for path in removed},
        "changed": {path: (len(old[path]), len(new[path])) for path in changed},
        "bytes_added": sum(len(new[p]) for p in added) + sum(len(new[p]) for p in changed),
        "bytes_removed": sum(len(old[p]) for p in removed) + sum(len(old[p]) for p in changed),
    }


def write_state(s3: Any, bucket: str, endpoint: str, state: dict[str, bytes], out: Path,
                capsys: pytest.CaptureFixture[str]) -> str:
    """Make the Zarr on the bucket exactly ``state`` (rewriting every key), build its manifest."""
    prefix = f"zarr/{ZARR}/"
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])
    for item in listed:
        if item["Key"][len(prefix):] not in state:
            s3.delete_object(Bucket=bucket, Key=item["Key"])
    for path, body in state.items():
        s3.put_object(Bucket=bucket, Key=prefix + path, Body=body)
    assert main(["manifest", "build", "--bucket", bucket, "--endpoint-url", endpoint,
                 "--zarr-id", ZARR, "--out", str(out)]) == 0
    return capsys.readouterr().out.split()[1]


def test_diff_equals_the_tests_own(
    s3: Any, s3_endpoint: str, bucket: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old = write_state(s3, bucket, s3_endpoint, BEFORE, tmp_path, capsys)
    new = write_state(s3, bucket, s3_endpoint, AFTER, tmp_path, capsys)
    expected = own_diff(BEFORE, AFTER)

    files = [str(tmp_path / manifest_path(ZARR, checksum)) for checksum in (old, new)]
    by_checksum = ["--zarr-id", ZARR, "--manifest-root", str(tmp_path), old, new]
    for arguments in (files, by_checksum):
        assert main(["manifest", "diff", "--json", *arguments]) == 0
        document = json.loads(capsys.readouterr().out)
        assert {e["path"]: e["size"] for e in document["added"]} == expected["added"]
        assert {e["path"]: e["size"] for e in document["removed"]} == expected["removed"]
        assert {e["path"]: (e["old_size"], e["new_size"]) for e in document["changed"]} == expected["changed"]
        assert document["summary"] == {
            "added": len(expected["added"]), "removed": len(expected["removed"]),
            "changed": len(expected["changed"]),
            "bytes_added": expected["bytes_added"], "bytes_removed": expected["bytes_removed"],
        }

    assert main(["manifest", "diff", *files]) == 0
    captured = capsys.readouterr()
    assert sorted(captured.out.splitlines()) == sorted(
        [f"+ {p}\t{size}" for p, size in expected["added"].items()]
        + [f"- {p}\t{size}" for p, size in expected["removed"].items()]
        + [f"~ {p}\t{a} -> {b}" for p, (a, b) in expected["changed"].items()]
    )
    assert captured.err == (
        f"{len(expected['added'])} added, {len(expected['removed'])} removed, "
        f"{len(expected['changed'])} changed; {expected['bytes_added']} bytes added, "
        f"{expected['bytes_removed']} bytes removed\n"
    )

    # Backwards is the mirror image; a manifest against itself is no change.
    back = summarize(read_manifest_file(Path(files[1])), read_manifest_file(Path(files[0])))
    assert (back.added, back.removed, back.changed) == (
        len(expected["removed"]), len(expected["added"]), len(expected["changed"])
    )
    same = summarize(read_manifest_file(Path(files[0])), read_manifest_file(Path(files[0])))
    assert same.as_json() == {"added": 0, "removed": 0, "changed": 0, "bytes_added": 0, "bytes_removed": 0}


def test_diff_of_a_missing_manifest_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["manifest", "diff", str(tmp_path / "a.json"), str(tmp_path / "b.json")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("zarrdav: error: ") and "No such file" in err and len(err.splitlines()) == 1
    assert main(["manifest", "diff", "--zarr-id", ZARR, "--manifest-root", str(tmp_path),
                 "0" * 32 + "-1--1", "0" * 32 + "-2--2"]) == 2
    assert "no manifest" in capsys.readouterr().err
