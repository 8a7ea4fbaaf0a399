"""The WSGI application at the edge: environ in, ``Request`` through the
layers, ``Answer`` out."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from zarrdav.edge.answer import status_line
from zarrdav.edge.layers import Handler
from zarrdav.edge.metrics import Metrics
from zarrdav.edge.request import Request
from zarrdav.edge.requestlog import RequestLog

StartResponse = Callable[..., Any]
_NO_BODY = (b"",)


class Edge:
    """Serves ``handle`` (the layers around the handlers) to a WSGI server.

    ``close`` writes the request log lines still pending. ``metrics`` is
    None when they are off.
    """

    __slots__ = ("_handle", "requests", "metrics")

    def __init__(self, handle: Handler, requests: RequestLog, metrics: Metrics | None = None) -> None:
        self._handle = handle
        self.requests = requests
        self.metrics = metrics

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        request = Request(environ)
        answer = self._handle(request)
        start_response(status_line(answer.status), answer.headers)
        body = answer.body
        # HEAD gets GET's headers and never a body: one would be read as the
        # next answer on a kept-alive connection.
        if request.method == "HEAD":
            return _NO_BODY
        return (body,) if isinstance(body, bytes) else body

    def close(self) -> None:
        self.requests.flush()
        if self.metrics is not None:
            self.metrics.close()
