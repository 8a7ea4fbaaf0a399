"""The exceptions zarrdav raises, as one small hierarchy.

Each class carries the HTTP status it is answered with, so the edge needs no
table of its own: ``NotFound`` is 404, ``UpstreamTimeout`` 504, any other
``UpstreamError`` 502. A ``ManifestError`` met while serving is an upstream
fault too (a broken file in the manifest tree), so it is an ``UpstreamError``.
The ``RequestError`` branch is what the edge refuses about a request itself
(its size, framing or method) before any handler sees it.
"""

from __future__ import annotations


class ZarrdavError(Exception):
    """Base of every error zarrdav raises on purpose."""

    status = 500
    # Headers its answer carries besides the message (Allow for a 405).
    headers: tuple[tuple[str, str], ...] = ()


class RequestError(ZarrdavError):
    """The request itself cannot be answered as sent."""

    status = 400


class BadRequest(RequestError):
    """Malformed: framing, headers or a body zarrdav cannot read."""


class MethodNotAllowed(RequestError):
    """A method zarrdav knows and refuses: it is read-only."""

    status = 405

    def __init__(self, message: str, allow: str) -> None:
        super().__init__(message)
        self.headers = (("Allow", allow),)


class NotImplementedMethod(RequestError):
    """A method zarrdav does not know at all."""

    status = 501


class LengthRequired(RequestError):
    """A body was sent in a way zarrdav will not read."""

    status = 411


class ContentTooLarge(RequestError):
    """A request body beyond its limit."""

    status = 413


class URITooLong(RequestError):
    """A request path beyond its limit."""

    status = 414


class HeadersTooLarge(RequestError):
    """The request line and headers beyond their limit."""

    status = 431


class TooManyRequests(RequestError):
    """A client past its rate limit; ``Retry-After`` says when a token is back."""

    status = 429

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.headers = (("Retry-After", str(retry_after)),)


class NotFound(ZarrdavError):
    """Nothing exists at the requested place."""

    status = 404


class Unauthorized(ZarrdavError):
    """Embargoed, and the visitor brought no token: the answer asks for one."""

    status = 401
    headers = (("WWW-Authenticate", 'Basic realm="zarrdav"'),)


class Forbidden(ZarrdavError):
    """The upstream refused access: a token it refuses, or one that is not an owner's."""

    status = 403


class Unavailable(ZarrdavError):
    """It exists but cannot be served faithfully yet (a pinned manifest is missing),
    or not now (too many requests wait on upstreams); ``retry_after`` seconds
    is when to ask again."""

    status = 503

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.headers = (("Retry-After", str(max(0, retry_after))),)


class UpstreamError(ZarrdavError):
    """An upstream service answered with a fault, garbage, or not at all."""

    status = 502


class UpstreamTimeout(UpstreamError):
    """An upstream service did not answer in time."""

    status = 504


class UnsendableHeader(UpstreamError):
    """A value meant for a header cannot be sent (control characters, not Latin-1).

    Such values come from upstreams (an ETag, a URL); sending them would let
    the upstream write headers of its own into the answer.
    """

    def __init__(self, field: str) -> None:
        super().__init__(f"the value for the {field} header cannot be sent")
        self.field = field


class ManifestError(UpstreamError):
    """A manifest file is malformed; the message names the file and the fault."""

    def __init__(self, source: str, fault: str) -> None:
        super().__init__(f"{source}: {fault}")
        self.source = source
        self.fault = fault


class StartupError(ZarrdavError):
    """``zarrdav serve`` cannot start as configured: a port in use, a host that
    does not resolve, a manifest root that is not there. Never answered over
    HTTP; the command prints it as one line and exits with status 2."""
