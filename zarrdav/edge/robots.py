"""``/robots.txt``: crawlers are told to stay out, by default.

Everything zarrdav serves is a view of the archive and of S3: a crawler
walking it walks the archive API behind it (dandidav serves the same file
for that reason). ``robots = "allow"`` lets them in. It is answered before
the rate limits (``edge/operator.py``), so a crawler that is being held
back can still read it.
"""

from __future__ import annotations

from zarrdav.edge.answer import Answer
from zarrdav.edge.layers import Handler
from zarrdav.edge.request import Request

PATH = "/robots.txt"
_RULES = {"disallow": "User-agent: *\nDisallow: /", "allow": "User-agent: *\nDisallow:"}


def robots_page(policy: str) -> dict[str, Handler]:
    """``/robots.txt`` with ``policy``'s rules (``config.CHOICES``), by path
    (``operator.operator_pages`` answers it)."""
    rules = _RULES[policy]

    def robots(request: Request) -> Answer:
        return Answer.plain(200, rules, (("Cache-Control", "public, max-age=86400"),))

    return {PATH: robots}
