"""Headless Chromium renders `zarrdav demo`'s folder pages: titles, rows, links, screenshots.

The DOM Chromium builds (``--dump-dom``) is checked, not the HTML zarrdav
sent: the title, each row's name, type, human size and em dashes, and every
link on the page answers 200, 301 or 307. The pages people act on (landing,
Dandisets, a Zarr, a versions page, a 404, a paged folder) are opened at
1280 and 400 px through the DevTools protocol (``--remote-debugging-pipe``),
which lets a test type into the filter, read what the page shows and
measure that nothing is wider than the window. Screenshots go to
``test-artifacts/screenshots/`` for people to look at (``docs/screenshots/``
holds a copy of them).
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import fsspec
import httpx
import numpy as np
import pytest
import zarr
import zarr.storage
from zarr.core.sync import sync

from tests.manifests import one_manifest_tree
from tests.servers import Demo, zarrdav_server
from tests.zarr_data import VersionedZarr
from zarrdav.dav.html import human_size
from zarrdav.demo.catalog import DANDISET, DRAFT_ONLY, OME_PATH, README, README_PATH, RELEASE, TRACES_PATH
from zarrdav.demo.sample import TRACES_ZARR_ID, traces
from zarrdav.manifests.checksum import zarr_checksum
from zarrdav.manifests.model import ManifestFile
from zarrdav.manifests.writer import render_manifest
from zarrdav.routes import zarr_version_path

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
if CHROMIUM is None and Path("/usr/bin/chromium").exists():
    CHROMIUM = "/usr/bin/chromium"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        CHROMIUM is None, reason="Chromium is not installed (scripts/test installs it as root)"
    ),
]

SCREENSHOTS = Path(__file__).resolve().parents[1] / "test-artifacts" / "screenshots"
WINDOW = (1280, 900)
DASH = "\N{EM DASH}"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
RELEASE_DIR = f"/dandisets/{DANDISET}/releases/{RELEASE}/"
DRAFT_DIR = f"/dandisets/{DANDISET}/draft/"
OME_METADATA_ROWS = {".zattrs", ".zgroup", ".zmetadata"}
OME_LEVEL_ROWS = {"0/", "1/", "2/"}


@dataclass
class Row:
    cells: list[str]  # the text of each cell
    titles: list[str | None]  # each cell's title attribute
    href: str | None  # the name's link

    @property
    def name(self) -> str:
        return self.cells[0]


@dataclass
class Page:
    """What a rendered DOM shows."""

    title: str = ""
    heading: str = ""
    header: list[str] = field(default_factory=list)
    rows: list[Row] = field(default_factory=list)
    links: list[str] = field(default_factory=list)  # every href, as written
    labelled: dict[str, str] = field(default_factory=dict)  # "Permanent link" -> href

    def row(self, name: str) -> Row:
        found = [row for row in self.rows if row.name == name]
        assert len(found) == 1, f"{name!r} not once in {[row.name for row in self.rows]}"
        return found[0]

    @property
    def names(self) -> set[str]:
        return {row.name for row in self.rows}


class _DomParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.page = Page()
        self._stack: list[str] = []
        self._row: Row | None = None
        self._cell: list[str] | None = None
        self._text: list[str] = []  # of the <title>, <h1> or <li> being read
        self._li_href: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        self._stack.append(tag)
        if tag in ("title", "h1", "li"):
            self._text = []
            self._li_href = None
        elif tag == "tr" and "tbody" in self._stack:
            self._row = Row([], [], None)
        elif tag in ("td", "th"):
            self._cell = []
            if self._row is not None:
                self._row.titles.append(attributes.get("title"))
        elif tag == "a" and attributes.get("href") is not None:
            href = attributes["href"]
            assert href is not None
            self.page.links.append(href)
            if self._row is not None and self._row.href is None:
                self._row.href = href
            if "li" in self._stack:
                self._li_href = href

    def handle_endtag(self, tag: str) -> None:
        while self._stack and self._stack.pop() != tag:
            pass
        text = "".join(self._text).strip()
        if tag == "title":
            self.page.title = text
        elif tag == "h1":
            self.page.heading = " ".join(text.split())
        elif tag == "li" and self._li_href is not None:
            self.page.labelled[text.split(":", 1)[0]] = self._li_href
        elif tag in ("td", "th") and self._cell is not None:
            cell = " ".join("".join(self._cell).split())
            if self._row is not None:
                self._row.cells.append(cell)
            else:
                self.page.header.append(cell)
            self._cell = None
        elif tag == "tr" and self._row is not None:
            if self._row.cells and self._row.cells[0] != "../":
                self.page.rows.append(self._row)
            self._row = None

    def handle_data(self, data: str) -> None:
        self._text.append(data)
        if self._cell is not None:
            self._cell.append(data)


def chromium(*args: str) -> subprocess.CompletedProcess[str]:
    """Headless Chromium, offline (names other than 127.0.0.1 do not resolve), with a fresh profile."""
    with tempfile.TemporaryDirectory(prefix="zarrdav-chromium-") as profile:
        command = [
            str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
            "--no-first-run", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
            f"--user-data-dir={profile}", *args,
        ]
        result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"{command} failed:\n{result.stderr[-3000:]}"
    return result


def rendered(url: str, name: str) -> Page:
    """The DOM Chromium renders for ``url``, and its screenshot kept as ``<name>.png``.

    One Chromium run does both (``--dump-dom`` with ``--screenshot``); the PNG
    is checked to be a whole image of the window's size.
    """
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    path.unlink(missing_ok=True)
    size = "--window-size={},{}".format(*WINDOW)
    dom = chromium("--dump-dom", f"--screenshot={path}", size, url).stdout
    data = path.read_bytes()
    assert data.startswith(PNG_SIGNATURE) and data[12:16] == b"IHDR", path
    assert struct.unpack(">II", data[16:24]) == WINDOW, path
    assert len(data) > 5000, f"{path} is nearly empty ({len(data)} bytes)"
    parser = _DomParser()
    parser.feed(dom)
    parser.close()
    return parser.page


def assert_links_resolve(page: Page, url: str) -> None:
    """Every link of the page, resolved against it, answers 200, 301 or 307."""
    with httpx.Client(timeout=10) as client:
        for href in sorted(set(page.links)):
            if href.startswith("https://doi.org/"):
                continue  # the release's DOI, which resolves off this machine (and nowhere: a demo's)
            target = urljoin(url, href)
            assert urlsplit(target).hostname == "127.0.0.1", target
            status = client.get(target).status_code
            assert status in (200, 301, 307), f"{href} ({target}) answered {status}"


def assert_sizes_are_human(page: Page) -> None:
    """A row with a size shows it in binary units, its exact bytes in the title; else an em dash."""
    for row in page.rows:
        size, title = row.cells[2], row.titles[2]
        if title is None:
            assert size == DASH, row
        else:
            assert title.endswith(" bytes"), row
            assert size == human_size(int(title.removesuffix(" bytes"))), row


def check_page(url: str, name: str, path: str) -> Page:
    page = rendered(url, name)
    assert page.title == f"zarrdav: {path}"
    assert page.header == ["Name", "Type", "Size", "Created", "Modified"]
    for row in page.rows:
        assert len(row.cells) == 5, row
        assert row.href == row.name, row  # rows link to their bare relative names
    assert_sizes_are_human(page)
    assert_links_resolve(page, url)
    return page


def test_the_root_lists_dandisets_and_zarrs(demo: Demo) -> None:
    page = check_page(demo.url, "root", "/")
    assert page.heading == "zarrdav"
    assert page.names == {"dandisets/", "zarrs/"}
    assert page.row("dandisets/").cells[1:] == ["Dandisets", DASH, DASH, DASH]
    assert page.row("zarrs/").cells[1:] == ["Zarrs", DASH, DASH, DASH]


@pytest.mark.parametrize(("version_dir", "name"), [(RELEASE_DIR, "release"), (DRAFT_DIR, "draft")])
def test_a_dandiset_version_lists_its_metadata_and_assets(
    demo: Demo, version_dir: str, name: str
) -> None:
    page = check_page(demo.url.rstrip("/") + version_dir, name, version_dir)
    crumbs = version_dir.strip("/").split("/")
    assert page.heading == " / ".join(["zarrdav", *crumbs])
    assert page.names == {README_PATH, "dandiset.yaml", "sub-01/"}
    readme = page.row(README_PATH)
    assert readme.cells[1:3] == ["File metadata", human_size(len(README.encode()))]
    assert readme.cells[3].endswith(" UTC") and readme.cells[4].endswith(" UTC")
    assert page.row("dandiset.yaml").cells[1] == "Metadata"
    assert page.row("dandiset.yaml").cells[3] == DASH  # no creation date; modified: the version's
    assert page.row("dandiset.yaml").cells[4].endswith(" UTC")
    assert page.row("sub-01/").cells[1] == "Directory (2 assets)"
    assert "Metadata" in page.labelled


def test_a_pinned_zarr_asset_and_its_permanent_link_list_the_same_zarr(demo: Demo) -> None:
    asset_path = f"{RELEASE_DIR}{OME_PATH}/"
    asset_url = demo.url.rstrip("/") + asset_path
    asset = check_page(asset_url, "zarr-asset", asset_path)
    assert asset.names == OME_METADATA_ROWS | OME_LEVEL_ROWS
    for level in OME_LEVEL_ROWS:
        assert asset.row(level).cells[1:3] == ["Directory", DASH]
    for name in OME_METADATA_ROWS:
        assert asset.row(name).cells[1] == "File"
    assert asset.row(".zattrs").cells[2].endswith(" KiB")
    assert asset.row(".zgroup").cells[2].endswith(" B")

    permanent = asset.labelled["Permanent link"]
    assert permanent.startswith("/zarrs/") and permanent.endswith(".zarr/"), permanent
    pinned = check_page(urljoin(asset_url, permanent), "zarr-pinned", permanent)
    assert [row.cells for row in pinned.rows] == [row.cells for row in asset.rows]
    assert pinned.heading.startswith("zarrdav / zarrs / ")


# -- the pages people act on, at 1280 and 400 px, through the DevTools protocol ----------------

WIDTHS = (1280, 400)
TRACES_ASSET = f"/dandisets/{DANDISET}/latest/{TRACES_PATH}/"


class Browser:
    """Headless Chromium driven over ``--remote-debugging-pipe`` (fds 3 and 4, NUL-separated JSON)."""

    def __init__(self) -> None:
        self._profile = tempfile.TemporaryDirectory(prefix="zarrdav-chromium-")
        commands, self._commands = os.pipe()
        self._replies, replies = os.pipe()

        def as_fds_3_and_4() -> None:
            # Copies first: dup2 onto the same number would keep close-on-exec.
            read, write = os.dup(commands), os.dup(replies)
            os.dup2(read, 3)
            os.dup2(write, 4)

        self._process = subprocess.Popen(
            [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1", "--remote-debugging-pipe",
             f"--user-data-dir={self._profile.name}", "about:blank"],
            close_fds=False, preexec_fn=as_fds_3_and_4,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        os.close(commands)
        os.close(replies)
        self._buffer = b""
        self._last = 0
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        self._session = self.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        self.call("Page.enable", in_page=True)

    def call(self, method: str, in_page: bool = False, **params: Any) -> dict[str, Any]:
        self._last += 1
        message: dict[str, Any] = {"id": self._last, "method": method, "params": params}
        if in_page:
            message["sessionId"] = self._session
        os.write(self._commands, json.dumps(message).encode() + b"\0")
        while True:
            reply = self._next()
            if reply.get("id") == self._last:
                assert "error" not in reply, reply
                return dict(reply["result"])

    def _next(self) -> dict[str, Any]:
        deadline = time.monotonic() + 60
        while b"\0" not in self._buffer:
            assert time.monotonic() < deadline, "Chromium did not answer"
            chunk = os.read(self._replies, 1 << 20)
            assert chunk, "Chromium closed its pipe"
            self._buffer += chunk
        raw, _, self._buffer = self._buffer.partition(b"\0")
        return dict(json.loads(raw))

    def open(self, url: str, width: int) -> None:
        self.call("Emulation.setDeviceMetricsOverride", in_page=True, width=width, height=WINDOW[1],
                  deviceScaleFactor=1, mobile=False)
        self.call("Page.navigate", in_page=True, url=url)
        while self._next().get("method") != "Page.loadEventFired":
            pass

    def js(self, expression: str) -> Any:
        result = self.call("Runtime.evaluate", in_page=True, expression=expression, returnByValue=True)
        return result["result"].get("value")

    def screenshot(self, name: str) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        path.write_bytes(base64.b64decode(self.call("Page.captureScreenshot", in_page=True, format="png")["data"]))
        data = path.read_bytes()
        assert data.startswith(PNG_SIGNATURE) and len(data) > 5000, path
        return path

    def close(self) -> None:
        self._process.terminate()
        self._process.wait(10)
        for fd in (self._commands, self._replies):
            os.close(fd)
        self._profile.cleanup()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    running = Browser()
    try:
        yield running
    finally:
        running.close()


def shown(browser: Browser, url: str, name: str) -> Iterator[int]:
    """Open ``url`` at each width, yield the width; each time a screenshot and no overflow."""
    for width in WIDTHS:
        browser.open(url, width)
        yield width
        browser.screenshot(f"{name}-{width}")
        scroll, inner = browser.js("[document.scrollingElement.scrollWidth, innerWidth]")
        assert scroll <= inner, f"{url} is {scroll} px wide in a {inner} px window"


def text(browser: Browser, selector: str) -> str:
    return str(browser.js(f"document.querySelector({json.dumps(selector)}).textContent"))


def test_the_landing_page_says_what_it_is_with_this_servers_url(demo: Demo, browser: Browser) -> None:
    for _ in shown(browser, demo.url, "landing"):
        assert browser.js("document.title") == "zarrdav: /"
        body = text(browser, "body")
        assert "versioned Zarrs" in body and "Mount it" in body and "Open a Zarr" in body
        assert text(browser, "code.url") == demo.url  # absolute, this server's
        snippets = browser.js("[...document.querySelectorAll('pre')].map(p => p.textContent)")
        assert any(f"--webdav-url {demo.url} " in snippet for snippet in snippets)
        assert any(f'xr.open_zarr("{demo.url}zarrs/' in snippet for snippet in snippets)
        assert browser.js("[...document.querySelectorAll('a')].map(a => a.getAttribute('href'))")[:1] != ["/"]


def test_dandisets_show_titles_and_the_filter_narrows_them(demo: Demo, browser: Browser) -> None:
    visible = "[...document.querySelectorAll('#listing tbody tr:not(.parent)')].filter(r => !r.hidden)" \
              ".map(r => r.cells[0].textContent + ' | ' + r.cells[1].textContent)"
    for _ in shown(browser, f"{demo.url}dandisets/", "dandisets"):
        headers = browser.js("[...document.querySelectorAll('th')].map(th => th.textContent)")
        assert headers == ["Name", "Title", "Type", "Size", "Created", "Modified"]
        assert browser.js(visible) == [f"{DANDISET}/ | zarrdav demo", f"{DRAFT_ONLY}/ | zarrdav demo: never published"]
        browser.js("var box = document.querySelector('form.filter input'); box.value = 'NEVER';"
                   "box.dispatchEvent(new Event('input'))")
        assert browser.js(visible) == [f"{DRAFT_ONLY}/ | zarrdav demo: never published"]


def test_a_zarr_page_gives_a_permanent_url_that_zarr_python_opens(demo: Demo, browser: Browser) -> None:
    for _ in shown(browser, f"{demo.url.rstrip('/')}{TRACES_ASSET}", "zarr"):
        permanent = text(browser, "#permanent-url")
        assert permanent.startswith(f"{demo.url}zarrs/7b1/e9a/") and permanent.endswith(".zarr"), permanent
        assert f"this is release {RELEASE}" in text(browser, "body")
        snippets = browser.js("[...document.querySelectorAll('pre')].map(p => p.textContent)")
        assert f'z = zarr.open("{permanent}", mode="r")' in snippets[0]
        assert any(snippet.startswith(f"ome_zarr info {permanent}") for snippet in snippets)
        assert any(f"--webdav-url {permanent} " in snippet for snippet in snippets)
    group = zarr.open_group(permanent, mode="r")  # the URL as the page shows it
    np.testing.assert_array_equal(group["traces"][...], traces(changed=False))
    ran = subprocess.run([sys.executable, "-c", snippets[0]], capture_output=True, text=True, timeout=60)
    assert ran.returncode == 0 and "Type        : Group" in ran.stdout, ran.stderr  # the snippet as shown


def test_a_versions_page_lists_newest_first_with_what_changed(demo: Demo, browser: Browser) -> None:
    versions = f"{demo.url}zarrs/7b1/e9a/{TRACES_ZARR_ID}/"
    rows = ("[...document.querySelectorAll('#listing tbody tr:not(.parent)')]"
            ".map(r => [...r.cells].map(c => c.textContent))")
    for _ in shown(browser, versions, "versions"):
        headers = browser.js("[...document.querySelectorAll('th')].map(th => th.textContent)")
        assert headers == ["Version", "Date", "Entries", "Size", "Changes since the previous"]
        newest, oldest = browser.js(rows)
        assert newest[0].endswith(".zarr/ newest") and not oldest[0].endswith("newest")
        assert newest[1] >= oldest[1] and newest[1].endswith(" UTC")
        assert re.fullmatch(r"\+\d+ added, \u2212[1-9]\d* removed, ~[1-9]\d* changed", newest[4]), newest
        assert oldest[4] == "first version"


def test_a_404_is_a_page_with_a_way_back(demo: Demo, browser: Browser) -> None:
    missing = f"{demo.url}dandisets/{DANDISET}/draft/sub-01/no-such-thing/"
    plain = httpx.get(missing, timeout=10)
    assert plain.status_code == 404 and plain.headers["content-type"].startswith("text/plain")
    for _ in shown(browser, missing, "not-found"):
        assert browser.js("document.title") == "zarrdav: 404 Not Found"
        assert plain.text.strip() in text(browser, "p.error")
        crumbs = browser.js("[...document.querySelectorAll('h1 a')].map(a => a.getAttribute('href'))")
        assert crumbs == ["/.", "/dandisets/", f"/dandisets/{DANDISET}/", f"/dandisets/{DANDISET}/draft/",
                          f"/dandisets/{DANDISET}/draft/sub-01/"]


BIG_ZARR = "b16f01de-0000-4000-8000-00000000b16f"
BIG_ENTRIES = 2500


@pytest.fixture(scope="module")
def big_folder(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A zarrdav serve whose Zarr has one folder of 2,500 entries, at the default page size; its URL."""
    when = datetime(2024, 3, 1, tzinfo=UTC)
    files = sorted([ManifestFile(".zgroup", "v", when, 24, "0" * 32), *(
        ManifestFile(f"big/{n}", f"v{n}", when, 100 + n, f"{n:032x}") for n in range(BIG_ENTRIES))],
        key=lambda file: file.path)
    checksum = zarr_checksum((f.path, f.size, f.etag) for f in files)
    root = one_manifest_tree(tmp_path_factory.mktemp("big"), BIG_ZARR, checksum, render_manifest(files, checksum))
    with zarrdav_server("--manifest-root", str(root), "--zarr-base-url", "http://127.0.0.1:9/b/zarr") as url:
        yield f"{url}{zarr_version_path(BIG_ZARR, checksum)}big/"


