"""Parsed manifests kept on local disk, so that a restarted server need not parse again.

Parsing a 1.3M-entry manifest takes over a second; loading its columns back
from a file takes milliseconds. Large files are memory-mapped and the
columns are views of the map: nothing per entry is copied, and the pages
belong to the page cache (shared by worker processes, reclaimable under
memory pressure) rather than to the process. Manifests are immutable and
named by their checksum, so a file never needs revalidating.

A file is an 8-byte magic, a format version and the length of a JSON header
(source, statistics, and where each column's buffer lies), then the raw
buffers, each at a multiple of 8 bytes, in the machine's byte order. Files
are written whole under a temporary name and renamed into place, so
processes sharing the directory never see half a file. A file that is
unusable (cut short by a crash, another format version, another byte
order) counts as absent and is deleted. Its structure is checked, not every
byte: a checksum would cost more than the load.
"""

from __future__ import annotations

import errno
import hashlib
import logging
import mmap
import os
import re
import struct
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import IO, Any

import numpy as np
import orjson

from zarrdav.manifests.columns import (
    Buffer,
    BytesColumn,
    FixedBytes,
    HexDigests,
    IntArray,
    PackedBytes,
)
from zarrdav.manifests.layout import is_checksum
from zarrdav.manifests.model import DirectoryTable, FileColumns, Manifest, Statistics

log = logging.getLogger("zarrdav")

MAGIC = b"ZARRDAVX"
VERSION = 1
SUFFIX = ".zdx"
_TEMPORARY_SUFFIX = ".zdx-tmp"
_PREFIX = struct.Struct("<8sII")  # magic, format version, header length
_ALIGN = 8
_INTEGER_TYPES = {"I", "Q", "q"}  # what the reader builds
_DIRECTORY_ARRAYS = ("parents", "first_child", "child_count", "first_file", "file_count")
# Each mapping holds a file descriptor (Python's mmap keeps a duplicate) for
# as long as the manifest is cached; reading smaller files into memory keeps
# the descriptors few (at most the memory cache over this) at a cost of
# milliseconds.
_MAP_FROM = 16 << 20
# Zarr ids become file names: plain names only, so no key can leave the directory.
_ZARR_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


class _Unreadable(ValueError):
    """An index file is not one this version can use."""


class ManifestIndex:
    """A directory of parsed manifests of the tree at ``tree_root``, at most
    ``max_bytes`` of files.

    Several processes, and indexes of other trees, may share the directory:
    files are named by tree, Zarr id and checksum. (The checksum covers
    paths, sizes and ETags, not version ids: two trees may pin the same
    content to different versions.) After a save that takes the directory
    over its size, the least recently used files go first (a load renews a
    file's mtime). Deleting a file another process has mapped is safe: the
    mapping keeps its pages until it is dropped.
    """

    def __init__(self, root: Path, max_bytes: int, tree_root: str) -> None:
        self.root = root
        self.max_bytes = max_bytes
        self._tree = hashlib.sha256(tree_root.encode()).hexdigest()[:16]
        self._warned: set[tuple[str, int | None]] = set()  # causes already reported
        self._lock = threading.Lock()

    def load(self, zarr_id: str, checksum: str) -> Manifest | None:
        """The indexed manifest, or None if it is not indexed (or unreadable)."""
        path = self._path(zarr_id, checksum)
        if path is None:
            return None
        try:
            with path.open("rb") as file:
                manifest = _read(file)
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as error:
            self._warn("read", error, f"cannot read {path}")
            return None
        except (ValueError, LookupError, TypeError, struct.error) as error:  # _Unreadable included
            log.warning("index file %s is unreadable (%s); parsing the manifest again", path, error)
            _unlink(path)
            return None
        _touch(path)
        return manifest

    def save(self, zarr_id: str, checksum: str, manifest: Manifest) -> bool:
        """Write ``manifest`` into the index; False if it could not be (reported once per cause)."""
        path = self._path(zarr_id, checksum)
        if path is None:
            return False
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            descriptor, temporary = tempfile.mkstemp(
                dir=self.root, prefix=".", suffix=_TEMPORARY_SUFFIX
            )
            try:
                with os.fdopen(descriptor, "wb") as file:
                    _write(file, manifest)
                _touch(Path(temporary))
                os.replace(temporary, path)
            except BaseException:
                _unlink(Path(temporary))
                raise
            self._evict()
        except OSError as error:
            message = f"cannot write to the manifest index {self.root}; serving without it"
            self._warn("write", error, message)
            return False
        return True

    def _path(self, zarr_id: str, checksum: str) -> Path | None:
        if _ZARR_ID.fullmatch(zarr_id) is None or not is_checksum(checksum):
            return None  # such a key is simply never indexed
        return self.root / f"{zarr_id}_{checksum}_{self._tree}{SUFFIX}"

    def _evict(self) -> None:
        """Delete the least recently used files until the directory fits ``max_bytes``."""
        files = []
        with os.scandir(self.root) as entries:
            for entry in entries:
                if entry.name.endswith((SUFFIX, _TEMPORARY_SUFFIX)):
                    try:
                        stat = entry.stat(follow_symlinks=False)
                    except FileNotFoundError:
                        continue  # another process evicted it meanwhile
                    files.append((stat.st_mtime_ns, stat.st_size, Path(entry.path)))
        total = sum(size for _, size, _ in files)
        for _, size, path in sorted(files):
            if total <= self.max_bytes:
                break
            _unlink(path)
            total -= size

    def _warn(self, action: str, error: OSError, message: str) -> None:
        # A read-only or full disk fails every save alike: say so once per cause.
        cause = (action, error.errno)
        with self._lock:
            first = cause not in self._warned
            self._warned.add(cause)
        log.log(logging.WARNING if first else logging.DEBUG, "%s: %s", message, error)


