"""Small manifests for the tests, written by the project's own writer."""

from __future__ import annotations

from datetime import UTC, datetime

from zarrdav.manifests.checksum import zarr_checksum
from zarrdav.manifests.model import ManifestFile
from zarrdav.manifests.writer import render_manifest

WHEN = datetime(2022, 6, 27, 23, 7, 47, tzinfo=UTC)


def sample_files() -> list[ManifestFile]:
    """A v2 group with one array; names chosen so S3 order differs from numeric order."""

    def file(path: str, size: int, n: int) -> ManifestFile:
        return ManifestFile(
            path=path,
            version_id=f"v{n:02d}.Ab_" + "x" * 26,
            last_modified=WHEN.replace(second=n),
            size=size,
            etag=f"{n:032x}",
        )

    return [
        file(".zattrs", 20, 1),
        file(".zgroup", 24, 2),
        file("arr/.zarray", 300, 3),
        file("arr/0/0", 1000, 4),
        file("arr/0/1", 1001, 5),
        file("arr/0/10", 1010, 6),
        file("arr/0/2", 1002, 7),
        file("arr/1/0", 1100, 8),
        file("arr/13/0", 1300, 9),
        file("arr/131", 500, 10),
    ]


def sample_manifest() -> tuple[str, bytes]:
    files = sample_files()
    checksum = zarr_checksum((f.path, f.size, f.etag) for f in files)
    return checksum, render_manifest(files, checksum)
