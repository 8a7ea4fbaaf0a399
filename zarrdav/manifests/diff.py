"""What changed between two states of a Zarr, from their manifests.

Both manifests keep each directory's subdirectories and files sorted by name,
in columns, so the two trees are walked side by side, a directory at a time:
no index of a million paths is built, and a directory whose files are the
same on both sides costs one comparison of its columns. An entry changed
when its content did (size or ETag); one rewritten with the same bytes has
a new version but no change.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

from zarrdav.manifests.model import Manifest

Kind = Literal["added", "removed", "changed"]


@dataclass(frozen=True, slots=True)
class Change:
    kind: Kind
    path: str
    old_size: int | None  # None: added
    new_size: int | None  # None: removed


@dataclass(slots=True)
class DiffSummary:
    added: int = 0
    removed: int = 0
    changed: int = 0
    # Bytes of the entries added and of the new content of changed ones...
    bytes_added: int = 0
    # ...and of the entries removed and of the old content of changed ones.
    bytes_removed: int = 0

    def count(self, change: Change) -> None:
        if change.kind == "added":
            self.added += 1
        elif change.kind == "removed":
            self.removed += 1
        else:
            self.changed += 1
        self.bytes_added += change.new_size or 0
        self.bytes_removed += change.old_size or 0

    def as_json(self) -> dict[str, Any]:
        return {
            "added": self.added, "removed": self.removed, "changed": self.changed,
            "bytes_added": self.bytes_added, "bytes_removed": self.bytes_removed,
        }


def summarize(old: Manifest, new: Manifest) -> DiffSummary:
    summary = DiffSummary()
    for change in diff_manifests(old, new):
        summary.count(change)
    return summary


def diff_manifests(old: Manifest, new: Manifest) -> Iterator[Change]:
    """The entries added, removed and changed from ``old`` to ``new``, depth first."""
    return _diff_directories(old, 0, new, 0, "")


# A directory's files as columns: names, sizes, ETags.
Files = tuple[list[str], list[int], list[str]]


def _files(manifest: Manifest, directory: int) -> Files:
    table, columns = manifest.directory_table, manifest.file_columns
    start = table.first_file[directory]
    stop = start + table.file_count[directory]
    return (columns.names.texts(start, stop), columns.sizes[start:stop].tolist(),
            columns.etags.texts(start, stop))


def _subdirectories(manifest: Manifest, directory: int) -> list[tuple[str, int]]:
    table = manifest.directory_table
    first = table.first_child[directory]
    return [(table.names[i], i) for i in range(first, first + table.child_count[directory])]


def _diff_directories(old: Manifest, a: int, new: Manifest, b: int, prefix: str) -> Iterator[Change]:
    old_files, new_files = _files(old, a), _files(new, b)
    if old_files != new_files:  # most chunk directories of two states are the same: one compare
        yield from _diff_files(old_files, new_files, prefix)
    old_dirs, new_dirs = _subdirectories(old, a), _subdirectories(new, b)
    i = j = 0
    while i < len(old_dirs) and j < len(new_dirs):
        (old_name, old_number), (new_name, new_number) = old_dirs[i], new_dirs[j]
        if old_name < new_name:
            yield from _whole(old, old_number, f"{prefix}{old_name}/", "removed")
            i += 1
        elif new_name < old_name:
            yield from _whole(new, new_number, f"{prefix}{new_name}/", "added")
            j += 1
        else:
            yield from _diff_directories(old, old_number, new, new_number, f"{prefix}{old_name}/")
            i += 1
            j += 1
    for name, number in old_dirs[i:]:
        yield from _whole(old, number, f"{prefix}{name}/", "removed")
    for name, number in new_dirs[j:]:
        yield from _whole(new, number, f"{prefix}{name}/", "added")


def _diff_files(old: Files, new: Files, prefix: str) -> Iterator[Change]:
    """Both sides sorted by name (code point order is UTF-8 byte order)."""
    (old_names, old_sizes, old_etags), (new_names, new_sizes, new_etags) = old, new
    i = j = 0
    while i < len(old_names) and j < len(new_names):
        if old_names[i] < new_names[j]:
            yield Change("removed", prefix + old_names[i], old_sizes[i], None)
            i += 1
        elif new_names[j] < old_names[i]:
            yield Change("added", prefix + new_names[j], None, new_sizes[j])
            j += 1
        else:
            if (old_sizes[i], old_etags[i]) != (new_sizes[j], new_etags[j]):
                yield Change("changed", prefix + old_names[i], old_sizes[i], new_sizes[j])
            i += 1
            j += 1
    for k in range(i, len(old_names)):
        yield Change("removed", prefix + old_names[k], old_sizes[k], None)
    for k in range(j, len(new_names)):
        yield Change("added", prefix + new_names[k], None, new_sizes[k])


def _whole(manifest: Manifest, directory: int, prefix: str, kind: Kind) -> Iterator[Change]:
    """Every file at or under the directory, as added to or removed from the Zarr."""
    names, sizes, _ = _files(manifest, directory)
    for name, size in zip(names, sizes, strict=True):
        yield Change(kind, prefix + name, None if kind == "added" else size, size if kind == "added" else None)
    for name, number in _subdirectories(manifest, directory):
        yield from _whole(manifest, number, f"{prefix}{name}/", kind)
