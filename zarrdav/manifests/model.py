"""The in-memory model of one manifest: a frozen tree of Zarr entries.

Directories are few and kept as small lists; files are many and kept in
columns (see ``columns``), each directory owning one contiguous, name-sorted
range of them, so a lookup is a binary search per directory segment.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import NamedTuple

import numpy as np

from zarrdav.manifests.columns import BytesColumn, IntArray


@dataclass(frozen=True, slots=True)
class Statistics:
    """The summary a manifest carries (``statistics`` in the file)."""

    entries: int
    depth: int
    total_size: int
    last_modified: datetime | None
    zarr_checksum: str | None
    checksum_mismatch: str | None = None


# A named tuple, not a frozen dataclass: every chunk GET makes one, and a
# frozen dataclass costs twice as much to make.
class ManifestFile(NamedTuple):
    """One Zarr entry as of the manifest: which S3 version held it."""

    path: str
    version_id: str
    last_modified: datetime
    size: int
    etag: str

    @property
    def name(self) -> str:
        return self.path.rpartition("/")[2]


@dataclass(frozen=True, slots=True)
class ManifestDirectory:
    """A directory of the Zarr; ``path`` is ``""`` for the Zarr's root."""

    path: str
    index: int

    @property
    def name(self) -> str:
        return self.path.rpartition("/")[2]


ManifestEntry = ManifestFile | ManifestDirectory

# Directory paths lookups remember (``Manifest._directory_number``), and what
# one costs: a short str key and a dict slot.
_DIRECTORIES_KEPT = 4096
_DIRECTORY_PATH_BYTES = 100

# Files a listing decodes at once (see ``Manifest.listing``).
_ROWS_AT_ONCE = 4096

# A file as a directory listing shows it: name, size, last modified, ETag.
FileRow = tuple[str, int, datetime, str]


@dataclass(frozen=True, slots=True)
class FileColumns:
    """Per-file values, indexed alike."""

    names: BytesColumn
    version_ids: BytesColumn
    etags: BytesColumn
    sizes: IntArray
    mtimes: IntArray  # seconds since the epoch, UTC


@dataclass(frozen=True, slots=True)
class DirectoryTable:
    """Per-directory values, indexed by directory number (root is 0).

    A directory's subdirectories are the numbers ``[first_child,
    first_child + child_count)``, sorted by name; its files are the file
    indices ``[first_file, first_file + file_count)``, sorted by name.
    """

    names: list[str]
    parents: IntArray
    first_child: IntArray
    child_count: IntArray
    first_file: IntArray
    file_count: IntArray


