"""Reading manifest JSON into a ``Manifest``.

Two paths produce the same result. The fast path reads the ``entries``
object in blocks and finds strings, numbers and times with numpy array
operations, never a Python object per entry, so memory never holds the
parsed JSON of a 160 MB manifest. It takes the layout real manifests have (schemaVersion 2,
the standard field order, one entry per line) and declines anything it is
unsure of; the full path then parses the document with orjson, checks every
value and names the first fault it finds.
"""

from __future__ import annotations

import io
import operator
from array import array
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import numpy as np
import orjson

from zarrdav.errors import ManifestError
from zarrdav.manifests.columns import ColumnBuilder
from zarrdav.manifests.model import DirectoryTable, FileColumns, Manifest, Statistics

REQUIRED_FIELDS = ("versionId", "lastModified", "size", "ETag")
# Each block's numpy temporaries take several times its size: 1 MiB blocks
# parse as fast as 4 MiB ones with a peak some 30 MB lower.
_CHUNK = 1 << 20
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
    head = stream.read(1 << 16)
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
        _read_chunk(carry + memoryview(block)[:cut], builder, stack)  # one copy, not two
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
    """Read whole lines of ``entries`` with array operations, not a loop per entry.

    Strings lie between pairs of quotes. A file is four strings (name,
    version id, time, ETag) separated exactly as real manifests write them
    (``"n": ["v","t",123,"e"]``); a directory is one string followed by
    ``{``. Braces outside strings (an even number of quotes before them) give
    the structure; everything between two braces is files of one directory.
    """
    if b"\\" in chunk or b"/" in chunk or b"\0" in chunk:
        raise _Decline  # escaped strings, slashes or NULs: let the full path judge
    if not chunk.isascii():
        try:
            chunk.decode()
        except UnicodeDecodeError:
            raise _Decline from None
    data = np.frombuffer(chunk, dtype=np.uint8)
    quotes = np.flatnonzero(data == ord('"'))
    if len(quotes) % 2:
        raise _Decline
    starts, ends = quotes[0::2] + 1, quotes[1::2]  # string i is chunk[starts[i]:ends[i]]
    braces = np.flatnonzero((data == ord("{")) | (data == ord("}")))
    before = np.searchsorted(quotes, braces)  # quotes before each brace
    outside = before % 2 == 0
    runs: list[tuple[int, int, int]] = []  # (first string, end string, directory)
    directory_names: list[int] = []  # their string numbers
    start = 0
    for position, strings_before in zip(braces[outside].tolist(), (before[outside] // 2).tolist(), strict=False):
        if data[position] == ord("{"):
            key = strings_before - 1
            if key < start or chunk[ends[key] + 1 : position].strip() != b":":
                raise _Decline
            runs.append((start, key, stack[-1]))
            directory_names.append(key)
            name = chunk[starts[key] : ends[key]].decode()
            if name in ("", ".", ".."):
                raise _Decline
            stack.append(builder.add_directory(stack[-1], name))
        else:
            runs.append((start, strings_before, stack[-1]))
            stack.pop()
            if not stack:
                raise _Decline
        start = strings_before
    runs.append((start, len(starts), stack[-1]))
    if any((stop - first) % 4 for first, stop, _ in runs):
        raise _Decline
    # Every string but the directory names belongs to a file, in run order.
    is_file = np.ones(len(starts), dtype=bool)
    is_file[directory_names] = False
    index = np.flatnonzero(is_file)
    if len(index):
        counts = [(directory, (stop - first) // 4) for first, stop, directory in runs if stop > first]
        _read_files(data, starts, ends, index.reshape(-1, 4), counts, builder)


def _read_files(
    data: np.ndarray, starts: np.ndarray, ends: np.ndarray, index: np.ndarray,
    runs: list[tuple[int, int]], builder: _Builder,
) -> None:
    """Check and hand over files; ``index`` rows are the string numbers of each file."""
    name, version, time, etag = (index[:, column] for column in range(4))
    # The separators: `": [` after the name, `","` between version and time,
    # `",<digits>,"` between time and ETag, `"]` after the ETag.
    after_name = ends[name]
    canonical = (starts[version] - after_name == 5) & (data[after_name + 1] == ord(":"))
    canonical &= (data[after_name + 2] == ord(" ")) & (data[after_name + 3] == ord("["))
    canonical &= (starts[time] - ends[version] == 3) & (data[ends[version] + 1] == ord(","))
    digits = starts[etag] - ends[time] - 4
    canonical &= (digits >= 1) & (digits <= 18) & (data[ends[time] + 1] == ord(","))
    canonical &= data[starts[etag] - 2] == ord(",")
    canonical &= data[ends[etag] + 1] == ord("]")
    if not canonical.all():
        raise _Decline
    names = _gather(data, starts[name], ends[name] - starts[name])
    if (names[1] == 0).any() or _is_dot(data, starts[name], names[1]).any():
        raise _Decline
    builder.add_files(
        runs,
        names,
        _gather(data, starts[version], ends[version] - starts[version]),
        _gather(data, starts[etag], ends[etag] - starts[etag]),
        _sizes(data, ends[time] + 2, digits),
        _seconds(data, starts[time], ends[time] - starts[time]),
        _ascending(data, starts[name], names[1]),
    )


def _offsets_within(lengths: np.ndarray) -> np.ndarray:
    """0, 1, ..., length-1 for each length, concatenated."""
    total = int(lengths.sum())
    return np.arange(total) - np.repeat(np.cumsum(lengths) - lengths, lengths)


def _gather(data: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> tuple[bytes, np.ndarray]:
    """The strings at ``starts``, end to end, and their lengths."""
    width = int(lengths[0])
    if (lengths == width).all():  # the usual case for version ids and ETags
        return _rows(data, starts, width).tobytes(), lengths
    positions = np.repeat(starts, lengths) + _offsets_within(lengths)
    return data[positions].tobytes(), lengths


def _rows(data: np.ndarray, starts: np.ndarray, width: int) -> np.ndarray:
    """The ``width`` bytes at each of ``starts``, one row each.

    Rows of a window view are copied whole, four times as fast as gathering
    byte by byte through a two-dimensional index.
    """
    return np.lib.stride_tricks.sliding_window_view(data, width)[starts]


def _is_dot(data: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    first_dot = data[starts] == ord(".")
    second_dot = data[np.minimum(starts + 1, len(data) - 1)] == ord(".")
    return ((lengths == 1) & first_dot) | ((lengths == 2) & first_dot & second_dot)


def _sizes(data: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Decimal numbers of 1 to 18 digits at ``starts`` (each followed by more
    of the line, so a row of the longest length stays within ``data``)."""
    width = int(lengths.max())
    digits = _rows(data, starts, width).astype(np.int64) - ord("0")
    exponents = lengths[:, None] - 1 - np.arange(width)  # negative: past the number
    within = exponents >= 0
    if ((digits < 0) | (digits > 9))[within].any():
        raise _Decline
    return (np.where(within, digits, 0) * _POWERS_OF_TEN[np.maximum(exponents, 0)]).sum(axis=1)


_POWERS_OF_TEN = 10 ** np.arange(19, dtype=np.int64)


_TIME_LAYOUT = b"0000-00-00T00:00:00+00:00"
_TIME_DIGITS = np.frombuffer(_TIME_LAYOUT, dtype=np.uint8) == ord("0")


def _seconds(data: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """``YYYY-MM-DDTHH:MM:SS+00:00`` as seconds since the epoch."""
    if (lengths != len(_TIME_LAYOUT)).any():
        raise _Decline
    # Neighbouring entries were mostly written in the same second: parse the
    # first of each run of equal times only. Times are compared as three
    # 8-byte words (all but their last character, which is checked alone).
    words = _rows(data, starts, 24).view(np.uint64)
    changed = words[1:] != words[:-1]
    heads = np.flatnonzero(np.concatenate(([True], changed[:, 0] | changed[:, 1] | changed[:, 2])))
    if (data[starts + 24] != _TIME_LAYOUT[24]).any():
        raise _Decline
    run_lengths = np.diff(np.append(heads, len(starts)))
    return np.repeat(_parse_times(_rows(data, starts[heads], len(_TIME_LAYOUT))), run_lengths)


def _parse_times(text: np.ndarray) -> np.ndarray:
    layout = np.frombuffer(_TIME_LAYOUT, dtype=np.uint8)
    value = text.astype(np.int64) - ord("0")
    if (text[:, ~_TIME_DIGITS] != layout[~_TIME_DIGITS]).any():
        raise _Decline
    if ((value[:, _TIME_DIGITS] < 0) | (value[:, _TIME_DIGITS] > 9)).any():
        raise _Decline

    def number(first: int, last: int) -> np.ndarray:
        result = np.zeros(len(value), dtype=np.int64)
        for column in range(first, last):
            result = result * 10 + value[:, column]
        return result

    year, month, day = number(0, 4), number(5, 7), number(8, 10)
    hour, minute, second = number(11, 13), number(14, 16), number(17, 19)
    if ((month < 1) | (month > 12) | (day < 1) | (day > 31) | (hour > 23) | (minute > 59) | (second > 59)).any():
        raise _Decline
    # Days since 1970-01-01 of a civil date (H. Hinnant's days_from_civil).
    shifted = year - (month <= 2)
    era = shifted // 400
    year_of_era = shifted - era * 400
    day_of_year = (153 * (month + np.where(month > 2, -3, 9)) + 2) // 5 + day - 1
    day_of_era = year_of_era * 365 + year_of_era // 4 - year_of_era // 100 + day_of_year
    days = era * 146097 + day_of_era - 719468
    return days * 86400 + hour * 3600 + minute * 60 + second


def _ascending(data: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Whether each name sorts (bytewise) before the next one."""
    width = int(lengths.max())
    if width > 256:
        raise _Decline  # keep the padded copy small; such names go the full way
    padded = np.zeros((len(lengths), width), dtype=np.uint8)
    rows = np.repeat(np.arange(len(lengths)), lengths)
    within = _offsets_within(lengths)
    padded[rows, within] = data[np.repeat(starts, lengths) + within]
    names = padded.view(f"S{width}").ravel()  # NUL padding sorts first, as a shorter name
    return names[1:] > names[:-1]


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
            names = [name.encode() for name, _ in files]
            builder.add_files(
                [(directory, len(files))],
                _joined(names),
                _joined([value[0].encode() for _, value in files]),
                _joined([value[3].encode() for _, value in files]),
                np.array([value[2] for _, value in files], dtype=np.int64),
                np.array([int(value[1].timestamp()) for _, value in files], dtype=np.int64),
                np.fromiter(map(operator.lt, names, names[1:]), dtype=bool, count=len(names) - 1),
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
    """The file's values in ``REQUIRED_FIELDS`` order, checked; the time parsed."""
    *indices, width = positions
    if len(value) != width:
        raise ManifestError(source, f"entry {path!r} has {len(value)} values, expected {width}")
    version_id, modified, size, etag = (value[i] for i in indices)
    if not isinstance(version_id, str) or not version_id:
        raise ManifestError(source, f"entry {path!r}: versionId must be a non-empty string")
    moment = _parse_time(modified) if isinstance(modified, str) else None
    if moment is None:
        raise ManifestError(source, f"entry {path!r}: lastModified {modified!r} is not a timestamp")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise ManifestError(source, f"entry {path!r}: size {size!r} is not a byte count")
    if not isinstance(etag, str) or not etag:
        raise ManifestError(source, f"entry {path!r}: ETag must be a non-empty string")
    return [version_id, moment, size, etag]


def _joined(values: list[bytes]) -> tuple[bytes, np.ndarray]:
    return b"".join(values), np.fromiter(map(len, values), dtype=np.int64, count=len(values))


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
        names: tuple[bytes, np.ndarray],
        version_ids: tuple[bytes, np.ndarray],
        etags: tuple[bytes, np.ndarray],
        sizes: np.ndarray,
        seconds: np.ndarray,
        ascending: np.ndarray,
    ) -> None:
        """Append files given as ``(directory, count)`` runs over the columns.

        Strings come end to end with their lengths; ``ascending[i]`` says
        whether name ``i`` sorts before name ``i + 1``.
        """
        blob, lengths = names
        ends = np.cumsum(lengths).tolist()

        def name(index: int) -> bytes:
            return blob[ends[index - 1] if index else 0 : ends[index]]

        counts = np.fromiter((count for _, count in runs), np.int64, len(runs))
        firsts = np.cumsum(counts) - counts
        # A run is in order when no name inside it is out of order with the next.
        disorder = np.concatenate(([0], np.cumsum(~ascending)))
        in_order = (disorder[firsts + counts - 1] == disorder[firsts]).tolist()
        for (directory, count), ordered, first in zip(runs, in_order, firsts.tolist(), strict=False):
            total = self._count
            if self._runs and self._runs[-1][0] == directory and self._runs[-1][2] == total:
                # One run cut in two, by a chunk boundary or an empty subdirectory.
                _, start, _, was_in_order = self._runs.pop()
                joined = self._last_name < name(0) if first == 0 else bool(ascending[first - 1])
                ordered = was_in_order and ordered and joined
            else:
                start = total
            self._runs.append((directory, start, total + count, ordered))
            self._count += count
        self._last_name = name(len(ends) - 1)
        self._names.extend(*names)
        self._version_ids.extend(*version_ids)
        self._etags.extend(*etags)
        self._sizes.frombytes(sizes.astype(np.int64).tobytes())
        self._mtimes.frombytes(seconds.astype(np.int64).tobytes())

    def build(self, declared: dict[str, Any]) -> Manifest:
        directories, renumber = self._directory_table()
        order = self._file_order(directories, renumber)
        files = FileColumns(
            names=self._names.build(order),
            version_ids=self._version_ids.build(order),
            etags=self._etags.build(order),
            sizes=_reordered(self._sizes, order),
            mtimes=_reordered(self._mtimes, order),
        )
        newest = int(np.asarray(files.mtimes).max()) if self._count else None
        file_depths = {self._dir_depths[directory] for directory, *_ in self._runs}
        mismatch = declared.get("zarrChecksumMismatch")
        statistics = Statistics(
            entries=self._count,
            depth=max(file_depths, default=0),
            total_size=int(np.asarray(files.sizes).sum()),
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

    def _file_order(self, table: DirectoryTable, renumber: list[int]) -> array[int] | None:
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


def _reordered(values: array[int], order: array[int] | None) -> array[int]:
    if order is None:
        return values
    reordered = array("q")
    reordered.frombytes(np.asarray(values)[np.asarray(order)].tobytes())
    return reordered


def _optional_text(value: Any) -> str | None:
    return value if isinstance(value, str) else None
