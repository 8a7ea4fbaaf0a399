"""PROPFIND: reading the request body and writing the multistatus answer.

The XML of requests is parsed with defusedxml (no entity expansion, no
external entities) after a size check. Answers are written as text: a
Depth 1 listing of a 10,000-entry chunk directory should cost microseconds
a row, not an element tree.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from functools import lru_cache
from urllib.parse import quote
from xml.etree.ElementTree import ParseError
from xml.sax.saxutils import escape

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

from zarrdav.dav.resources import Resource

MAX_BODY = 64 * 1024
DAV = "DAV:"


class BadPropfind(ValueError):
    """The PROPFIND body is not a request we can read (400)."""


@dataclass(frozen=True, slots=True)
class PropfindRequest:
    """``mode`` is ``allprop``, ``propname`` or ``prop``; names are ``{ns}local``."""

    mode: str
    names: tuple[str, ...] = ()


def _text(value: str | None) -> str | None:
    return None if value is None else escape(value)


# Entries of a listing share few timestamps (chunks are written in bursts):
# format each once.
@lru_cache(maxsize=4096)
def _http_date(moment: datetime | None) -> str | None:
    return None if moment is None else format_datetime(moment.astimezone(UTC), usegmt=True)


@lru_cache(maxsize=4096)
def _iso_date(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# Each live property: its name and how to render its value (None: not defined here).
PROPERTIES: dict[str, Callable[[Resource], str | None]] = {
    "creationdate": lambda r: _iso_date(r.created),
    "displayname": lambda r: _text(r.name),
    "getcontentlength": lambda r: None if r.size is None else str(r.size),
    "getcontenttype": lambda r: _text(r.content_type),
    "getetag": lambda r: None if r.etag is None else escape(f'"{r.etag}"'),
    "getlastmodified": lambda r: _http_date(r.modified),
    "resourcetype": lambda r: "<D:collection/>" if r.is_collection else "",
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


def href(script_name: str, resource: Resource) -> str:
    return escape(quote(f"{script_name}{resource.path}"))


def render_multistatus(
    request: PropfindRequest, resources: Iterable[Resource], script_name: str
) -> bytes:
    parts = ['<?xml version="1.0" encoding="utf-8"?>\n<D:multistatus xmlns:D="DAV:">']
    for resource in resources:
        parts.append(f"<D:response><D:href>{href(script_name, resource)}</D:href>")
        parts.append(_propstats(request, resource))
        parts.append("</D:response>")
    parts.append("</D:multistatus>\n")
    return "".join(parts).encode()


def _propstats(request: PropfindRequest, resource: Resource) -> str:
    found: list[str] = []
    missing: list[str] = []
    if request.mode == "propname":
        for name, render in PROPERTIES.items():
            if render(resource) is not None:
                found.append(f"<D:{name}/>")
    else:
        wanted = list(PROPERTIES) if request.mode == "allprop" else []
        for tag in request.names:
            namespace, _, local = tag[1:].partition("}") if tag.startswith("{") else ("", "", tag)
            if namespace == DAV and local in PROPERTIES:
                if local not in wanted:
                    wanted.append(local)
            else:
                missing.append(_empty_element(namespace, local))
        for name in wanted:
            value = PROPERTIES[name](resource)
            if value is not None:
                found.append(f"<D:{name}>{value}</D:{name}>" if value else f"<D:{name}/>")
            elif request.mode == "prop":
                missing.append(f"<D:{name}/>")
    out = []
    if found:
        out.append(_propstat(found, "200 OK"))
    if missing:
        out.append(_propstat(missing, "404 Not Found"))
    return "".join(out)


def _propstat(elements: list[str], status: str) -> str:
    return f"<D:propstat><D:prop>{''.join(elements)}</D:prop><D:status>HTTP/1.1 {status}</D:status></D:propstat>"


def _empty_element(namespace: str, local: str) -> str:
    if not namespace:
        return f'<{local} xmlns=""/>'
    return f'<X:{local} xmlns:X="{escape(namespace, {chr(34): "&quot;"})}"/>'
