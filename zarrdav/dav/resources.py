"""What the server shows at a path: cheap resource records, never changed once made.

A resource only answers property getters; making one costs no I/O. The
provider builds them from manifests (and, later, the archive), and the
PROPFIND, GET and HTML code reads them. They are not frozen dataclasses:
a listing of 10,000 chunks makes 10,000 of them, and frozen ones cost four
times as much to make.
"""

from __future__ import annotations

import mimetypes
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache

# The date of the collections that have none of their own (``/``, ``/zarrs/``
# and its prefix folders, ``/dandisets/``): the Unix epoch, the same on every
# server and every day. Their content changes without it, so it validates
# nothing: a conditional request must not be answered 304 on it.
UNDATED = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(slots=True)
class Collection:
    """A folder: listed by PROPFIND Depth 1 and as an HTML page."""

    path: str  # decoded absolute path, ending in "/"
    kind: str  # shown in the HTML "Type" column, e.g. "Zarr version"
    size: int | None = None
    created: datetime | None = None
    modified: datetime | None = None
    etag: str | None = None  # without quotes
    details: str | None = None  # a short extra shown in HTML, e.g. "509 entries"
    links: tuple[tuple[str, str], ...] = field(default=())  # (label, URL) shown on its page
    pinned: bool = True  # False: a live view of S3, not version-pinned
    newest_first: bool = False  # its page lists members by modified time, newest first
    canonical: str | None = None  # the permanent path of what a draft/ or latest/ path shows
    # What its HTML page and its row show a person (never PROPFIND).
    title: str | None = None  # a Dandiset's or version's name
    citation: str | None = None  # a version's citation, as the archive gives it
    doi: str | None = None  # a published version's DOI, e.g. "10.48324/dandi.000001/0.230629.1955"
    version: str | None = None  # the archive version a Dandiset view shows (latest/: the release)
    zarr: bool = False  # the root of a Zarr: its page shows how to open it
    entries: int | None = None  # a Zarr version's entry count
    changes: tuple[int, int, int] | None = None  # added, removed, changed since the previous version
    metadata_url: str | None = None  # an asset's archive metadata

    @property
    def name(self) -> str:
        return self.path.rstrip("/").rpartition("/")[2]

    @property
    def is_collection(self) -> bool:
        return True

    @property
    def content_type(self) -> str | None:
        return None


@dataclass(slots=True)
class File:
    """A file: GET redirects to ``location`` (or serves ``body`` when set)."""

    path: str  # decoded absolute path
    kind: str
    size: int | None = None
    created: datetime | None = None
    modified: datetime | None = None
    etag: str | None = None  # without quotes
    location: str | None = None  # unset in listings: a GET resolves its path anew
    body: bytes | None = None
    media_type: str | None = None
    details: str | None = None
    pinned: bool = True  # False: redirects to the current object, not a version
    canonical: str | None = None  # the permanent path of what a draft/ or latest/ path shows
    md5: str | None = None  # the MD5 of the bytes (32 hex digits), when known
    metadata_url: str | None = None  # an asset's archive metadata, linked from its row
    private: bool = False  # its object is private in the bucket: served presigned (dav/delivery.py)

    @property
    def name(self) -> str:
        return self.path.rpartition("/")[2]

    @property
    def is_collection(self) -> bool:
        return False

    @property
    def content_type(self) -> str:
        return self.media_type or guess_content_type(self.name)


Resource = Collection | File

_HEX = "0123456789abcdefABCDEF"


def md5_of(etag: str | None) -> str | None:
    """The MD5 an S3-style ETag is, lowercase; None for a multipart one (``<md5>-<parts>``)."""
    if etag is None or len(etag) != 32 or etag.strip(_HEX):
        return None
    return etag.lower()


def guess_content_type(name: str) -> str:
    """By extension, with the Zarr metadata files as JSON."""
    if name in (".zarray", ".zgroup", ".zattrs", ".zmetadata", "zarr.json"):
        return "application/json"
    if name[:1].isdigit() and not name.strip("0123456789."):
        # A chunk key such as "0.1.2": a listing holds thousands, and all that
        # mimetypes reads of such a name is its extension (".2", or none).
        dot = name.rfind(".")
        name = f"0{name[dot:]}" if dot > 0 else "0"
    return _guess(name)


@lru_cache(maxsize=1024)
def _guess(name: str) -> str:
    guessed, _ = mimetypes.guess_type(name, strict=False)
    return guessed or "application/octet-stream"
