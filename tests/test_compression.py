"""gzip of PROPFIND and HTML answers, and streamed listings, checked with curl and raw sockets.

`zarrdav serve` serves a Zarr whose array folder holds 3,000 chunks: its
PROPFIND Depth 1 (about 1.5 MB) is streamed, so it travels chunked to
HTTP/1.1 clients and until the connection closes to HTTP/1.0 ones, gzipped
or not, and the gzipped bytes decompress to the identity ones.
"""

from __future__ import annotations

import gzip
import shutil
import socket
from collections.abc import Iterable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from tests.manifests import one_manifest_tree, wide_manifest
from tests.servers import zarrdav_server
from tests.test_caching import Curled, curl
from zarrdav.edge.compression import accepts_gzip
from zarrdav.routes import zarr_version_path

ZARR = "0123abcd-0000-4000-8000-000000000174"
CHUNKS = 3000
CHECKSUM, MANIFEST = wide_manifest(CHUNKS)
ROOT = zarr_version_path(ZARR, CHECKSUM)
FOLDER = f"{ROOT}0/"
GZIP = ("-H", "Accept-Encoding: gzip")
needs_curl = pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tree = one_manifest_tree(tmp_path_factory.mktemp("tree"), ZARR, CHECKSUM, MANIFEST)
    with zarrdav_server("--manifest-root", str(tree)) as base:
        yield base


def propfind(url: str, *options: str, depth: str = "1") -> Curled:
    return curl(f"{url}{FOLDER}", "-X", "PROPFIND", "-H", f"Depth: {depth}", *options)


def assert_gzipped(answer: Curled, identity: Curled) -> None:
    assert answer.header("Content-Encoding") == "gzip"
    assert "Accept-Encoding" in answer.varies()
    assert answer.header("Content-Length") is None
    assert gzip.decompress(answer.body) == identity.body
    assert len(answer.body) < len(identity.body)


@needs_curl
def test_a_large_propfind_is_streamed_and_gzipped_for_who_accepts_it(url: str) -> None:
    identity = propfind(url)
    assert identity.status == 207
    assert identity.body.count(b"<D:response>") == CHUNKS + 1
    assert identity.header("Transfer-Encoding") == "chunked"  # streamed: no length known up front
    assert identity.header("Content-Encoding") is None
    assert identity.varies() == {"Accept-Encoding"}
    zipped = propfind(url, *GZIP)
    assert zipped.status == 207
    assert zipped.header("Transfer-Encoding") == "chunked"
    assert_gzipped(zipped, identity)
    # curl's own decoding agrees.
    assert propfind(url, "--compressed").body == identity.body


@needs_curl
def test_an_html_page_is_gzipped_and_its_etag_made_weak(url: str) -> None:
    identity = curl(f"{url}{ROOT}")
    etag = identity.header("ETag")
    assert identity.status == 200 and etag is not None and not etag.startswith("W/")
    assert identity.varies() == {"Accept", "Accept-Encoding"}  # a page differs for browsers too
    zipped = curl(f"{url}{ROOT}", *GZIP)
    assert_gzipped(zipped, identity)
    assert zipped.header("ETag") == f"W/{etag}"
    # The weak ETag revalidates, and the 304 names the variant this client gets.
    for options, expected in ((GZIP, f"W/{etag}"), ((), etag)):
        unchanged = curl(f"{url}{ROOT}", *options, "-H", f"If-None-Match: W/{etag}")
        assert unchanged.status == 304 and unchanged.body == b""
        assert unchanged.header("ETag") == expected
        assert unchanged.varies() == {"Accept", "Accept-Encoding"}
    big = curl(f"{url}{FOLDER}", *GZIP)
    assert_gzipped(big, curl(f"{url}{FOLDER}"))


@needs_curl
@pytest.mark.parametrize("accept", ["gzip;q=0", "identity", "deflate, br", "*;q=0", "gzip;q=0, *"])
def test_a_client_refusing_gzip_gets_identity(url: str, accept: str) -> None:
    answer = propfind(url, "-H", f"Accept-Encoding: {accept}")
    assert answer.status == 207
    assert answer.header("Content-Encoding") is None
    assert answer.varies() == {"Accept-Encoding"}
    assert answer.body == propfind(url).body
    page = curl(f"{url}{ROOT}", "-H", f"Accept-Encoding: {accept}")
    assert page.header("Content-Encoding") is None and page.header("Content-Length") is not None


