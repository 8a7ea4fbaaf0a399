"""Reading manifest JSON into a ``Manifest``.

Two paths produce the same result. The fast path splits the ``entries``
object at its quotes, chunk by chunk, and moves whole columns of names,
version ids and sizes at C speed, so memory never holds the parsed JSON of a
160 MB manifest. It takes the layout real manifests have (schemaVersion 2,
the standard field order, one entry per line) and declines anything it is
unsure of; the full path then parses the document with orjson, checks every
value and names the first fault it finds.
"""

from __future__ import annotations

import io
import operator
from array import array
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import orjson

from zarrdav.errors import ManifestError
from zarrdav.manifests.columns import ColumnBuilder
from zarrdav.manifests.model import DirectoryTable, FileColumns, Manifest, Statistics

REQUIRED_FIELDS = ("versionId", "lastModified", "size", "ETag")
_CHUNK = 4 << 20
_ENTRIES_KEY = b'"entries": {'
_WHITESPACE = b" \t\r\n"


class _Decline(Exception):
    """The fast path is unsure; the full path decides."""


def read_manifest_file(path: Path, source: str | None = None) -> Manifest:
    """Parse the manifest at ``path`` without reading it all into memory."""
    with path.open("rb") as stream:
        return read_manifest(stream, source or str(path))


def parse_manifest(data: bytes, source: str) -> Manifest:
    """Parse manifest JSON; raise ``ManifestError`` naming ``source`` if bad."""
    return read_manifest(io.BytesIO(data), source)


def read_manifest(stream: IO[bytes], source: str) -> Manifest:
    """Parse manifest JSON from a seekable binary stream, block by block."""
    try:
        return _parse_fast(stream, source)
    except _Decline:
        stream.seek(0)
        return _parse_full(stream.read(), source)


def _parse_fast(stream: IO[bytes], source: str) -> Manifest:
    head = stream.read(_CHUNK)
    key = head.find(_ENTRIES_KEY)
    if key < 0:
        raise _Decline
    region_end = _entries_end(stream)
    stream.seek(region_end)
    rest = head[:key] + b'"entries":null' + stream.read()[1:]
    try:
        header = orjson.loads(rest)
    except orjson.JSONDecodeError:
        raise _Decline from None
    fields, statistics = _read_header(header, source)
    if fields != list(REQUIRED_FIELDS):
        raise _Decline

    builder = _Builder(source)
    stack = [0]
    stream.seek(key + len(_ENTRIES_KEY))
    remaining = region_end - stream.tell()
    carry = b""
    while remaining > 0:
        block = stream.read(min(_CHUNK, remaining))
        if not block:
            raise _Decline
        remaining -= len(block)
        cut = block.rfind(b"\n") + 1 if remaining else len(block)
        if cut == 0:
            carry += block  # no line end yet: one very long line
            continue
        _read_chunk(carry + block[:cut], builder, stack)
        carry = block[cut:]
    if carry.strip() or stack != [0]:
        raise _Decline
    return builder.build(statistics)


def _entries_end(stream: IO[bytes]) -> int:
    """Offset of the ``}`` closing ``entries``, if ``entries`` is the last key."""
    size = stream.seek(0, io.SEEK_END)
    offset = max(0, size - 4096)
    stream.seek(offset)
    tail = stream.read().rstrip()
    if not tail.endswith(b"}"):
        raise _Decline
    tail = tail[:-1].rstrip()
    if not tail.endswith(b"}"):
        raise _Decline
    return offset + len(tail) - 1