def _touch(path: Path) -> None:
    """Mark ``path`` used now, to the nanosecond: the kernel's own stamps are
    coarse (a clock tick), which would tie files used in quick succession."""
    now = time.time_ns()
    try:
        os.utime(path, ns=(now, now))
    except OSError:
        pass  # a read-only index still serves; it just cannot keep its LRU order


def _unlink(path: Path) -> None:
    try:
        path.unlink()
    except OSError as error:
        if error.errno != errno.ENOENT:
            log.debug("cannot delete %s: %s", path, error)


# --- writing ------------------------------------------------------------------


class _Buffers:
    """Lays buffers out one after another, each at a multiple of ``_ALIGN``."""

    def __init__(self) -> None:
        self.views: list[memoryview] = []
        self.end = 0

    def place(self, buffer: Buffer | IntArray) -> dict[str, Any]:
        """Add ``buffer``; where it lies (relative to the first buffer) and its item type."""
        view = memoryview(buffer)
        kind = view.format
        view = view.cast("B")
        section = {"at": self.end, "bytes": view.nbytes, "type": kind}
        self.views.append(view)
        self.end = _aligned(self.end + view.nbytes)
        return section


def _write(file: IO[bytes], manifest: Manifest) -> None:
    dirs, files = manifest.directory_table, manifest.file_columns
    buffers = _Buffers()
    header = {
        "byteorder": sys.byteorder,  # the buffers are in native order
        "source": manifest.source,
        "statistics": _statistics_fields(manifest.statistics),
        "directories": {
            "count": len(dirs.names),
            # "/" never occurs in a name, so it can join them.
            "names": buffers.place("/".join(dirs.names).encode()),
            **{
                name: buffers.place(getattr(dirs, name)) for name in _DIRECTORY_ARRAYS
            },
        },
        "files": {
            "count": len(files.names),
            "names": _column_fields(files.names, buffers),
            "version_ids": _column_fields(files.version_ids, buffers),
            "etags": _column_fields(files.etags, buffers),
            "sizes": buffers.place(files.sizes),
            "mtimes": buffers.place(files.mtimes),
        },
    }
    text = orjson.dumps(header)
    file.write(_PREFIX.pack(MAGIC, VERSION, len(text)) + text)
    file.write(bytes(_aligned(_PREFIX.size + len(text)) - _PREFIX.size - len(text)))
    for view in buffers.views:
        file.write(view)
        file.write(bytes(_aligned(view.nbytes) - view.nbytes))


def _column_fields(column: BytesColumn, buffers: _Buffers) -> dict[str, Any]:
    if isinstance(column, HexDigests):  # before FixedBytes: it is one
        return {"kind": "digests", "blob": buffers.place(column.blob)}
    if isinstance(column, FixedBytes):
        return {"kind": "fixed", "width": column.width, "blob": buffers.place(column.blob)}
    if isinstance(column, PackedBytes):
        offsets = buffers.place(column.offsets)
        return {"kind": "packed", "blob": buffers.place(column.blob), "offsets": offsets}
    raise TypeError(f"cannot index a {type(column).__name__}")


def _statistics_fields(statistics: Statistics) -> dict[str, Any]:
    moment = statistics.last_modified
    return {
        "entries": statistics.entries,
        "depth": statistics.depth,
        "total_size": statistics.total_size,
        "last_modified": None if moment is None else moment.isoformat(),
        "zarr_checksum": statistics.zarr_checksum,
        "checksum_mismatch": statistics.checksum_mismatch,
    }


