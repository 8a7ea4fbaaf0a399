"""Manifest trees: where manifests live, behind one small interface.

A tree is a folder hierarchy ``<p1>/<p2>/<zarr_id>/<checksum>.json`` under a
root that is an HTTP(S) URL answering JSON directory listings, an
``s3://bucket/prefix/``, or a local directory. Missing things raise
``NotFound``; an unreachable or broken tree raises ``UpstreamError`` (or
``UpstreamTimeout``), so callers can tell "absent" from "broken".
"""

from __future__ import annotations

import os
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import httpx
import orjson
from botocore.exceptions import BotoCoreError, ClientError, ConnectTimeoutError, ReadTimeoutError

from zarrdav.errors import Forbidden, NotFound, UpstreamError, UpstreamTimeout
from zarrdav.manifests.layout import (
    checksum_of_filename,
    is_valid_segment,
    manifest_checksums,
    manifest_path,
    zarr_prefix,
)
from zarrdav.manifests.model import Manifest
from zarrdav.manifests.reader import read_manifest
from zarrdav.upstreams.s3 import make_s3_client, split_s3_url

# Parses a fetched manifest file, given as a seekable stream and the name of its source.
Reader = Callable[[IO[bytes], str], Manifest]


@dataclass(frozen=True, slots=True)
class Listing:
    """One folder of a tree: its subfolders and files, each sorted."""

    directories: list[str]
    files: list[str]


class ManifestTree(ABC):
    """Where manifests live; implementations differ only in transport."""

    root: str

    @abstractmethod
    def list_directory(self, path: str) -> Listing:
        """The folder at ``path`` (``""`` or ``a/b``, relative to the root)."""

    @abstractmethod
    def _open(self, path: str) -> AbstractContextManager[IO[bytes]]:
        """The file at ``path`` as a seekable stream; NotFound if absent."""

    def checksums(self, zarr_id: str) -> list[str]:
        """The checksums a Zarr has manifests for, sorted; other files skipped."""
        return manifest_checksums(self.list_directory(zarr_prefix(_checked(zarr_id))).files)

    def fetch_manifest(self, zarr_id: str, checksum: str, read: Reader = read_manifest) -> Manifest:
        """The manifest of ``zarr_id`` as of ``checksum``, parsed by ``read`` once fetched."""
        path = manifest_path(_checked(zarr_id), _checked(checksum))
        if checksum_of_filename(path.rpartition("/")[2]) is None:
            raise NotFound(f"{checksum!r} is not a Zarr checksum")
        with self._open(path) as stream:
            return read(stream, f"{self.root.rstrip('/')}/{path}")


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


def _sorted_listing(directories: list[str], files: list[str]) -> Listing:
    return Listing(
        directories=sorted(name for name in directories if is_valid_segment(name)),
        files=sorted(name for name in files if is_valid_segment(name)),
    )


class LocalTree(ManifestTree):
    """A manifest tree in a local directory."""

    def __init__(self, root: Path) -> None:
        self.root = str(root)
        self._root = root

    def _resolve(self, path: str) -> Path:
        parts = [part for part in path.split("/") if part]
        return self._root.joinpath(*map(_checked, parts))

    def list_directory(self, path: str) -> Listing:
        directories: list[str] = []
        files: list[str] = []
        try:
            with os.scandir(self._resolve(path)) as entries:
                for entry in entries:
                    (directories if entry.is_dir() else files).append(entry.name)
        except (FileNotFoundError, NotADirectoryError):
            raise NotFound(f"no folder {path!r} in {self.root}") from None
        except OSError as error:
            raise UpstreamError(f"cannot list {path!r} in {self.root}: {error.strerror}") from None
        return _sorted_listing(directories, files)

    @contextmanager
    def _open(self, path: str) -> Iterator[IO[bytes]]:
        try:
            with self._resolve(path).open("rb") as source:
                yield source
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            raise NotFound(f"no manifest {path!r} in {self.root}") from None
        except OSError as error:
            raise UpstreamError(f"cannot read {path!r} in {self.root}: {error.strerror}") from None


