"""A directory's date inside a Zarr: the newest lastModified of the files below it.

Checked against a plain walk of the manifest's files, for manifests parsed
from JSON (both readers) and loaded back from the on-disk index.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from tests.manifests import varied_files
from zarrdav.manifests.checksum import zarr_checksum
from zarrdav.manifests.index import ManifestIndex
from zarrdav.manifests.model import Manifest, ManifestDirectory, ManifestFile
from zarrdav.manifests.reader import _parse_full, parse_manifest
from zarrdav.manifests.writer import render_manifest


def newest_by_walk(files: list[ManifestFile]) -> dict[str, datetime]:
    newest: dict[str, datetime] = {}
    for file in files:
        parts = file.path.split("/")
        for depth in range(len(parts)):
            directory = "/".join(parts[:depth])
            if directory not in newest or file.last_modified > newest[directory]:
                newest[directory] = file.last_modified
    return newest


def directory_dates(manifest: Manifest, directories: list[str]) -> dict[str, datetime | None]:
    dates: dict[str, datetime | None] = {}
    for path in directories:
        found = manifest.lookup(f"{path}/") if path else manifest.root
        assert isinstance(found, ManifestDirectory), path
        dates[path] = manifest.directory_modified(found)
    return dates


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_every_directory_has_its_newest_file(seed: int, tmp_path: Path) -> None:
    files = list(varied_files(seed).values())
    checksum = zarr_checksum((f.path, f.size, f.etag) for f in files)
    body = render_manifest(files, checksum)
    expected = newest_by_walk(files)
    index = ManifestIndex(tmp_path, 2**30, "tree")
    parsed = parse_manifest(body, "fast")
    assert index.save("5a8f0c2e-7d3b-4c1a-9e6f-0b1c2d3e4f50", checksum, parsed)
    loaded = index.load("5a8f0c2e-7d3b-4c1a-9e6f-0b1c2d3e4f50", checksum)
    assert loaded is not None
    for manifest in (parsed, _parse_full(body, "full"), loaded):
        assert directory_dates(manifest, list(expected)) == expected
        assert expected[""] == manifest.statistics.last_modified
