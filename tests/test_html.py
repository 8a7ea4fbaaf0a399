"""The HTML listing: golden pages, and what browsers and fsspec read from it."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from tests.manifests import one_manifest_tree
from tests.servers import in_process
from zarrdav.config import Settings
from zarrdav.dav.html import accepts_html, human_size, render_listing, url_text
from zarrdav.dav.pages import collection_page
from zarrdav.dav.resources import Collection, File, Resource
from zarrdav.edge.request import Request
from zarrdav.manifests.checksum import zarr_checksum
from zarrdav.manifests.model import ManifestFile
from zarrdav.manifests.writer import render_manifest
from zarrdav.routes import zarr_version_path

GOLDEN = Path(__file__).parent / "golden"
ZARR_ID = "1284a14f-fe4f-4dc3-b10d-48e5db8bf18d"
ZARR_DIR = f"/zarrs/128/4a1/{ZARR_ID}/"
CHECKSUM = "0a6cb5c6b1ad2b3b4e3b8b2d1f33ed49-509--1394857021"


@dataclass
class Row:
    """One ``<tr>`` of the listing's body."""

    classes: str
    cells: list[str] = field(default_factory=list)
    hrefs: list[str] = field(default_factory=list)
    size_title: str | None = None


class Page(HTMLParser):
    """The parts of a rendered listing that tests look at."""

    def __init__(self, body: bytes) -> None:
        super().__init__(convert_charrefs=True)
        self.title = ""
        self.h1 = ""
        self.crumbs: list[tuple[str, str]] = []  # (href, text)
        self.rows: list[Row] = []
        self.headers: list[str] = []
        self.hrefs: list[str] = []  # every <a href> on the page, as fsspec sees them
        self._stack: list[str] = []
        self._href: str | None = None
        self._text = ""
        self._in_body = False
        self.feed(body.decode("utf-8"))
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        self._stack.append(tag)
        if tag == "tbody":
            self._in_body = True
        elif tag == "tr" and self._in_body:
            self.rows.append(Row(attributes.get("class") or ""))
        elif tag == "td" and self._in_body:
            self.rows[-1].cells.append("")
            if attributes.get("class") == "size":
                self.rows[-1].size_title = attributes.get("title")
        elif tag == "a":
            self._href = attributes["href"]
            self._text = ""
            self.hrefs.append(self._href or "")
            if self._in_body:
                self.rows[-1].hrefs.append(self._href or "")

    def handle_endtag(self, tag: str) -> None:
        self._stack.pop()
        if tag == "tbody":
            self._in_body = False
        elif tag == "a" and "h1" in self._stack:
            self.crumbs.append((self._href or "", self._text))

    def handle_data(self, data: str) -> None:
        if "title" in self._stack:
            self.title += data
        if "h1" in self._stack:
            self.h1 += data
        if "a" in self._stack:
            self._text += data
        if "th" in self._stack:
            self.headers.append(data)
        if "td" in self._stack and self._in_body:
            self.rows[-1].cells[-1] += data


def at(day: int, hour: int = 12) -> datetime:
    return datetime(2024, 3, day, hour, 30, 5, tzinfo=UTC)


def versions_page() -> tuple[Collection, list[Resource]]:
    """A Zarr's manifests, as under /zarrs/<p1>/<p2>/<zarr_id>/: newest first."""
    zarr = Collection(
        ZARR_DIR,
        kind="Zarr",
        links=(("Metadata", f"https://api.dandiarchive.org/api/zarr/{ZARR_ID}/"),),
        newest_first=True,
    )
    children: list[Resource] = [
        Collection(
            f"{ZARR_DIR}{CHECKSUM}.zarr/",
            kind="Zarr version",
            size=1394857021,
            modified=at(5),
            details="509 entries; since the previous: 0 added, 0 removed, 3 changed",
            entries=509,
            changes=(0, 0, 3),
        ),
        Collection(
            f"{ZARR_DIR}07e1b5a1f0b3e8a3c1e1d9e6d7e50c0c-509--1394855900.zarr/",
            kind="Zarr version",
            size=1394855900,
            modified=at(2),
            details="509 entries",
            entries=509,
        ),
    ]
    return zarr, children


