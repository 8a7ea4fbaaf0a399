"""A folder's page: what it is and how to use it, above its listing, one page of it at a time.

The landing page says what zarrdav serves and how to mount it; a Zarr's page
gives its absolute permanent URL and snippets that open it; a version's page
its title, citation and DOI, and on ``latest/`` which release it is.

Absolute URLs are this server's as the client reached it: the request's
scheme and ``Host`` and the mount prefix. ``Host`` is the client's word, so
it is only ever shown (checked to look like a host, then escaped), never
used for a redirect or a link's target; links stay absolute paths.

Paging: a browser (its ``Accept`` names HTML) gets ``page_size`` rows per
page, ``?page=N`` for the others. Clients that do not ask for HTML (fsspec,
which zarr-python lists folders with, curl, wget) and never send ``page``
get every row on one page, so a listing stays complete for them; PROPFIND
is always complete. ``?q=`` filters rows by name or title (the filter box
narrows the page as one types, and asks the server with ``q`` without script).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from math import ceil
from urllib.parse import parse_qs, quote

from zarrdav.dav.formats import quote_url
from zarrdav.dav.html import Paging, accepts_html, escape, ordered, render_listing, url_text
from zarrdav.dav.resources import Collection, Resource
from zarrdav.edge.request import Request
from zarrdav.errors import BadRequest, NotFound
from zarrdav.routes import DandisetsRoute, ManifestRoute, RootRoute, Route, VersionRoute, parse_route

# A name, IPv4 or bracketed IPv6 address, and an optional port: what a Host may be to be shown.
_HOST = re.compile(r"(?:[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?|\[[0-9A-Fa-f:.]{2,45}\])(?::[0-9]{1,5})?")
_DOI = re.compile(r"10\.[0-9]{4,9}/[!-~]{1,200}")
_PERMANENT = "Permanent link"
_MAX_PAGE_DIGITS = 9


def site_url(request: Request) -> str:
    """This server's absolute URL as the client reached it, mount prefix included, no trailing slash."""
    host = request.host
    if not _HOST.fullmatch(host):
        host = request.server_address
    return f"{request.scheme}://{host}{quote_url(request.script_name)}"


def collection_page(
    collection: Collection, children: Sequence[Resource], request: Request, page_size: int,
    notes: Sequence[str] = (),
) -> bytes:
    """The page for ``collection``: its sections, then the page of its rows the request asks for."""
    query = parse_qs(request.query, keep_blank_values=True)
    wanted = query.get("page", [None])[-1]
    text = query.get("q", [""])[-1].strip()
    rows = ordered(collection, children)
    if text:
        rows = [row for row in rows if _matches(row, text.casefold())]
    count = max(1, ceil(len(rows) / page_size)) if wanted is not None or accepts_html(request.accept) else 1
    number = _page_number(wanted, count)
    base = quote_url(f"{request.script_name}{collection.path.rstrip('/')}")
    paging = Paging(number, count, len(rows), base, quote(text, safe="") if text else "")
    if count > 1:
        rows = rows[(number - 1) * page_size : number * page_size]
    site = site_url(request)
    route = parse_route(collection.path)
    sections: list[str] = []
    if isinstance(route, RootRoute):
        sections += _landing(site)
    if isinstance(route, VersionRoute):
        sections += _version(collection, route, request.script_name)
    if collection.zarr:
        sections += _zarr(collection, site, route)
    filter_box = isinstance(route, DandisetsRoute) or count > 1 or bool(text)
    return render_listing(
        collection, rows, request.script_name, notes, sections=sections, paging=paging,
        filter_text=text if filter_box else None,
    )


def _page_number(wanted: str | None, count: int) -> int:
    if wanted is None:
        return 1
    if not wanted.isdigit() or len(wanted) > _MAX_PAGE_DIGITS:
        raise BadRequest(f"page must be a page number, not {wanted[:20]!r}")
    number = int(wanted)
    if not 1 <= number <= count:
        raise NotFound(f"no page {number}: this listing has {count} page{'s' if count > 1 else ''}")
    return number


def _matches(row: Resource, text: str) -> bool:
    title = row.title if isinstance(row, Collection) else None
    return text in row.name.casefold() or (title is not None and text in title.casefold())


def _code(text: str) -> str:
    return f"<pre><code>{text}</code></pre>"


