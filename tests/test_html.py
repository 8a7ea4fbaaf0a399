"""The HTML listing: golden pages, and what browsers and fsspec read from it."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from html.parser import HTMLParser
from pathlib import Path

import pytest

from zarrdav.dav.html import human_size, render_listing
from zarrdav.dav.resources import Collection, File, Resource

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
