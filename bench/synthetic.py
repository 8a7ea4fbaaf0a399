"""Synthetic manifests shaped like large real ones (a chunk grid per array).

Run as a script to write one: ``python bench/synthetic.py OUT.json [ENTRIES]``.
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Iterator
from pathlib import Path

FIELDS = '["versionId","lastModified","size","ETag"]'


def entry_fields(index: int) -> tuple[str, str, int, str]:
    """The synthetic entry number ``index``: version id, lastModified, size, ETag."""
    digest = hashlib.md5(index.to_bytes(8, "little")).hexdigest()
    version_id = (digest + digest)[3:35].replace("a", ".").replace("b", "_")
    # About a hundred entries were written each second, as in real uploads.
    second = 1656371267 + index // 100
    minutes, seconds = divmod(second % 3600, 60)
    hours = (second // 3600) % 24
    stamp = f"2022-06-{27 + second // 86400 % 3:02d}T{hours:02d}:{minutes:02d}:{seconds:02d}+00:00"
    return version_id, stamp, 1000 + index % 9000, digest


def _entry(index: int) -> str:
    version_id, stamp, size, digest = entry_fields(index)
    return f'["{version_id}","{stamp}",{size},"{digest}"]'


def manifest_lines(entries: int) -> Iterator[str]:
    """Lines of a manifest with about ``entries`` files in 100-file directories."""
    per_dir = 100
    dirs = max(1, entries // per_dir)
    side = int(dirs**0.5) + 1
    total = 0
    yield "{"
    yield ' "schemaVersion": 2,'
    yield f' "fields": {FIELDS},'
    yield ' "statistics": {'
    yield f'  "entries": {dirs * per_dir + 2},'
    yield '  "zarrChecksum": null'
    yield " },"
    yield ' "entries": {'
    yield f'  ".zattrs": {_entry(10**9)},'
    yield f'  ".zgroup": {_entry(10**9 + 1)},'
    yield '  "0": {'
    yield f'   ".zarray": {_entry(10**9 + 2)},'
    made = 0
    # Real manifests list keys in S3's byte order ("10" before "2").
    for z in sorted(range(side), key=str):
        if made >= dirs:
            break
        yield f'   "{z}": {{'
        rows = []
        for y in sorted(range(side), key=str):
            if made >= dirs:
                break
            made += 1
            files = ",\n".join(f'     "{x}": {_entry(total + x)}' for x in sorted(range(per_dir), key=str))
            total += per_dir
            rows.append(f'    "{y}": {{\n{files}\n    }}')
        yield ",\n".join(rows)
        yield "   }," if made < dirs else "   }"
    yield "  }"
    yield " }"
    yield "}"


def flat_manifest_lines(files: int) -> Iterator[str]:
    """Lines of a manifest whose array ``0/`` holds ``files`` chunks named ``0`` to ``files - 1``."""
    yield "{"
    yield ' "schemaVersion": 2,'
    yield f' "fields": {FIELDS},'
    yield f' "statistics": {{"entries": {files + 3}, "zarrChecksum": null}},'
    yield ' "entries": {'
    yield f'  ".zattrs": {_entry(10**9)},'
    yield f'  ".zgroup": {_entry(10**9 + 1)},'
    yield '  "0": {'
    yield f'   ".zarray": {_entry(10**9 + 2)},'
    yield ",\n".join(f'   "{x}": {_entry(x)}' for x in sorted(range(files), key=str))
    yield "  }"
    yield " }"
    yield "}"


def write_manifest(path: Path, entries: int, flat: bool = False) -> Path:
    """Write a chunk-grid manifest of about ``entries`` files, or a flat one (``flat_manifest_lines``)."""
    lines = flat_manifest_lines(entries) if flat else manifest_lines(entries)
    with path.open("w") as handle:
        for line in lines:
            handle.write(line + "\n")
    return path


if __name__ == "__main__":
    write_manifest(Path(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 1_300_000)
