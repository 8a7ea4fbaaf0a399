"""Writing manifests in the public file layout.

The layout follows the files the DANDI manifest mirror already serves:
indent 1, each entry's array on one line, entries in S3's byte order of
full keys. The output depends only on the entries, so building a manifest
twice from the same state writes the same bytes.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import orjson

from zarrdav.manifests.model import ManifestFile
from zarrdav.manifests.reader import REQUIRED_FIELDS


def format_time(moment: datetime) -> str:
    """``YYYY-MM-DDTHH:MM:SS+00:00``, as manifests spell times."""
    return moment.astimezone(UTC).replace(microsecond=0).isoformat()


def render_manifest(files: Iterable[ManifestFile], checksum: str) -> bytes:
    """The manifest file for ``files`` whose Zarr checksum is ``checksum``."""
    ordered = sorted(files, key=lambda file: file.path.encode())
    entries: dict[str, Any] = {}
    for file in ordered:
        *parents, name = file.path.split("/")
        directory = entries
        for parent in parents:
            directory = directory.setdefault(parent, {})
        directory[name] = [file.version_id, format_time(file.last_modified), file.size, file.etag]
    statistics: dict[str, Any] = {
        "entries": len(ordered),
        "depth": max((file.path.count("/") for file in ordered), default=0),
        "totalSize": sum(file.size for file in ordered),
        "lastModified": max((format_time(f.last_modified) for f in ordered), default=None),
        "zarrChecksum": checksum,
    }
    lines = [
        "{",
        ' "schemaVersion": 2,',
        f' "fields": {_compact(list(REQUIRED_FIELDS))},',
        ' "statistics": {',
        ",\n".join(f"  {_compact(key)}: {_compact(value)}" for key, value in statistics.items()),
        " },",
        ' "entries": ' + _render_directory(entries, 1),
        "}",
    ]
    return ("\n".join(lines) + "\n").encode()


def _render_directory(directory: dict[str, Any], depth: int) -> str:
    if not directory:
        return "{}"
    indent = " " * (depth + 1)
    items = []
    for name, value in directory.items():
        rendered = _render_directory(value, depth + 1) if isinstance(value, dict) else _compact(value)
        items.append(f"{indent}{_compact(name)}: {rendered}")
    return "{\n" + ",\n".join(items) + "\n" + " " * depth + "}"


def _compact(value: Any) -> str:
    return orjson.dumps(value).decode()
