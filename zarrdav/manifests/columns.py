"""Compact columns of per-entry values.

A manifest can hold over a million entries; one Python object per value
would cost several hundred bytes an entry. These columns keep each kind of
value in one buffer instead, a few bytes of overhead an entry, and hand out
single values on demand.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable
from typing import Protocol, TypeAlias

import numpy as np

# Values live in memory built by the reader, or in a view of a mapped index file.
Buffer: TypeAlias = bytes | bytearray | memoryview
# Integers: an ``array`` when built, a ``memoryview.cast`` of a mapped file when loaded.
IntArray: TypeAlias = "array[int] | memoryview"

_LOWER_HEX = b"0123456789abcdef"
_MD5_HEX_LENGTH = 32


class BytesColumn(Protocol):
    """A sequence of byte strings."""

    def __len__(self) -> int: ...

    def __getitem__(self, index: int) -> bytes: ...

    def bisect_left(self, key: bytes, low: int, high: int) -> int:
        """Where ``key`` goes in the sorted run ``[low, high)``, as ``bisect.bisect_left``.

        Without a method call per probe: listings place subdirectories with it.
        """
        ...

    def index_of(self, key: bytes, low: int, high: int) -> int | None:
        """The index of ``key`` in the sorted run ``[low, high)``, or None: a file lookup."""
        ...

    def text(self, index: int) -> str: ...

    def texts(self, start: int, stop: int) -> list[str]:
        """``text`` of each index in ``range(start, stop)``, at a fraction of the cost."""
        ...

    @property
    def nbytes(self) -> int: ...


class _Searchable:
    """``index_of`` from a column's own ``bisect_left`` and ``__getitem__``."""

    __slots__ = ()

    def __getitem__(self, index: int) -> bytes:
        raise NotImplementedError

    def bisect_left(self, key: bytes, low: int, high: int) -> int:
        raise NotImplementedError

    def index_of(self, key: bytes, low: int, high: int) -> int | None:
        index = self.bisect_left(key, low, high)
        return index if index < high and self[index] == key else None


class PackedBytes(_Searchable):
    """Byte strings of any length: one buffer, and ``count + 1`` offsets into it
    (value ``i`` is ``blob[offsets[i]:offsets[i + 1]]``)."""

    __slots__ = ("blob", "offsets")

    def __init__(self, blob: Buffer, offsets: IntArray) -> None:
        self.blob = memoryview(blob)  # slices without copying, whatever holds the bytes
        self.offsets = offsets

    @classmethod
    def from_lengths(cls, blob: Buffer, lengths: Iterable[int]) -> PackedBytes:
        typecode = "I" if len(blob) < 2**32 else "Q"
        counts = np.asarray(lengths) if isinstance(lengths, array) else np.fromiter(lengths, np.int64)
        ends = np.cumsum(counts, dtype=np.uint32 if typecode == "I" else np.uint64)
        offsets = array(typecode, [0])
        offsets.frombytes(ends.tobytes())
        return cls(blob, offsets)

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, index: int) -> bytes:
        offsets = self.offsets
        return self.blob[offsets[index] : offsets[index + 1]].tobytes()

    def text(self, index: int) -> str:
        return self[index].decode()

    def bisect_left(self, key: bytes, low: int, high: int) -> int:
        blob, offsets = self.blob, self.offsets
        while low < high:
            middle = (low + high) >> 1
            if blob[offsets[middle] : offsets[middle + 1]].tobytes() < key:
                low = middle + 1
            else:
                high = middle
        return low

    def texts(self, start: int, stop: int) -> list[str]:
        offsets = self.offsets
        base = offsets[start]
        values = self.blob[base : offsets[stop]].tobytes()  # one copy, then cheap slices
        ends = offsets[start + 1 : stop + 1]
        return [values[a - base : b - base].decode() for a, b in zip(offsets[start:stop], ends, strict=True)]

    @property
    def nbytes(self) -> int:
        return len(self.blob) + self.offsets.itemsize * len(self.offsets)