def _read_chunk(chunk: bytes, builder: _Builder, stack: list[int]) -> None:
    """Read whole lines of ``entries``.

    Split at quotes, strings and separators alternate: ``seps[i]`` comes
    before ``strings[i]``. A file is four strings (name, version id, time,
    ETag) with the size inside the separator after the time; a directory is
    one string whose next separator holds ``{``. Braces are found in the
    chunk and placed by counting the quotes before them. The files of the
    whole chunk are then checked and handed over at once, in runs that each
    belong to one directory.
    """
    if b"\\" in chunk or b"/" in chunk:
        raise _Decline  # escaped strings or slashes: let the full path judge
    try:
        chunk.decode()
    except UnicodeDecodeError:
        raise _Decline from None
    pieces = chunk.split(b'"')
    if len(pieces) % 2 == 0:
        raise _Decline
    seps, strings = pieces[0::2], pieces[1::2]
    file_strings: list[bytes] = []
    file_seps: list[bytes] = []  # the separator after each of file_strings
    runs: list[tuple[int, int]] = []  # (directory, number of files)

    def take_files(stop: int) -> None:
        if stop > start:
            file_strings.extend(strings[start:stop])
            file_seps.extend(seps[start + 1 : stop + 1])
            runs.append((stack[-1], stop - start))

    start = 0
    for separator, opens in _braces(chunk):
        if opens:
            if not seps[separator].lstrip(_WHITESPACE).startswith(b":"):
                raise _Decline
            take_files(separator - 1)
            name = strings[separator - 1].decode()
            if name in ("", ".", ".."):
                raise _Decline
            stack.append(builder.add_directory(stack[-1], name))
        else:
            take_files(separator)
            stack.pop()
            if not stack:
                raise _Decline
        start = separator
    take_files(len(strings))
    if file_strings:
        _read_files(file_strings, file_seps, runs, builder)


