"""The DANDI Zarr checksum of a set of files, via the ``zarr-checksum`` package."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import PurePosixPath

from zarr_checksum.tree import ZarrChecksumTree


def zarr_checksum(files: Iterable[tuple[str, int, str]]) -> str:
    """Checksum of ``(path, size, md5 hex)`` triples; paths are ``/``-separated."""
    tree = ZarrChecksumTree()
    for path, size, md5 in files:
        tree.add_leaf(PurePosixPath(path), size, md5)  # type: ignore[arg-type]
    return tree.process().digest