def _aligned(offset: int) -> int:
    return -(-offset // _ALIGN) * _ALIGN


# --- reading ------------------------------------------------------------------


def _read(file: IO[bytes]) -> Manifest:
    size = os.fstat(file.fileno()).st_size
    if size < _PREFIX.size:
        raise _Unreadable(f"{size} bytes is too short")
    data: bytes | mmap.mmap = (
        mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) if size >= _MAP_FROM else file.read()
    )
    view = memoryview(data)
    magic, version, length = _PREFIX.unpack_from(view)
    if magic != MAGIC:
        raise _Unreadable("not a zarrdav manifest index file")
    if version != VERSION:
        raise _Unreadable(f"format version {version}, expected {VERSION}")
    header = orjson.loads(view[_PREFIX.size : _PREFIX.size + length])
    if header["byteorder"] != sys.byteorder:
        raise _Unreadable(f"written on a {header['byteorder']}-endian machine")
    # A truncated file shows as a buffer reaching past the end.
    sections = _Sections(view[_aligned(_PREFIX.size + length) :])
    dirs = _directory_table(header["directories"], sections)
    files = header["files"]
    count = files["count"]
    columns = FileColumns(
        names=_column(files["names"], count, sections),
        version_ids=_column(files["version_ids"], count, sections),
        etags=_column(files["etags"], count, sections),
        sizes=sections.integers(files["sizes"], count),
        mtimes=sections.integers(files["mtimes"], count),
    )
    _check_ranges(dirs, count)
    return Manifest(header["source"], _statistics(header["statistics"]), dirs, columns)


class _Sections:
    """Views of the buffers that follow the header, checked against their description."""

    def __init__(self, view: memoryview) -> None:
        self._view = view

    def bytes(self, section: dict[str, Any]) -> memoryview:
        return self._slice(section, {"B"})

    def integers(self, section: dict[str, Any], count: int) -> memoryview:
        values = self._slice(section, _INTEGER_TYPES).cast(section["type"])
        if len(values) != count:
            raise _Unreadable(f"{len(values)} values, expected {count}")
        return values

    def _slice(self, section: dict[str, Any], types: set[str]) -> memoryview:
        at, length = section["at"], section["bytes"]
        if section["type"] not in types or not 0 <= at <= at + length <= len(self._view):
            raise _Unreadable(f"buffer {section} does not fit in {len(self._view)} bytes")
        return self._view[at : at + length]


def _column(fields: dict[str, Any], count: int, sections: _Sections) -> BytesColumn:
    blob = sections.bytes(fields["blob"])
    kind = fields["kind"]
    if kind == "digests" and len(blob) == 16 * count:
        return HexDigests(blob, count)
    if kind == "fixed" and len(blob) == fields["width"] * count:
        return FixedBytes(blob, fields["width"], count)
    if kind == "packed":
        offsets = sections.integers(fields["offsets"], count + 1)
        if offsets[0] == 0 and offsets[count] == len(blob):
            return PackedBytes(blob, offsets)
    raise _Unreadable(f"bad {kind} column")


def _directory_table(fields: dict[str, Any], sections: _Sections) -> DirectoryTable:
    count = fields["count"]
    names = str(sections.bytes(fields["names"]), "utf-8").split("/")
    if len(names) != count:
        raise _Unreadable(f"{len(names)} directory names, expected {count}")
    arrays = {name: sections.integers(fields[name], count) for name in _DIRECTORY_ARRAYS}
    return DirectoryTable(names=names, **arrays)


def _check_ranges(dirs: DirectoryTable, file_count: int) -> None:
    """Every directory's subdirectories and files lie within the tables, so
    walking the tree cannot step outside them."""
    first_child, child_count = np.asarray(dirs.first_child), np.asarray(dirs.child_count)
    first_file, files = np.asarray(dirs.first_file), np.asarray(dirs.file_count)
    parents = np.asarray(dirs.parents)[1:]  # the root's is -1
    arrays = (first_child, child_count, first_file, files, parents)
    within = (
        all(values.min(initial=0) >= 0 for values in arrays)
        and (first_child + child_count).max() <= len(dirs.names)
        and (first_file + files).max() <= file_count
        and parents.max(initial=0) < len(dirs.names)
    )
    if not within:
        raise _Unreadable("directory ranges out of bounds")


def _statistics(fields: dict[str, Any]) -> Statistics:
    moment = fields.pop("last_modified")
    return Statistics(
        last_modified=None if moment is None else datetime.fromisoformat(moment), **fields
    )
