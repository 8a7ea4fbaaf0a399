"""The headers clients depend on, checked on the wire against `zarrdav demo` with http.client.

davfs2 needs ``DAV: 1``; every client follows the ``Location`` of a file's 307
and of a folder's slash redirect; browser-based viewers need CORS; and a
kept-alive connection must survive every answer, redirects included.
"""

from __future__ import annotations

import http.client
import re
from urllib.parse import urlsplit

import pytest

from tests.servers import Demo
from zarrdav.demo.catalog import DANDISET, OME_PATH, RELEASE

RELEASE_DIR = f"/dandisets/{DANDISET}/releases/{RELEASE}/"
CHUNK = f"{RELEASE_DIR}{OME_PATH}/0/0/0/0"  # level 0's first chunk ("/"-separated keys)


def connect(demo: Demo) -> http.client.HTTPConnection:
    parts = urlsplit(demo.url)
    assert parts.hostname is not None and parts.port is not None
    return http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)


def request(
    demo: Demo, method: str, path: str, headers: dict[str, str] | None = None
) -> tuple[http.client.HTTPResponse, bytes]:
    """One request on a fresh connection; the answer and its whole body."""
    connection = connect(demo)
    try:
        connection.request(method, path, headers=headers or {})
        response = connection.getresponse()
        return response, response.read()
    finally:
        connection.close()


def propfind_etag(demo: Demo, path: str) -> str:
    response, body = request(demo, "PROPFIND", path, {"Depth": "0"})
    assert response.status == 207, body
    found = re.search(rb"<D:getetag>(.*?)</D:getetag>", body)
    assert found is not None, body
    return found.group(1).decode().replace("&quot;", '"')


def test_options_announces_dav_class_1_and_the_read_only_methods(demo: Demo) -> None:
    for path in ("/", RELEASE_DIR, CHUNK):
        response, body = request(demo, "OPTIONS", path)
        assert response.status == 200, path
        assert response.getheader("DAV") == "1", path
        assert response.getheader("Allow") == "OPTIONS, GET, HEAD, PROPFIND", path
        assert body == b""


def test_a_chunk_redirects_to_its_pinned_version_with_propfinds_etag(demo: Demo) -> None:
    for method in ("GET", "HEAD"):
        response, body = request(demo, method, CHUNK)
        assert response.status == 307, method
        location = response.getheader("Location") or ""
        assert location.startswith("http://"), location
        assert "?versionId=" in location, location
        assert urlsplit(location).path.endswith("/0/0/0/0"), location
        assert response.getheader("Content-Length") == "0"
        assert body == b""
        etag = response.getheader("ETag") or ""
        assert re.fullmatch(r'"[^"]+"', etag), etag
        assert etag == propfind_etag(demo, CHUNK)


def test_a_folder_without_its_slash_redirects_to_it(demo: Demo) -> None:
    for folder in (f"/dandisets/{DANDISET}", RELEASE_DIR + OME_PATH, RELEASE_DIR + OME_PATH + "/0"):
        response, body = request(demo, "GET", folder)
        assert response.status == 301, folder
        assert response.getheader("Location") == folder + "/"
        assert response.getheader("Content-Length") == "0"
        assert body == b""


@pytest.mark.parametrize(
    ("method", "path", "headers", "status"),
    [
        ("GET", RELEASE_DIR, {}, 200),
        ("OPTIONS", RELEASE_DIR, {"Origin": "http://viewer.example"}, 200),
        ("PROPFIND", RELEASE_DIR, {"Depth": "1"}, 207),
        ("GET", RELEASE_DIR.rstrip("/"), {}, 301),
        ("GET", CHUNK, {"Range": "bytes=0-9"}, 307),
        ("GET", f"{RELEASE_DIR}no-such-file", {}, 404),
        ("DELETE", CHUNK, {}, 405),
    ],
)
def test_every_answer_allows_any_origin(
    demo: Demo, method: str, path: str, headers: dict[str, str], status: int
) -> None:
    response, _ = request(demo, method, path, headers)
    assert response.status == status
    assert response.getheader("Access-Control-Allow-Origin") == "*"


def test_one_kept_alive_connection_serves_every_kind_of_answer(demo: Demo) -> None:
    connection = connect(demo)
    asked = [
        ("OPTIONS", "/", {}, 200),
        ("GET", CHUNK, {}, 307),
        ("HEAD", CHUNK, {}, 307),
        ("GET", RELEASE_DIR.rstrip("/"), {}, 301),
        ("GET", RELEASE_DIR, {}, 200),
        ("PROPFIND", RELEASE_DIR, {"Depth": "1"}, 207),
        ("GET", f"{RELEASE_DIR}no-such-file", {}, 404),
        ("HEAD", f"{RELEASE_DIR}no-such-file", {}, 404),
        ("PUT", CHUNK, {"Content-Length": "0"}, 405),
        ("GET", CHUNK, {}, 307),
    ]
    try:
        connection.connect()
        sock = connection.sock
        for method, path, headers, status in asked:
            connection.request(method, path, headers=headers)
            response = connection.getresponse()
            response.read()
            assert response.status == status, (method, path)
            assert not response.will_close, f"{method} {path} closed the connection"
            assert connection.sock is sock, f"{method} {path} needed a new connection"
    finally:
        connection.close()
