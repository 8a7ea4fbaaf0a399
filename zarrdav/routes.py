"""Request paths parsed once into typed routes.

Every path the server answers is one of these small records; anything else
is absent. Segments are checked here (no empty, ``.`` or ``..`` segments, no
NUL), so nothing later has to think about escaping the hierarchy. Routes
are never changed once made, but they are not frozen dataclasses: every
chunk GET makes one, and a frozen one costs three times as much to make.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from zarrdav.manifests.layout import is_checksum

ZARR_SUFFIX = ".zarr"


@dataclass(slots=True)
class RootRoute:
    """``/``"""


@dataclass(slots=True)
class ZarrsRoute:
    """``/zarrs/``"""


@dataclass(slots=True)
class ZarrPrefixRoute:
    """``/zarrs/<p1>/`` or ``/zarrs/<p1>/<p2>/``: ``prefix`` is ``p1`` or ``p1/p2``."""

    prefix: str


@dataclass(slots=True)
class ZarrVersionsRoute:
    """``/zarrs/<p1>/<p2>/<zarr_id>/``: one ``<checksum>.zarr/`` per manifest."""

    zarr_id: str


@dataclass(slots=True)
class ManifestRoute:
    """``/zarrs/<p1>/<p2>/<zarr_id>/<checksum>.zarr/<entry>``; ``entry`` is ``""`` at the Zarr's root."""

    zarr_id: str
    checksum: str
    entry: str


@dataclass(slots=True)
class DandisetsRoute:
    """``/dandisets/``"""


@dataclass(slots=True)
class DandisetRoute:
    """``/dandisets/<id>/``: ``draft/``, and ``latest/`` + ``releases/`` once published."""

    dandiset_id: str


@dataclass(slots=True)
class ReleasesRoute:
    """``/dandisets/<id>/releases/``"""

    dandiset_id: str


@dataclass(slots=True)
class VersionRoute:
    """``/dandisets/<id>/{draft,latest,releases/<v>}/<path>``; ``path`` is ``""`` at the root.

    ``version`` is ``draft``, ``latest`` or a published version id;
    ``version_path`` is how the URL spells it (``releases/<v>`` for releases).
    """

    dandiset_id: str
    version: str
    path: str

    @property
    def version_path(self) -> str:
        return self.version if self.version in ("draft", "latest") else f"releases/{self.version}"

    @property
    def root(self) -> str:
        return f"/dandisets/{self.dandiset_id}/{self.version_path}/"


Route = (
    RootRoute
    | ZarrsRoute
    | ZarrPrefixRoute
    | ZarrVersionsRoute
    | ManifestRoute
    | DandisetsRoute
    | DandisetRoute
    | ReleasesRoute
    | VersionRoute
)

_BAD_SEGMENTS = frozenset(("", ".", ".."))
_DANDISET_ID = re.compile(r"[0-9]{6,}")
_RELEASE = re.compile(r"[0-9]+\.[0-9]{6}\.[0-9]{4}")


def parse_route(path: str) -> Route | None:
    """The route of a decoded absolute path (trailing slash ignored), or None."""
    if not path.startswith("/"):
        return None  # not absolute
    segments = path.split("/")
    del segments[0]
    if not segments[-1]:
        del segments[-1]
    if "\0" in path or not _BAD_SEGMENTS.isdisjoint(segments):
        return None
    if not segments:
        return RootRoute()
    # Split once, and looked at in place: every Zarr chunk GET comes here.
    if segments[0] == "zarrs":
        return _zarrs_route(segments)
    if segments[0] == "dandisets":
        return _dandisets_route(segments[1:])
    return None


def _dandisets_route(segments: list[str]) -> Route | None:
    if not segments:
        return DandisetsRoute()
    dandiset_id, *rest = segments
    if not _DANDISET_ID.fullmatch(dandiset_id):
        return None
    if not rest:
        return DandisetRoute(dandiset_id)
    if rest[0] in ("draft", "latest"):
        return VersionRoute(dandiset_id, rest[0], "/".join(rest[1:]))
    if rest[0] != "releases":
        return None
    if len(rest) == 1:
        return ReleasesRoute(dandiset_id)
    if not _RELEASE.fullmatch(rest[1]):
        return None
    return VersionRoute(dandiset_id, rest[1], "/".join(rest[2:]))


def _zarrs_route(segments: list[str]) -> Route | None:
    """``segments`` start with ``zarrs``."""
    count = len(segments)
    if count == 1:
        return ZarrsRoute()
    if count <= 3:
        return ZarrPrefixRoute("/".join(segments[1:]))
    zarr_id = segments[3]
    if zarr_id[:3] != segments[1] or zarr_id[3:6] != segments[2]:
        return None
    if count == 4:
        return ZarrVersionsRoute(zarr_id)
    checksum = _checksum_of(segments[4])
    if checksum is None:
        return None
    return ManifestRoute(zarr_id, checksum, "/".join(segments[5:]))


# Every chunk GET of a Zarr names the same version: checking it once is enough.
@lru_cache(maxsize=4096)
def _checksum_of(segment: str) -> str | None:
    """The checksum a ``<checksum>.zarr`` segment names, or None."""
    checksum = segment.removesuffix(ZARR_SUFFIX)
    return checksum if checksum != segment and is_checksum(checksum) else None


def zarr_version_path(zarr_id: str, checksum: str) -> str:
    """The permanent path of a Zarr as of a checksum, ending in ``/``."""
    return f"/zarrs/{zarr_id[:3]}/{zarr_id[3:6]}/{zarr_id}/{checksum}{ZARR_SUFFIX}/"