def zarr_dir_page() -> tuple[Collection, list[Resource]]:
    """A directory inside a pinned Zarr: subfolders without sizes, files with them."""
    base = f"{ZARR_DIR}{CHECKSUM}.zarr/0/"
    directory = Collection(base, kind="Folder")
    children: list[Resource] = [
        File(f"{base}.zattrs", kind="File", size=0, modified=at(5)),
        File(f"{base}.zarray", kind="File", size=512, modified=at(5)),
        Collection(f"{base}1/", kind="Folder"),
        Collection(f"{base}0/", kind="Folder"),
        File(f"{base}zarr.json", kind="File", size=1536, modified=at(5)),
    ]
    return directory, children


GOLDEN_PAGES = {
    "zarr_versions": lambda: render_listing(*versions_page()),
    "zarr_directory": lambda: render_listing(
        *zarr_dir_page(),
        script_name="/dav",
        notes=("Listed from the manifest & pinned: <not live>.",),
    ),
}


@pytest.mark.parametrize("name", sorted(GOLDEN_PAGES))
def test_golden(name: str) -> None:
    """Set ZARRDAV_UPDATE_GOLDEN=1 to rewrite the files after an intended change."""
    body = GOLDEN_PAGES[name]()
    path = GOLDEN / f"{name}.html"
    if os.environ.get("ZARRDAV_UPDATE_GOLDEN") == "1":
        GOLDEN.mkdir(exist_ok=True)
        path.write_bytes(body)
    assert body == path.read_bytes()


def test_title_and_breadcrumbs() -> None:
    page = Page(render_listing(*versions_page(), script_name="/mnt"))
    assert page.title == f"zarrdav: {ZARR_DIR}"
    assert page.crumbs == [
        ("/mnt/", "zarrdav"),
        ("/mnt/zarrs/", "zarrs"),
        ("/mnt/zarrs/128/", "128"),
        ("/mnt/zarrs/128/4a1/", "4a1"),
    ]
    assert page.h1.endswith(ZARR_ID)  # the folder itself is text, not a link


def test_breadcrumbs_unmounted_avoid_a_bare_slash() -> None:
    """fsspec would read href="/" as a link to the listed folder itself."""
    page = Page(render_listing(*versions_page()))
    assert page.crumbs[0] == ("/.", "zarrdav")
    assert page.crumbs[1] == ("/zarrs/", "zarrs")
    assert "/" not in page.hrefs


def test_breadcrumbs_are_percent_encoded() -> None:
    folder = Collection("/dandisets/000001/draft/sub dir & co/inner/", kind="Folder")
    page = Page(render_listing(folder, [], script_name="/mnt"))
    assert page.title == "zarrdav: /dandisets/000001/draft/sub dir & co/inner/"
    assert page.crumbs[-1] == ("/mnt/dandisets/000001/draft/sub%20dir%20%26%20co/", "sub dir & co")
    assert page.h1.endswith("/ inner")


def test_root_has_no_parent_row_and_no_links() -> None:
    root = Collection("/", kind="Folder")
    children: list[Resource] = [
        Collection("/zarrs/", kind="Folder"),
        Collection("/dandisets/", kind="Folder"),
    ]
    page = Page(render_listing(root, children))
    assert page.title == "zarrdav: /"
    assert page.crumbs == []
    assert [row.hrefs for row in page.rows] == [["dandisets/"], ["zarrs/"]]


def test_parent_row_first_then_children_sorted() -> None:
    collection, children = zarr_dir_page()
    page = Page(render_listing(collection, children))
    assert page.headers == ["Name", "Type", "Size", "Created", "Modified"]
    assert page.rows[0].classes == "parent"
    assert page.rows[0].hrefs == ["../"]
    names = [row.cells[0] for row in page.rows[1:]]
    assert names == [".zarray", ".zattrs", "0/", "1/", "zarr.json"]
    assert all(len(row.cells) == 5 for row in page.rows)


