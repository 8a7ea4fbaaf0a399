"""The in-memory model of one manifest: a frozen tree of Zarr entries.

Directories are few and kept as small lists; files are many and kept in
columns (see ``columns``), each directory owning one contiguous, name-sorted
range of them, so a lookup is a binary search per path segment.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache

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


@dataclass(frozen=True, slots=True)
class ManifestFile:
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

    __slots__ = ("source", "statistics", "_dirs", "_files")

    def __init__(
        self, source: str, statistics: Statistics, dirs: DirectoryTable, files: FileColumns
    ) -> None:
        self.source = source
        self.statistics = statistics
        self._dirs = dirs
        self._files = files

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
        return per_file + per_dir + 1024

    def lookup(self, path: str) -> ManifestEntry | None:
        """The entry at ``path`` (``/``-separated, ``""`` for the root), or None.

        A trailing ``/`` only matches a directory.
        """
        want_directory = path.endswith("/")
        segments = path.strip("/").split("/") if path.strip("/") else []
        directory = 0
        for position, segment in enumerate(segments):
            child = self._child_directory(directory, segment)
            if child is not None:
                directory = child
                continue
            if position != len(segments) - 1 or want_directory:
                return None
            index = self._file_index(directory, segment)
            if index is None:
                return None
            return self._file(index, "/".join(segments))
        return ManifestDirectory("/".join(segments), directory)

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
        files = self._files
        return zip(
            files.names.texts(start, stop),
            files.sizes[start:stop],
            map(_moment, files.mtimes[start:stop]),
            files.etags.texts(start, stop),
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

    def _child_directory(self, directory: int, name: str) -> int | None:
        dirs = self._dirs
        first = dirs.first_child[directory]
        end = first + dirs.child_count[directory]
        index = bisect.bisect_left(dirs.names, name, first, end)
        return index if index < end and dirs.names[index] == name else None

    def _file_index(self, directory: int, name: str) -> int | None:
        dirs = self._dirs
        first = dirs.first_file[directory]
        end = first + dirs.file_count[directory]
        key = name.encode()
        index = self._files.names.bisect_left(key, first, end)
        return index if index < end and self._files.names[index] == key else None

    def _file(self, index: int, path: str) -> ManifestFile:
        files = self._files
        return ManifestFile(
            path=path,
            version_id=files.version_ids.text(index),
            last_modified=_moment(files.mtimes[index]),
            size=files.sizes[index],
            etag=files.etags.text(index),
        )


# Chunks are written in bursts: a listing's entries share few timestamps.
@lru_cache(maxsize=4096)
def _moment(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def _name_key(entry: ManifestEntry) -> bytes:
    """Byte order of names, as S3 lists keys."""
    return entry.name.encode()
