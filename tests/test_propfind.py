"""Multistatus rows without a server: the shortcuts listings take must not show.

Hrefs skip quoting names made of characters ``quote`` keeps, and reuse a
folder's quoted form; chunk keys get their content type from their
extension alone. Either way the answer must be what the plain calls give.
"""

from __future__ import annotations

import mimetypes
import xml.etree.ElementTree as ET
from urllib.parse import quote

import pytest

from zarrdav.dav.formats import quote_url
from zarrdav.dav.propfind import PropfindRequest, render_multistatus
from zarrdav.dav.resources import Collection, File, Resource, guess_content_type

# Safe as they are, then each needing quoting for a different reason.
NAMES = ["0.1.2", "17", "~a_b-c.", "a b", "100%", "\u00e9t\u00e9", "a&b<c>'\"", "x:y", "#?", "+=;,@"]


@pytest.mark.parametrize("script_name", ["", "/mount", "/my mount/\u00fc"])
def test_hrefs_are_the_quoted_paths(script_name: str) -> None:
    resources: list[Resource] = [Collection("/", "Directory"), Collection("/a b/", "Directory")]
    for folder in ("/a b/", "/a b/0.1.2/", "/a b/"):  # a folder, its subfolder, and back
        resources += [File(f"{folder}{name}", "File") for name in NAMES]
        resources += [Collection(f"{folder}{name}/", "Directory") for name in NAMES]
    request = PropfindRequest("prop", ("{DAV:}displayname",))
    answer = b"".join(render_multistatus(request, resources, script_name))
    hrefs = [element.text for element in ET.fromstring(answer).iter("{DAV:}href")]
    assert hrefs == [quote(f"{script_name}{resource.path}") for resource in resources]


@pytest.mark.parametrize(
    "name",
    ["0", "17", "0.1.2", "4.5.123", "1.", "1..2", ".5", "..5", "0.mp3", "c.0.0", "a.nwb", "x"],
)
def test_content_types_are_what_mimetypes_guesses(name: str) -> None:
    expected = mimetypes.guess_type(name, strict=False)[0] or "application/octet-stream"
    assert guess_content_type(name) == expected


@pytest.mark.parametrize("safe", ["/", ""])
@pytest.mark.parametrize("text", [*NAMES, "a/b c/d", "3/0.1", "", "v1.Abc_d-e~F", "a+b/c=="])
def test_quote_url_is_quote(text: str, safe: str) -> None:
    assert quote_url(text, safe) == quote(text, safe)


# Names a manifest or the archive may hold that XML 1.0 cannot: C0 controls,
# a lone surrogate, U+FFFE; and CR, which an XML parser would turn into LF.
UNREPRESENTABLE = ["a\x01b", "tab\there", "v\x0bt", "cr\rlf\n", "s\ud800x", "n\ufffe", "\x00"]


def test_every_name_gives_well_formed_xml_and_reachable_hrefs() -> None:
    resources: list[Resource] = [Collection("/z/", "Directory")]
    resources += [File(f"/z/{name}", "File", etag=f"e{name}") for name in UNREPRESENTABLE]
    answer = b"".join(render_multistatus(PropfindRequest("allprop"), resources, ""))
    root = ET.fromstring(answer)  # raises on anything not well-formed
    names = [element.text for element in root.iter("{DAV:}displayname")][1:]
    assert names == ["a\ufffdb", "tab\there", "v\ufffdt", "cr\rlf\n", "s\ufffdx", "n\ufffd", "\ufffd"]
    hrefs = [element.text for element in root.iter("{DAV:}href")][1:]
    assert hrefs == [quote(f"/z/{name}", errors="surrogatepass") for name in UNREPRESENTABLE]


def test_every_name_gives_an_html_page_of_representable_text() -> None:
    from zarrdav.dav.html import render_listing

    children: list[Resource] = [File(f"/z/{name}", "File") for name in UNREPRESENTABLE]
    page = render_listing(Collection("/z/", "Directory"), children).decode()
    assert not any(char in page for char in "\x00\x01\x0b\ud800\ufffe")
    for name in UNREPRESENTABLE:
        assert f'href="{quote(name, safe="", errors="surrogatepass")}"' in page.replace("&amp;", "&")