def test_collection_hrefs_end_with_slash_files_do_not() -> None:
    collection, children = zarr_dir_page()
    page = Page(render_listing(collection, children))
    hrefs = {row.cells[0]: row.hrefs[0] for row in page.rows[1:]}
    assert hrefs == {
        ".zarray": ".zarray",
        ".zattrs": ".zattrs",
        "0/": "0/",
        "1/": "1/",
        "zarr.json": "zarr.json",
    }


def test_special_characters_escaped_and_percent_encoded() -> None:
    folder = Collection("/dandisets/000001/draft/", kind="Version")
    children: list[Resource] = [
        File("/dandisets/000001/draft/a<b>&\"c'.nwb", kind="File", size=3),
        Collection("/dandisets/000001/draft/my data: 100%/", kind="Folder"),
        File("/dandisets/000001/draft/\u00e9t\u00e9 #1?.txt", kind="File", size=3),
    ]
    body = render_listing(folder, children, notes=("<b>careful</b> & co",))
    assert b"<b>" not in body
    assert b"&lt;b&gt;careful&lt;/b&gt; &amp; co" in body
    page = Page(body)
    rows = {row.cells[0]: row.hrefs[0] for row in page.rows[1:]}
    assert rows == {
        "a<b>&\"c'.nwb": "a%3Cb%3E%26%22c%27.nwb",
        "my data: 100%/": "my%20data%3A%20100%25/",
        "\u00e9t\u00e9 #1?.txt": "%C3%A9t%C3%A9%20%231%3F.txt",
    }


def test_child_hrefs_are_relative_names() -> None:
    """fsspec keeps only links under the page's URL; "./x" and absolute forms break it."""
    collection, children = versions_page()
    for page in (
        Page(render_listing(collection, children)),
        Page(render_listing(*zarr_dir_page(), script_name="/dav")),
    ):
        for row in page.rows:
            for href in row.hrefs:
                assert not href.startswith(("/", "./"))
                assert ":" not in href
                assert href == "../" or "/" not in href.rstrip("/")


def test_missing_values_are_em_dashes() -> None:
    collection, children = zarr_dir_page()
    page = Page(render_listing(collection, children))
    folder = next(row for row in page.rows if row.cells[0] == "0/")
    assert folder.cells[2:] == ["\u2014"] * 3
    assert folder.size_title is None
    file = next(row for row in page.rows if row.cells[0] == "zarr.json")
    assert file.cells[2:] == ["1.5 KiB", "\u2014", "2024-03-05 12:30:05 UTC"]
    assert file.size_title == "1536 bytes"


def test_details_go_in_the_type_cell() -> None:
    collection, children = zarr_dir_page()
    children.append(Collection(f"{collection.path}2/", kind="Folder", details="3 assets"))
    page = Page(render_listing(collection, children))
    assert [row.cells[1] for row in page.rows if row.cells[0] == "2/"] == ["Folder (3 assets)"]


def test_versions_page_shows_dates_entries_sizes_and_changes() -> None:
    page = Page(render_listing(*versions_page()))
    assert page.headers == ["Version", "Date", "Entries", "Size", "Changes since the previous"]
    assert [row.cells[1:] for row in page.rows[1:]] == [
        ["2024-03-05 12:30:05 UTC", "509", "1.3 GiB", "+0 added, \N{MINUS SIGN}0 removed, ~3 changed"],
        ["2024-03-02 12:30:05 UTC", "509", "1.3 GiB", "first version"],
    ]


def test_versions_page_lists_newest_first() -> None:
    collection, children = versions_page()
    names = [row.cells[0] for row in Page(render_listing(collection, children)).rows[1:]]
    assert names == [f"{CHECKSUM}.zarr/ newest", "07e1b5a1f0b3e8a3c1e1d9e6d7e50c0c-509--1394855900.zarr/"]
    names = [name.removesuffix(" newest") for name in names]
    assert names != sorted(names)  # not name order
    collection.newest_first = False
    assert [row.cells[0] for row in Page(render_listing(collection, children)).rows[1:]] == sorted(names)


