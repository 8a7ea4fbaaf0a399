"""`zarrdav manifest gc` against moto's S3 server with versioning on.

The test keeps its own account of every version it writes and of the state
each manifest froze, and compares gc's figures with it: nothing gc reports
is taken from gc's own reading of the manifests.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from zarrdav.cli import main
from zarrdav.demo.archive import ArchiveData, Asset, Dandiset, Version, serve_archive
from zarrdav.manifests.gc import SurveyOutdated, delete_reclaimable, survey_zarr
from zarrdav.manifests.trees import LocalTree
from zarrdav.upstreams.s3 import make_s3_client

ZARR = "5a1e0c42-93b7-4d2e-8f61-0c7d9e3b2a14"
OTHER = "5a1f77d0-0b8e-4c3a-9d21-6e5f4a3b2c10"  # no manifest at all


@dataclass
class History:
    """Every version the test wrote, and each state it built a manifest of."""

    s3: Any
    bucket: str
    zarr_id: str
    versions: dict[tuple[str, str], int] = field(default_factory=dict)  # (path, version id) -> size
    state: dict[str, tuple[str, int]] = field(default_factory=dict)  # path -> (version id, size)
    pinned: set[tuple[str, str]] = field(default_factory=set)
    delete_markers: int = 0
    checksums: list[str] = field(default_factory=list)

    def put(self, path: str, body: bytes) -> None:
        answer = self.s3.put_object(Bucket=self.bucket, Key=f"zarr/{self.zarr_id}/{path}", Body=body)
        self.versions[(path, answer["VersionId"])] = len(body)
        self.state[path] = (answer["VersionId"], len(body))

    def delete(self, path: str) -> None:
        self.s3.delete_object(Bucket=self.bucket, Key=f"zarr/{self.zarr_id}/{path}")
        self.delete_markers += 1
        del self.state[path]

    def build(self, endpoint: str, out: Path, capsys: pytest.CaptureFixture[str]) -> str:
        assert main(["manifest", "build", "--bucket", self.bucket, "--endpoint-url", endpoint,
                     "--zarr-id", self.zarr_id, "--out", str(out)]) == 0
        checksum = capsys.readouterr().out.split()[1]
        self.pinned |= {(path, version) for path, (version, _) in self.state.items()}
        self.checksums.append(checksum)
        return checksum

    def current(self) -> set[tuple[str, str]]:
        return {(path, version) for path, (version, _) in self.state.items()}

    def size(self, versions: set[tuple[str, str]]) -> int:
        return sum(self.versions[v] for v in versions)


def write_history(s3: Any, bucket: str, endpoint: str, out: Path,
                  capsys: pytest.CaptureFixture[str]) -> History:
    """Written, overwritten, partly deleted and rewritten, a manifest at each step,
    with versions no manifest saw in between and a current state not yet pinned."""
    history = History(s3, bucket, ZARR)
    history.put(".zgroup", b'{"zarr_format":2}')
    history.put("0/.zarray", b'{"chunks":[2]}')
    history.put("0/0", bytes(4))
    history.put("0/1", b"abcdefgh")
    history.build(endpoint, out, capsys)
    history.put("0/0", b"\x01" * 6)  # overwritten twice before the next manifest:
    history.put("0/0", b"\x02" * 7)  # the first of these is pinned by none
    history.put("0/2", b"\x03" * 9)
    history.build(endpoint, out, capsys)
    history.delete("0/1")
    history.put("0/0", b"\x04" * 5)
    history.build(endpoint, out, capsys)
    history.put("0/1", b"rewritten")
    history.put(".zgroup", b'{"zarr_format": 2}')
    history.build(endpoint, out, capsys)
    history.put("0/2", b"\x05" * 11)  # the live Zarr moved on: current, not pinned yet
    history.put("1/0", b"\x06" * 3)
    return history


def gc_json(endpoint: str, bucket: str, out: Path, capsys: pytest.CaptureFixture[str],
            *extra: str, zarr: str = ZARR) -> dict[str, Any]:
    assert main(["manifest", "gc", "--bucket", bucket, "--endpoint-url", endpoint, "--zarr-id", zarr,
                 "--manifest-root", str(out), "--json", *extra]) == 0
    document: dict[str, Any] = json.loads(capsys.readouterr().out)
    return document


def bucket_versions(s3: Any, bucket: str, zarr_id: str) -> set[tuple[str, str]]:
    prefix = f"zarr/{zarr_id}/"
    pages = s3.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=prefix)
    return {(v["Key"][len(prefix):], v["VersionId"]) for page in pages for v in page.get("Versions", [])}


def test_gc_figures_match_what_was_written(
    s3: Any, s3_endpoint: str, bucket: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    history = write_history(s3, bucket, s3_endpoint, tmp_path, capsys)
    pinned = history.pinned
    current_unpinned = history.current() - pinned
    reclaimable = set(history.versions) - pinned - history.current()
    assert reclaimable and current_unpinned  # the history exercises every kind

    [report] = gc_json(s3_endpoint, bucket, tmp_path, capsys)["zarrs"]
    assert report["zarr_id"] == ZARR
    assert report["manifests"] == sorted(history.checksums)
    assert report["pinned"] == {"count": len(pinned), "bytes": history.size(pinned)}
    assert report["current_unpinned"] == {
        "count": len(current_unpinned), "bytes": history.size(current_unpinned)
    }
    assert report["reclaimable"] == {"count": len(reclaimable), "bytes": history.size(reclaimable)}
    assert report["delete_markers"] == history.delete_markers
    assert report["pins_missing"] == 0
    assert "used_by" not in report

    # The table says the same to a person.
    assert main(["manifest", "gc", "--bucket", bucket, "--endpoint-url", s3_endpoint, "--zarr-id", ZARR,
                 "--manifest-root", str(tmp_path)]) == 0
    header, row = capsys.readouterr().out.splitlines()
    assert header.split()[:2] == ["ZARR", "MANIFESTS"]
    assert row.split()[:4] == [ZARR, str(len(history.checksums)), str(len(pinned)),
                               f"({history.size(pinned)}"]


def test_delete_removes_exactly_the_unpinned_versions(
    s3: Any, s3_endpoint: str, bucket: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifests = tmp_path / "manifests"
    history = write_history(s3, bucket, s3_endpoint, manifests, capsys)
    reclaimable = set(history.versions) - history.pinned - history.current()
    before = bucket_versions(s3, bucket, ZARR)
    assert before == set(history.versions)

    # A dry run lists what it would delete and deletes nothing.
    plan = tmp_path / "plan.jsonl"
    document = gc_json(s3_endpoint, bucket, manifests, capsys, "--delete", "--record", str(plan))
    assert document["would_delete"]["count"] == len(reclaimable)
    planned = [json.loads(line) for line in plan.read_text().splitlines()]
    assert {(r["key"].removeprefix(f"zarr/{ZARR}/"), r["version_id"]) for r in planned} == reclaimable
    assert not any(r["deleted"] for r in planned)
    assert bucket_versions(s3, bucket, ZARR) == before

    record = tmp_path / "deleted.jsonl"
    document = gc_json(s3_endpoint, bucket, manifests, capsys, "--delete", "--yes", "--record", str(record))
    assert document["deleted"] == {
        "count": len(reclaimable), "bytes": history.size(reclaimable), "record": str(record)
    }
    deleted = [json.loads(line) for line in record.read_text().splitlines()]
    assert all(r["deleted"] and r["bucket"] == bucket for r in deleted)
    assert {(r["key"].removeprefix(f"zarr/{ZARR}/"), r["version_id"]) for r in deleted} == reclaimable
    assert bucket_versions(s3, bucket, ZARR) == before - reclaimable

    # Every manifest still verifies, and nothing is left to reclaim.
    assert main(["manifest", "verify", "--bucket", bucket, "--endpoint-url", s3_endpoint,
                 "--zarr-id", ZARR, "--manifest-root", str(manifests)]) == 0
    assert f"{len(history.checksums)} manifests of 1 Zarrs checked" in capsys.readouterr().err
    [report] = gc_json(s3_endpoint, bucket, manifests, capsys)["zarrs"]
    assert report["reclaimable"] == {"count": 0, "bytes": 0}
    assert report["pinned"]["count"] == len(history.pinned)


def test_delete_leaves_alone_a_zarr_without_manifests(
    s3: Any, s3_endpoint: str, bucket: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other = History(s3, bucket, OTHER)
    other.put("zarr.json", b"{}")
    other.put("zarr.json", b'{"a":1}')
    before = bucket_versions(s3, bucket, OTHER)
    record = tmp_path / "deleted.jsonl"
    assert main(["manifest", "gc", "--bucket", bucket, "--endpoint-url", s3_endpoint, "--all",
                 "--manifest-root", str(tmp_path / "empty"), "--delete", "--yes",
                 "--record", str(record)]) == 0
    captured = capsys.readouterr()
    assert f"gc: {OTHER} has no manifest: nothing deleted" in captured.err
    assert "deleted 0 versions" in captured.err
    assert bucket_versions(s3, bucket, OTHER) == before
    assert record.read_text() == ""


def test_delete_refuses_when_a_manifest_appeared_since_the_survey(
    s3: Any, s3_endpoint: str, bucket: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    history = write_history(s3, bucket, s3_endpoint, tmp_path, capsys)
    client = make_s3_client(s3_endpoint)
    tree = LocalTree(tmp_path)
    storage = survey_zarr(client, bucket, "zarr/", ZARR, tree, keep_candidates=True)
    assert storage.candidates
    history.build(s3_endpoint, tmp_path, capsys)  # pins the current state, unseen by the survey
    before = bucket_versions(s3, bucket, ZARR)
    with (tmp_path / "record.jsonl").open("w") as record, pytest.raises(SurveyOutdated):
        delete_reclaimable(client, bucket, "zarr/", storage, tree, record, dry_run=False)
    assert bucket_versions(s3, bucket, ZARR) == before


def test_gc_names_manifests_no_published_version_uses(
    s3: Any, s3_endpoint: str, bucket: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    history = write_history(s3, bucket, s3_endpoint, tmp_path, capsys)
    first, second, third, fourth = history.checksums
    data = ArchiveData(
        dandisets=(
            Dandiset("000042", "2024-01-01T00:00:00Z", "2024-06-01T00:00:00Z", versions=(
                _version("0.240101.0000", first), _version("0.240301.0000", third),
                _version("draft", fourth),
            )),
        ),
        s3_base_url=f"{s3_endpoint}/{bucket}",
    )
    with serve_archive(data) as api_url:
        [report] = gc_json(s3_endpoint, bucket, tmp_path, capsys, "--api-url", api_url)["zarrs"]
        assert report["used_by"] == {
            fourth: ["draft"], first: ["0.240101.0000"], third: ["0.240301.0000"]
        }
        assert report["unpublished_manifests"] == sorted([second, fourth])
        assert main(["manifest", "gc", "--bucket", bucket, "--endpoint-url", s3_endpoint,
                     "--zarr-id", ZARR, "--manifest-root", str(tmp_path), "--api-url", api_url]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[-1] == "UNPUBLISHED" and lines[1].split()[-1] == "2"
    assert sorted(lines[2:]) == sorted(
        f"{ZARR} {checksum}: no published version uses it" for checksum in (second, fourth)
    )


def _version(name: str, checksum: str) -> Version:
    asset = Asset(
        path="sub-01/sample.ome.zarr", asset_id=f"asset-{name}", blob=None, zarr=ZARR, size=1,
        created="2024-01-01T00:00:00Z", modified="2024-01-01T00:00:00Z",
        metadata={"digest": {"dandi:dandi-zarr-checksum": checksum}},
    )
    status = "Draft" if name == "draft" else "Published"
    return Version(name, "A Dandiset", status, "2024-01-01T00:00:00Z", "2024-01-01T00:00:00Z",
                   assets=(asset,))
