"""Manifest trees: where manifests live, behind one small interface.

A tree is a folder hierarchy ``<p1>/<p2>/<zarr_id>/<checksum>.json`` under a
root that is an HTTP(S) URL answering JSON directory listings, an
``s3://bucket/prefix/``, or a local directory. Missing things raise
``NotFound``; an unreachable or broken tree raises ``UpstreamError`` (or
``UpstreamTimeout``), so callers can tell "absent" from "broken".

What a tree hands over is bounded: a manifest larger than
``max_manifest_bytes`` is refused before it is read where the tree tells its
size (stat, ``Content-Length``, S3's ``ContentLength``) and while it is read
where it does not; a listing has its own bound. Messages name the tree by
kind and the path inside it, never the root, which may be a local directory
or a URL with credentials in it.
"""

from __future__ import annotations

import os
import stat
import tempfile
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote

import httpx
import orjson

from zarrdav import __version__
from zarrdav.errors import NotFound, UpstreamError, UpstreamTimeout
from zarrdav.manifests.layout import (
    checksum_of_filename,
    is_valid_segment,
    manifest_checksums,
    manifest_path,
    zarr_prefix,
)
from zarrdav.manifests.model import Manifest
from zarrdav.manifests.reader import read_manifest
from zarrdav.upstreams.http import copy_body, get, make_http_client, read_body
from zarrdav.upstreams.s3 import S3_ATTEMPTS, make_s3_client, s3_errors, split_s3_url

# Parses a fetched manifest file, given as a seekable stream and the name of its source.
Reader = Callable[[IO[bytes], str], Manifest]

KIND = "manifest tree"
# The largest real manifest is about 160 MB; its largest folder lists a few
# hundred thousand names (a few MB).
MAX_MANIFEST_BYTES = 2**30
MAX_LISTING_BYTES = 64 * 2**20


@dataclass(frozen=True, slots=True)
class Listing:
    """One folder of a tree: its subfolders and files, each sorted."""

    directories: list[str]
    files: list[str]


class ManifestTree(ABC):
    """Where manifests live; implementations differ only in transport."""

    root: str
    max_manifest_bytes: int = MAX_MANIFEST_BYTES

    @abstractmethod
    def list_directory(self, path: str) -> Listing:
        """The folder at ``path`` (``""`` or ``a/b``, relative to the root)."""

    @abstractmethod
    def _open(self, path: str) -> AbstractContextManager[IO[bytes]]:
        """The file at ``path`` as a seekable stream; NotFound if absent, refused if too large."""

    def checksums(self, zarr_id: str) -> list[str]:
        """The checksums a Zarr has manifests for, sorted; other files skipped."""
        return manifest_checksums(self.list_directory(zarr_prefix(_checked(zarr_id))).files)

    def fetch_manifest(self, zarr_id: str, checksum: str, read: Reader = read_manifest) -> Manifest:
        """The manifest of ``zarr_id`` as of ``checksum``, parsed by ``read`` once fetched."""
        path = manifest_path(_checked(zarr_id), _checked(checksum))
        if checksum_of_filename(path.rpartition("/")[2]) is None:
            raise NotFound(f"{checksum!r} is not a Zarr checksum")
        with self._open(path) as stream:
            return read(stream, f"{KIND}: {path}")

    def _too_large(self, path: str) -> UpstreamError:
        return UpstreamError(f"{KIND}: {path}: larger than the {self.max_manifest_bytes // 2**20} MiB allowed")


@contextmanager
def _spooled(download: Callable[[IO[bytes]], None]) -> Iterator[IO[bytes]]:
    """A remote file spooled to local disk: a 160 MB manifest is then read
    block by block and never sits in memory as one string."""
    with tempfile.TemporaryFile(prefix="zarrdav-manifest-") as spool:
        download(spool)
        spool.seek(0)
        yield spool


def _checked(segment: str) -> str:
    if not is_valid_segment(segment):
        raise NotFound(f"{segment!r} is not a valid name")
    return segment


def _segments(path: str) -> list[str]:
    return [_checked(part) for part in path.split("/") if part]


def _sorted_listing(directories: list[str], files: list[str]) -> Listing:
    return Listing(
        directories=sorted(name for name in directories if is_valid_segment(name)),
        files=sorted(name for name in files if is_valid_segment(name)),
    )


