"""PROPFIND: reading the request body and writing the multistatus answer.

The XML of requests is parsed with defusedxml (no entity expansion, no
external entities) after a size check. Answers are written as text: a
Depth 1 listing of a 10,000-entry chunk directory should cost microseconds
a row, not an element tree.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from xml.etree.ElementTree import ParseError
from xml.sax.saxutils import escape as _escape

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

from zarrdav.dav.formats import http_date, iso_date, quote_url, representable
from zarrdav.dav.resources import File, Resource

MAX_BODY = 64 * 1024
DAV = "DAV:"
_PROPSTAT = "<D:propstat><D:prop>"
_OK = "</D:prop><D:status>HTTP/1.1 200 OK</D:status></D:propstat>"
_NOT_FOUND = "</D:prop><D:status>HTTP/1.1 404 Not Found</D:status></D:propstat>"


class BadPropfind(ValueError):
    """The PROPFIND body is not a request we can read (400)."""


@dataclass(frozen=True, slots=True)
class PropfindRequest:
    """``mode`` is ``allprop``, ``propname`` or ``prop``; names are ``{ns}local``."""

    mode: str
    names: tuple[str, ...] = ()


def escape(value: str, entities: dict[str, str] | None = None) -> str:
    """XML text of ``value``: escaped, and well-formed whatever it holds."""
    return _escape(representable(value), entities or {"\r": "&#13;"})


def _text(value: str | None) -> str | None:
    return None if value is None else escape(value)


OWNCLOUD = "http://owncloud.org/ns"
ZARRDAV = "https://github.com/dandi/zarrdav/ns"
# The prefixes answers use, declared once on the multistatus element.
_PREFIXES = {DAV: "D", OWNCLOUD: "oc", ZARRDAV: "zd"}
_NAMESPACES = "".join(f' xmlns:{prefix}="{namespace}"' for namespace, prefix in _PREFIXES.items())

# How a property's value is rendered from a resource and the server's URL
# (scheme, host and the mount point, percent-encoded); None: the resource
# does not define it.
Render = Callable[[Resource, str], str | None]


def _checksums(resource: Resource, site: str) -> str | None:
    """ownCloud's checksums, which rclone reads (vendor owncloud) for md5sum and check."""
    md5 = resource.md5 if isinstance(resource, File) else None
    return None if md5 is None else f"<oc:checksum>MD5:{md5}</oc:checksum>"


def _canonical(resource: Resource, site: str) -> str | None:
    """The absolute permanent URL of what a draft/ or latest/ path shows, as on GET's Link.

    Text, not a ``D:href``: clients that gather every ``D:href`` of a
    multistatus as its members would take it for one.
    """
    canonical = resource.canonical
    return None if canonical is None else f"{site}{quote_url(canonical)}"


# Each live property, by {namespace}name: how to render its value. Folders
# have no getcontentlength (their GET is a page), as in dandidav and mod_dav.
PROPERTIES: dict[str, Render] = {
    f"{{{DAV}}}creationdate": lambda r, _: None if r.created is None else iso_date(r.created),
    f"{{{DAV}}}displayname": lambda r, _: escape(r.name),
    f"{{{DAV}}}getcontentlength": lambda r, _: None if r.size is None or r.is_collection else str(r.size),
    f"{{{DAV}}}getcontenttype": lambda r, _: _text(r.content_type),
    f"{{{DAV}}}getetag": lambda r, _: None if r.etag is None else escape(f'"{r.etag}"'),
    f"{{{DAV}}}getlastmodified": lambda r, _: None if r.modified is None else http_date(r.modified),
    f"{{{DAV}}}resourcetype": lambda r, _: "<D:collection/>" if r.is_collection else "",
    f"{{{OWNCLOUD}}}checksums": _checksums,
    f"{{{ZARRDAV}}}canonical": _canonical,
}


def parse_propfind(body: bytes) -> PropfindRequest:
    """Read a PROPFIND body; an empty one asks for all properties."""
    if not body.strip():
        return PropfindRequest("allprop")
    if len(body) > MAX_BODY:
        raise BadPropfind(f"request body over {MAX_BODY} bytes")
    try:
        root = fromstring(body)
    except (ParseError, DefusedXmlException) as error:
        raise BadPropfind(f"request body is not valid XML ({error})") from None
    if root.tag != f"{{{DAV}}}propfind":
        raise BadPropfind("request body is not a DAV:propfind element")
    modes = {child.tag.removeprefix(f"{{{DAV}}}"): child for child in root}
    chosen = [mode for mode in ("allprop", "propname", "prop") if mode in modes]
    if len(chosen) != 1:
        raise BadPropfind("propfind needs exactly one of allprop, propname, prop")
    mode = chosen[0]
    if mode == "prop":
        return PropfindRequest("prop", tuple(child.tag for child in modes["prop"]))
    if mode == "allprop" and "include" in modes:
        return PropfindRequest("allprop", tuple(child.tag for child in modes["include"]))
    return PropfindRequest(mode)


