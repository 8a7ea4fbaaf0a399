"""The three manifest trees answer alike, and tell absent from broken."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.manifests import sample_manifest
from tests.servers import json_listing_server
from zarrdav.errors import ManifestError, NotFound, UpstreamError, UpstreamTimeout
from zarrdav.manifests.layout import manifest_path
from zarrdav.manifests.model import ManifestFile
from zarrdav.manifests.trees import HttpTree, LocalTree, ManifestTree, S3Tree, open_tree

ZARR = "1284a14f-fe4f-4dc3-b10d-48e5db8bf18d"
OTHER = "12a0b6c4-0000-4000-8000-000000000000"
CHECKSUM, BODY = sample_manifest()
OLDER = "00000000000000000000000000000000-1--1"


@pytest.fixture(scope="module")
def tree_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("tree")
    files = {
        manifest_path(ZARR, CHECKSUM): BODY,
        manifest_path(ZARR, OLDER): BODY,
        manifest_path(OTHER, CHECKSUM): BODY,
        # Junk a real tree has: a nameless manifest, stray files.
        f"{ZARR[:3]}/{ZARR[3:6]}/{ZARR}/.json": b"{}",
        f"{ZARR[:3]}/{ZARR[3:6]}/{ZARR}/notes.txt": b"hello",
        f"{ZARR[:3]}/{ZARR[3:6]}/{ZARR}/abc.json": b"{}",
        f"{OTHER[:3]}/{OTHER[3:6]}/{OTHER}/{'f' * 32}-1--1.json": b'{"schemaVersion": 2, "entries"',
    }
    for relative, body in files.items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_bytes(body)
    return root


@pytest.fixture(params=["local", "http", "s3"])
def tree(request: pytest.FixtureRequest, tree_dir: Path) -> Iterator[ManifestTree]:
    if request.param == "local":
        yield open_tree(str(tree_dir))
    elif request.param == "http":
        with json_listing_server(tree_dir) as url:
            yield open_tree(url)
    else:
        s3: Any = request.getfixturevalue("s3")
        bucket: str = request.getfixturevalue("bucket")
        for path in tree_dir.rglob("*"):
            if path.is_file():
                key = f"zarr-manifest/{path.relative_to(tree_dir)}"
                s3.put_object(Bucket=bucket, Key=key, Body=path.read_bytes())
        endpoint: str = request.getfixturevalue("s3_endpoint")
        yield open_tree(f"s3://{bucket}/zarr-manifest/", s3_endpoint_url=endpoint)


def test_kind_follows_the_root(tree: ManifestTree, tree_dir: Path) -> None:
    kinds = {"s3://": S3Tree, "http": HttpTree}
    expected = next((kind for prefix, kind in kinds.items() if tree.root.startswith(prefix)), LocalTree)
    assert isinstance(tree, expected)


def test_listings(tree: ManifestTree) -> None:
    top = tree.list_directory("")
    assert top.directories == ["128", "12a"]
    assert tree.list_directory("128").directories == ["4a1"]
    assert tree.list_directory("128/4a1").directories == [ZARR]
    assert tree.checksums(ZARR) == [OLDER, CHECKSUM]  # junk skipped, sorted


def test_fetch_and_lookup(tree: ManifestTree) -> None:
    manifest = tree.fetch_manifest(ZARR, CHECKSUM)
    entry = manifest.lookup("arr/0/10")
    assert isinstance(entry, ManifestFile)
    assert entry.size == 1010
    assert manifest.statistics.zarr_checksum == CHECKSUM
    assert manifest.source.endswith(f"{ZARR}/{CHECKSUM}.json")


def test_absent_things_are_not_found(tree: ManifestTree) -> None:
    with pytest.raises(NotFound):
        tree.fetch_manifest(ZARR, "ffffffffffffffffffffffffffffffff-1--1")
    with pytest.raises(NotFound):
        tree.fetch_manifest(ZARR, "abc")
    with pytest.raises(NotFound):
        tree.fetch_manifest("..", CHECKSUM)
    with pytest.raises(NotFound):
        tree.list_directory("999")
    with pytest.raises(NotFound):
        tree.checksums("99999999-0000-0000-0000-000000000000")


def test_broken_manifest_is_a_manifest_error(tree: ManifestTree) -> None:
    with pytest.raises(ManifestError, match="not valid JSON"):
        tree.fetch_manifest(OTHER, f"{'f' * 32}-1--1")


def test_unreachable_http_tree_is_upstream_error() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    tree = HttpTree(f"http://127.0.0.1:{port}/", httpx.Client(timeout=2))
    with pytest.raises(UpstreamError) as raised:
        tree.list_directory("")
    assert not isinstance(raised.value, UpstreamTimeout)


def test_html_listing_is_upstream_error(tree_dir: Path) -> None:
    handler = partial(SimpleHTTPRequestHandler, directory=str(tree_dir))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        tree = HttpTree(f"http://127.0.0.1:{server.server_address[1]}/", httpx.Client())
        with pytest.raises(UpstreamError, match="did not answer a JSON folder listing"):
            tree.list_directory("128")
    finally:
        server.shutdown()
        server.server_close()


def test_silent_http_tree_times_out() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        tree = HttpTree(f"http://127.0.0.1:{listener.getsockname()[1]}/", httpx.Client(timeout=0.5))
        with pytest.raises(UpstreamTimeout):
            tree.checksums(ZARR)