def test_times_are_converted_to_utc() -> None:
    folder = Collection("/x/", kind="Folder")
    summer = timezone(timedelta(hours=-4))
    child = File(
        "/x/f",
        kind="File",
        created=datetime(2022, 6, 27, 19, 7, 47, tzinfo=summer),
        modified=datetime(2022, 6, 27, 23, 59, 59),
    )
    page = Page(render_listing(folder, [child]))
    assert page.rows[1].cells[3:] == ["2022-06-27 23:07:47 UTC", "2022-06-27 23:59:59 UTC"]


def test_links_are_shown_as_given() -> None:
    asset = Collection(
        "/dandisets/000001/draft/a.zarr/",
        kind="Zarr asset",
        links=(
            ("Permanent link", f"{ZARR_DIR}{CHECKSUM}.zarr/"),
            ("Metadata", "https://api.dandiarchive.org/api/assets/x/?a=1&b=2"),
        ),
    )
    body = render_listing(asset, [])
    assert b'href="https://api.dandiarchive.org/api/assets/x/?a=1&amp;b=2"' in body
    page = Page(body)
    assert f"{ZARR_DIR}{CHECKSUM}.zarr/" in page.hrefs
    assert "https://api.dandiarchive.org/api/assets/x/?a=1&b=2" in page.hrefs


def test_no_external_resources() -> None:
    body = render_listing(*versions_page())
    assert b"<script" not in body
    assert b"<link" not in body
    assert b"@import" not in body


@pytest.mark.parametrize(
    ("size", "expected"),
    [
        (0, "0 B"),
        (1, "1 B"),
        (512, "512 B"),
        (1023, "1023 B"),
        (1024, "1.0 KiB"),
        (1536, "1.5 KiB"),
        (1024**2 - 1, "1.0 MiB"),
        (3_355_443, "3.2 MiB"),
        (1_394_857_021, "1.3 GiB"),
        (4 * 1024**4, "4.0 TiB"),
        (5 * 1024**5, "5.0 PiB"),
        (2 * 1024**6, "2.0 EiB"),
    ],
)
def test_human_size(size: int, expected: str) -> None:
    assert human_size(size) == expected


# -- pages of a running app (in process): paging, error pages, this server's URL ----------------

BIG_ZARR = "b16f01de-0000-4000-8000-00000000b16f"
BROWSER = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
FSSPEC_LINK = re.compile(r"""<(a|A)\s+(?:[^>]*?\s+)?(href|HREF)=["'](?P<url>[^"']+)""")
FSSPEC_TEXT = re.compile(r"""(?P<url>http[s]?://[-a-zA-Z0-9@:%_+.~#?&/=]+)""")


def big_files(count: int) -> list[ManifestFile]:
    when = datetime(2024, 3, 1, tzinfo=UTC)
    files = [ManifestFile(".zgroup", "v-group", when, 24, "0" * 32)]
    files += [ManifestFile(f"arr/{n}", f"v-{n}", when, 100 + n, f"{n:032x}") for n in range(count)]
    return sorted(files, key=lambda file: file.path)


@pytest.fixture(scope="module")
def big_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[httpx.Client, str]]:
    """The whole app on a tree with a 25-entry folder, 10 rows per HTML page; the folder's path."""
    files = big_files(25)
    checksum = zarr_checksum((f.path, f.size, f.etag) for f in files)
    root = one_manifest_tree(tmp_path_factory.mktemp("tree"), BIG_ZARR, checksum, render_manifest(files, checksum))
    settings = Settings(manifest_root=str(root), index_dir="", html_page_size=10,
                        zarr_base_url="http://127.0.0.1:9/bucket/zarr")
    with in_process(settings) as client:
        yield client, f"{zarr_version_path(BIG_ZARR, checksum)}arr/"


