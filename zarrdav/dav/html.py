"""The HTML pages: a folder listing for browsers and for fsspec, and error pages.

Besides people, zarr-python lists directories over HTTP through fsspec, which
scrapes every ``<a href>`` (and, with its default ``simple_links``, every
``http://`` or ``https://`` URL in the text) and keeps the links under the
page's own URL. So children are linked only by their bare percent-encoded
names (``name``, ``name/`` for folders), and every other link on the page
points outside the folder: breadcrumbs to ancestors, paging links to the
folder's own path without its trailing slash (``/a/b?page=2``, which the
server redirects to ``/a/b/?page=2``). Absolute URLs shown as text (this
server's, in snippets) are written with their colon as ``&#58;``, which a
browser shows and copies as ":" and fsspec does not read as a URL.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from html import escape as _escape
from urllib.parse import quote

from zarrdav.dav.formats import representable
from zarrdav.dav.resources import UNDATED, Collection, Resource

# Kept literally in hrefs: sub-delims and "@" (RFC 3986 pchar), minus "&" and
# "'" (fsspec reads hrefs without HTML unescaping) and minus ":" (a leading
# "name:" would read as a URL scheme in a relative reference).
_SEGMENT_SAFE = "!$()*+,;=@"

_DASH = "\N{EM DASH}"

_EPOCH = datetime.min.replace(tzinfo=UTC)
_UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB")

# Readable from 400 px up: tables scroll inside their box, names and URLs wrap.
_STYLE = """\
body { font-family: system-ui, sans-serif; margin: 1.5rem; color: #222; max-width: 84rem; }
@media (max-width: 640px) { body { margin: 0.6rem; } }
h1 { font-size: 1.3rem; font-weight: normal; overflow-wrap: anywhere; }
h2 { font-size: 1.05rem; margin: 1.2rem 0 0.4rem; }
p { overflow-wrap: anywhere; }
a { color: #0645ad; text-decoration: none; }
a:hover { text-decoration: underline; }
.title { font-size: 1.15rem; margin: 0 0 0.6rem; }
.links { list-style: none; padding: 0; overflow-wrap: anywhere; }
.note { background: #fff4ce; border: 1px solid #e0c36a; padding: 0.4rem 0.6rem; }
.error { background: #fde7e9; border: 1px solid #e6a0a7; padding: 0.4rem 0.6rem; overflow-wrap: anywhere; }
pre { background: #f5f5f5; padding: 0.5rem 0.7rem; white-space: pre-wrap; overflow-wrap: anywhere; }
code.url { user-select: all; overflow-wrap: anywhere; background: #eef3fb; padding: 0 0.2rem; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; }
th, td { padding: 0.2rem 0.8rem; text-align: left; white-space: nowrap; vertical-align: top; }
td.name { white-space: normal; overflow-wrap: anywhere; min-width: 10rem; }
td.title { white-space: normal; min-width: 12rem; }
th { border-bottom: 2px solid #ccc; }
tbody tr:nth-child(even) { background: #f5f5f5; }
td.size, td.count { text-align: right; font-family: ui-monospace, monospace; }
td.time { font-family: ui-monospace, monospace; }
.details, .meta { color: #666; }
.newest { background: #2e7d32; color: #fff; border-radius: 0.3rem; padding: 0 0.3rem; font-size: 0.85em; }
nav.pages { margin: 0.6rem 0; }
form.filter { margin: 0.6rem 0; }
form.filter input { width: min(24rem, 70vw); }"""

# Narrows the rows as one types; without it the form asks the server (?q=).
_FILTER_SCRIPT = """\
(function () {
  var box = document.querySelector("form.filter input");
  var rows = document.querySelectorAll("#listing tbody tr:not(.parent)");
  box.addEventListener("input", function () {
    var text = box.value.toLowerCase();
    rows.forEach(function (row) {
      var key = row.querySelector(".name").textContent + " " +
        (row.querySelector(".title") || {textContent: ""}).textContent;
      row.hidden = text !== "" && key.toLowerCase().indexOf(text) < 0;
    });
  });
})();"""


@dataclass(frozen=True, slots=True)
class Paging:
    """Where a listing page is among the folder's pages."""

    number: int  # from 1
    count: int  # pages in all
    entries: int  # rows in all (after the filter)
    base: str  # the folder's absolute path without its trailing slash, percent-encoded
    query: str = ""  # the filter, to keep in the links, percent-encoded ("" for none)

    def href(self, number: int) -> str:
        return f"{self.base}?page={number}{f'&q={self.query}' if self.query else ''}"


def human_size(size: int) -> str:
    """Bytes in binary units, one decimal above bytes; never shows "1024.0 KiB"."""
    if size < 1024:
        return f"{size} B"
    value = size / 1024
    for unit in _UNITS[1:-1]:
        if round(value, 1) < 1024:
            return f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} {_UNITS[-1]}"


def escape(text: str) -> str:
    """HTML text of ``text``, with what XML could not hold replaced as in PROPFIND."""
    return _escape(representable(text))


def url_text(url: str) -> str:
    """An absolute URL as HTML text people copy and fsspec does not scrape as a link."""
    return escape(url).replace("://", "&#58;//", 1)


def accepts_html(accept: str) -> bool:
    """Whether an Accept header names HTML (browsers do; fsspec, curl and WebDAV clients do not)."""
    for item in accept.split(","):
        media, *parameters = item.split(";")
        if media.strip().lower() not in ("text/html", "application/xhtml+xml"):
            continue
        for parameter in parameters:
            name, _, value = parameter.partition("=")
            if name.strip().lower() == "q":
                try:
                    return float(value) > 0
                except ValueError:
                    return False
        return True
    return False


def page(title: str, heading: str, parts: Sequence[str], script: str | None = None) -> bytes:
    """A whole UTF-8 page: ``heading`` and ``parts`` are HTML already, ``title`` text."""
    lines = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{escape(title)}</title>",
        f"<style>\n{_STYLE}\n</style>",
        "</head>",
        "<body>",
        f"<h1>{heading}</h1>",
        *parts,
    ]
    if script is not None:
        lines.append(f"<script>\n{script}\n</script>")
    lines += ["</body>", "</html>", ""]
    return "\n".join(lines).encode("utf-8")


def render_listing(
    collection: Collection,
    children: Sequence[Resource],
    script_name: str = "",
    notes: Sequence[str] = (),
    *,
    sections: Sequence[str] = (),
    paging: Paging | None = None,
    filter_text: str | None = None,
) -> bytes:
    """The whole UTF-8 page for ``collection``.

    ``script_name`` is the decoded mount prefix (WSGI SCRIPT_NAME), so that
    breadcrumb links still work when the app is mounted below the root.
    ``sections`` are HTML blocks shown above the table (what the page is
    and how to use it), ``paging`` says which page of the folder this is,
    and ``filter_text`` (None: no filter box) is the filter in effect.
    """
    parts: list[str] = []
    if collection.title:
        parts.append(f'<p class="title">{escape(collection.title)}</p>')
    if collection.links:
        parts.append('<ul class="links">')
        parts.extend(
            f'<li>{escape(label)}: <a href="{escape(url)}">{escape(url)}</a></li>'
            for label, url in collection.links
        )
        parts.append("</ul>")
    parts.extend(sections)
    parts.extend(f'<p class="note">{escape(note)}</p>' for note in notes)
    if filter_text is not None:
        parts.append(
            '<form class="filter" method="get" role="search">'
            f'<input type="search" name="q" value="{escape(filter_text)}" '
            'placeholder="Filter by name or title" aria-label="Filter by name or title"> '
            "<button>Filter</button></form>"
        )
    nav = _paging_nav(paging) if paging is not None and paging.count > 1 else ""
    if nav:
        parts.append(nav)
    parts.append('<div class="scroll">')
    parts.extend(_table(collection, ordered(collection, children), paging))
    parts.append("</div>")
    if nav:
        parts.append(nav)
    return page(
        f"zarrdav: {collection.path}",
        breadcrumbs(collection.path, script_name),
        parts,
        _FILTER_SCRIPT if filter_text is not None else None,
    )


def ordered(collection: Collection, children: Sequence[Resource]) -> list[Resource]:
    """By name; a Zarr's versions page newest first, as a history reads."""
    if collection.newest_first:
        return sorted(children, key=lambda child: (_utc(child.modified), child.name), reverse=True)
    return sorted(children, key=lambda child: child.name)


def _utc(value: datetime | None) -> datetime:
    """Comparable whatever it is: none is oldest, naive is UTC (as ``_time`` shows it)."""
    if value is None:
        return _EPOCH
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def breadcrumbs(path: str, script_name: str, linked: int | None = None) -> str:
    """Ancestors as absolute links, the folder itself as plain text.

    ``linked`` (default all) is how many of the path's segments may be
    linked: an error page links only the levels that exist. The root's href
    is "/." rather than "/" when unmounted: fsspec takes a bare "/" as a
    relative link to the page itself.
    """
    segments = [segment for segment in path.split("/") if segment]
    if not segments:
        return "zarrdav"
    last = len(segments) - 1
    linked = last if linked is None else min(linked, last)
    root = quote(f"{script_name}/", safe="/" + _SEGMENT_SAFE, errors="surrogatepass")
    crumbs = [f'<a href="{escape(root if root != "/" else "/.")}">zarrdav</a>']
    for depth, segment in enumerate(segments, start=1):
        if depth > linked:
            crumbs.append(escape(segment))
            continue
        href = quote(f"{script_name}/{'/'.join(segments[:depth])}/", safe="/" + _SEGMENT_SAFE,
                     errors="surrogatepass")
        crumbs.append(f'<a href="{escape(href)}">{escape(segment)}</a>')
    return " / ".join(crumbs)


def _paging_nav(paging: Paging) -> str:
    """First, previous, next and last: links where they lead elsewhere, text where not."""
    number, count = paging.number, paging.count

    def link(label: str, target: int) -> str:
        if target == number or not 1 <= target <= count:
            return f'<span class="details">{label}</span>'
        return f'<a href="{escape(paging.href(target))}">{label}</a>'

    return (
        f'<nav class="pages">Page {number:,} of {count:,} ({paging.entries:,} entries): '
        f"{link('first', 1)} · {link('previous', number - 1)} · "
        f"{link('next', number + 1)} · {link('last', count)}</nav>"
    )


def _table(collection: Collection, children: Sequence[Resource], paging: Paging | None) -> list[str]:
    if collection.newest_first:
        header = ["Version", "Date", "Entries", "Size", "Changes since the previous"]
        first_page = paging is None or paging.number == 1
        rows = [_version_row(child, newest=first_page and index == 0) for index, child in enumerate(children)]
    else:
        titled = any(isinstance(child, Collection) and child.title for child in children)
        header = ["Name", *(["Title"] if titled else []), "Type", "Size", "Created", "Modified"]
        rows = [_row(child, titled) for child in children]
    lines = [
        '<table id="listing">',
        "<thead>",
        "<tr>" + "".join(f"<th>{name}</th>" for name in header) + "</tr>",
        "</thead>",
        "<tbody>",
    ]
    if collection.path != "/":
        empty = "<td></td>" * (len(header) - 1)
        lines.append(f'<tr class="parent"><td class="name"><a href="../">../</a></td>{empty}</tr>')
    lines += rows
    lines += ["</tbody>", "</table>"]
    return lines


def _name_link(child: Resource) -> str:
    """The name links to the bare relative name only."""
    suffix = "/" if child.is_collection else ""
    name = child.name
    href = escape(quote(name, safe=_SEGMENT_SAFE, errors="surrogatepass") + suffix)
    return f'<a href="{href}">{escape(name + suffix)}</a>'


def _size(size: int | None) -> str:
    if size is None:
        return f'<td class="size">{_DASH}</td>'
    return f'<td class="size" title="{size} bytes">{human_size(size)}</td>'


def _row(child: Resource, titled: bool) -> str:
    """One table row of a folder."""
    kind = escape(child.kind)
    if child.details:
        kind += f' <span class="details">({escape(child.details)})</span>'
    if child.metadata_url:
        kind += f' <a class="meta" href="{escape(child.metadata_url)}">metadata</a>'
    title = ""
    if titled:
        text = child.title if isinstance(child, Collection) else None
        title = f'<td class="title">{escape(text) if text else _DASH}</td>'
    return (
        f'<tr><td class="name">{_name_link(child)}</td>{title}<td>{kind}</td>{_size(child.size)}'
        f'<td class="time">{_time(child.created)}</td>'
        f'<td class="time">{_time(child.modified)}</td></tr>'
    )


def _version_row(child: Resource, newest: bool) -> str:
    """One version of a Zarr: its date, entries, size and the counts of what changed."""
    badge = ' <span class="newest">newest</span>' if newest else ""
    entries = child.entries if isinstance(child, Collection) else None
    changes = child.changes if isinstance(child, Collection) else None
    if changes is None:
        changed = '<td><span class="details">first version</span></td>'
    else:
        added, removed, rewritten = changes
        changed = (
            f'<td title="{added:,} added, {removed:,} removed, {rewritten:,} changed">'
            f"+{added:,} added, \N{MINUS SIGN}{removed:,} removed, ~{rewritten:,} changed</td>"
        )
    count = _DASH if entries is None else f"{entries:,}"
    return (
        f'<tr><td class="name">{_name_link(child)}{badge}</td>'
        f'<td class="time">{_time(child.modified)}</td>'
        f'<td class="count">{count}</td>{_size(child.size)}{changed}</tr>'
    )


# Entries of a listing share few timestamps (chunks are written in bursts):
# format each once.
@lru_cache(maxsize=4096)
def _time(value: datetime | None) -> str:
    """UTC for everyone; naive datetimes are taken to be UTC already. The
    placeholder date of folders without one is shown as none."""
    if value is None or value == UNDATED:
        return _DASH
    if value.tzinfo is not None:
        value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%d %H:%M:%S UTC")
