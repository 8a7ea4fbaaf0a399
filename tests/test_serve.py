"""What WebDAV and HTTP clients see from a running `zarrdav serve`.

One server per module reads a small local manifest tree: the sample Zarr, a
Zarr with awkward entry names, and a Zarr whose only manifest is truncated.
PROPFIND answers are compared byte for byte with golden files (set
ZARRDAV_UPDATE_GOLDEN=1 to rewrite them after an intended change) and read
back for their meaning, since a golden file only proves that nothing changed.
Two short-lived servers face a failing and a silent manifest tree.
"""

from __future__ import annotations

import http.client
import os
import re
import socket
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from email.utils import format_datetime
from html.parser import HTMLParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit

import httpx
import pytest

from tests.manifests import WHEN, sample_files, sample_manifest
from tests.servers import zarrdav_server
from zarrdav.config import ConfigError, Settings, load_settings
from zarrdav.manifests.checksum import zarr_checksum
from zarrdav.manifests.layout import manifest_path
from zarrdav.manifests.model import ManifestFile
from zarrdav.manifests.writer import render_manifest

GOLDEN = Path(__file__).parent / "golden"
REPO = Path(__file__).parent.parent
BASE = "http://127.0.0.1:9/bucket/zarr"  # redirect target; never contacted
ALLOW = "OPTIONS, GET, HEAD, PROPFIND"
D = "{DAV:}"
OC = "{http://owncloud.org/ns}"

ZARR = "1284a14f-fe4f-4dc3-b10d-48e5db8bf18d"
CHECKSUM, MANIFEST = sample_manifest()
FILES = {file.path: file for file in sample_files()}
ZARR_DIR = f"/zarrs/128/4a1/{ZARR}/"
ZARR_ROOT = f"{ZARR_DIR}{CHECKSUM}.zarr/"

# Names a client must percent-encode, and XML and HTML must escape.
SPECIAL = "5a8f0c2e-7d3b-4c1a-9e6f-0b1c2d3e4f50"
SPECIAL_FILES = [
    ManifestFile("my data/\u00e9t\u00e9 #1?.bin", "v0/+=", WHEN, 10, f"{100:032x}"),
    ManifestFile("my data/a&b<c>'\".txt", "v1", WHEN, 11, f"{101:032x}"),
    ManifestFile("100%/x", "v2", WHEN, 12, f"{102:032x}"),
]
SPECIAL_CHECKSUM = zarr_checksum((f.path, f.size, f.etag) for f in SPECIAL_FILES)
SPECIAL_ROOT = f"/zarrs/5a8/f0c/{SPECIAL}/{SPECIAL_CHECKSUM}.zarr/"

BROKEN = "12a0b6c4-0000-4000-8000-000000000000"
BROKEN_CHECKSUM = f"{'f' * 32}-1--1"
BROKEN_DIR = f"/zarrs/12a/0b6/{BROKEN}/"

PROPNAME = (
    b'<?xml version="1.0" encoding="utf-8"?>\n'
    b'<D:propfind xmlns:D="DAV:"><D:propname/></D:propfind>'
)
PROP = (
    b'<?xml version="1.0" encoding="utf-8"?>\n'
    b'<D:propfind xmlns:D="DAV:" xmlns:x="urn:example:x"><D:prop>'
    b"<D:displayname/><D:getcontentlength/><D:getetag/><D:getlastmodified/><D:resourcetype/>"
    b"<D:quota-used-bytes/><x:color/>"
    b"</D:prop></D:propfind>"
)
INCLUDE = (
    b'<?xml version="1.0" encoding="utf-8"?>\n'
    b'<D:propfind xmlns:D="DAV:" xmlns:x="urn:example:x"><D:allprop/><D:include>'
    b"<D:creationdate/><D:quota-used-bytes/><x:color/>"
    b"</D:include></D:propfind>"
)
BODIES = {"allprop": b"", "propname": PROPNAME, "prop": PROP, "include": INCLUDE}
UNKNOWN = {f"{D}quota-used-bytes", "{urn:example:x}color"}
ALLPROP = {"displayname", "getcontentlength", "getcontenttype", "getetag", "getlastmodified",
           "resourcetype"}
RFC1123 = re.compile(r"(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d\d (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep"
                     r"|Oct|Nov|Dec) \d{4} \d\d:\d\d:\d\d GMT")
