"""Cache-Control and conditional GETs, checked with curl against `zarrdav demo`.

Pinned paths (a Zarr as of a manifest under /zarrs/, a published version)
may be kept a year, redirects included; what can change (drafts, latest/,
listings) for ``cache_max_age``; a 5xx never. A folder's page and an inline
file answer 304 to a client whose copy is current; a redirect never does.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from datetime import timedelta
from email.utils import format_datetime, parsedate_to_datetime
from pathlib import Path

import httpx
import pytest

from tests.manifests import one_manifest_tree, sample_manifest
from tests.servers import Demo, in_process
from zarrdav.config import Settings
from zarrdav.demo.catalog import DANDISET, OME_PATH, RELEASE
from zarrdav.routes import zarr_version_path

pytestmark = pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")

IMMUTABLE = "public, max-age=31536000, immutable"
CHANGING = "public, max-age=60"
RELEASE_DIR = f"/dandisets/{DANDISET}/releases/{RELEASE}/"
DRAFT_DIR = f"/dandisets/{DANDISET}/draft/"
CHUNK = f"{OME_PATH}/0/0/0/0"


class Curled:
    def __init__(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    def header(self, name: str) -> str | None:
        """The field's value, several lines of it joined as HTTP joins them."""
        found = [value for key, value in self.headers if key.lower() == name.lower()]
        return ", ".join(found) if found else None

    def varies(self) -> set[str]:
        return {name.strip() for name in (self.header("Vary") or "").split(",") if name.strip()}


