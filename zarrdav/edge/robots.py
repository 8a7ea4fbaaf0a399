"""``/robots.txt``: crawlers are told to stay out, by default.

Everything zarrdav serves is a view of the archive and of S3: a crawler
walking it walks the archive API behind it (dandidav serves the same file
for that reason). ``robots = "allow"`` lets them in. It is answered before
the rate limits, so a crawler that is being held back can still read it.
"""

from __future__ import annotations

from zarrdav.edge.answer import Answer
from zarrdav.edge.layers import Handler, Layer
from zarrdav.edge.request import Request

PATH = "/robots.txt"
_RULES = {"disallow": "User-agent: *\nDisallow: /", "allow": "User-agent: *\nDisallow:"}


def robots(policy: str) -> Layer:
    """Answer GET and HEAD of ``/robots.txt`` with ``policy``'s rules (``config.CHOICES``)."""
    rules = _RULES[policy]

    def layer(inner: Handler) -> Handler:
        def with_robots(request: Request) -> Answer:
            if request.raw_path == PATH and request.method in ("GET", "HEAD"):
                return Answer.plain(200, rules, (("Cache-Control", "public, max-age=86400"),))
            return inner(request)

        return with_robots

    return layer
