"""The application: zarrdav's handlers behind the layers of the edge.

``create_app`` declares, in one place, the layers every request passes (GET
and HEAD included) and what answers inside them: WsgiDAV hosting the
provider for PROPFIND and OPTIONS, the same handlers directly for the rest.
ARCHITECTURE.md walks one request through it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

from zarrdav.config import Settings
from zarrdav.dav.dandisets import DandisetViews
from zarrdav.dav.errorpages import html_errors
from zarrdav.dav.handlers import Handlers
from zarrdav.dav.host import WsgiDavHost
from zarrdav.dav.provider import Provider
from zarrdav.dav.zarrs import ZarrViews
from zarrdav.edge.answer import Answer
from zarrdav.edge.layers import (
    Handler,
    Layer,
    answer_safely,
    cors,
    dav_class,
    limits,
    request_log,
    stacked,
)
from zarrdav.edge.request import Request
from zarrdav.edge.requestlog import RequestLog
from zarrdav.edge.wsgi import Edge
from zarrdav.errors import ZarrdavError
from zarrdav.manifests.cache import ManifestCache
from zarrdav.manifests.index import ManifestIndex
from zarrdav.manifests.trees import open_tree
from zarrdav.upstreams.archive import ArchiveClient
from zarrdav.upstreams.flights import UpstreamGate
from zarrdav.upstreams.live import LiveZarrs


def create_app(settings: Settings) -> Edge:
    """The whole WSGI application for ``settings``; ``close`` it when done serving."""
    tree = open_tree(
        settings.manifest_root,
        timeout=settings.upstream_timeout,
        max_manifest_bytes=settings.manifest_max_mb * 2**20,
        max_listing_bytes=settings.listing_max_mb * 2**20,
        max_connections=settings.threads,
        s3_endpoint_url=settings.s3_endpoint_url or None,
        s3_anonymous=settings.s3_anonymous,
    )
    gate = UpstreamGate(max(1, int(settings.threads * settings.upstream_share)))
    index_dir = Path(settings.index_dir).expanduser()
    index = (
        ManifestIndex(index_dir, settings.index_max_mb * 2**20, tree.root) if settings.index_dir else None
    )
    cache = ManifestCache(tree, settings.manifest_cache_mb * 2**20, settings.listing_ttl, index, gate)
    zarrs = ZarrViews(cache, settings.zarr_base_url)
    archive = ArchiveClient(
        settings.api_url,
        token=settings.api_token or None,
        page_size=settings.archive_page_size,
        timeout=settings.upstream_timeout,
        max_connections=settings.threads,
        max_page_bytes=settings.listing_max_mb * 2**20,
    )
    live = LiveZarrs(settings.zarr_base_url, timeout=settings.upstream_timeout)
    redirect_hosts = frozenset((urlsplit(settings.zarr_base_url).netloc, *settings.redirect_hosts.split()))
    dandisets = DandisetViews(
        archive, zarrs, live, ttl=settings.archive_ttl,
        blob_redirect=settings.blob_redirect, redirect_hosts=redirect_hosts,
        missing_manifest=settings.missing_manifest, retry_after=settings.missing_manifest_retry_after, gate=gate,
    )
    provider = Provider(zarrs, dandisets)
    handlers = Handlers(provider, settings.max_body_bytes, settings.html_page_size)
    requests = RequestLog()
    # Outermost first. A new layer goes where what it needs is already true:
    # after answer_safely it may raise ZarrdavErrors; after limits it sees
    # only requests of a sane size.
    layers: list[Layer] = [
        request_log(requests),
        dav_class,
        cors,
        html_errors(_exists(provider)),
        answer_safely,
        limits(settings.max_path_bytes),
    ]
    return Edge(stacked(_dispatch(handlers, WsgiDavHost(handlers)), layers), requests)


def _dispatch(handlers: Handler, dav: Handler) -> Handler:
    """PROPFIND and OPTIONS through WsgiDAV, everything else to the handlers.

    A path with dot segments stays out of WsgiDAV, which would resolve them
    (or answer a path above the root with a 400 whose body never comes):
    routes call such paths absent, for every method alike.
    """

    def dispatch(request: Request) -> Answer:
        if request.method in _DAV_METHODS and not _has_dot_segment(request.raw_path):
            return dav(request)
        return handlers(request)

    return dispatch


_DAV_METHODS = frozenset(("PROPFIND", "OPTIONS"))


def _exists(provider: Provider) -> Callable[[str], bool]:
    """Whether something is at a path, for error pages' breadcrumbs."""

    def exists(path: str) -> bool:
        try:
            provider.resource(path)
        except ZarrdavError:
            return False
        return True

    return exists


def _has_dot_segment(path: str) -> bool:
    return any(segment in (".", "..") for segment in path.split("/"))