def fsspec_children(html: str, url: str) -> set[str]:
    """What fsspec's HTTP listing makes of a page at ``url`` (its own rules, simple_links on)."""
    found = FSSPEC_TEXT.findall(html) + [match[2] for match in FSSPEC_LINK.findall(html)]
    parts = urlsplit(url)
    children = set()
    for link in found:
        if link.startswith("/") and len(link) > 1:
            link = f"{parts.scheme}://{parts.netloc}{link}"
        if link.startswith("http"):
            if link.startswith(url.rstrip("/") + "/"):
                children.add(link)
        elif link not in ("..", "../"):
            children.add("/".join([url.rstrip("/"), link.lstrip("/")]))
    return {child.removeprefix(url.rstrip("/") + "/") for child in children}


def test_browsers_get_pages_other_clients_every_row(big_app: tuple[httpx.Client, str]) -> None:
    client, folder = big_app
    every = {str(n) for n in range(25)}
    whole = client.get(folder)
    assert whole.headers["vary"] == "Accept"
    assert {row.cells[0] for row in Page(whole.content).rows[1:]} == every
    first = client.get(folder, headers=BROWSER)
    page = Page(first.content)
    assert len(page.rows[1:]) == 10
    assert "Page 1 of 3 (25 entries)" in first.text
    assert f'href="{folder.rstrip("/")}?page=2"' in first.text  # next, and no "first" link on page 1
    assert f'href="{folder.rstrip("/")}?page=3"' in first.text
    assert f'href="{folder.rstrip("/")}?page=1"' not in first.text
    seen = set()
    for number in (1, 2, 3):
        answer = client.get(f"{folder}?page={number}")  # any client asking for a page gets it
        seen |= {row.cells[0] for row in Page(answer.content).rows[1:]}
    assert seen == every
    # A paging link leaves the folder's URL space; the server brings it back.
    hop = client.get(f"{folder.rstrip('/')}?page=2", headers=BROWSER)
    assert hop.status_code == 301 and hop.headers["location"] == f"{folder}?page=2"


def test_fsspec_reads_every_child_from_every_page(big_app: tuple[httpx.Client, str]) -> None:
    client, folder = big_app
    url = f"http://test{folder}"
    every = {str(n) for n in range(25)}
    assert fsspec_children(client.get(folder).text, url) == every
    for number in (1, 2, 3):
        assert fsspec_children(client.get(f"{folder}?page={number}").text, url) <= every
    root = zarr_version_path(BIG_ZARR, folder.split("/")[5].removesuffix(".zarr"))
    assert fsspec_children(client.get(root, headers=BROWSER).text, f"http://test{root}") == {".zgroup", "arr/"}
    assert fsspec_children(client.get("/", headers=BROWSER).text, "http://test/") == {"dandisets/", "zarrs/"}


def test_pages_out_of_range_and_malformed(big_app: tuple[httpx.Client, str]) -> None:
    client, folder = big_app
    assert client.get(f"{folder}?page=4").status_code == 404
    assert client.get(f"{folder}?page=0").status_code == 404
    assert client.get(f"{folder}?page=two").status_code == 400
    assert client.get(f"{folder}?page=99999999999999999999").status_code == 400


def test_the_filter_narrows_rows_across_pages(big_app: tuple[httpx.Client, str]) -> None:
    client, folder = big_app
    answer = client.get(f"{folder}?q=2", headers=BROWSER)
    assert {row.cells[0] for row in Page(answer.content).rows[1:]} == {"2", "12", "20", "21", "22", "23", "24"}
    assert 'value="2"' in answer.text and "<script>" in answer.text


