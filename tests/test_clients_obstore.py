"""obstore's HTTPStore (Rust object_store) and zarr 3's ObjectStore over it, against `zarrdav serve`.

object_store lists an HTTP store with PROPFIND Depth 1 and refuses any row
without ``getlastmodified``; it reads files by following the redirect to S3,
whole and by range. zarr 3's ``ObjectStore`` opens a group, lists its
members and reads both pinned states of a Zarr through it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import obstore
import pytest
import zarr
from obstore.store import HTTPStore
from zarr.storage import ObjectStore

from tests.servers import zarrdav_server
from tests.test_serve_clients import MEMBERS, assert_values, manifest_of
from tests.zarr_data import VersionedZarr

pytestmark = pytest.mark.slow

STATES = pytest.mark.parametrize("state", [0, 1], ids=["original", "rewritten"])
FORMATS = pytest.mark.parametrize("zarr_format", [2, 3], ids=["v2", "v3"])


@pytest.fixture(scope="module")
def server(
    zarrs: dict[int, VersionedZarr], manifest_root: Path, s3_endpoint: str, public_bucket: str
) -> Iterator[str]:
    with zarrdav_server(
        "--manifest-root", str(manifest_root), "--zarr-base-url", f"{s3_endpoint}/{public_bucket}/zarr",
    ) as url:
        yield url


def http_store(server: str) -> HTTPStore:
    """A store of the whole server: object_store names listed objects by their
    path from the host's root, so a store rooted deeper would list names its
    own reads cannot use. Zarrs are opened at a path inside it."""
    return HTTPStore.from_url(server, client_options={"allow_http": True})


def listed(store: HTTPStore, root: str, directory: str) -> tuple[list[str], dict[str, Any]]:
    """Prefixes and objects of ``directory`` in the Zarr at ``root``, by their paths inside the Zarr."""
    found = obstore.list_with_delimiter(store, f"{root}/{directory}".rstrip("/"))
    inside = f"{root}/"
    assert all(path.startswith(inside) for path in found["common_prefixes"])
    assert all(meta["path"].startswith(inside) for meta in found["objects"])
    return (sorted(path.removeprefix(inside) for path in found["common_prefixes"]),
            {meta["path"].removeprefix(inside): meta for meta in found["objects"]})


@FORMATS
def test_list_with_delimiter_at_every_depth(
    server: str, zarrs: dict[int, VersionedZarr], manifest_root: Path, zarr_format: int
) -> None:
    versioned = zarrs[zarr_format]
    checksum = versioned.checksums[1]
    files = {file.path: file for file in manifest_of(manifest_root, versioned, checksum).files()}
    store = http_store(server)
    directories = {path.rpartition("/")[0] for path in files} | {""}
    for directory in sorted(directories):
        prefixes, objects = listed(store, versioned.url_path(checksum), directory)
        inside = f"{directory}/" if directory else ""
        expected_files = {p for p in files if p.startswith(inside) and "/" not in p[len(inside):]}
        assert set(objects) == expected_files, directory
        expected_dirs = {inside + p[len(inside):].split("/")[0] for p in files
                         if p.startswith(inside) and "/" in p[len(inside):]}
        assert set(prefixes) == expected_dirs, directory
        for path, meta in objects.items():
            assert meta["size"] == files[path].size
            assert meta["last_modified"] == files[path].last_modified
            assert meta["e_tag"] == f'"{files[path].etag}"'


@FORMATS
def test_get_and_get_range_read_the_pinned_bytes(
    server: str, zarrs: dict[int, VersionedZarr], manifest_root: Path, zarr_format: int,
    s3: Any, public_bucket: str,
) -> None:
    versioned = zarrs[zarr_format]
    for checksum in versioned.checksums:
        store = http_store(server)
        root = versioned.url_path(checksum)
        for file in manifest_of(manifest_root, versioned, checksum).files():
            pinned = s3.get_object(Bucket=public_bucket, Key=f"zarr/{versioned.zarr_id}/{file.path}",
                                   VersionId=file.version_id)["Body"].read()
            assert bytes(obstore.get(store, f"{root}/{file.path}").bytes()) == pinned, file.path
            if len(pinned) > 4:
                part = obstore.get_range(store, f"{root}/{file.path}", start=1, end=len(pinned) - 1)
                assert bytes(part) == pinned[1:-1], file.path


@STATES
@FORMATS
def test_zarr_object_store_opens_lists_and_reads(
    server: str, zarrs: dict[int, VersionedZarr], zarr_format: int, state: int
) -> None:
    versioned = zarrs[zarr_format]
    checksum = versioned.checksums[state]
    store = ObjectStore(http_store(server), read_only=True)
    group = zarr.open_group(store=store, path=versioned.url_path(checksum), mode="r", zarr_format=zarr_format,
                            use_consolidated=False)
    assert sorted(name for name, _ in group.members(max_depth=None)) == MEMBERS[zarr_format]
    values = {name: np.asarray(group[name][...]) for name in versioned.values[checksum]}
    assert_values(values, versioned.values[checksum])
