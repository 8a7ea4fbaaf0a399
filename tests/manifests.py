"""Small manifests for the tests, written by the project's own writer."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

from zarrdav.manifests.checksum import zarr_checksum
from zarrdav.manifests.layout import manifest_path
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


def varied_files(seed: int) -> dict[str, ManifestFile]:
    """A random tree of odd names (dots, dashes, non-ASCII) and odd values:
    version ids of two widths, multipart ETags, sizes from 0 to a petabyte."""
    rng = random.Random(seed)
    alphabet = "abc019._-é"
    files: dict[str, ManifestFile] = {}
    for _ in range(400):
        depth = rng.randint(0, 4)
        parts = ["".join(rng.choices(alphabet, k=rng.randint(1, 6))) for _ in range(depth + 1)]
        path = "/".join(parts)
        if any(p in (".", "..") for p in parts) or any(
            f.startswith(path + "/") or path.startswith(f + "/") for f in files
        ):
            continue
        etag = rng.choice([f"{rng.getrandbits(128):032x}", f"{rng.getrandbits(128):032x}-{rng.randint(2, 9)}"])
        files[path] = ManifestFile(
            path=path,
            version_id="".join(rng.choices("AZaz09._", k=rng.choice([32, 32, 32, 20]))),
            last_modified=WHEN + timedelta(seconds=rng.randint(0, 10**8)),
            size=rng.choice([0, 1, rng.randint(0, 10**15)]),
            etag=etag,
        )
    return files


def one_manifest_tree(root: Path, zarr_id: str, checksum: str, body: bytes) -> Path:
    """``root`` made a manifest tree holding one manifest."""
    path = root / manifest_path(zarr_id, checksum)
    path.parent.mkdir(parents=True)
    path.write_bytes(body)
    return root


def wide_manifest(files: int) -> tuple[str, bytes]:
    """A v2 group whose array ``0/`` holds ``files`` chunks: a folder too large to list in one piece."""
    chunks = [
        ManifestFile(f"0/{n}", f"w{n:031d}", WHEN + timedelta(seconds=n // 100), 1000 + n % 7, f"{n:032x}")
        for n in range(files)
    ]
    listed = sorted([*sample_files()[:2], *chunks], key=lambda f: f.path)
    checksum = zarr_checksum((f.path, f.size, f.etag) for f in listed)
    return checksum, render_manifest(listed, checksum)
