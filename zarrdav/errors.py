"""The exceptions zarrdav raises, as one small hierarchy.

The web layer maps them to HTTP statuses: ``NotFound`` is 404, ``Forbidden``
403, ``Unavailable`` 503, ``UpstreamTimeout`` 504, any other ``UpstreamError`` 502; a
``ManifestError`` met while serving is an upstream fault too (a broken file
in the manifest tree), so it is an ``UpstreamError``.
"""

from __future__ import annotations


class ZarrdavError(Exception):
    """Base of every error zarrdav raises on purpose."""


class NotFound(ZarrdavError):
    """Nothing exists at the requested place."""


class Forbidden(ZarrdavError):
    """The upstream refused access (embargoed or not allowed)."""


class Unavailable(ZarrdavError):
    """It exists but cannot be served faithfully yet (a pinned manifest is missing)."""


class UpstreamError(ZarrdavError):
    """An upstream service answered with a fault, garbage, or not at all."""


class UpstreamTimeout(UpstreamError):
    """An upstream service did not answer in time."""


class ManifestError(UpstreamError):
    """A manifest file is malformed; the message names the file and the fault."""

    def __init__(self, source: str, fault: str) -> None:
        super().__init__(f"{source}: {fault}")
        self.source = source
        self.fault = fault
