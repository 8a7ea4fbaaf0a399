"""The WSGI application: WsgiDAV hosting zarrdav's read-only provider.

WsgiDAV supplies the frame for PROPFIND and OPTIONS (request resolution,
anonymous access), answered by ``zarrdav.dav.handlers`` through the
provider's ``custom_request_handler``, because zarrdav refuses infinite
PROPFIND and writes its own multistatus answers. GET and HEAD (redirects and
HTML pages, nearly all traffic) and the refused write methods go to the same
handlers directly. Every answer is made whole before it is sent; one small
layer adds CORS headers and logs one line per request.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from urllib.parse import urlsplit

from wsgidav.dav_provider import DAVProvider
from wsgidav.http_authenticator import HTTPAuthenticator
from wsgidav.request_resolver import RequestResolver
from wsgidav.wsgidav_app import WsgiDAVApp

from zarrdav.upstreams.archive import ArchiveClient
from zarrdav.config import Settings
from zarrdav.dav.dandisets import DandisetViews
from zarrdav.dav.zarrs import ZarrViews
from zarrdav.upstreams.flights import UpstreamGate
from zarrdav.upstreams.live import LiveZarrs
from zarrdav.dav.handlers import Handlers
from zarrdav.dav.provider import Provider
from zarrdav.manifests.cache import ManifestCache
from zarrdav.manifests.index import ManifestIndex
from zarrdav.manifests.trees import open_tree
from zarrdav.edge.requestlog import Answer, Logged, RequestLog

StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


class _ReadOnlyProvider(DAVProvider):  # type: ignore[misc]
    """Hands every request to zarrdav's handlers."""

    def __init__(self, handlers: Handlers) -> None:
        super().__init__()
        self._handlers = handlers

    def is_readonly(self) -> bool:
        return True

    def get_resource_inst(self, path: str, environ: dict[str, Any]) -> None:
        return None  # never consulted: custom_request_handler answers every method

    def custom_request_handler(
        self, environ: dict[str, Any], start_response: StartResponse, default_handler: Any
    ) -> Iterable[bytes]:
        return self._handlers(environ, start_response)


def create_app(settings: Settings) -> Logged:
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
        missing_manifest=settings.missing_manifest, gate=gate,
    )
    handlers = Handlers(Provider(zarrs, dandisets))
    dav = WsgiDAVApp(
        {
            "provider_mapping": {"/": _ReadOnlyProvider(handlers)},
            "http_authenticator": {"domain_controller": None, "accept_basic": False,
                                   "accept_digest": False, "default_to_digest": False},
            "simple_dc": {"user_mapping": {"*": True}},
            "lock_storage": False,
            "property_manager": None,
            "dir_browser": {"enable": False},
            # No ErrorPrinter: an unexpected exception reaches requestlog.Logged (plain 500,
            # traceback in the log) instead of an HTML page quoting its repr.
            "middleware_stack": [HTTPAuthenticator, RequestResolver],
            # Handlers decode PATH_INFO from its WSGI latin-1 form themselves.
            "hotfixes": {"re_encode_path_info": False},
            "verbose": 0,
            "logging": {"enable_loggers": []},
        }
    )

    def answer(environ: dict[str, Any]) -> Answer:
        # GET and HEAD, nearly every request (each Zarr chunk), skip WsgiDAV's
        # layers: they add nothing to a redirect and cost a third of its time.
        # WsgiDAV would answer write methods with its own HTML page: ours is plain.
        # It would also resolve dot segments, and answer a path climbing above
        # the root with a 400 whose promised body never comes; routes call
        # such paths absent.
        method = environ["REQUEST_METHOD"]
        if method in _DAV_METHODS and not _has_dot_segment(environ):
            status, headers, body = _answer_of(dav, environ)
        else:
            status, headers, body = handlers.answer(environ)
        # Let browser-based Zarr viewers read through the server.
        return status, headers + (_CORS_OPTIONS if method == "OPTIONS" else _CORS), body

    return Logged(answer, RequestLog())


_DAV_METHODS = Handlers.METHODS - {"GET", "HEAD"}


def _has_dot_segment(environ: dict[str, Any]) -> bool:
    return any(segment in (".", "..") for segment in environ.get("PATH_INFO", "").split("/"))


def _answer_of(app: WSGIApp, environ: dict[str, Any]) -> Answer:
    """What a WSGI application answers, whole."""
    started: list[Any] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
        started[:] = (status, headers)

    body = list(app(environ, start_response))
    status, headers = started
    return status, headers, body


_CORS = [
    ("Access-Control-Allow-Origin", "*"),
    ("Access-Control-Expose-Headers", "ETag, Content-Length, Location, DAV"),
]
_CORS_OPTIONS = _CORS + [
    ("Access-Control-Allow-Methods", "GET, HEAD, OPTIONS, PROPFIND"),
    ("Access-Control-Allow-Headers", "Range, Depth, Content-Type, Authorization"),
]