class LocalTree(ManifestTree):
    """A manifest tree in a local directory.

    Nothing outside the root is reached: a path whose symlinks resolve out of
    it is absent, and such links are not listed. Only regular files are read
    (a FIFO would block the request until someone writes to it).
    """

    def __init__(self, root: Path, *, max_manifest_bytes: int = MAX_MANIFEST_BYTES) -> None:
        self.root = str(root)
        self.max_manifest_bytes = max_manifest_bytes
        self._real = os.path.realpath(root)

    def _resolve(self, path: str) -> str:
        """The real path of ``path`` in the tree; NotFound if it leads out of it."""
        real = os.path.realpath(os.path.join(self._real, *_segments(path)))
        if not self._inside(real):
            raise NotFound(f"{KIND}: {path} leads out of the tree")
        return real

    def _inside(self, real: str) -> bool:
        return real == self._real or real.startswith(self._real + os.sep)

    def list_directory(self, path: str) -> Listing:
        directories: list[str] = []
        files: list[str] = []
        try:
            with os.scandir(self._resolve(path)) as entries:
                for entry in entries:
                    if entry.is_symlink() and not self._inside(os.path.realpath(entry.path)):
                        continue
                    (directories if entry.is_dir() else files).append(entry.name)
        except (FileNotFoundError, NotADirectoryError):
            raise NotFound(f"{KIND}: no folder {path or '/'}") from None
        except OSError as error:
            raise UpstreamError(f"{KIND}: cannot list {path or '/'}: {error.strerror}") from error
        return _sorted_listing(directories, files)

    @contextmanager
    def _open(self, path: str) -> Iterator[IO[bytes]]:
        try:
            # Non-blocking, so that opening a FIFO returns at once (for regular
            # files the flag changes nothing).
            descriptor = os.open(self._resolve(path), os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except (FileNotFoundError, NotADirectoryError):
            raise NotFound(f"{KIND}: no manifest {path}") from None
        except OSError as error:
            raise UpstreamError(f"{KIND}: cannot read {path}: {error.strerror}") from error
        with os.fdopen(descriptor, "rb") as source:
            status = os.fstat(descriptor)
            if stat.S_ISDIR(status.st_mode):
                raise NotFound(f"{KIND}: no manifest {path}")
            if not stat.S_ISREG(status.st_mode):
                raise UpstreamError(f"{KIND}: {path} is not a regular file")
            if status.st_size > self.max_manifest_bytes:
                raise self._too_large(path)
            os.set_blocking(descriptor, True)
            yield source


class HttpTree(ManifestTree):
    """A manifest tree on a web server whose folders answer JSON listings.

    ``GET <folder>/`` answers ``{"files": [...], "directories": [...]}``
    (items may be names or objects with a ``name``); other keys are ignored.
    Each name goes into the URL encoded as one path segment.
    """

    def __init__(
        self, root: str, client: httpx.Client, *, timeout: float = 30.0,
        max_manifest_bytes: int = MAX_MANIFEST_BYTES, max_listing_bytes: int = MAX_LISTING_BYTES,
    ) -> None:
        self.root = root if root.endswith("/") else f"{root}/"
        self.max_manifest_bytes = max_manifest_bytes
        self._client = client
        self._timeout = timeout
        self._max_listing_bytes = max_listing_bytes

    def list_directory(self, path: str) -> Listing:
        relative = "".join(f"{quote(part, safe='')}/" for part in _segments(path))
        where = relative or "/"
        with get(self._client, self.root + relative, KIND, where, self._timeout) as response:
            body = read_body(response, self._max_listing_bytes, KIND, where)
        try:
            document = orjson.loads(body)
            directories = [_item_name(item) for item in document.get("directories", [])]
            files = [_item_name(item) for item in document.get("files", [])]
        except (orjson.JSONDecodeError, AttributeError, TypeError) as error:
            raise UpstreamError(f"{KIND}: {where} did not answer a JSON folder listing") from error
        return _sorted_listing(directories, files)

    def _open(self, path: str) -> AbstractContextManager[IO[bytes]]:
        return _spooled(lambda sink: self._download(path, sink))

    def _download(self, path: str, sink: IO[bytes]) -> None:
        with get(self._client, self.root + quote(path), KIND, path, self._timeout) as response:
            copy_body(response, sink, self.max_manifest_bytes, KIND, path)


def _item_name(item: Any) -> str:
    name = item.get("name") if isinstance(item, dict) else item
    if not isinstance(name, str):
        raise TypeError(name)
    return name.rstrip("/")


class S3Tree(ManifestTree):
    """A manifest tree under an S3 prefix, listed with ListObjectsV2.

    boto3's timeouts bound each read (``open_tree`` gives each of its
    attempts a share of the deadline); the whole call's deadline is checked
    between pages and between the blocks of a download.
    """

    def __init__(
        self, root: str, client: Any, *, timeout: float = 30.0,
        max_manifest_bytes: int = MAX_MANIFEST_BYTES, max_listing_bytes: int = MAX_LISTING_BYTES,
    ) -> None:
        self.root = root
        self.max_manifest_bytes = max_manifest_bytes
        self._bucket, self._prefix = split_s3_url(root)
        self._client = client
        self._timeout = timeout
        self._max_listing_bytes = max_listing_bytes

    def list_directory(self, path: str) -> Listing:
        relative = "".join(f"{part}/" for part in _segments(path))
        prefix = self._prefix + relative
        where = relative or "/"
        directories, files = [], []
        listed = 0
        end = time.monotonic() + self._timeout
        with s3_errors(f"{KIND}: {where}", KIND):
            pages = self._client.get_paginator("list_objects_v2").paginate(
                Bucket=self._bucket, Prefix=prefix, Delimiter="/"
            )
            for page in pages:
                names = [p["Prefix"][len(prefix) :].rstrip("/") for p in page.get("CommonPrefixes", [])]
                keys = [o["Key"][len(prefix) :] for o in page.get("Contents", [])]
                listed += sum(map(len, names)) + sum(map(len, keys))
                if listed > self._max_listing_bytes:
                    raise UpstreamError(f"{KIND}: {where}: listing larger than allowed")
                _keep_deadline(end, where)
                directories += names
                files += keys
        if not directories and not files and path:
            raise NotFound(f"{KIND}: no folder {path}")
        return _sorted_listing(directories, files)

    def _open(self, path: str) -> AbstractContextManager[IO[bytes]]:
        return _spooled(lambda sink: self._download(path, sink))

    def _download(self, path: str, sink: IO[bytes]) -> None:
        end = time.monotonic() + self._timeout
        with s3_errors(f"{KIND}: {path}", KIND):
            answer = self._client.get_object(Bucket=self._bucket, Key=self._prefix + path)
            body = answer["Body"]
            try:
                if int(answer.get("ContentLength") or 0) > self.max_manifest_bytes:
                    raise self._too_large(path)
                size = 0
                while block := body.read(1 << 20):
                    size += len(block)
                    if size > self.max_manifest_bytes:
                        raise self._too_large(path)
                    _keep_deadline(end, path)
                    sink.write(block)
            finally:
                body.close()


def _keep_deadline(end: float, where: str) -> None:
    if time.monotonic() > end:
        raise UpstreamTimeout(f"{KIND}: {where}: no complete answer in time")


def open_tree(
    root: str,
    *,
    timeout: float = 30.0,
    max_manifest_bytes: int = MAX_MANIFEST_BYTES,
    max_listing_bytes: int = MAX_LISTING_BYTES,
    max_connections: int = 32,
    s3_endpoint_url: str | None = None,
    s3_anonymous: bool = False,
) -> ManifestTree:
    """The tree for ``root``, chosen by its form: URL, ``s3://``, or path."""
    bounds = {"max_manifest_bytes": max_manifest_bytes, "max_listing_bytes": max_listing_bytes}
    if root.startswith(("http://", "https://")):
        client = make_http_client(
            timeout, max_connections=max_connections, follow_redirects=True,
            headers={"User-Agent": f"zarrdav/{__version__}"},
        )
        return HttpTree(root, client, timeout=timeout, **bounds)
    if root.startswith("s3://"):
        s3 = make_s3_client(s3_endpoint_url, anonymous=s3_anonymous, timeout=timeout / S3_ATTEMPTS,
                            max_connections=max_connections)
        return S3Tree(root, s3, timeout=timeout, **bounds)
    return LocalTree(Path(root), max_manifest_bytes=max_manifest_bytes)