class Manifest:
    """A parsed manifest; immutable, safe to share between threads."""

    __slots__ = (
        "source", "statistics", "_dirs", "_files",
        "_directories", "_memo_lock", "_newest",
    )

    def __init__(
        self, source: str, statistics: Statistics, dirs: DirectoryTable, files: FileColumns
    ) -> None:
        self.source = source
        self.statistics = statistics
        self._dirs = dirs
        self._files = files
        # Lookups remember the directories they resolved, within a bound;
        # replacing the memo whole (under the lock) keeps its readers safe.
        self._directories: dict[str, int] = {}  # see _directory_number
        self._memo_lock = threading.Lock()
        self._directories[""] = 0
        self._newest: list[int] | None = None  # see directory_modified

    @property
    def root(self) -> ManifestDirectory:
        return ManifestDirectory("", 0)

    @property
    def directory_table(self) -> DirectoryTable:
        return self._dirs

    @property
    def file_columns(self) -> FileColumns:
        return self._files

    @property
    def nbytes(self) -> int:
        """Approximate memory held, for weighing the manifest in a cache."""
        files, dirs = self._files, self._dirs
        per_file = files.names.nbytes + files.version_ids.nbytes + files.etags.nbytes
        per_file += files.sizes.itemsize * len(files.sizes) * 2
        per_dir = sum(map(len, dirs.names)) + 100 * len(dirs.names)
        remembered = min(len(dirs.names), _DIRECTORIES_KEPT) * _DIRECTORY_PATH_BYTES
        newest = 40 * len(dirs.names)  # directory_modified's list, once made
        return per_file + per_dir + remembered + newest + 1024

    def directory_modified(self, directory: ManifestDirectory) -> datetime | None:
        """The newest ``lastModified`` of the files below ``directory``; None if none are.

        Made for every directory at once, on the first call: one pass over
        the file times and one per level of directories, never a walk per
        request. Two threads may both make it, and agree.
        """
        newest = self._newest
        if newest is None:
            newest = self._newest = _newest_below(self._dirs, self._files.mtimes)
        seconds = newest[directory.index]
        return None if seconds == _NO_FILES else _moment(seconds)

    def lookup(self, path: str) -> ManifestEntry | None:
        """The entry at ``path`` (``/``-separated, ``""`` for the root), or None.

        A trailing ``/`` only matches a directory. Every Zarr chunk GET comes
        here: its directory is usually one dict lookup away (see
        ``_directory_number``), and the file a binary search (see ``_file_number``).
        """
        inner = path.strip("/")
        parent, _, name = inner.rpartition("/")
        directory = self._directory_number(parent)
        if directory is None:
            return None
        if not name:
            return ManifestDirectory("", 0)
        if self._dirs.child_count[directory]:  # chunk directories have none
            child = self._subdirectory(directory, name)
            if child is not None:
                return ManifestDirectory(inner, child)
        if path[-1] == "/":
            return None
        file = self._file_number(directory, name)
        return None if file is None else self._file(file, inner)

    def children(self, directory: ManifestDirectory) -> list[ManifestEntry]:
        """The directory's subdirectories and files, sorted by name."""
        dirs, files = self._dirs, self._files
        prefix = f"{directory.path}/" if directory.path else ""
        first = dirs.first_child[directory.index]
        subdirs = (
            ManifestDirectory(prefix + dirs.names[i], i)
            for i in range(first, first + dirs.child_count[directory.index])
        )
        first = dirs.first_file[directory.index]
        entries = (
            self._file(i, prefix + files.names.text(i))
            for i in range(first, first + dirs.file_count[directory.index])
        )
        # Both runs are sorted already: Timsort merges them in linear time.
        return sorted([*subdirs, *entries], key=_name_key)

    def listing(self, directory: ManifestDirectory) -> Iterator[ManifestDirectory | FileRow]:
        """The directory's subdirectories and file rows, in the order of ``children``.

        For listings of thousands of chunks: a tuple per file, no version id,
        and one shared datetime per distinct timestamp.
        """
        dirs, names = self._dirs, self._files.names
        prefix = f"{directory.path}/" if directory.path else ""
        position = dirs.first_file[directory.index]
        end = position + dirs.file_count[directory.index]
        first = dirs.first_child[directory.index]
        for index in range(first, first + dirs.child_count[directory.index]):
            # Subdirectories are few: place each among the files by a binary
            # search, ahead of a file of the same name, as ``children`` sorts.
            name = dirs.names[index]
            key = name.encode()
            stop = names.bisect_left(key, position, end)
            yield from self._file_rows(position, stop)
            yield ManifestDirectory(prefix + name, index)
            position = stop
        yield from self._file_rows(position, end)

    def _file_rows(self, start: int, stop: int) -> Iterator[FileRow]:
        # A block at a time: decoding ranges is cheap, and a listing of
        # 100,000 files streamed to a client holds one block, not all.
        files = self._files
        for low in range(start, stop, _ROWS_AT_ONCE):
            high = min(low + _ROWS_AT_ONCE, stop)
            yield from zip(
                files.names.texts(low, high),
                files.sizes[low:high],
                map(_moment, files.mtimes[low:high]),
                files.etags.texts(low, high), strict=False,
            )

    def files(self) -> Iterator[ManifestFile]:
        """Every file of the Zarr, depth first."""
        stack = [self.root]
        while stack:
            directory = stack.pop()
            for entry in reversed(self.children(directory)):
                if isinstance(entry, ManifestDirectory):
                    stack.append(entry)
                else:
                    yield entry

    def _directory_number(self, path: str) -> int | None:
        """The number of the directory at ``path`` (no slashes around it), or None.

        Resolved a segment at a time, then remembered: chunk GETs come in
        runs from the same few directories.
        """
        number = self._directories.get(path)
        if number is not None:
            return number
        number = 0
        for segment in path.split("/"):
            child = self._subdirectory(number, segment)
            if child is None:
                return None
            number = child
        with self._memo_lock:
            if len(self._directories) >= _DIRECTORIES_KEPT:
                self._directories = {"": 0}  # a thread reading the old dict is unaffected
            self._directories[path] = number
        return number

    def _subdirectory(self, directory: int, name: str) -> int | None:
        dirs = self._dirs
        first = dirs.first_child[directory]
        end = first + dirs.child_count[directory]
        child = bisect.bisect_left(dirs.names, name, first, end)
        return child if child < end and dirs.names[child] == name else None

    def _file_number(self, directory: int, name: str) -> int | None:
        """The number of the directory's file ``name``, or None.

        A binary search in the column, never a dict of the directory's names:
        a reader usually GETs each chunk once, so a dict would rarely repay
        its making, and readers sweeping more directories than such dicts
        may hold would make them again on every GET.
        """
        dirs = self._dirs
        first = dirs.first_file[directory]
        end = first + dirs.file_count[directory]
        return self._files.names.index_of(name.encode(), first, end)

    def _file(self, index: int, path: str) -> ManifestFile:
        files = self._files
        return ManifestFile(
            path, files.version_ids.text(index), _moment(files.mtimes[index]),
            files.sizes[index], files.etags.text(index),
        )


_NO_FILES = -(2**63)


def _newest_below(dirs: DirectoryTable, mtimes: IntArray) -> list[int]:
    """Per directory, the newest time of the files in its subtree (``_NO_FILES``: none)."""
    count = len(dirs.names)
    newest = np.full(count, _NO_FILES, np.int64)
    file_counts = np.asarray(dirs.file_count)
    holding = np.flatnonzero(file_counts > 0)
    if len(holding):
        # Each directory's files are one range, and the ranges partition the
        # columns: sorted by start, one reduceat gives every range's newest.
        starts = np.asarray(dirs.first_file)[holding]
        order = np.argsort(starts, kind="stable")
        newest[holding[order]] = np.maximum.reduceat(np.asarray(mtimes), starts[order])
    # Directories are numbered breadth first, a level's children forming the
    # next level: fold each level into its parents, deepest first.
    first_child, child_count = np.asarray(dirs.first_child), np.asarray(dirs.child_count)
    parents = np.asarray(dirs.parents)
    levels = [(0, min(count, 1))]
    while levels[-1][1] < count:
        start, end = levels[-1]
        following = int(first_child[end - 1] + child_count[end - 1])
        if following <= end:
            break  # not a breadth-first table; the levels found so far still fold
        levels.append((end, following))
    for start, end in reversed(levels[1:]):
        np.maximum.at(newest, parents[start:end], newest[start:end])
    return newest.tolist()


# Chunks are written in bursts: a listing's entries share few timestamps.
@lru_cache(maxsize=4096)
def _moment(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def _name_key(entry: ManifestEntry) -> bytes:
    """Byte order of names, as S3 lists keys."""
    return entry.name.encode()