class FixedBytes(_Searchable):
    """Byte strings that all have one length: a buffer and no offsets."""

    __slots__ = ("blob", "width", "_count")

    def __init__(self, blob: Buffer, width: int, count: int) -> None:
        self.blob = memoryview(blob)  # slices without copying, whatever holds the bytes
        self.width = width
        self._count = count

    def __len__(self) -> int:
        return self._count

    def __getitem__(self, index: int) -> bytes:
        return self._value(index).tobytes()

    def text(self, index: int) -> str:
        return self._value(index).tobytes().decode()

    def bisect_left(self, key: bytes, low: int, high: int) -> int:
        blob, width = self.blob, self.width
        while low < high:
            middle = (low + high) >> 1
            if blob[middle * width : (middle + 1) * width].tobytes() < key:
                low = middle + 1
            else:
                high = middle
        return low

    def texts(self, start: int, stop: int) -> list[str]:
        width = self.width
        values = self.blob[start * width : stop * width].tobytes()
        return [values[i : i + width].decode() for i in range(0, len(values), width)]

    def _value(self, index: int) -> memoryview:
        if not 0 <= index < self._count:
            raise IndexError(index)
        width = self.width
        return self.blob[index * width : (index + 1) * width]

    @property
    def nbytes(self) -> int:
        return len(self.blob)


class HexDigests(FixedBytes):
    """MD5 digests kept as 16 raw bytes and read back as 32 hex digits."""

    __slots__ = ()

    def __init__(self, blob: Buffer, count: int) -> None:
        super().__init__(blob, 16, count)

    def __getitem__(self, index: int) -> bytes:
        return self._value(index).hex().encode()

    def text(self, index: int) -> str:
        return self._value(index).hex()

    def bisect_left(self, key: bytes, low: int, high: int) -> int:
        while low < high:  # values are hex, the blob raw: compare what __getitem__ gives
            middle = (low + high) >> 1
            if self[middle] < key:
                low = middle + 1
            else:
                high = middle
        return low

    def texts(self, start: int, stop: int) -> list[str]:
        digits = self.blob[start * 16 : stop * 16].hex()
        return [digits[i : i + 32] for i in range(0, len(digits), 32)]


class ColumnBuilder:
    """Collects byte strings run by run, then freezes them into a column.

    While every value has had one width, no lengths are kept at all; with
    ``digests``, runs of lowercase MD5 hex digests are kept as raw digests
    (half the memory). The first run that breaks either habit converts what
    came before.
    """

    def __init__(self, *, digests: bool = False) -> None:
        self._buffer = bytearray()
        self._width: int | None = None  # shared width while there is one
        self._lengths: array[int] | None = None  # per value, once widths differ
        self._digests = digests
        self._count = 0

    def extend(self, joined: bytes, lengths: np.ndarray) -> None:
        """Append the values ``joined`` holds end to end, ``lengths`` bytes each."""
        count = len(lengths)
        if not count:
            return
        width = int(lengths[0])
        uniform = bool((lengths == width).all())
        if self._digests:
            if uniform and width == _MD5_HEX_LENGTH and not joined.translate(None, _LOWER_HEX):
                self._buffer += bytes.fromhex(joined.decode())
                self._count += count
                return
            self._undo_digests()
        if self._lengths is None and uniform and self._width in (None, width):
            self._width = width
        else:
            if self._lengths is None:
                self._lengths = array("I", [self._width or 0]) * self._count
            self._lengths.frombytes(lengths.astype(np.uint32).tobytes())
        self._buffer += joined
        self._count += count

    def _undo_digests(self) -> None:
        self._digests = False
        self._buffer = bytearray(self._buffer.hex().encode())
        if self._count:
            self._width = _MD5_HEX_LENGTH

    def build(self, order: array[int] | None = None) -> BytesColumn:
        """Freeze the column, optionally reordered by ``order`` (old indices)."""
        blob: bytes | bytearray = self._buffer
        if self._digests:
            if order is not None:
                blob = b"".join([blob[i * 16 : i * 16 + 16] for i in order])
            return HexDigests(blob, self._count)
        if self._lengths is None:
            column: BytesColumn = FixedBytes(blob, self._width or 0, self._count)
        else:
            column = PackedBytes.from_lengths(blob, self._lengths)
        if order is None:
            return column
        pieces = [column[i] for i in order]
        if self._lengths is None:
            return FixedBytes(b"".join(pieces), self._width or 0, self._count)
        return PackedBytes.from_lengths(b"".join(pieces), map(len, pieces))
