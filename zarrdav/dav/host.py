"""WsgiDAV, hosting zarrdav's provider for the WebDAV methods.

WsgiDAV frames PROPFIND and OPTIONS (provider resolution, ``OPTIONS *``)
and hands each request to the provider's ``custom_request_handler``, which
answers through zarrdav's handlers with the ``Request`` the edge parsed.
Their ``Answer`` travels back beside WsgiDAV rather than through its WSGI
answer, so every layer around the host sees the same object for every
method. GET and HEAD, nearly all traffic, do not come here: WsgiDAV's frame
adds nothing to a redirect and cost a third of its time (bench/README.md).
Everything in WsgiDAV's own stack that does nothing for a read-only,
anonymous server (its authenticator, error printer, lock and property
managers, directory browser) is left out.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from wsgidav.dav_provider import DAVProvider
from wsgidav.request_resolver import RequestResolver
from wsgidav.wsgidav_app import WsgiDAVApp

from zarrdav.edge.answer import Answer
from zarrdav.edge.layers import Handler
from zarrdav.edge.request import Request

StartResponse = Callable[..., Any]
_REQUEST = "zarrdav.request"
_OUTCOME = "zarrdav.outcome"


class _Provider(DAVProvider):  # type: ignore[misc]
    """Hands every request to zarrdav's handlers."""

    def __init__(self, handle: Handler) -> None:
        super().__init__()
        self._handle = handle

    def is_readonly(self) -> bool:
        return True

    def get_resource_inst(self, path: str, environ: dict[str, Any]) -> None:
        return None  # never consulted: custom_request_handler answers every method

    def custom_request_handler(
        self, environ: dict[str, Any], start_response: StartResponse, default_handler: Any
    ) -> Iterable[bytes]:
        try:
            environ[_OUTCOME] = self._handle(environ[_REQUEST])
        except Exception as error:  # raised again outside WsgiDAV, for the layers
            environ[_OUTCOME] = error
        start_response("200 OK", [])
        return ()


class WsgiDavHost:
    """A handler answering through WsgiDAV and, inside it, ``handle``."""

    def __init__(self, handle: Handler) -> None:
        self._dav = WsgiDAVApp(
            {
                "provider_mapping": {"/": _Provider(handle)},
                "http_authenticator": {"domain_controller": None},
                "lock_storage": False,
                "property_manager": None,
                "dir_browser": {"enable": False},
                "middleware_stack": [RequestResolver],
                # The edge decodes PATH_INFO from its WSGI Latin-1 form itself.
                "hotfixes": {"re_encode_path_info": False},
                "verbose": 0,
                "logging": {"enable_loggers": []},
            }
        )

    def __call__(self, request: Request) -> Answer:
        environ = request.environ
        environ[_REQUEST] = request
        started: list[Any] = []

        def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
            started[:] = (status, headers)

        body = b"".join(self._dav(environ, start_response))
        outcome = environ.pop(_OUTCOME, None)
        if isinstance(outcome, Answer):
            return outcome
        if isinstance(outcome, BaseException):
            raise outcome
        # WsgiDAV answered by itself (OPTIONS *). Its DAV header is left to
        # the layer that gives every answer zarrdav's.
        status, headers = started
        return Answer(int(status[:3]), [(k, v) for k, v in headers if k.lower() not in ("date", "dav")], body)