class HttpTree(ManifestTree):
    """A manifest tree on a web server whose folders answer JSON listings.

    ``GET <folder>/`` answers ``{"files": [...], "directories": [...]}``
    (items may be names or objects with a ``name``); other keys are ignored.
    """

    def __init__(self, root: str, client: httpx.Client) -> None:
        self.root = root if root.endswith("/") else f"{root}/"
        self._client = client

    def list_directory(self, path: str) -> Listing:
        url = self.root + "".join(f"{_checked(part)}/" for part in path.split("/") if part)
        with self._request(url) as response:
            try:
                document = orjson.loads(response.read())
                directories = [_item_name(item) for item in document.get("directories", [])]
                files = [_item_name(item) for item in document.get("files", [])]
            except (orjson.JSONDecodeError, AttributeError, TypeError):
                raise UpstreamError(f"{url} did not answer a JSON folder listing") from None
        return _sorted_listing(directories, files)

    def _open(self, path: str) -> AbstractContextManager[IO[bytes]]:
        return _spooled(lambda sink: self._download(path, sink))

    def _download(self, path: str, sink: IO[bytes]) -> None:
        with self._request(self.root + path) as response:
            try:
                for block in response.iter_bytes(1 << 20):
                    sink.write(block)
            except httpx.TimeoutException:
                raise UpstreamTimeout(f"{self.root}{path} timed out mid-download") from None
            except httpx.HTTPError as error:
                raise UpstreamError(f"{self.root}{path}: download failed ({error})") from None

    @contextmanager
    def _request(self, url: str) -> Iterator[httpx.Response]:
        try:
            with self._client.stream("GET", url) as response:
                if response.status_code == 404:
                    raise NotFound(f"{url} does not exist")
                if response.status_code in (401, 403):
                    raise Forbidden(f"{url} is not accessible ({response.status_code})")
                if response.status_code != 200:
                    raise UpstreamError(f"{url} answered {response.status_code}")
                yield response
        except httpx.TimeoutException:
            raise UpstreamTimeout(f"{url} timed out") from None
        except httpx.HTTPError as error:
            raise UpstreamError(f"{url}: {error.__class__.__name__} ({error})") from None


def _item_name(item: Any) -> str:
    name = item.get("name") if isinstance(item, dict) else item
    if not isinstance(name, str):
        raise TypeError(name)
    return name.rstrip("/")


class S3Tree(ManifestTree):
    """A manifest tree under an S3 prefix, listed with ListObjectsV2."""

    def __init__(self, root: str, client: Any) -> None:
        self.root = root
        self._bucket, self._prefix = split_s3_url(root)
        self._client = client

    def list_directory(self, path: str) -> Listing:
        prefix = self._prefix + "".join(f"{_checked(part)}/" for part in path.split("/") if part)
        directories, files = [], []
        with self._translated(prefix):
            pages = self._client.get_paginator("list_objects_v2").paginate(
                Bucket=self._bucket, Prefix=prefix, Delimiter="/"
            )
            for page in pages:
                directories += [p["Prefix"][len(prefix) :].rstrip("/") for p in page.get("CommonPrefixes", [])]
                files += [o["Key"][len(prefix) :] for o in page.get("Contents", [])]
        if not directories and not files and path:
            raise NotFound(f"no folder {path!r} in {self.root}")
        return _sorted_listing(directories, files)

    def _open(self, path: str) -> AbstractContextManager[IO[bytes]]:
        return _spooled(lambda sink: self._download(path, sink))

    def _download(self, path: str, sink: IO[bytes]) -> None:
        with self._translated(self._prefix + path):
            self._client.download_fileobj(self._bucket, self._prefix + path, sink)

    @contextmanager
    def _translated(self, key: str) -> Iterator[None]:
        where = f"s3://{self._bucket}/{key}"
        try:
            yield
        except ClientError as error:
            code = str(error.response.get("Error", {}).get("Code", ""))
            if code in ("404", "NoSuchKey", "NoSuchBucket"):
                raise NotFound(f"{where} does not exist") from None
            if code in ("403", "AccessDenied"):
                raise Forbidden(f"{where}: access denied") from None
            raise UpstreamError(f"{where}: S3 error {code}") from None
        except (ConnectTimeoutError, ReadTimeoutError):
            raise UpstreamTimeout(f"{where}: S3 timed out") from None
        except BotoCoreError as error:
            raise UpstreamError(f"{where}: {error}") from None


def open_tree(
    root: str,
    *,
    http_client: httpx.Client | None = None,
    s3_endpoint_url: str | None = None,
    s3_anonymous: bool = False,
) -> ManifestTree:
    """The tree for ``root``, chosen by its form: URL, ``s3://``, or path."""
    if root.startswith(("http://", "https://")):
        return HttpTree(root, http_client or httpx.Client(timeout=30.0, follow_redirects=True))
    if root.startswith("s3://"):
        return S3Tree(root, make_s3_client(s3_endpoint_url, anonymous=s3_anonymous))
    return LocalTree(Path(root))