def _braces(chunk: bytes) -> list[tuple[int, bool]]:
    """``(separator index, is opening)`` of each brace outside strings, in order."""
    found = []
    quotes = position = 0
    next_open, next_close = chunk.find(b"{"), chunk.find(b"}")
    while next_open >= 0 or next_close >= 0:
        opens = next_close < 0 or 0 <= next_open < next_close
        brace = next_open if opens else next_close
        quotes += chunk.count(b'"', position, brace)
        if quotes % 2 == 0:
            found.append((quotes // 2, opens))
        position = brace + 1
        if opens:
            next_open = chunk.find(b"{", position)
        else:
            next_close = chunk.find(b"}", position)
    return found


def _read_files(
    strings: list[bytes], seps: list[bytes], runs: list[tuple[int, int]], builder: _Builder
) -> None:
    """Check and hand over files: four strings each, ``seps[i]`` after ``strings[i]``."""
    count, remainder = divmod(len(strings), 4)
    if remainder or any(files % 4 for _, files in runs):
        raise _Decline
    names = strings[0::4]
    if b"" in names or b"." in names or b".." in names:
        raise _Decline
    if _squeeze(seps[0::4]) != b":[" * count or _squeeze(seps[1::4]) != b"," * count:
        raise _Decline
    # An ETag's separator is "]" and a comma, or braces closing directories.
    closing = _squeeze(seps[3::4]).translate(None, b",}")
    if closing != b"]" * count:
        raise _Decline
    sizes = _squeeze(seps[2::4])[1:-1].split(b",,")
    if len(sizes) != count or b"" in sizes or not b"".join(sizes).isdigit():
        raise _Decline
    builder.add_files(
        [(directory, files // 4) for directory, files in runs],
        names,
        strings[1::4],
        strings[2::4],
        list(map(int, sizes)),
        strings[3::4],
    )


def _squeeze(parts: list[bytes]) -> bytes:
    """The parts joined with white space removed."""
    return b"".join(parts).translate(None, _WHITESPACE)


def _parse_full(data: bytes, source: str) -> Manifest:
    try:
        document = orjson.loads(data)
    except orjson.JSONDecodeError as error:
        raise ManifestError(source, f"not valid JSON ({error})") from None
    fields, statistics = _read_header(document, source)
    positions = _field_positions(fields, source)
    entries = document.get("entries")
    if not isinstance(entries, dict):
        raise ManifestError(source, "'entries' is missing or not an object")
    builder = _Builder(source)
    pending: list[tuple[int, str, dict[str, Any]]] = [(0, "", entries)]
    while pending:
        directory, path, children = pending.pop()
        files: list[tuple[str, list[Any]]] = []
        for name, value in children.items():
            entry_path = f"{path}{name}"
            _check_name(name, entry_path, source)
            if isinstance(value, dict):
                subdirectory = builder.add_directory(directory, name)
                pending.append((subdirectory, f"{entry_path}/", value))
            elif isinstance(value, list):
                files.append((name, _check_file(value, positions, entry_path, source)))
            else:
                kind = type(value).__name__
                raise ManifestError(source, f"entry {entry_path!r} is a {kind}, not a file or directory")
        if files:
            builder.add_files(
                [(directory, len(files))],
                [name.encode() for name, _ in files],
                [value[0].encode() for _, value in files],
                [value[1].encode() for _, value in files],
                [value[2] for _, value in files],
                [value[3].encode() for _, value in files],
            )
    return builder.build(statistics)


def _read_header(document: Any, source: str) -> tuple[list[str], dict[str, Any]]:
    if not isinstance(document, dict):
        raise ManifestError(source, "the document is not a JSON object")
    version = document.get("schemaVersion")
    if version != 2:
        raise ManifestError(source, f"unsupported schemaVersion {version!r} (expected 2)")
    fields = document.get("fields")
    if not isinstance(fields, list) or not all(isinstance(field, str) for field in fields):
        raise ManifestError(source, f"'fields' must be a list of names, not {fields!r}")
    statistics = document.get("statistics") or {}
    if not isinstance(statistics, dict):
        raise ManifestError(source, "'statistics' is not an object")
    return fields, statistics


def _field_positions(fields: list[str], source: str) -> tuple[int, ...]:
    missing = [field for field in REQUIRED_FIELDS if field not in fields]
    if missing:
        raise ManifestError(source, f"'fields' lacks {', '.join(map(repr, missing))}")
    return tuple(fields.index(field) for field in REQUIRED_FIELDS) + (len(fields),)


def _check_name(name: str, path: str, source: str) -> None:
    if name in ("", ".", "..") or "/" in name:
        raise ManifestError(source, f"entry name {name!r} at {path!r} is not a valid path segment")


def _check_file(value: list[Any], positions: tuple[int, ...], path: str, source: str) -> list[Any]:
    """The file's values in ``REQUIRED_FIELDS`` order, checked."""
    *indices, width = positions
    if len(value) != width:
        raise ManifestError(source, f"entry {path!r} has {len(value)} values, expected {width}")
    version_id, modified, size, etag = (value[i] for i in indices)
    if not isinstance(version_id, str) or not version_id:
        raise ManifestError(source, f"entry {path!r}: versionId must be a non-empty string")
    if not isinstance(modified, str) or _parse_time(modified) is None:
        raise ManifestError(source, f"entry {path!r}: lastModified {modified!r} is not a timestamp")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise ManifestError(source, f"entry {path!r}: size {size!r} is not a byte count")
    if not isinstance(etag, str) or not etag:
        raise ManifestError(source, f"entry {path!r}: ETag must be a non-empty string")
    return [version_id, modified, size, etag]


def _parse_time(text: str) -> datetime | None:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


class _Builder:
    """Accumulates directories and runs of files, then freezes a ``Manifest``."""

    def __init__(self, source: str) -> None:
        self._source = source
        self._dir_names: list[str] = [""]
        self._dir_parents: list[int] = [-1]
        self._dir_depths: list[int] = [0]
        self._runs: list[tuple[int, int, int, bool]] = []  # directory, start, stop, sorted
        self._names = ColumnBuilder()
        self._version_ids = ColumnBuilder()
        self._etags = ColumnBuilder(digests=True)
        self._sizes = array("q")
        self._mtimes = array("q")
        self._count = 0
        self._last_name = b""

    def add_directory(self, parent: int, name: str) -> int:
        self._dir_names.append(name)
        self._dir_parents.append(parent)
        self._dir_depths.append(self._dir_depths[parent] + 1)
        return len(self._dir_names) - 1

    def add_files(
        self,
        runs: list[tuple[int, int]],
        names: Sequence[bytes],
        version_ids: Sequence[bytes],
        mtimes: Sequence[bytes],
        sizes: Sequence[int],
        etags: Sequence[bytes],
    ) -> None:
        """Append files given as ``(directory, count)`` runs over the columns."""
        in_order = list(map(operator.lt, names, names[1:]))
        offset = 0
        for directory, count in runs:
            if not count:
                continue
            try:
                in_order.index(False, offset, offset + count - 1)
                sorted_run = False
            except ValueError:
                sorted_run = True
            self._add_run(directory, count, sorted_run, names[offset], names[offset + count - 1])
            offset += count
        self._names.extend(names)
        self._version_ids.extend(version_ids)
        self._etags.extend(etags)
        self._sizes.extend(sizes)
        # Neighbouring entries were mostly written in the same second.
        seconds = {}
        for text in set(mtimes):
            moment = _parse_time(text.decode())
            if moment is None:
                raise _Decline
            seconds[text] = int(moment.timestamp())
        self._mtimes.extend(map(seconds.__getitem__, mtimes))

    def _add_run(self, directory: int, count: int, in_order: bool, first: bytes, last: bytes) -> None:
        runs, total = self._runs, self._count
        if runs and runs[-1][0] == directory and runs[-1][2] == total:
            # The same run cut in two by a chunk boundary.
            _, start, _, was_in_order = runs.pop()
            in_order = was_in_order and in_order and self._last_name < first
        else:
            start = total
        runs.append((directory, start, total + count, in_order))
        self._last_name = last
        self._count += count

    def build(self, declared: dict[str, Any]) -> Manifest:
        directories, renumber = self._directory_table()
        order = self._file_order(directories, renumber)
        files = FileColumns(
            names=self._names.build(order),
            version_ids=self._version_ids.build(order),
            etags=self._etags.build(order),
            sizes=self._sizes if order is None else array("q", map(self._sizes.__getitem__, order)),
            mtimes=self._mtimes if order is None else array("q", map(self._mtimes.__getitem__, order)),
        )
        newest = max(self._mtimes) if self._mtimes else None
        file_depths = {self._dir_depths[directory] for directory, *_ in self._runs}
        mismatch = declared.get("zarrChecksumMismatch")
        statistics = Statistics(
            entries=self._count,
            depth=max(file_depths, default=0),
            total_size=sum(self._sizes),
            last_modified=None if newest is None else datetime.fromtimestamp(newest, UTC),
            zarr_checksum=_optional_text(declared.get("zarrChecksum")),
            checksum_mismatch=_optional_text(mismatch),
        )
        return Manifest(self._source, statistics, directories, files)

    def _directory_table(self) -> tuple[DirectoryTable, list[int]]:
        """Number directories breadth first, siblings by name, so siblings are adjacent."""
        children: list[list[int]] = [[] for _ in self._dir_names]
        for directory, parent in enumerate(self._dir_parents[1:], start=1):
            children[parent].append(directory)
        order = [0]
        first_child = array("q")
        child_count = array("q")
        for directory in order:  # grows while iterating: breadth first
            kids = sorted(children[directory], key=self._dir_names.__getitem__)
            names = [self._dir_names[kid] for kid in kids]
            if len(set(names)) != len(names):
                raise ManifestError(self._source, f"duplicate directory under {self._path(directory)!r}")
            first_child.append(len(order))
            child_count.append(len(kids))
            order.extend(kids)
        renumber = [0] * len(order)
        for new, old in enumerate(order):
            renumber[old] = new
        table = DirectoryTable(
            names=[self._dir_names[old] for old in order],
            parents=array("q", [-1] + [renumber[self._dir_parents[old]] for old in order[1:]]),
            first_child=first_child,
            child_count=child_count,
            first_file=array("q", [0]) * len(order),
            file_count=array("q", [0]) * len(order),
        )
        return table, renumber

    def _file_order(self, table: DirectoryTable, renumber: list[int]) -> array | None:
        """Make each directory's files one sorted range; None if already so."""
        runs_by_directory: dict[int, list[tuple[int, int, bool]]] = {}
        for directory, start, stop, in_order in self._runs:
            runs_by_directory.setdefault(directory, []).append((start, stop, in_order))
        reorder = any(
            len(runs) > 1 or not runs[0][2] for runs in runs_by_directory.values()
        )
        order = array("q") if reorder else None
        names = self._names.build() if reorder else None
        position = 0
        for directory, runs in runs_by_directory.items():
            new = renumber[directory]
            count = sum(stop - start for start, stop, _ in runs)
            table.first_file[new] = position if order is not None else runs[0][0]
            table.file_count[new] = count
            position += count
            if names is not None and order is not None:
                indices = [i for start, stop, _ in runs for i in range(start, stop)]
                indices.sort(key=names.__getitem__)
                sorted_names = [names[i] for i in indices]
                if any(map(operator.eq, sorted_names, sorted_names[1:])):
                    where = self._path(new, table)
                    raise ManifestError(self._source, f"duplicate file under {where!r}")
                order.extend(indices)
        return order

    def _path(self, directory: int, table: DirectoryTable | None = None) -> str:
        names, parents = (table.names, table.parents) if table else (self._dir_names, self._dir_parents)
        parts = []
        while directory > 0:
            parts.append(names[directory])
            directory = parents[directory]
        return "/".join(reversed(parts))


def _optional_text(value: Any) -> str | None:
    return value if isinstance(value, str) else None