LOG_LINE = re.compile(r"\S+ \S+ INFO zarrdav: (?P<method>[A-Z]+) (?P<path>\S+) (?P<status>\d{3}) "
                      r"(?P<ms>\d+\.\d)ms id=(?P<id>[\w.:@+=-]+)(?: \((?P<cause>.+)\))?")

GOLDEN_CASES = [
    (f"{target}_depth{depth}_{body}", path, depth, body)
    for target, path in (("zarr", ZARR_ROOT), ("dir", f"{ZARR_ROOT}arr/"))
    for depth in ("0", "1")
    for body in BODIES
] + [("special_depth1_allprop", f"{SPECIAL_ROOT}my%20data/", "1", "allprop")]


@pytest.fixture(scope="module")
def tree_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A manifest tree laid out as the server expects it."""
    root = tmp_path_factory.mktemp("tree")
    files = {
        manifest_path(ZARR, CHECKSUM): MANIFEST,
        manifest_path(SPECIAL, SPECIAL_CHECKSUM): render_manifest(SPECIAL_FILES, SPECIAL_CHECKSUM),
        manifest_path(BROKEN, BROKEN_CHECKSUM): b'{"schemaVersion": 2, "entries": {".zattrs": [',
    }
    for relative, body in files.items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_bytes(body)
    return root


@pytest.fixture(scope="module")
def server_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("log") / "zarrdav.log"


@pytest.fixture(scope="module")
def server(tree_dir: Path, server_log: Path) -> Iterator[str]:
    with zarrdav_server(
        "--manifest-root", str(tree_dir), "--zarr-base-url", BASE, log=server_log
    ) as url:
        yield url


@pytest.fixture(scope="module")
def client(server: str) -> Iterator[httpx.Client]:
    # Answers as they are without gzip (tests/test_compression.py has gzip's;
    # a gzipped page's ETag is its weak form).
    with httpx.Client(base_url=server, follow_redirects=False, timeout=10,
                      headers={"Accept-Encoding": "identity"}) as client:
        yield client


def propfind(
    client: httpx.Client, path: str, depth: str | None = "1", body: bytes = b"",
    auth: tuple[str, str] | None = None,
) -> httpx.Response:
    """``depth=None`` sends no Depth header, which WebDAV reads as infinity; ``auth``: HTTP Basic."""
    headers = {} if depth is None else {"Depth": depth}
    if body:
        headers["Content-Type"] = "application/xml; charset=utf-8"
    return client.request("PROPFIND", path, headers=headers, content=body, auth=auth)


@dataclass
class Answer:
    """One ``<response>`` of a multistatus: its href and properties by status."""

    href: str
    found: dict[str, ET.Element] = field(default_factory=dict)  # "{ns}name" -> element
    missing: set[str] = field(default_factory=set)

    def text(self, name: str) -> str | None:
        element = self.found.get(f"{D}{name}")
        return None if element is None else (element.text or "")

    @property
    def is_collection(self) -> bool:
        return self.found[f"{D}resourcetype"].find(f"{D}collection") is not None


def multistatus(response: httpx.Response) -> list[Answer]:
    """Read a 207 answer as a client does: only 200 and 404 propstats may occur."""
    assert response.status_code == 207, response.text
    assert response.headers["content-type"].startswith("application/xml")
    root = ET.fromstring(response.content)
    assert root.tag == f"{D}multistatus"
    answers = []
    for element in root.findall(f"{D}response"):
        href = element.find(f"{D}href")
        assert href is not None and href.text
        answer = Answer(href.text)
        for propstat in element.findall(f"{D}propstat"):
            status = propstat.findtext(f"{D}status")
            prop = propstat.find(f"{D}prop")
            assert prop is not None
            if status == "HTTP/1.1 200 OK":
                answer.found.update((child.tag, child) for child in prop)
            else:
                assert status == "HTTP/1.1 404 Not Found"
                answer.missing.update(child.tag for child in prop)
        answers.append(answer)
    return answers


def raw(
    server: str, method: str, target: str, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    """Send ``target`` exactly as written: httpx would normalize dot segments first."""
    parts = urlsplit(server)
    connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=10)
    try:
        connection.request(method, target, headers=headers or {})
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


def assert_plain_error(headers: httpx.Headers | dict[str, str], body: bytes) -> None:
    """Error bodies tell the user what is wrong in a line, never a traceback or a page."""
    assert headers["content-type"].startswith("text/plain")
    assert headers["access-control-allow-origin"] == "*"
    assert 0 < len(body) < 300, body
    assert b"Traceback" not in body
    assert b"<html" not in body.lower()


def assert_golden(name: str, body: bytes) -> None:
    """ZARRDAV_UPDATE_GOLDEN=1 rewrites the file after an intended change."""
    path = GOLDEN / name
    if os.environ.get("ZARRDAV_UPDATE_GOLDEN") == "1":
        GOLDEN.mkdir(exist_ok=True)
        path.write_bytes(body)
    assert body == path.read_bytes()


def wait_for_log(log: Path, needle: str, start: int = 0, timeout: float = 5) -> list[str]:
    """The lines from byte ``start`` on containing ``needle``.

    A request's line is written just after its answer is sent, so it may lag.
    """
    deadline = time.monotonic() + timeout
    while True:
        with log.open("rb") as handle:
            handle.seek(start)
            text = handle.read().decode(errors="replace")
        lines = [line for line in text.splitlines() if needle in line]
        if lines or time.monotonic() > deadline:
            return lines
        time.sleep(0.02)


def log_mark(client: httpx.Client, log: Path) -> int:
    """A log offset after which only the requests made from now on appear.

    Other tests request the same paths; waiting for a fresh request's line
    first lets their lines land before the offset.
    """
    mark = f"/log-mark-{time.monotonic_ns()}"
    assert client.get(mark).status_code == 404
    assert wait_for_log(log, f"GET {mark} ")
    return log.stat().st_size


# 1. Golden PROPFIND answers


@pytest.mark.parametrize(
    ("name", "path", "depth", "kind"), GOLDEN_CASES, ids=[case[0] for case in GOLDEN_CASES]
)
def test_propfind_golden(client: httpx.Client, name: str, path: str, depth: str, kind: str) -> None:
    response = propfind(client, path, depth, BODIES[kind])
    assert response.status_code == 207
    assert_golden(f"propfind_{name}.xml", response.content)


# 2. What the multistatus means


@pytest.mark.parametrize(
    "path",
    ["/", "/zarrs/", "/zarrs/128/", "/zarrs/128/4a1/", ZARR_DIR, ZARR_ROOT, f"{ZARR_ROOT}arr/",
     f"{ZARR_ROOT}arr/0/", f"{SPECIAL_ROOT}my%20data/", SPECIAL_ROOT],
)
def test_depth1_hrefs_lie_under_the_requested_path(client: httpx.Client, path: str) -> None:
    assert_depth1_lists_direct_children(client, path)


def assert_absent(client: httpx.Client, path: str) -> None:
    """zarr-python reads 404 as "absent" and fails on any other status."""
    for response in (client.get(path), client.head(path), propfind(client, path, "0")):
        assert response.status_code == 404, response.request.method
        if response.request.method != "HEAD":
            assert_plain_error(response.headers, response.content)


def assert_depth1_lists_direct_children(client: httpx.Client, path: str) -> None:
    """rclone drops, or loops on, entries outside the folder it listed."""
    answers = multistatus(propfind(client, path))
    assert answers[0].href == path
    assert len(answers) > 1
    hrefs = [answer.href for answer in answers]
    assert len(set(hrefs)) == len(hrefs)
    for answer in answers[1:]:
        assert answer.href.startswith(path)
        assert "/" not in answer.href[len(path):].rstrip("/")  # direct children only
        assert answer.is_collection == answer.href.endswith("/")
        assert answer.text("displayname") == unquote(answer.href.rstrip("/").rpartition("/")[2])


def test_depth0_answers_only_the_resource(client: httpx.Client) -> None:
    for path in (ZARR_ROOT, f"{ZARR_ROOT}arr/", f"{ZARR_ROOT}arr/.zarray"):
        assert [answer.href for answer in multistatus(propfind(client, path, "0"))] == [path]


@pytest.mark.parametrize("path", [ZARR_ROOT, f"{ZARR_ROOT}arr/", f"{ZARR_ROOT}arr/0/"])
def test_allprop_values_come_from_the_manifest(client: httpx.Client, path: str) -> None:
    answers = multistatus(propfind(client, path))
    for answer in answers:
        entry = unquote(answer.href)[len(ZARR_ROOT):]
        modified = answer.text("getlastmodified")
        if entry in FILES:
            file = FILES[entry]
            assert not answer.is_collection
            assert answer.text("getcontentlength") == str(file.size)
            assert answer.text("getetag") == f'"{file.etag}"'
            assert answer.found[f"{OC}checksums"].findtext(f"{OC}checksum") == f"MD5:{file.etag}"
            assert modified == format_datetime(file.last_modified, usegmt=True)
            json_name = file.name in (".zattrs", ".zgroup", ".zarray")
            assert answer.text("getcontenttype") == (
                "application/json" if json_name else "application/octet-stream"
            )
        elif entry == "":
            assert answer.is_collection
            assert answer.text("getcontentlength") is None  # a folder's GET is its page, not its total
            assert answer.text("getetag") == f'"{CHECKSUM}"'
            latest = max(f.last_modified for f in FILES.values())
            assert modified == format_datetime(latest, usegmt=True)
        else:
            assert answer.is_collection and answer.href.endswith("/")
            assert set(answer.found) == {f"{D}displayname", f"{D}resourcetype", f"{D}getlastmodified"}
            latest = max(f.last_modified for path, f in FILES.items() if path.startswith(entry))
            assert modified == format_datetime(latest, usegmt=True)
        assert modified is None or RFC1123.fullmatch(modified)
        assert not answer.missing


def test_special_names_are_percent_encoded_and_escaped(client: httpx.Client) -> None:
    answers = multistatus(propfind(client, f"{SPECIAL_ROOT}my%20data/"))
    names = {answer.href[len(SPECIAL_ROOT):]: answer.text("displayname") for answer in answers}
    assert names == {
        "my%20data/": "my data",
        "my%20data/%C3%A9t%C3%A9%20%231%3F.bin": "\u00e9t\u00e9 #1?.bin",
        "my%20data/a%26b%3Cc%3E%27%22.txt": "a&b<c>'\".txt",
    }
    top = multistatus(propfind(client, SPECIAL_ROOT))
    children = {answer.href for answer in top[1:]}
    assert children == {f"{SPECIAL_ROOT}100%25/", f"{SPECIAL_ROOT}my%20data/"}


def test_propname_lists_the_defined_properties(client: httpx.Client) -> None:
    answers = multistatus(propfind(client, ZARR_ROOT, body=PROPNAME))
    defined = {answer.href[len(ZARR_ROOT):]: {tag.removeprefix(D) for tag in answer.found}
               for answer in answers}
    assert defined == {
        "": ALLPROP - {"getcontenttype", "getcontentlength"},
        ".zattrs": ALLPROP | {f"{OC}checksums"},
        ".zgroup": ALLPROP | {f"{OC}checksums"},
        "arr/": {"displayname", "resourcetype", "getlastmodified"},
    }
    for answer in answers:
        assert all(len(element) == 0 and not element.text for element in answer.found.values())


def test_prop_reports_unknown_and_undefined_properties_as_404(client: httpx.Client) -> None:
    for answer in multistatus(propfind(client, f"{ZARR_ROOT}arr/", body=PROP)):
        if answer.is_collection:  # a directory has no size or ETag; its date is its newest file's
            assert set(answer.found) == {f"{D}displayname", f"{D}resourcetype", f"{D}getlastmodified"}
            undefined = {f"{D}getcontentlength", f"{D}getetag"}
            assert answer.missing == UNKNOWN | undefined
        else:
            wanted = ALLPROP - {"getcontenttype"}
            assert set(answer.found) == {f"{D}{name}" for name in wanted}
            assert answer.missing == UNKNOWN


def test_allprop_include_adds_unknown_properties_as_404(client: httpx.Client) -> None:
    plain = {a.href: set(a.found) for a in multistatus(propfind(client, f"{ZARR_ROOT}arr/"))}
    for answer in multistatus(propfind(client, f"{ZARR_ROOT}arr/", body=INCLUDE)):
        assert set(answer.found) == plain[answer.href]
        assert answer.missing == UNKNOWN


@pytest.mark.parametrize("path", [f"{ZARR_ROOT}{name}" for name in FILES] + [ZARR_ROOT])
def test_etag_header_equals_getetag(client: httpx.Client, path: str) -> None:
    (answer,) = multistatus(propfind(client, path, "0"))
    for method in ("GET", "HEAD"):
        response = client.request(method, path)
        assert response.headers["etag"] == answer.text("getetag")
        assert response.headers["last-modified"] == answer.text("getlastmodified")


# 3. GET and HEAD


@pytest.mark.parametrize("path", sorted(FILES))
def test_get_entry_redirects_to_its_version(client: httpx.Client, path: str) -> None:
    file = FILES[path]
    expected = f"{BASE}/{ZARR}/{path}?versionId={file.version_id}"
    for method in ("GET", "HEAD"):
        response = client.request(method, f"{ZARR_ROOT}{path}")
        assert response.status_code == 307
        assert response.headers["location"] == expected
        assert response.headers["content-length"] == "0"
        assert response.headers["access-control-allow-origin"] == "*"
        assert response.content == b""


@pytest.mark.parametrize(
    ("path", "location"),
    [
        ("my%20data/%C3%A9t%C3%A9%20%231%3F.bin",
         f"{BASE}/{SPECIAL}/my%20data/%C3%A9t%C3%A9%20%231%3F.bin?versionId=v0%2F%2B%3D"),
        ("my%20data/a%26b%3Cc%3E%27%22.txt",
         f"{BASE}/{SPECIAL}/my%20data/a%26b%3Cc%3E%27%22.txt?versionId=v1"),
        ("100%25/x", f"{BASE}/{SPECIAL}/100%25/x?versionId=v2"),
    ],
)
def test_get_special_entry_redirects_percent_encoded(server: str, path: str, location: str) -> None:
    status, headers, body = raw(server, "GET", f"{SPECIAL_ROOT}{path}")
    assert (status, headers["location"], body) == (307, location, b"")


@pytest.mark.parametrize(
    "path",
    ["/zarrs/", ZARR_DIR, ZARR_ROOT, f"{ZARR_ROOT}arr/", f"{ZARR_ROOT}arr/0/",
     f"{SPECIAL_ROOT}my%20data/"],
)
def test_collection_without_slash_redirects_to_slash(client: httpx.Client, path: str) -> None:
    for method in ("GET", "HEAD"):
        response = client.request(method, path.rstrip("/"))
        assert response.status_code == 301
        assert response.headers["location"] == path
        assert response.headers["content-length"] == "0"
    response = client.get(f"{path.rstrip('/')}?x=1")
    assert response.headers["location"] == f"{path}?x=1"


def test_head_of_collection_is_get_without_body(client: httpx.Client) -> None:
    got, head = client.get(ZARR_ROOT), client.head(ZARR_ROOT)
    assert got.status_code == head.status_code == 200
    assert head.content == b""
    assert head.headers["content-length"] == got.headers["content-length"] == str(len(got.content))
    assert head.headers["content-type"] == got.headers["content-type"] == "text/html; charset=utf-8"


class Links(HTMLParser):
    """Every ``<a href>`` of a page, as browsers and fsspec find them."""

    def __init__(self, body: bytes) -> None:
        super().__init__(convert_charrefs=True)
        self.hrefs: list[str] = []
        self.feed(body.decode("utf-8"))
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        href = dict(attrs).get("href")
        if tag == "a" and href:
            self.hrefs.append(href)


def test_every_link_of_every_page_answers(client: httpx.Client, server: str) -> None:
    """Crawl from the root: folders answer pages, files redirect, nothing is dead.

    /dandisets/ needs an archive; tests/test_dandisets.py crawls it.
    """
    host = urlsplit(server).netloc
    pages, seen, redirected = ["/"], {"/"}, set()
    while pages:
        page = pages.pop()
        response = client.get(page)
        assert response.status_code == 200, page
        assert response.headers["content-type"] == "text/html; charset=utf-8"
        for href in Links(response.content).hrefs:
            url = urlsplit(urljoin(f"{server}{page}", href))
            if url.netloc != host:
                continue
            target = url.path + (f"?{url.query}" if url.query else "")
            if target in seen or target.startswith("/dandisets/"):
                continue
            seen.add(target)
            answer = client.get(target)
            if target.startswith(BROKEN_DIR):  # its manifest is truncated: tested below
                assert answer.status_code == 502
            elif answer.status_code == 301:
                assert not target.endswith("/") and answer.headers["location"] == f"{target}/"
            elif answer.status_code == 307:
                redirected.add(target)
            else:
                assert answer.status_code == 200, (page, href, answer.status_code)
                pages.append(target)
    assert {f"{ZARR_ROOT}{path}" for path in FILES} <= redirected
    special = {f"{SPECIAL_ROOT}my%20data/%C3%A9t%C3%A9%20%231%3F.bin", f"{SPECIAL_ROOT}100%25/x"}
    assert special <= redirected
    assert len(redirected) == len(FILES) + len(SPECIAL_FILES)


# 4. OPTIONS and write methods


@pytest.mark.parametrize("path", ["/", ZARR_DIR, ZARR_ROOT, f"{ZARR_ROOT}arr/.zarray"])
def test_options(client: httpx.Client, path: str) -> None:
    response = client.options(path)
    assert response.status_code in (200, 204)
    assert response.headers["dav"] == "1"
    assert response.headers["allow"] == ALLOW
    assert response.headers["access-control-allow-origin"] == "*"


@pytest.mark.parametrize(
    "method", ["PUT", "DELETE", "MKCOL", "COPY", "MOVE", "PROPPATCH", "LOCK", "UNLOCK", "POST"]
)
@pytest.mark.parametrize("path", [ZARR_ROOT, f"{ZARR_ROOT}.zattrs", f"{ZARR_ROOT}new-file"])
def test_write_methods_are_not_allowed(client: httpx.Client, method: str, path: str) -> None:
    destination = {"Destination": f"{ZARR_ROOT}copy"}
    response = client.request(method, path, content=b"payload", headers=destination)
    assert response.status_code == 405
    assert response.headers["allow"] == ALLOW
    assert_plain_error(response.headers, response.content)
    assert method in response.text


# 5. Bad requests


@pytest.mark.parametrize("depth", ["infinity", "Infinity", None])
@pytest.mark.parametrize("path", ["/", "/zarrs/", ZARR_DIR, ZARR_ROOT, f"{ZARR_ROOT}arr/"])
def test_infinite_depth_is_refused(client: httpx.Client, path: str, depth: str | None) -> None:
    response = propfind(client, path, depth)
    assert response.status_code == 403
    error = ET.fromstring(response.content)
    assert error.tag == f"{D}error"
    assert [child.tag for child in error] == [f"{D}propfind-finite-depth"]


def test_infinite_depth_on_a_file_is_just_the_file(client: httpx.Client) -> None:
    answers = multistatus(propfind(client, f"{ZARR_ROOT}.zattrs", None))
    assert [answer.href for answer in answers] == [f"{ZARR_ROOT}.zattrs"]


def billion_laughs() -> bytes:
    entities = ['<!ENTITY lol0 "lol">'] + [
        f'<!ENTITY lol{n} "{f"&lol{n - 1};" * 10}">' for n in range(1, 10)
    ]
    return (
        f'<?xml version="1.0"?>\n<!DOCTYPE D:propfind [{"".join(entities)}]>\n'
        '<D:propfind xmlns:D="DAV:"><D:prop><D:displayname>&lol9;</D:displayname></D:prop>'
        "</D:propfind>"
    ).encode()


@pytest.mark.parametrize(
    ("depth", "body", "status"),
    [
        ("2", b"", 400),
        ("one", b"", 400),
        ("1", b"<D:propfind xmlns:D='DAV:'><D:prop>", 400),
        ("1", b"not xml at all", 400),
        ("1", b"<D:propfind xmlns:D='DAV:'><D:prop/><D:propname/></D:propfind>", 400),
        ("1", billion_laughs(), 400),
        ("1", b'<D:propfind xmlns:D="DAV:"><D:allprop/></D:propfind>' + b" " * 64 * 1024, 413),
    ],
    ids=["depth-2", "depth-one", "truncated", "not-xml", "two-modes", "xml-bomb", "over-64k"],
)
def test_bad_propfind(client: httpx.Client, depth: str, body: bytes, status: int) -> None:
    started = time.perf_counter()
    response = propfind(client, ZARR_ROOT, depth, body)
    assert time.perf_counter() - started < 2
    assert response.status_code == status
    assert_plain_error(response.headers, response.content)
    assert client.get("/").status_code == 200  # the connection and server are still fine


NOT_FOUND = [
    "/nothing",
    "/zarrs/999/",
    "/zarrs/128/999/",
    "/zarrs/128/4a1/1284a14f-0000-4000-8000-000000000000/",  # unknown Zarr id
    f"{ZARR_DIR}{'0' * 32}-10--7257.zarr/",  # unknown checksum
    f"{ZARR_DIR}not-a-checksum.zarr/",
    f"{ZARR_DIR}{CHECKSUM}/",  # no .zarr suffix
    f"{ZARR_DIR}{CHECKSUM}.json",
    f"{ZARR_ROOT}nope",
    f"{ZARR_ROOT}arr/nope/",
    f"{ZARR_ROOT}arr/0/3",
    f"/zarrs/128/4a1/{BROKEN}/",  # its prefix is 12a/0b6, not 128/4a1
    f"/zarrs/12a/0b6/{ZARR}/",
    f"{ZARR_ROOT}.zattrs/x",  # under a file
    f"{ZARR_ROOT}.zattrs/",
    f"{ZARR_ROOT}arr/131/",
]


@pytest.mark.parametrize("path", NOT_FOUND)
def test_absent_paths_are_404(client: httpx.Client, path: str) -> None:
    assert_absent(client, path)


TRICKS = [
    "/../../etc/passwd",
    "/zarrs/../../etc/passwd",
    "/zarrs/%2e%2e/%2e%2e/etc/passwd",
    "/%2E%2E/%2E%2E/%2E%2E/etc/",
    "/zarrs/..%2f..%2f..%2fetc%2fpasswd",
    "/zarrs/128%2F4a1/",
    "/zarrs/128/%2e%2e/",
    "/zarrs/./",
    f"{ZARR_DIR}..%2F..%2F..%2F",
    f"{ZARR_ROOT}arr/%2e%2e/.zattrs",
    f"{ZARR_ROOT}arr%2F0/",
    f"{ZARR_ROOT}..",
    "/zarrs/%00/",
    "/zarrs/%ff/",
    "/zarrs/%5c..%5c..%5c/",
]


@pytest.mark.parametrize("target", TRICKS)
@pytest.mark.parametrize("method", ["GET", "PROPFIND", "OPTIONS", "PUT"])
def test_path_tricks_reach_nothing(server: str, method: str, target: str) -> None:
    """Dot segments, encoded slashes and bytes never leave the hierarchy, nor crash."""
    status, headers, body = raw(server, method, target, {"Depth": "0"})
    assert status == (405 if method == "PUT" else 404), body
    assert_plain_error(headers, body)
    assert body.count(b"\n") == 1  # one line: no listing of anything
    assert b"root:" not in body


def test_absolute_form_target_is_not_proxied(server: str) -> None:
    status, headers, body = raw(server, "GET", "//etc/passwd")
    assert status == 400
    assert b"root:" not in body and b"Traceback" not in body


# 6. Upstream faults


@contextmanager
def failing_web_server() -> Iterator[str]:
    """A web server answering 500 to everything; yields its URL."""

    class Failing(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = b"upstream is broken\n"
            self.send_response(500)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    web = ThreadingHTTPServer(("127.0.0.1", 0), Failing)
    threading.Thread(target=web.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{web.server_address[1]}/"
    finally:
        web.shutdown()
        web.server_close()


def test_failing_manifest_tree_is_502(tmp_path: Path) -> None:
    log = tmp_path / "zarrdav.log"
    with failing_web_server() as root, zarrdav_server(
        "--manifest-root", root, "--zarr-base-url", BASE, log=log
    ) as url, httpx.Client(base_url=url, timeout=10) as client:
        for response in (client.get("/zarrs/"), propfind(client, "/zarrs/"), client.get(ZARR_ROOT)):
            assert response.status_code == 502
            assert_plain_error(response.headers, response.content)
            assert "answered 500" in response.text
        assert client.get("/").status_code == 200
        (line,) = wait_for_log(log, "GET /zarrs/ ")
    match = LOG_LINE.fullmatch(line)
    assert match and match["status"] == "502"
    assert match["cause"] == "manifest tree: /: answered 500"  # the kind, not the root URL


def test_silent_manifest_tree_is_504(tmp_path: Path) -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(64)  # connections are accepted by the kernel, never answered
        root = f"http://127.0.0.1:{silent.getsockname()[1]}/"
        with zarrdav_server(
            "--manifest-root", root, "--zarr-base-url", BASE, "--upstream-timeout", "1",
            log=tmp_path / "zarrdav.log",
        ) as url, httpx.Client(base_url=url, timeout=10) as client:
            started = time.perf_counter()
            response = client.get("/zarrs/")
            assert 1 <= time.perf_counter() - started < 5
            assert response.status_code == 504
            assert_plain_error(response.headers, response.content)
            assert client.get("/").status_code == 200


def test_truncated_manifest_is_502_naming_the_file(client: httpx.Client, server_log: Path) -> None:
    broken = f"{BROKEN_DIR}{BROKEN_CHECKSUM}.zarr/"
    start = log_mark(client, server_log)
    answers = (client.get(f"{broken}.zattrs"), propfind(client, broken, "0"), client.get(broken))
    for response in answers:
        assert response.status_code == 502
        assert_plain_error(response.headers, response.content)
        assert manifest_path(BROKEN, BROKEN_CHECKSUM) in response.text
    assert client.get("/").status_code == 200
    (line,) = wait_for_log(server_log, f"GET {broken}.zattrs ", start)
    match = LOG_LINE.fullmatch(line)
    assert match and match["status"] == "502"
    assert match["cause"] and manifest_path(BROKEN, BROKEN_CHECKSUM) in match["cause"]


# 7. Settings


def test_defaults_are_dandis() -> None:
    settings = load_settings(environ={})
    assert settings == Settings()
    assert settings.manifest_root == (
        "https://datasets.datalad.org/dandi/zarr-manifests/zarr-manifests-v2-sorted/"
    )
    assert settings.zarr_base_url == "https://dandiarchive.s3.amazonaws.com/zarr"
    assert settings.api_url == "https://api.dandiarchive.org/api"


def test_dandi_toml_spells_out_the_defaults() -> None:
    assert load_settings(REPO / "config" / "dandi.toml", environ={}) == Settings()


def test_file_then_environment_then_overrides(tmp_path: Path) -> None:
    config = tmp_path / "zarrdav.toml"
    config.write_text('host = "0.0.0.0"\nport = 1111\nlisting_ttl = 5\ns3_anonymous = false\n')
    environ = {
        "ZARRDAV_PORT": "2222",
        "ZARRDAV_S3_ANONYMOUS": "yes",
        "ZARRDAV_CONFIG": "/elsewhere",  # read by the command line, not a setting
        "HOME": "/home/x",  # not ours
    }
    from_file = replace(Settings(), host="0.0.0.0", port=1111, listing_ttl=5.0)
    assert load_settings(config, {}) == from_file
    assert load_settings(config, environ) == replace(from_file, port=2222, s3_anonymous=True)
    overridden = load_settings(config, environ, {"port": 3333, "host": None, "threads": 4})
    assert overridden == replace(from_file, port=3333, s3_anonymous=True, threads=4)


@pytest.mark.parametrize(
    ("toml", "environ", "message"),
    [
        ("prot = 8080\n", {}, r"zarrdav\.toml: unknown setting\(s\) prot"),
        ("", {"ZARRDAV_PROT": "8080"}, r"environment: unknown setting\(s\) prot"),
        ('port = "eighty"\n', {}, r"zarrdav\.toml: port must be .*'eighty'"),
        ("port = true\n", {}, r"port must be .*True"),
        ("threads = 2.5\n", {}, r"threads must be .*2\.5"),
        ("s3_anonymous = 1\n", {}, r"s3_anonymous must be .*1"),
        ("host = 127\n", {}, r"host must be .*127"),
        ("", {"ZARRDAV_THREADS": "many"}, r"environment: threads must be .*'many'"),
        ("", {"ZARRDAV_S3_ANONYMOUS": "maybe"}, r"environment: s3_anonymous must be .*'maybe'"),
        ("port = \n", {}, r"zarrdav\.toml: "),
    ],
)
def test_bad_settings_say_what_is_wrong(
    tmp_path: Path, toml: str, environ: dict[str, str], message: str
) -> None:
    config = tmp_path / "zarrdav.toml"
    config.write_text(toml)
    with pytest.raises(ConfigError, match=message):
        load_settings(config, environ)


def test_missing_config_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="absent.toml"):
        load_settings(tmp_path / "absent.toml", {})


# 8. The request log


def test_one_log_line_per_request(client: httpx.Client, server_log: Path) -> None:
    probes = [
        ("GET", f"{ZARR_ROOT}log-probe", "404"),
        ("HEAD", f"{ZARR_ROOT}arr/.zarray", "307"),
        ("PROPFIND", f"{ZARR_ROOT}arr/0/", "207"),
        ("PUT", f"{ZARR_ROOT}log-probe", "405"),
        ("GET", f"{ZARR_ROOT}arr", "301"),
        ("GET", f"{SPECIAL_ROOT}my%20data/%C3%A9t%C3%A9%20%231%3F.bin", "307"),
    ]
    start = log_mark(client, server_log)
    for method, path, _ in probes:
        client.request(method, path, headers={"Depth": "1"})
    for method, path, status in probes:
        (line,) = wait_for_log(server_log, f"{method} {path} ", start)
        match = LOG_LINE.fullmatch(line)
        assert match, line
        assert (match["method"], match["path"], match["status"]) == (method, path, status)
        assert match["cause"] is None


def test_log_line_cannot_be_split_by_the_path(server: str, server_log: Path) -> None:
    status, _, _ = raw(server, "GET", "/zarrs/%0Aforged%20200%200.1ms")
    assert status == 404
    (line,) = wait_for_log(server_log, "forged")
    assert LOG_LINE.fullmatch(line)
    assert "/zarrs/%0Aforged%20200%200.1ms 404 " in line
