"""Request ids: the client's (or a proxy's) ``X-Request-ID`` when it is sane, else one made here.

The id is echoed on the answer, written on the request's log line and on
the log line of every upstream call the request makes (``calls.REQUEST_ID``,
a context variable: each worker thread has its own). An id is at most 128
characters of letters, digits and ``-._:@+=``: anything else from a client
could forge log fields or headers, and is replaced. A made id is this
process's random prefix and a counter: unique across replicas and restarts
without a random draw per request.
"""

from __future__ import annotations

import itertools
import re
import secrets

from zarrdav.edge.answer import Answer
from zarrdav.edge.layers import Handler
from zarrdav.edge.request import Request
from zarrdav.upstreams.calls import REQUEST_ID

HEADER = "X-Request-ID"
_SANE = re.compile(r"[A-Za-z0-9._:@+=-]{1,128}")


def request_ids(inner: Handler) -> Handler:
    """Give every request an id, and every answer its ``X-Request-ID``."""
    # create_app runs in each worker process: each has its own prefix.
    prefix = secrets.token_hex(6)
    counter = itertools.count(1)

    def identified(request: Request) -> Answer:
        given: str | None = request.environ.get("HTTP_X_REQUEST_ID")
        if given is None or not _SANE.fullmatch(given):
            given = f"{prefix}-{next(counter)}"
        token = REQUEST_ID.set(given)
        try:
            answer = inner(request)
        finally:
            REQUEST_ID.reset(token)  # nothing after the request sees its id (in-process callers)
        answer.headers.append((HEADER, given))
        return answer

    return identified
