"""What changed between two states of a Zarr, from their manifests.

Both manifests keep each directory's subdirectories and files sorted by name,
so the two trees are walked side by side, a directory at a time: no index
of a million paths is built. An entry changed when its content did (size or
ETag); one rewritten with the same bytes has a new version but no change.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

from zarrdav.manifests.model import FileRow, Manifest, ManifestDirectory

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
    return _diff_directories(old, old.root, new, new.root)


Item = ManifestDirectory | FileRow


def _key(item: Item) -> tuple[bytes, int]:
    """The order ``Manifest.listing`` yields: by name bytes, a directory before a same-named file."""
    if isinstance(item, ManifestDirectory):
        return item.name.encode(), 0
    return item[0].encode(), 1


def _diff_directories(
    old: Manifest, old_dir: ManifestDirectory, new: Manifest, new_dir: ManifestDirectory
) -> Iterator[Change]:
    prefix = f"{old_dir.path}/" if old_dir.path else ""
    old_items, new_items = list(old.listing(old_dir)), list(new.listing(new_dir))
    i = j = 0
    while i < len(old_items) and j < len(new_items):
        a, b = old_items[i], new_items[j]
        if _key(a) < _key(b):
            yield from _whole(old, a, prefix, "removed")
            i += 1
        elif _key(b) < _key(a):
            yield from _whole(new, b, prefix, "added")
            j += 1
        else:  # the same name and kind
            if isinstance(a, ManifestDirectory) and isinstance(b, ManifestDirectory):
                yield from _diff_directories(old, a, new, b)
            elif not isinstance(a, ManifestDirectory) and not isinstance(b, ManifestDirectory):
                if (a[1], a[3]) != (b[1], b[3]):  # size, ETag
                    yield Change("changed", prefix + a[0], a[1], b[1])
            i += 1
            j += 1
    for item in old_items[i:]:
        yield from _whole(old, item, prefix, "removed")
    for item in new_items[j:]:
        yield from _whole(new, item, prefix, "added")


def _whole(manifest: Manifest, item: Item, prefix: str, kind: Kind) -> Iterator[Change]:
    """Every file at or under ``item``, as added to or removed from the Zarr."""
    if isinstance(item, ManifestDirectory):
        for child in manifest.listing(item):
            yield from _whole(manifest, child, f"{item.path}/", kind)
        return
    path, size = prefix + item[0], item[1]
    yield Change(kind, path, None if kind == "added" else size, size if kind == "added" else None)