def curl(url: str, *options: str) -> Curled:
    """One request with the real curl; the status, headers and body as received (no content decoding)."""
    with tempfile.TemporaryDirectory() as folder:
        body_file = Path(folder) / "body"
        result = subprocess.run(["curl", "-sS", "-D", "-", "-o", str(body_file), *options, url],
                                capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        head = result.stdout.split("\n\n")[0].splitlines()  # text mode: CR LF read as LF
        headers = [(k, v.strip()) for k, _, v in (line.partition(":") for line in head[1:])]
        body = body_file.read_bytes() if body_file.exists() else b""
        return Curled(int(head[0].split()[1]), headers, body)


@pytest.fixture(scope="module")
def zarr_root(demo: Demo) -> str:
    """The /zarrs/ path of the release's OME Zarr, from its page's permanent link."""
    page = httpx.get(f"{demo.url}{RELEASE_DIR[1:]}{OME_PATH}/", timeout=10).text
    found = re.search(r'href="(/zarrs/[^"]+\.zarr/)"', page)
    assert found is not None, page
    return found.group(1)


def test_pinned_answers_may_be_kept_a_year_redirects_included(demo: Demo, zarr_root: str) -> None:
    base = demo.url.rstrip("/")
    for path, status in [
        (f"{zarr_root}", 200),
        (f"{zarr_root}0/0/0/0", 307),  # a chunk's redirect to its S3 version
        (f"{zarr_root}0", 301),  # a folder without its slash
        (f"{RELEASE_DIR}", 200),
        (f"{RELEASE_DIR}dandiset.yaml", 200),
        (f"{RELEASE_DIR}{OME_PATH}/", 200),
        (f"{RELEASE_DIR}{CHUNK}", 307),
        (f"{RELEASE_DIR}{OME_PATH}", 301),
    ]:
        answer = curl(f"{base}{path}")
        assert answer.status == status, path
        assert answer.header("Cache-Control") == IMMUTABLE, path
    propfind = curl(f"{base}{zarr_root}", "-X", "PROPFIND", "-H", "Depth: 1")
    assert propfind.status == 207 and propfind.header("Cache-Control") == IMMUTABLE


def test_what_can_change_is_kept_for_cache_max_age(demo: Demo, zarr_root: str) -> None:
    base = demo.url.rstrip("/")
    zarr_versions = zarr_root.rstrip("/").rpartition("/")[0] + "/"
    for path, status in [
        ("/", 200), ("/zarrs/", 200), (zarr_versions, 200), ("/dandisets/", 200),
        (f"/dandisets/{DANDISET}/", 200), (f"/dandisets/{DANDISET}/releases/", 200),
        (DRAFT_DIR, 200), (f"{DRAFT_DIR}{OME_PATH}/", 200), (f"{DRAFT_DIR}{CHUNK}", 307),
        (f"{DRAFT_DIR}dandiset.yaml", 200), (f"/dandisets/{DANDISET}/latest/", 200),
        (f"/dandisets/{DANDISET}/latest/{CHUNK}", 307),
        (f"{RELEASE_DIR}no-such-file", 404), (f"{zarr_root}no-such-chunk", 404),
    ]:
        answer = curl(f"{base}{path}")
        assert answer.status == status, path
        assert answer.header("Cache-Control") == CHANGING, path


def test_a_5xx_is_never_stored(tmp_path: Path) -> None:
    checksum, body = sample_manifest()
    zarr_id = "00000000-0000-4000-8000-000000000005"
    tree = one_manifest_tree(tmp_path, zarr_id, checksum, body[: len(body) // 2])  # cut short
    with in_process(Settings(manifest_root=str(tree), index_dir="")) as client:
        response = client.get(zarr_version_path(zarr_id, checksum))
    assert response.status_code == 502
    assert response.headers["Cache-Control"] == "no-store"


@pytest.fixture(scope="module")
def folder(demo: Demo) -> Iterator[tuple[str, str, str]]:
    """A folder's URL, ETag and Last-Modified: the release's OME Zarr asset."""
    url = f"{demo.url}{RELEASE_DIR[1:]}{OME_PATH}/"
    answer = curl(url)
    etag, modified = answer.header("ETag"), answer.header("Last-Modified")
    assert answer.status == 200 and etag is not None and modified is not None
    yield url, etag, modified


def assert_not_modified(answer: Curled, etag: str) -> None:
    assert answer.status == 304
    assert answer.body == b""
    assert answer.header("ETag") == etag
    assert answer.header("Cache-Control") == IMMUTABLE
    assert answer.header("Last-Modified") is not None
    assert answer.header("Content-Length") is None


def test_if_none_match_of_a_folder_answers_304(folder: tuple[str, str, str]) -> None:
    url, etag, _ = folder
    for field in (etag, f"W/{etag}", f'"nope", {etag}', "*", f' "a" ,W/{etag} '):
        assert_not_modified(curl(url, "-H", f"If-None-Match: {field}"), etag)
        head = curl(url, "-I", "-H", f"If-None-Match: {field}")  # curl -I writes the headers as the body
        assert head.status == 304 and head.header("ETag") == etag
    for field in ('"nope"', etag.strip('"'), f'"{etag}"', ""):
        assert curl(url, "-H", f"If-None-Match: {field}").status == 200, field


def test_if_modified_since_of_a_folder_answers_304_unless_if_none_match_differs(
    folder: tuple[str, str, str],
) -> None:
    url, etag, modified = folder
    at = parsedate_to_datetime(modified)
    for since in (modified, format_datetime(at + timedelta(days=1), usegmt=True)):
        assert_not_modified(curl(url, "-H", f"If-Modified-Since: {since}"), etag)
    earlier = format_datetime(at - timedelta(seconds=1), usegmt=True)
    for headers in ([f"If-Modified-Since: {earlier}"], ["If-Modified-Since: yesterday"],
                    [f"If-Modified-Since: {modified}", 'If-None-Match: "nope"']):
        options = [option for header in headers for option in ("-H", header)]
        assert curl(url, *options).status == 200, headers


def test_an_inline_file_answers_304(demo: Demo) -> None:
    url = f"{demo.url}{RELEASE_DIR[1:]}dandiset.yaml"
    answer = curl(url)
    assert answer.status == 200
    etag, modified = answer.header("ETag"), answer.header("Last-Modified")
    if etag is None or modified is None:
        pytest.skip("dandiset.yaml has no ETag or Last-Modified yet (issue 17, point 1)")
    assert_not_modified(curl(url, "-H", f"If-None-Match: {etag}"), etag)
    assert_not_modified(curl(url, "-H", f"If-Modified-Since: {modified}"), etag)
    assert curl(url, "-H", 'If-None-Match: "other"').body == answer.body


def test_a_redirect_ignores_conditions(demo: Demo) -> None:
    url = f"{demo.url}{RELEASE_DIR[1:]}{CHUNK}"
    etag = curl(url).header("ETag")
    assert etag is not None
    for header in (f"If-None-Match: {etag}", "If-None-Match: *",
                   "If-Modified-Since: Fri, 01 Jan 2100 00:00:00 GMT"):
        answer = curl(url, "-H", header)
        assert answer.status == 307, header
        assert answer.header("Cache-Control") == IMMUTABLE
