"""Headless Chromium renders `zarrdav demo`'s folder pages: titles, rows, links, screenshots.

The DOM Chromium builds (``--dump-dom``) is checked, not the HTML zarrdav
sent: the title, each row's name, type, human size and em dashes, and every
link on the page answers 200, 301 or 307. Screenshots go to
``test-artifacts/screenshots/`` for people to look at.
"""

from __future__ import annotations

import shutil
import struct
import subprocess
import tempfile
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import httpx
import pytest

from tests.servers import Demo
from zarrdav.dav.html import human_size
from zarrdav.demo.catalog import DANDISET, OME_PATH, README, README_PATH, RELEASE

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
    assert readme.cells[1:3] == ["File", human_size(len(README.encode()))]
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