def test_this_servers_url_comes_from_host_and_is_escaped(big_app: tuple[httpx.Client, str]) -> None:
    client, folder = big_app
    zarr_root = folder.removesuffix("arr/")
    shown = client.get(zarr_root, headers={**BROWSER, "Host": "data.example.org:8443"}).text
    assert f'http&#58;//data.example.org:8443{zarr_root.rstrip("/")}' in shown
    hostile = client.get(zarr_root, headers={**BROWSER, "Host": '"><script>alert(1)</script>'}).text
    assert "alert(1)" not in hostile  # not a host: the server's own address is shown instead
    assert hostile.count("<script>") == 0


def test_browsers_get_error_pages_with_breadcrumbs_to_what_exists(big_app: tuple[httpx.Client, str]) -> None:
    client, folder = big_app
    missing = f"{folder}nothing/deeper/"
    plain = client.get(missing)
    assert plain.status_code == 404 and plain.headers["content-type"].startswith("text/plain")
    assert plain.text.count("\n") == 1
    page = client.get(missing, headers=BROWSER)
    assert page.status_code == 404 and page.headers["content-type"].startswith("text/html")
    parsed = Page(page.content)
    assert parsed.title == "zarrdav: 404 Not Found"
    assert parsed.crumbs[-1] == (folder, "arr")  # the deepest level that exists is the last link
    assert plain.text.strip() in page.text.replace("&#x27;", "'")
    refused = client.request("DELETE", folder, headers=BROWSER)
    assert refused.status_code == 405 and refused.headers["allow"] and "405 Method Not Allowed" in refused.text


@pytest.mark.parametrize(
    ("accept", "html"),
    [("text/html", True), ("text/html;q=0", False), ("*/*", False), ("", False),
     ("application/json, text/html;q=0.5", True), ("TEXT/HTML", True), ("text/html;q=x", False)],
)
def test_accepts_html(accept: str, html: bool) -> None:
    assert accepts_html(accept) is html


def test_url_text_is_not_a_url_to_fsspec() -> None:
    shown = url_text("http://h/a?b&c")
    assert shown == "http&#58;//h/a?b&amp;c" and not FSSPEC_TEXT.findall(shown)


def version_page(doi: str | None, path: str = "/dandisets/000001/latest/") -> str:
    version = Collection(path, kind="Latest release", title="A <title>", citation="Doe (2024) A title & more",
                         doi=doi, version="0.240101.0000")
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": path, "HTTP_ACCEPT": "text/html", "HTTP_HOST": "h:1"}
    return collection_page(version, [], Request(environ), 1000).decode()


def test_a_version_page_shows_title_citation_doi_and_its_release() -> None:
    page = version_page("10.48324/dandi.000001/0.240101.0000")
    assert '<p class="title">A &lt;title&gt;</p>' in page
    assert "<p>Doe (2024) A title &amp; more</p>" in page
    assert '<a href="https://doi.org/10.48324/dandi.000001/0.240101.0000">' in page
    assert "this is release <strong>0.240101.0000</strong>" in page
    assert '<a href="/dandisets/000001/releases/0.240101.0000/">' in page


def test_a_doi_that_is_not_one_is_not_linked() -> None:
    page = version_page('10.48324/x " onclick="alert(1)')
    assert "doi.org" not in page and "onclick" not in page


def test_a_doi_with_markup_is_linked_encoded() -> None:
    page = version_page('10.48324/x"><b>')
    assert '<a href="https://doi.org/10.48324/x%22%3E%3Cb%3E">10.48324/x&quot;&gt;&lt;b&gt;</a>' in page


def test_a_draft_zarr_says_it_is_the_drafts() -> None:
    path = "/dandisets/000001/draft/a.zarr/"
    zarr_asset = Collection(path, kind="Zarr", zarr=True, version="draft", etag="c",
                            links=(("Permanent link", f"{ZARR_DIR}{CHECKSUM}.zarr/"),))
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": path, "HTTP_HOST": "h:1"}
    page = collection_page(zarr_asset, [], Request(environ), 1000).decode()
    assert "as the <strong>draft</strong> has it now" in page
    assert f'id="permanent-url">http&#58;//h:1{ZARR_DIR}{CHECKSUM}.zarr</code>' in page
