"""The versions page of a Zarr from a running `zarrdav serve`: newest first (marked), entries, what changed."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from tests.servers import zarrdav_server
from tests.test_diff import AFTER, BEFORE, own_diff
from zarrdav.manifests.checksum import zarr_checksum
from zarrdav.manifests.layout import manifest_path
from zarrdav.manifests.model import ManifestFile
from zarrdav.manifests.writer import render_manifest

ZARR = "7e57a6e1-0b2c-4d3e-9f40-5a6b7c8d9e0f"
BASE = "http://127.0.0.1:9/bucket/zarr"  # redirect target; never contacted
LATEST = {**AFTER, "0/0.0": b"rewritten again", "3/0": b"z"}
ROW = re.compile(
    r'<tr><td class="name"><a href="(?P<name>[^"]+)">[^<]*</a>(?P<newest> <span class="newest">newest</span>)?</td>'
    r'<td class="time">[^<]*</td><td class="count">(?P<entries>[0-9,]+)</td><td class="size"[^>]*>[^<]*</td>'
    r'<td[^>]*>(?:<span class="details">)?(?P<changes>[^<]*)'
)


def write_state(root: Path, contents: dict[str, bytes], day: int) -> str:
    """The manifest of ``contents``, its entries written on ``day``; its checksum."""
    when = datetime(2024, 5, day, 9, 0, 0, tzinfo=UTC)
    files = [
        ManifestFile(path, f"v{day}-{index}", when, len(body), hashlib.md5(body).hexdigest())
        for index, (path, body) in enumerate(sorted(contents.items()))
    ]
    checksum = zarr_checksum((f.path, f.size, f.etag) for f in files)
    target = root / manifest_path(ZARR, checksum)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(render_manifest(files, checksum))
    return checksum


@pytest.fixture(scope="module")
def states(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    root = tmp_path_factory.mktemp("tree")
    return root, [write_state(root, state, day) for day, state in ((1, BEFORE), (2, AFTER), (3, LATEST))]


@pytest.fixture(scope="module")
def server(states: tuple[Path, list[str]]) -> Iterator[str]:
    with zarrdav_server("--manifest-root", str(states[0]), "--zarr-base-url", BASE) as url:
        yield url


def expected_details(entries: int, old: dict[str, bytes] | None, new: dict[str, bytes]) -> tuple[str, str]:
    if old is None:
        return f"{entries}", "first version"
    diff = own_diff(old, new)
    return (f"{entries}", f"+{len(diff['added'])} added, \N{MINUS SIGN}{len(diff['removed'])} removed, "
            f"~{len(diff['changed'])} changed")


def test_versions_newest_first_with_changes(server: str, states: tuple[Path, list[str]]) -> None:
    first, second, third = states[1]
    page = f"{server}/zarrs/{ZARR[:3]}/{ZARR[3:6]}/{ZARR}/"
    for _ in range(2):  # the second time from the cache of change counts: the same page
        html = httpx.get(page, timeout=10).text
        rows = [(m["name"], bool(m["newest"]), (m["entries"], m["changes"])) for m in ROW.finditer(html)]
        assert rows == [
            (f"{third}.zarr/", True, expected_details(len(LATEST), AFTER, LATEST)),
            (f"{second}.zarr/", False, expected_details(len(AFTER), BEFORE, AFTER)),
            (f"{first}.zarr/", False, expected_details(len(BEFORE), None, BEFORE)),
        ]