def test_a_big_folder_is_paged_for_browsers_and_whole_for_fsspec(big_folder: str, browser: Browser) -> None:
    rows = "document.querySelectorAll('#listing tbody tr:not(.parent)').length"
    for _ in shown(browser, big_folder, "paged-folder"):
        assert browser.js(rows) == 1000
        assert "Page 1 of 3 (2,500 entries)" in text(browser, "nav.pages")
    browser.open(browser.js("document.querySelector('nav.pages a:last-child').href"), 1280)  # "last"
    assert browser.js(rows) == 500 and browser.js("location.search") == "?page=3"
    listed = fsspec.filesystem("http").ls(big_folder, detail=False)
    assert sorted(name.rsplit("/", 1)[1] for name in listed) == sorted(str(n) for n in range(BIG_ENTRIES))


@pytest.fixture(scope="module")
def small_pages(
    zarrs: dict[int, VersionedZarr], public_bucket: str, s3_endpoint: str, manifest_root: Path
) -> Iterator[str]:
    """zarrdav serving the test Zarrs with 3 rows per HTML page: every folder is bigger than a page."""
    with zarrdav_server("--manifest-root", str(manifest_root), "--html-page-size", "3",
                        "--zarr-base-url", f"{s3_endpoint}/{public_bucket}/zarr") as url:
        yield url


