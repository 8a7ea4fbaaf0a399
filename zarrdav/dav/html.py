"""The HTML page for a collection: a folder listing for browsers and for fsspec.

Besides people, zarr-python lists directories over HTTP through fsspec, which
scrapes every ``<a href>`` and keeps the links under the page's own URL. So
children are linked only by their bare percent-encoded names (``name``,
``name/`` for folders), and every other link on the page points outside the
folder.
"""

from __future__ import annotations

from collections.abc import Sequence
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

_STYLE = """\
body { font-family: system-ui, sans-serif; margin: 1.5rem; color: #222; }
h1 { font-size: 1.3rem; font-weight: normal; word-break: break-all; }
a { color: #0645ad; text-decoration: none; }
a:hover { text-decoration: underline; }
.links { list-style: none; padding: 0; }
.note { background: #fff4ce; border: 1px solid #e0c36a; padding: 0.4rem 0.6rem; }
table { border-collapse: collapse; }
th, td { padding: 0.2rem 0.8rem; text-align: left; white-space: nowrap; }
th { border-bottom: 2px solid #ccc; }
tbody tr:nth-child(even) { background: #f5f5f5; }
td.size { text-align: right; font-family: ui-monospace, monospace; }
td.time { font-family: ui-monospace, monospace; }
.details { color: #666; }"""


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


def render_listing(
    collection: Collection,
    children: Sequence[Resource],
    script_name: str = "",
    notes: Sequence[str] = (),
) -> bytes:
    """The whole UTF-8 page for ``collection``.

    ``script_name`` is the decoded mount prefix (WSGI SCRIPT_NAME), so that
    breadcrumb links still work when the app is mounted below the root.
    """
    title = escape(f"zarrdav: {collection.path}")
    lines = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{title}</title>",
        f"<style>\n{_STYLE}\n</style>",
        "</head>",
        "<body>",
        f"<h1>{_breadcrumbs(collection.path, script_name)}</h1>",
    ]
    if collection.links:
        lines.append('<ul class="links">')
        lines.extend(
            f'<li>{escape(label)}: <a href="{escape(url)}">{escape(url)}</a></li>'
            for label, url in collection.links
        )
        lines.append("</ul>")
    lines.extend(f'<p class="note">{escape(note)}</p>' for note in notes)
    lines += [
        '<table id="listing">',
        "<thead>",
        "<tr><th>Name</th><th>Type</th><th>Size</th><th>Created</th><th>Modified</th></tr>",
        "</thead>",
        "<tbody>",
    ]
    if collection.path != "/":
        lines.append(
            '<tr class="parent"><td><a href="../">../</a></td>'
            "<td></td><td></td><td></td><td></td></tr>"
        )
    lines.extend(_row(child) for child in _ordered(collection, children))
    lines += ["</tbody>", "</table>", "</body>", "</html>", ""]
    return "\n".join(lines).encode("utf-8")


def _ordered(collection: Collection, children: Sequence[Resource]) -> list[Resource]:
    """By name; a Zarr's versions page newest first, as a history reads."""
    if collection.newest_first:
        return sorted(children, key=lambda child: (_utc(child.modified), child.name), reverse=True)
    return sorted(children, key=lambda child: child.name)


def _utc(value: datetime | None) -> datetime:
    """Comparable whatever it is: none is oldest, naive is UTC (as ``_time`` shows it)."""
    if value is None:
        return _EPOCH
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _breadcrumbs(path: str, script_name: str) -> str:
    """Ancestors as absolute links, the folder itself as plain text.

    The root's href is "/." rather than "/" when unmounted: fsspec takes a
    bare "/" as a relative link to the page itself.
    """
    segments = [segment for segment in path.split("/") if segment]
    if not segments:
        return "zarrdav"
    root = quote(f"{script_name}/", safe="/" + _SEGMENT_SAFE, errors="surrogatepass")
    crumbs = [f'<a href="{escape(root if root != "/" else "/.")}">zarrdav</a>']
    for depth, segment in enumerate(segments[:-1], start=1):
        href = quote(f"{script_name}/{'/'.join(segments[:depth])}/", safe="/" + _SEGMENT_SAFE, errors="surrogatepass")
        crumbs.append(f'<a href="{escape(href)}">{escape(segment)}</a>')
    crumbs.append(escape(segments[-1]))
    return " / ".join(crumbs)


def _row(child: Resource) -> str:
    """One table row; the name links to the bare relative name only."""
    suffix = "/" if child.is_collection else ""
    name = child.name
    href = escape(quote(name, safe=_SEGMENT_SAFE, errors="surrogatepass") + suffix)
    link = f'<a href="{href}">{escape(name + suffix)}</a>'
    kind = escape(child.kind)
    if child.details:
        kind += f' <span class="details">({escape(child.details)})</span>'
    if child.size is None:
        size = f'<td class="size">{_DASH}</td>'
    else:
        size = f'<td class="size" title="{child.size} bytes">{human_size(child.size)}</td>'
    return (
        f"<tr><td>{link}</td><td>{kind}</td>{size}"
        f'<td class="time">{_time(child.created)}</td>'
        f'<td class="time">{_time(child.modified)}</td></tr>'
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