def _landing(site: str) -> list[str]:
    """What zarrdav is, where to look, how to mount it and open a Zarr, with this server's URL."""
    root = url_text(f"{site}/")
    zarr = url_text(f"{site}/zarrs/<p1>/<p2>/<zarr_id>/<checksum>.zarr")
    return [
        "<p>A read-only WebDAV server for <strong>versioned Zarrs</strong>. Every Zarr is served as of a "
        "Zarr manifest: each file redirects to the one S3 object version it had, so what you read is "
        "what was published, while the draft moves on.</p>",
        '<ul class="links">'
        '<li><a href="dandisets/">dandisets/</a>: every Dandiset of the archive, with its title; each '
        "has <code>draft/</code> and, once published, <code>latest/</code> and <code>releases/</code></li>"
        '<li><a href="zarrs/">zarrs/</a>: every Zarr with a manifest, by id; '
        "<code>&lt;checksum&gt;.zarr/</code> is one pinned version, its permanent URL</li></ul>",
        f"<p>This server: <code class=\"url\">{root}</code></p>",
        "<h2>Mount it</h2>",
        "<p>davfs2 (Linux), with <code>use_locks 0</code> and <code>follow_redirect 1</code> in its "
        "configuration (zarrdav's <code>config/davfs2.conf</code>):</p>",
        _code(f"sudo mount -t davfs -o ro,conf=$PWD/davfs2.conf {root} /mnt/zarrdav"),
        "<p>rclone:</p>",
        _code(f"rclone lsf --webdav-url {root} --webdav-vendor other :webdav:dandisets/\n"
              f"rclone mount --read-only --webdav-url {root} --webdav-vendor other :webdav: /mnt/zarrdav"),
        "<h2>Open a Zarr</h2>",
        "<p>Each Zarr's page shows its own URL and these snippets filled in. zarr-python "
        "(<code>pip install zarr fsspec aiohttp</code>):</p>",
        _code(f'import zarr\nz = zarr.open("{zarr}", mode="r")\nprint(z.info)'),
        "<p>xarray, for Zarrs with named dimensions (<code>pip install xarray zarr fsspec aiohttp</code>):</p>",
        _code(f'import xarray as xr\nds = xr.open_zarr("{zarr}")\nprint(ds)'),
    ]


def _version(collection: Collection, route: VersionRoute, script_name: str) -> list[str]:
    """Which version this is, a permanent link where ``latest/`` names a release; its citation and DOI."""
    parts: list[str] = []
    version = collection.version
    if route.version == "latest" and version is not None:
        twin = f"/dandisets/{route.dandiset_id}/releases/{version}/{route.path}"
        if collection.is_collection and not twin.endswith("/"):
            twin += "/"
        href = escape(quote_url(f"{script_name}{twin}"))
        parts.append(
            f"<p><code>latest/</code> follows the newest release: this is release "
            f"<strong>{escape(version)}</strong>. Permanent link: <a href=\"{href}\">{escape(twin)}</a></p>"
        )
    elif route.version == "draft" and not route.path:
        parts.append("<p>The draft: it changes as the Dandiset is edited. Published versions, which "
                     "never change, are under <code>releases/</code>.</p>")
    elif route.version == "draft" and collection.zarr:
        parts.append("<p>This is the Zarr as the <strong>draft</strong> has it now: the draft may move on, "
                     "its permanent URL below keeps this state.</p>")
    if route.path:
        return parts  # a Zarr asset inside the version: the version's own page cites it
    if collection.citation:
        parts += ["<h2>Cite</h2>", f"<p>{escape(collection.citation)}</p>"]
    if collection.doi and _DOI.fullmatch(collection.doi):
        doi = escape(collection.doi)
        parts.append(f'<p>DOI: <a href="https://doi.org/{escape(quote_url(collection.doi))}">{doi}</a></p>')
    return parts


def _zarr(collection: Collection, site: str, route: Route | None) -> list[str]:
    """The Zarr's absolute permanent URL and snippets that open it with it."""
    if isinstance(route, ManifestRoute):
        permanent: str | None = collection.path
    else:
        permanent = dict(collection.links).get(_PERMANENT)
    parts = ["<h2>Open this Zarr</h2>"]
    if permanent is None:
        target = collection.path
        parts.append('<p class="note">This Zarr has no manifest for its current state yet, so it has no '
                     "permanent URL: what this URL serves may change.</p>")
    else:
        target = permanent
        state = f" as of checksum <code>{escape(collection.etag)}</code>" if collection.etag else ""
        parts.append(f"<p>Permanent URL: this state{state}, for ever:</p>")
    url = f"{site}{quote_url(target.rstrip('/'))}"
    shown = url_text(url)
    parts.append(f'<p><code class="url" id="permanent-url">{shown}</code></p>')
    name = escape(collection.name)
    parts += [
        "<p>zarr-python (<code>pip install zarr fsspec aiohttp</code>):</p>",
        _code(f'import zarr\nz = zarr.open("{shown}", mode="r")\nprint(z.info)'),
        "<p>xarray, if its arrays name their dimensions (<code>pip install xarray zarr fsspec aiohttp</code>):</p>",
        _code(f'import xarray as xr\nds = xr.open_zarr("{shown}")\nprint(ds)'),
        "<p>ome-zarr, for an OME-Zarr image (<code>pip install ome-zarr</code>):</p>",
        _code(f"ome_zarr info {shown}"),
        "<p>rclone, a copy of every file:</p>",
        _code(f"rclone copy --webdav-url {shown} --webdav-vendor other :webdav: {name}"),
    ]
    return parts
