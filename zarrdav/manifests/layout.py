"""Where a manifest lives in a manifest tree, and how its file is named."""

from __future__ import annotations

import re
from collections.abc import Iterable

# The DANDI Zarr checksum: "<md5>-<file count>--<total bytes>".
CHECKSUM_PATTERN = re.compile(r"[0-9a-f]{32}-[0-9]+--[0-9]+")
MANIFEST_SUFFIX = ".json"


def is_checksum(text: str) -> bool:
    return CHECKSUM_PATTERN.fullmatch(text) is not None


def zarr_prefix(zarr_id: str) -> str:
    """``<p1>/<p2>/<zarr_id>``: the folder holding one Zarr's manifests."""
    return f"{zarr_id[:3]}/{zarr_id[3:6]}/{zarr_id}"


def manifest_path(zarr_id: str, checksum: str) -> str:
    return f"{zarr_prefix(zarr_id)}/{checksum}{MANIFEST_SUFFIX}"


def checksum_of_filename(name: str) -> str | None:
    """The checksum a manifest file name carries, or None for any other file."""
    if not name.endswith(MANIFEST_SUFFIX):
        return None
    stem = name[: -len(MANIFEST_SUFFIX)]
    return stem if is_checksum(stem) else None


def manifest_checksums(file_names: Iterable[str]) -> list[str]:
    """The checksums of the manifests among a Zarr folder's files, sorted."""
    return sorted(c for c in map(checksum_of_filename, file_names) if c is not None)


def is_valid_segment(name: str) -> bool:
    """Tree folder names are plain names: never empty, ``.``, ``..`` or with ``/``."""
    return name not in ("", ".", "..") and "/" not in name and "\\" not in name