@needs_curl
def test_small_answers_and_redirects_stay_as_they_are(url: str) -> None:
    small = propfind(url, *GZIP, depth="0")
    assert small.status == 207 and small.header("Content-Encoding") is None
    assert small.header("Content-Length") == str(len(small.body)) and len(small.body) < 1024
    for path, status in ((f"{FOLDER}0", 307), (FOLDER[:-1], 301)):
        answer = curl(f"{url}{path}", *GZIP)
        assert answer.status == status
        assert answer.header("Content-Encoding") is None and answer.header("Vary") is None
        assert answer.header("Content-Length") == "0"


def raw(url: str, request: str) -> tuple[bytes, bytes]:
    """Send ``request`` on a fresh connection; the head and all that follows it until the server closes."""
    parts = urlsplit(url)
    assert parts.hostname is not None and parts.port is not None
    received = []
    with socket.create_connection((parts.hostname, parts.port), timeout=30) as connection:
        connection.sendall(request.encode())
        while piece := connection.recv(1 << 16):
            received.append(piece)
    head, _, rest = b"".join(received).partition(b"\r\n\r\n")
    return head, rest


def test_head_of_a_gzipped_page_has_its_headers_and_no_body(url: str) -> None:
    head, rest = raw(url, f"HEAD {ROOT} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept-Encoding: gzip\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 ")
    assert b"\r\nContent-Encoding: gzip" in head and b"\r\nVary: Accept-Encoding" in head
    assert b"\r\nContent-Length" not in head and b"\r\nTransfer-Encoding" not in head
    assert rest == b""  # and the server closed: the length of the body is not known


def test_an_http10_client_gets_the_stream_until_the_connection_closes(url: str) -> None:
    request = f"PROPFIND {FOLDER} HTTP/1.0\r\nDepth: 1\r\nAccept-Encoding: {{}}\r\n\r\n"
    identity_head, identity = raw(url, request.format("identity"))
    zipped_head, zipped = raw(url, request.format("gzip"))
    for head in (identity_head, zipped_head):
        assert head.startswith(b"HTTP/1.1 207 ")
        assert b"\r\nTransfer-Encoding" not in head and b"\r\nContent-Length" not in head
    assert identity.count(b"<D:response>") == CHUNKS + 1 and identity.endswith(b"</D:multistatus>\n")
    assert gzip.decompress(zipped) == identity


def test_keep_alive_goes_on_after_streamed_answers(url: str) -> None:
    with httpx.Client(base_url=url, timeout=30) as client:  # httpx accepts gzip and decodes it
        bodies = []
        for _ in range(3):
            response = client.request("PROPFIND", FOLDER, headers={"Depth": "1"})
            assert response.status_code == 207 and response.headers["Content-Encoding"] == "gzip"
            bodies.append(response.content)
        assert client.get(f"{FOLDER}0").status_code == 307
    assert bodies[0] == bodies[1] == bodies[2]
    assert bodies[0].count(b"<D:response>") == CHUNKS + 1


@pytest.mark.parametrize(("field", "accepted"), [
    ("gzip", True), ("GZip", True), ("x-gzip", True), ("deflate, gzip;q=0.5", True),
    ("*", True), ("br;q=1, *;q=0.1", True), ("gzip ; q=1.0", True),
    ("", False), ("identity", False), ("gzip;q=0", False), ("gzip;q=0.000", False),
    ("*;q=0", False), ("gzip;q=0, *", False), ("gzip;q=abc", False), ("gzipx", False),
])
def test_accept_encoding_is_read_with_its_weights(field: str, accepted: bool) -> None:
    assert accepts_gzip(field) is accepted


def test_a_manifest_folder_is_read_a_block_at_a_time(tmp_path: Path) -> None:
    # The members of a 3,000-chunk folder come from the manifest as they are
    # written: a PROPFIND's first chunk is ready before the last member is made.
    from zarrdav.dav.propfind import PropfindRequest, render_multistatus
    from zarrdav.dav.resources import Resource
    from zarrdav.dav.zarrs import ZarrViews
    from zarrdav.manifests.cache import ManifestCache
    from zarrdav.manifests.trees import open_tree

    tree = one_manifest_tree(tmp_path, ZARR, CHECKSUM, MANIFEST)
    views = ZarrViews(ManifestCache(open_tree(str(tree)), 2**26, 60.0, None), "http://s3")
    made: list[Resource] = []

    def counted(members: Iterable[Resource]) -> Iterator[Resource]:
        for member in members:
            made.append(member)
            yield member

    chunks = render_multistatus(PropfindRequest("allprop"), counted(views.members(ZARR, CHECKSUM, ROOT, "0")), "")
    next(chunks)
    assert 0 < len(made) < CHUNKS
    assert sum(1 for _ in chunks) >= 1
    assert len(made) == CHUNKS
