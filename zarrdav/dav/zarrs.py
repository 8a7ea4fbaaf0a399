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
from zarrdav.dav.resources import UNDATED, Collection, File, Resource, md5_of
from zarrdav.errors import NotFound, UpstreamError
from zarrdav.manifests.cache import ManifestCache
from zarrdav.manifests.diff import DiffSummary, summarize
from zarrdav.manifests.model import Manifest, ManifestDirectory, ManifestEntry, ManifestFile
from zarrdav.routes import zarr_version_path
from zarrdav.upstreams.values import sendable, unsendable

# Change counts between two manifests kept: a few dozen bytes each.
_CHANGES_KEPT = 4096
# Newest manifest dates of Zarrs kept, by Zarr and its checksums.
_NEWEST_KEPT = 4096
_NEVER = datetime.min.replace(tzinfo=UTC)
_ETAGS_AT_ONCE = 4096


class ZarrViews:
    def __init__(self, manifests: ManifestCache, zarr_base_url: str) -> None:
        self.manifests = manifests
        self._zarr_base_url = zarr_base_url.rstrip("/")
        # Manifests never change, so neither does what changed between two of them.
        self._changes: LRUCache[tuple[str, str, str], DiffSummary] = LRUCache(_CHANGES_KEPT)
        self._changes_lock = threading.Lock()
        self._newest: LRUCache[tuple[str, tuple[str, ...]], datetime] = LRUCache(_NEWEST_KEPT)

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

    def newest(self, zarr_id: str, checksums: list[str]) -> datetime:
        """The date of the Zarr's newest manifest: its versions folder's date.

        Reading each manifest's statistics loads it once; the date is kept,
        since the manifests named never change. A manifest that cannot be
        read does not count (its own page says why), and the date is then
        not kept, so that a listing of Zarrs never fails for one of them.
        """
        key = (zarr_id, tuple(checksums))
        with self._changes_lock:
            known = self._newest.get(key)
        if known is not None:
            return known
        dates: list[datetime] = []
        complete = True
        for checksum in checksums:
            try:
                date = self.manifests.manifest(zarr_id, checksum).statistics.last_modified
            except (NotFound, UpstreamError):
                complete = False
                continue
            if date is not None:
                dates.append(date)
        newest = max(dates, default=UNDATED)
        if complete:
            with self._changes_lock:
                self._newest[key] = newest
        return newest

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
            modified=stats.last_modified or UNDATED,
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
        return self._resource(zarr_id, checksum, root, manifest, found, private)

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
        return self._members(manifest, zarr_id, checksum, root, directory)

    def _members(
        self, manifest: Manifest, zarr_id: str, checksum: str, root: str, directory: ManifestDirectory
    ) -> Iterator[Resource]:
        prefix = f"{root}{directory.path}/" if directory.path else root
        permanent = _permanent(zarr_id, checksum, root)
        permanent_prefix = None if permanent is None else f"{permanent}{prefix[len(root):]}"
        for row in manifest.listing(directory):
            if isinstance(row, ManifestDirectory):
                yield self._resource(zarr_id, checksum, root, manifest, row)
            else:
                name, size, modified, etag = row
                yield File(f"{prefix}{name}", "File", size=size, modified=modified, etag=etag, md5=md5_of(etag),
                           canonical=None if permanent_prefix is None else f"{permanent_prefix}{name}")

    def _resource(
        self, zarr_id: str, checksum: str, root: str, manifest: Manifest, entry: ManifestEntry,
        private: bool = False,
    ) -> Resource:
        permanent = _permanent(zarr_id, checksum, root)
        if isinstance(entry, ManifestDirectory):
            inner = f"{entry.path}/" if entry.path else ""
            # A directory without files below it (an empty JSON object) has the Zarr's date.
            modified = manifest.directory_modified(entry) or manifest.statistics.last_modified or UNDATED
            return Collection(f"{root}{inner}", "Directory", modified=modified,
                              canonical=None if permanent is None else f"{permanent}{inner}")
        return self._file(zarr_id, root, entry, permanent, private)

    def _file(
        self, zarr_id: str, root: str, file: ManifestFile, permanent: str | None, private: bool = False
    ) -> File:
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
            canonical=None if permanent is None else f"{permanent}{file.path}",
            md5=md5_of(file.etag),
        )


def _permanent(zarr_id: str, checksum: str, root: str) -> str | None:
    """The Zarr's /zarrs/ path when it is shown elsewhere (as a Dandiset's asset), else None."""
    path = zarr_version_path(zarr_id, checksum)
    return None if root == path else path


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
