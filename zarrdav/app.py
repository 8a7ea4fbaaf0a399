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
from zarrdav.dav.caching import CachePolicy
from zarrdav.dav.dandisets import DandisetViews
from zarrdav.dav.delivery import Delivery
from zarrdav.dav.errorpages import html_errors
from zarrdav.dav.handlers import Handlers
from zarrdav.dav.host import WsgiDavHost
from zarrdav.dav.provider import Provider
from zarrdav.dav.zarrs import ZarrViews
from zarrdav.edge.answer import Answer
from zarrdav.edge.compression import compression
from zarrdav.edge.health import Readiness, probes
from zarrdav.edge.hosts import allowed_hosts
from zarrdav.edge.identity import identify
from zarrdav.edge.layers import Handler, Layer, answer_safely, cors, dav_class, limits, request_log, stacked
from zarrdav.edge.metrics import Metrics, metrics_page
from zarrdav.edge.operator import operator_pages
from zarrdav.edge.ratelimit import Rate, RateLimits, rate_limit
from zarrdav.edge.request import Request
from zarrdav.edge.requestid import request_ids
from zarrdav.edge.requestlog import RequestLog
from zarrdav.edge.robots import robots_page
from zarrdav.edge.wsgi import Edge
from zarrdav.errors import ZarrdavError
from zarrdav.manifests.cache import ManifestCache
from zarrdav.manifests.index import ManifestIndex
from zarrdav.manifests.trees import open_tree
from zarrdav.upstreams.archive import ArchiveClient
from zarrdav.upstreams.flights import UpstreamGate
from zarrdav.upstreams.live import LiveZarrs
from zarrdav.upstreams.objects import ObjectReader
from zarrdav.upstreams.signing import Signer


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
    delivery = Delivery(
        settings.file_delivery,
        Signer(settings.zarr_base_url, region=settings.s3_sign_region, expires=settings.presign_seconds),
        ObjectReader(settings.upstream_timeout, gate, max_connections=settings.threads),
        proxy_hosts=redirect_hosts,
    )
    provider = Provider(zarrs, dandisets)
    caching = CachePolicy(settings.cache_max_age)
    handlers = Handlers(provider, settings.max_body_bytes, delivery, caching, settings.html_page_size)
    metrics = Metrics() if settings.metrics_address != "off" else None
    requests = RequestLog(json=settings.log_format == "json", observer=metrics.observe if metrics else None)
    readiness = Readiness({"manifest tree": lambda: tree.list_directory(""), "archive": archive.ping},
                          settings.ready_interval)
    rates = RateLimits(Rate(settings.rate_limit_burst, settings.rate_limit_per_second),
                       Rate(settings.archive_limit_burst, settings.archive_limit_per_second),
                       settings.rate_limit_clients, settings.trusted_proxies)
    if metrics is not None:
        metrics.read("cache", cache.stats)
        metrics.read("limits", lambda: {"clients": rates.remembered()})
    # Outermost first. A new layer goes where what it needs is already true:
    # after answer_safely it may raise ZarrdavErrors; after limits it sees
    # only requests of a sane size. The probes, metrics and robots.txt come
    # before the rate limits: never refused, never spending a client's tokens.
    layers: list[Layer] = [
        request_ids,
        request_log(requests),
        dav_class,
        cors(frozenset(settings.cors_credentialed_origins.split())),
        caching.layer,
        compression,
        html_errors(_exists(provider)),
        answer_safely,
        allowed_hosts(settings.allowed_hosts, settings.host),
        limits(settings.max_path_bytes),
        operator_pages({**probes(readiness), **robots_page(settings.robots),
                        **(metrics_page(metrics) if metrics is not None and not settings.metrics_address else {})}),
        *([rate_limit(rates)] if settings.rate_limit_burst or settings.archive_limit_burst else []),
        identify,
    ]
    return Edge(stacked(_dispatch(handlers, WsgiDavHost(handlers)), layers), requests, metrics)


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
