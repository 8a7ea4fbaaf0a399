"""Request paths parsed once into typed routes.

Every path the server answers is one of these small records; anything else
is absent. Segments are checked here (no empty, ``.`` or ``..`` segments),
so nothing later has to think about escaping the hierarchy.
"""

from __future__ import annotations

from dataclasses import dataclass

from zarrdav.manifests.layout import is_checksum

ZARR_SUFFIX = ".zarr"


@dataclass(frozen=True, slots=True)
class RootRoute:
    """``/``"""


@dataclass(frozen=True, slots=True)
class ZarrsRoute:
    """``/zarrs/``"""


@dataclass(frozen=True, slots=True)
class ZarrPrefixRoute:
    """``/zarrs/<p1>/`` or ``/zarrs/<p1>/<p2>/``: ``prefix`` is ``p1`` or ``p1/p2``."""

    prefix: str


@dataclass(frozen=True, slots=True)
class ZarrVersionsRoute:
    """``/zarrs/<p1>/<p2>/<zarr_id>/``: one ``<checksum>.zarr/`` per manifest."""

    zarr_id: str


@dataclass(frozen=True, slots=True)
class ManifestRoute:
    """``/zarrs/<p1>/<p2>/<zarr_id>/<checksum>.zarr/<entry>``; ``entry`` is ``""`` at the Zarr's root."""

    zarr_id: str
    checksum: str
    entry: str


Route = RootRoute | ZarrsRoute | ZarrPrefixRoute | ZarrVersionsRoute | ManifestRoute


def parse_route(path: str) -> Route | None:
    """The route of a decoded absolute path (trailing slash ignored), or None."""
    if not path.startswith("/"):
        return None
    inner = path[1:].removesuffix("/")
    segments = inner.split("/") if inner else []
    if any(segment in ("", ".", "..") for segment in segments):
        return None
    if not segments:
        return RootRoute()
    if segments[0] == "zarrs":
        return _zarrs_route(segments[1:])
    return None


def _zarrs_route(segments: list[str]) -> Route | None:
    if not segments:
        return ZarrsRoute()
    if len(segments) <= 2:
        return ZarrPrefixRoute("/".join(segments))
    p1, p2, zarr_id, *rest = segments
    if zarr_id[:3] != p1 or zarr_id[3:6] != p2:
        return None
    if not rest:
        return ZarrVersionsRoute(zarr_id)
    checksum = rest[0].removesuffix(ZARR_SUFFIX)
    if not rest[0].endswith(ZARR_SUFFIX) or not is_checksum(checksum):
        return None
    return ManifestRoute(zarr_id, checksum, "/".join(rest[1:]))


def zarr_version_path(zarr_id: str, checksum: str) -> str:
    """The permanent path of a Zarr as of a checksum, ending in ``/``."""
    return f"/zarrs/{zarr_id[:3]}/{zarr_id[3:6]}/{zarr_id}/{checksum}{ZARR_SUFFIX}/"
