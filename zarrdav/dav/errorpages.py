"""Error pages for browsers: the one-line reason, with breadcrumbs back to what exists.

A layer outside ``answer_safely``: it sees the plain one-line error answers
and, for a request whose ``Accept`` names HTML (a browser's), puts the same
line in a page whose breadcrumbs link every level up to the nearest one that
exists. Other clients (zarr-python, rclone, curl, WebDAV clients) keep the
plain text. Status and headers (``Allow``, ``Connection: close``) stay.

Only a 404 asks which ancestors exist, deepest first, through ``exists``;
under any other error the path is there (or the fault is an upstream's,
which asking again would only wait on), so every level is linked.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from zarrdav.dav.html import accepts_html, breadcrumbs, escape, page
from zarrdav.edge.answer import Answer, status_line
from zarrdav.edge.layers import Handler, Layer
from zarrdav.edge.request import Request

log = logging.getLogger("zarrdav")
# Ancestors asked about at most: deeper paths link none of the levels between.
_MOST_ASKED = 32
_REPLACED = frozenset(("Content-Type", "Content-Length"))


def html_errors(exists: Callable[[str], bool]) -> Layer:
    """``exists(path)``: whether a decoded absolute folder path (ending in "/") is there."""

    def layer(inner: Handler) -> Handler:
        def with_pages(request: Request) -> Answer:
            answer = inner(request)
            if answer.status < 400 or not isinstance(answer.body, bytes) or not accepts_html(request.accept):
                return answer
            if not any(name == "Content-Type" and value.startswith("text/plain") for name, value in answer.headers):
                return answer
            try:
                body = _page(request, answer, exists)
            except Exception:  # the plain answer is still a good answer
                log.exception("error page for %s %s", request.method, request.raw_path[:200])
                return answer
            kept = [(name, value) for name, value in answer.headers if name not in _REPLACED]
            answer.headers = [("Content-Type", "text/html; charset=utf-8"), ("Content-Length", str(len(body))),
                              ("Vary", "Accept"), *kept]
            answer.body = body
            return answer

        return with_pages

    return layer


def _page(request: Request, answer: Answer, exists: Callable[[str], bool]) -> bytes:
    assert isinstance(answer.body, bytes)
    reason = answer.body.decode("utf-8", "replace").strip()
    status = status_line(answer.status)
    path = request.path if request.path is not None and answer.status != 414 else "/"
    segments = [segment for segment in path.split("/") if segment]
    linked = len(segments)
    if answer.status == 404:
        linked = _existing_depth(segments, exists)
    parts = [f'<p class="error"><strong>{escape(status)}</strong>: {escape(reason)}</p>']
    return page(f"zarrdav: {status}", breadcrumbs(path, request.script_name, linked), parts)


def _existing_depth(segments: list[str], exists: Callable[[str], bool]) -> int:
    """How many leading segments name a folder that exists (the root always does)."""
    for depth in range(len(segments) - 1, max(0, len(segments) - 1 - _MOST_ASKED), -1):
        if exists("/" + "/".join(segments[:depth]) + "/"):
            return depth
    return 0
