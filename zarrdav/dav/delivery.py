"""How a file's bytes reach the client: a redirect to S3, or the bytes streamed through zarrdav.

``file_delivery`` decides: ``redirect`` (the client fetches from S3 itself;
zarrdav serves no bytes), ``proxy`` (zarrdav fetches and streams them), or
``auto``: proxy for the clients known not to follow a redirect to another
host (``NO_CROSS_HOST_REDIRECTS``, matched in the User-Agent), redirect for
all others. Only locations on the Zarr base's host or ``redirect_hosts``
are proxied; anything else (an archive's ``/download/`` URL) is redirected.

A file marked ``private`` (its object is private in the bucket) is read
through a URL presigned for exactly its key and version and the request's
method, whether the client gets it as a redirect or zarrdav fetches it;
its answer is ``Cache-Control: private, no-store`` (``dav/caching.py``), which also keeps the
CORS layer from offering it to every origin.
"""

from __future__ import annotations

from functools import lru_cache
from urllib.parse import urlsplit

from zarrdav.dav.resources import File
from zarrdav.edge.answer import Answer, Headers
from zarrdav.edge.request import Request
from zarrdav.upstreams.objects import ObjectReader
from zarrdav.upstreams.signing import Signer

# User-Agent fragments of WebDAV clients that do not follow a redirect to
# another host (README, "Getting the bytes"): neon, the library of cadaver,
# davfs2 and WinSCP, follows no redirect unless its program does (davfs2
# only with follow_redirect 1); Windows' WebDAV redirector and its older
# Web Folders.
NO_CROSS_HOST_REDIRECTS = (
    "neon/",
    "Microsoft-WebDAV-MiniRedir/",
    "Microsoft Data Access Internet Publishing Provider",
)
# The client's headers that shape what S3 sends back.
_FORWARDED = (
    ("HTTP_RANGE", "Range"),
    ("HTTP_IF_RANGE", "If-Range"),
    ("HTTP_IF_NONE_MATCH", "If-None-Match"),
    ("HTTP_IF_MODIFIED_SINCE", "If-Modified-Since"),
)


class Delivery:
    """The answer to GET or HEAD of a file that lives on S3."""

    def __init__(self, mode: str, signer: Signer, reader: ObjectReader, proxy_hosts: frozenset[str]) -> None:
        self._mode = mode
        self._signer = signer
        self._reader = reader
        self._proxy_hosts = proxy_hosts

    def answer(self, request: Request, file: File, validators: Headers) -> Answer:
        location = file.location
        assert location is not None
        if self._proxies(request) and urlsplit(location).netloc in self._proxy_hosts:
            return self._proxied(request, file, location, validators)
        if file.private:
            return Answer.redirect(307, self._signer.sign(location, request.method), validators)
        return Answer.redirect(307, location, validators)

    def _proxies(self, request: Request) -> bool:
        if self._mode == "auto":
            return not follows_redirects(request.environ.get("HTTP_USER_AGENT", ""))
        return self._mode == "proxy"

    def _proxied(self, request: Request, file: File, location: str, validators: Headers) -> Answer:
        url = self._signer.sign(location, request.method) if file.private else location
        headers = {}
        for key, name in _FORWARDED:
            value = request.environ.get(key)
            # Anything else S3 could not read, or would read as headers of its own.
            if value and value.isascii() and value.isprintable():
                headers[name] = value
        fetched = self._reader.fetch(request.method, url, headers, urlsplit(location).path)
        # Whether the bytes may be shared is zarrdav's to say (dav/caching.py), not the bucket's.
        theirs = [header for header in fetched.headers if header[0] != "Cache-Control"]
        sent = {name for name, _ in theirs}
        ours = [header for header in validators if header[0] not in sent]
        return Answer(fetched.status, [*theirs, *ours], fetched.body)


@lru_cache(maxsize=256)
def follows_redirects(user_agent: str) -> bool:
    """Whether the client is expected to follow a redirect to S3 (False for those listed)."""
    return not any(fragment in user_agent for fragment in NO_CROSS_HOST_REDIRECTS)