def test_zarr_python_lists_and_reads_folders_bigger_than_a_page(
    small_pages: str, zarrs: dict[int, VersionedZarr]
) -> None:
    sample = zarrs[2]
    checksum = sample.checksums[0]
    url = f"{small_pages}/{sample.url_path(checksum)}"
    assert "Page 1 of 2" in httpx.get(f"{url}/", headers={"Accept": "text/html"}, timeout=10).text
    group = zarr.open_group(url, mode="r", use_consolidated=False)  # lists the folder, not .zmetadata
    assert sorted(name for name, _ in group.members()) == ["floats", "ints"]
    for name, expected in sample.values[checksum].items():
        np.testing.assert_array_equal(group[name][...], expected)
    store = zarr.storage.FsspecStore.from_url(f"{url}/ints", read_only=True)

    async def names() -> list[str]:
        return [name async for name in store.list_dir("")]

    assert sorted(sync(names())) == sorted(path.split("/", 1)[1] for path in _files_of(small_pages, url, "ints"))


def _files_of(server: str, url: str, folder: str) -> list[str]:
    """The folder's children as PROPFIND lists them (always complete)."""
    answer = httpx.request("PROPFIND", f"{url}/{folder}/", headers={"Depth": "1"}, timeout=10)
    hrefs = re.findall(r"<D:href>([^<]+)</D:href>", answer.text, flags=re.IGNORECASE)
    own = urlsplit(f"{url}/").path
    return [f"{folder}/{href.removeprefix(own + folder + '/').rstrip('/')}" for href in hrefs
            if href.rstrip("/") != (own + folder)]


def test_a_release_page_shows_its_title_citation_and_doi(demo: Demo, browser: Browser) -> None:
    for _ in shown(browser, f"{demo.url}dandisets/{DANDISET}/latest/", "version"):
        assert text(browser, "p.title") == "zarrdav demo"
        body = text(browser, "body")
        assert f"this is release {RELEASE}" in body
        assert f"(Version {RELEASE}) [Data set]. DANDI Archive." in body
        doi = browser.js("document.querySelector('a[href^=\"https://doi.org/\"]').textContent")
        assert doi.endswith(f"/dandi.{DANDISET}/{RELEASE}")
        permanent = browser.js("[...document.querySelectorAll('a')].map(a => a.getAttribute('href'))")
        assert f"/dandisets/{DANDISET}/releases/{RELEASE}/" in permanent