def render_multistatus(
    request: PropfindRequest, resources: Iterable[Resource], script_name: str, site: str = ""
) -> Iterator[bytes]:
    """One ``response`` per resource, every kind of resource alike, as chunks of about
    ``CHUNK_BYTES``.

    ``site`` (the server's absolute URL, ``zarrdav.dav.pages.site_url``) makes
    the absolute URLs some properties hold. The answer is produced as it is sent, so a listing of 100,000 entries never
    lies whole in memory. Only formatting happens here: whatever may fail
    (lookups, upstreams) must have happened when ``resources`` was made.
    """
    return _chunks(_Plan.of(request, site), _href_writer(script_name), iter(resources))


CHUNK_BYTES = 64 * 1024
_HEAD = f'<?xml version="1.0" encoding="utf-8"?>\n<D:multistatus{_NAMESPACES}>'
_TAIL = "</D:multistatus>\n"


def _chunks(plan: _Plan, href: Callable[[str], str], resources: Iterator[Resource]) -> Iterator[bytes]:
    parts = [_HEAD]
    size = len(_HEAD)
    response = plan.response
    for resource in resources:
        row = response(href(resource.path), resource)
        parts.append(row)
        size += len(row)
        if size >= CHUNK_BYTES:
            yield "".join(parts).encode()
            parts.clear()
            size = 0
    parts.append(_TAIL)
    yield "".join(parts).encode()


@dataclass(frozen=True, slots=True)
class _Plan:
    """What a request asks of every resource, decided once before the first row."""

    # (value, open tag, close tag, empty element) of each known property wanted, in answer order
    properties: tuple[tuple[Render, str, str, str], ...]
    unknown: str  # empty elements of the properties nobody defines: a 404 on every row
    report_undefined: bool  # prop: a named property a resource lacks is a 404 as well
    names_only: bool  # propname: the defined properties' names, no values
    site: str  # the server's URL, for properties holding absolute URLs

    @classmethod
    def of(cls, request: PropfindRequest, site: str = "") -> _Plan:
        """Known properties keep the order asked (after all of them, for allprop)."""
        wanted = [] if request.mode == "prop" else list(PROPERTIES)
        unknown = []
        for tag in request.names:
            if tag in PROPERTIES:
                if tag not in wanted:
                    wanted.append(tag)
            else:
                namespace, _, local = tag[1:].partition("}") if tag.startswith("{") else ("", "", tag)
                unknown.append(_empty_element(namespace, local))
        return cls(
            tuple((PROPERTIES[tag], *_tags(tag)) for tag in wanted),
            "".join(unknown),
            request.mode == "prop",
            request.mode == "propname",
            site,
        )

    def response(self, href: str, resource: Resource) -> str:
        """The resource's ``response``: found properties, then those not found."""
        found = []
        missing = self.unknown
        site = self.site
        for value_of, open_tag, close_tag, empty in self.properties:
            value = value_of(resource, site)
            if value is None:
                if self.report_undefined:
                    missing += empty
            elif value and not self.names_only:
                found.append(f"{open_tag}{value}{close_tag}")
            else:
                found.append(empty)
        ok = f"{_PROPSTAT}{''.join(found)}{_OK}" if found else ""
        not_found = f"{_PROPSTAT}{missing}{_NOT_FOUND}" if missing else ""
        return f"<D:response><D:href>{href}</D:href>{ok}{not_found}</D:response>"


def _href_writer(script_name: str) -> Callable[[str], str]:
    """``quote(script_name + path)``, which needs no XML escaping.

    The quoted folder is kept from one path to the next: a listing's members
    share it, and most of their names need no quoting.
    """
    folder: str | None = None
    quoted = ""

    def href(path: str) -> str:
        nonlocal folder, quoted
        parent, _, name = path.rpartition("/")
        if parent != folder:
            folder, quoted = parent, quote_url(f"{script_name}{parent}/")
        return f"{quoted}{quote_url(name)}"

    return href


def _tags(tag: str) -> tuple[str, str, str]:
    """The open, close and empty elements of a known ``{namespace}name``."""
    namespace, _, local = tag[1:].partition("}")
    name = f"{_PREFIXES[namespace]}:{local}"
    return f"<{name}>", f"</{name}>", f"<{name}/>"


def _empty_element(namespace: str, local: str) -> str:
    if not namespace:
        return f'<{local} xmlns=""/>'
    return f'<X:{local} xmlns:X="{escape(namespace, {chr(34): "&quot;"})}"/>'
