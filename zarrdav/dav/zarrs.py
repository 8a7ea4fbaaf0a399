"""Resources of a Zarr as of a manifest, wherever in the hierarchy it is shown.

The same Zarr version appears at ``/zarrs/.../<checksum>.zarr/`` and as a
pinned Zarr asset under ``/dandisets/``: only the path it is shown under
(``root``) differs, never the listing, the properties or the redirects.
Entry paths and version ids go into redirects percent-encoded; ETags are
sent as the manifest has them, so each is checked first.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from itertools import pairwise

from cachetools import LRUCache

from zarrdav.dav.formats import quote_url
from zarrdav.dav.resources import Collection, File, Resource
from zarrdav.errors import NotFound
from zarrdav.manifests.cache import ManifestCache
from zarrdav.manifests.diff import DiffSummary, summarize
from zarrdav.manifests.model import Manifest, ManifestDirectory, ManifestEntry, ManifestFile
from zarrdav.routes import zarr_version_path
from zarrdav.upstreams.values import sendable, unsendable

# Change counts between two manifests kept: a few dozen bytes each.
_CHANGES_KEPT = 4096
_NEVER = datetime.min.replace(tzinfo=UTC)
_ETAGS_AT_ONCE = 4096


class ZarrViews:
    def __init__(self, manifests: ManifestCache, zarr_base_url: str) -> None:
        self.manifests = manifests
        self._zarr_base_url = zarr_base_url.rstrip("/")
        # Manifests never change, so neither does what changed between two of them.
        self._changes: LRUCache[tuple[str, str, str], DiffSummary] = LRUCache(_CHANGES_KEPT)
        self._changes_lock = threading.Lock()

    def versions(self, zarr_id: str, checksums: list[str]) -> list[Collection]:
        """The Zarr's versions, oldest first, each with what changed since the one before.

        Versions are ordered by their newest entry (the only date a manifest
        holds), then by checksum, as the versions page shows them (newest first).
        """
        found = sorted(
            (self.version(zarr_id, checksum) for checksum in checksums),
            key=lambda version: (version.modified or _NEVER, version.name),
        )
        for older, newer in pairwise(found):
            change = self._change(zarr_id, older.etag or "", newer.etag or "")
            newer.details = (
                f"{newer.details}; since the previous: {change.added:,} added, "
                f"{change.removed:,} removed, {change.changed:,} changed"
            )
            newer.changes = (change.added, change.removed, change.changed)
        return found

    def _change(self, zarr_id: str, older: str, newer: str) -> DiffSummary:
        key = (zarr_id, older, newer)
        with self._changes_lock:
            known = self._changes.get(key)
        if known is not None:
            return known
        # Counted outside the lock: two requests may both count, and agree.
        change = summarize(self.manifests.manifest(zarr_id, older), self.manifests.manifest(zarr_id, newer))
        with self._changes_lock:
            self._changes[key] = change
        return change

    def version(
        self, zarr_id: str, checksum: str, root: str | None = None, *, kind: str = "Zarr version",
        created: datetime | None = None, links: tuple[tuple[str, str], ...] = (),
    ) -> Collection:
        """The Zarr's root as of ``checksum``, shown at ``root`` (default: its /zarrs/ path)."""
        stats = self.manifests.manifest(zarr_id, checksum).statistics
        return Collection(
            root or zarr_version_path(zarr_id, checksum),
            kind,
            size=stats.total_size,
            created=created,
            modified=stats.last_modified,
            etag=checksum,
            details=f"{stats.entries:,} entries",
            links=links,
            zarr=True,
            entries=stats.entries,
        )

    def entry(self, zarr_id: str, checksum: str, root: str, path: str) -> Resource:
        """The entry at ``path`` inside the Zarr shown at ``root``."""
        return self.entry_in(self.manifests.manifest(zarr_id, checksum), zarr_id, checksum, root, path)

    def entry_in(
        self, manifest: Manifest, zarr_id: str, checksum: str, root: str, path: str, *, private: bool = False
    ) -> Resource:
        """``entry`` of a manifest the caller already holds (one cache lookup a request).

        ``private``: the Zarr is embargoed and the visitor allowed (only under
        its Dandiset): its files are served presigned.
        """
        found = manifest.lookup(path)
        if found is None:
            raise NotFound(f"no entry {path!r} in Zarr {zarr_id} as of {checksum}")
        if isinstance(found, ManifestDirectory):
            return self._resource(zarr_id, root, found)
        return self._file(zarr_id, root, found, private)

    def members(self, zarr_id: str, checksum: str, root: str, path: str) -> Iterator[Resource]:
        """The directory's children in name order, without redirect locations, made as
        they are read.

        A listing only shows its members, and a Depth 1 PROPFIND may list
        100,000 chunks, streamed: GET resolves an entry afresh through
        ``entry``. What can fail (the manifest, the directory, an ETag that
        cannot be sent) fails here, before the first member is read.
        """
        return self.members_in(self.manifests.manifest(zarr_id, checksum), zarr_id, checksum, root, path)

    def members_in(
        self, manifest: Manifest, zarr_id: str, checksum: str, root: str, path: str
    ) -> Iterator[Resource]:
        """``members`` of a manifest the caller already holds."""
        directory = manifest.lookup(path)
        if not isinstance(directory, ManifestDirectory):
            raise NotFound(f"no directory {path!r} in Zarr {zarr_id} as of {checksum}")
        _check_etags(manifest, directory, zarr_id)
        return self._members(manifest, zarr_id, root, directory)

    def _members(
        self, manifest: Manifest, zarr_id: str, root: str, directory: ManifestDirectory
    ) -> Iterator[Resource]:
        prefix = f"{root}{directory.path}/" if directory.path else root
        for row in manifest.listing(directory):
            if isinstance(row, ManifestDirectory):
                yield self._resource(zarr_id, root, row)
            else:
                name, size, modified, etag = row
                yield File(f"{prefix}{name}", "File", size=size, modified=modified, etag=etag)

    def _resource(self, zarr_id: str, root: str, entry: ManifestEntry) -> Resource:
        if isinstance(entry, ManifestDirectory):
            return Collection(f"{root}{entry.path}/" if entry.path else root, "Directory")
        return self._file(zarr_id, root, entry)

    def _file(self, zarr_id: str, root: str, file: ManifestFile, private: bool = False) -> File:
        if not sendable(file.etag, "ETag"):
            raise unsendable("ETag", f"manifest tree: Zarr {zarr_id}, entry {file.path!r}")
        location = (
            f"{self._zarr_base_url}/{zarr_id}/{quote_url(file.path)}"
            f"?versionId={quote_url(file.version_id, safe='')}"
        )
        return File(
            f"{root}{file.path}",
            "File",
            size=file.size,
            modified=file.last_modified,
            etag=file.etag,
            location=location,
            private=private,
        )


def _check_etags(manifest: Manifest, directory: ManifestDirectory, zarr_id: str) -> None:
    """Refuse a listing holding an ETag that cannot be sent, a block of them at a time."""
    dirs, etags = manifest.directory_table, manifest.file_columns.etags
    first = dirs.first_file[directory.index]
    stop = first + dirs.file_count[directory.index]
    for low in range(first, stop, _ETAGS_AT_ONCE):
        block = etags.texts(low, min(low + _ETAGS_AT_ONCE, stop))
        if not sendable("".join(block), "ETag"):  # one C call for the whole block
            bad = next(etag for etag in block if not sendable(etag, "ETag"))
            name = manifest.file_columns.names.text(low + block.index(bad))
            raise unsendable("ETag", f"manifest tree: Zarr {zarr_id}, entry {directory.path}/{name}")
