"""The operator's pages: probes, metrics and robots.txt, answered before the rate limits.

They are not part of the WebDAV hierarchy (routes name no ``/-/`` path, and
PROPFIND of one finds nothing): only GET and HEAD of their exact paths are
answered here, everything else goes on to the handlers. One layer with one
dictionary lookup for all of them: every chunk GET passes it.
"""

from __future__ import annotations

from zarrdav.edge.answer import Answer
from zarrdav.edge.layers import Handler, Layer
from zarrdav.edge.request import Request


def operator_pages(pages: dict[str, Handler]) -> Layer:
    """Answer GET and HEAD of the paths in ``pages`` with their handlers."""

    def layer(inner: Handler) -> Handler:
        def paged(request: Request) -> Answer:
            page = pages.get(request.raw_path)
            if page is None or request.method not in ("GET", "HEAD"):
                return inner(request)
            return page(request)

        return paged

    return layer
