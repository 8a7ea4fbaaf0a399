"""What ``zarrdav serve`` checks before it serves, so that a setting it cannot
serve with is one line and exit status 2 rather than a traceback, and fails
in the parent before any worker is forked.

Only local things are checked: an ``http(s)://`` or ``s3://`` manifest root
is first read on the first request, as a startup must not wait on the
network (nor fail while an upstream is briefly away).
"""

from __future__ import annotations

import os
import socket
import tempfile
from dataclasses import replace
from pathlib import Path

from botocore.utils import is_valid_endpoint_url, is_valid_ipv6_endpoint_url

from zarrdav.config import Settings
from zarrdav.errors import StartupError

_REMOTE_ROOTS = ("http://", "https://", "s3://")
_DEFAULT_INDEX_DIR = Settings().index_dir


def check_startup(settings: Settings) -> Settings:
    """Raise ``StartupError`` for the first setting zarrdav cannot serve with.

    Returns the settings to serve with: with several workers, port 0 is
    replaced by a free port, as every worker must bind the same one.
    """
    port = check_listen(settings.host, settings.port, reuse_port=False)
    check_manifest_root(settings.manifest_root)
    if settings.manifest_root.startswith("s3://") and settings.s3_endpoint_url:
        check_s3_endpoint(settings.s3_endpoint_url)
    if settings.index_dir and settings.index_dir != _DEFAULT_INDEX_DIR:
        # The default index is a convenience that switches itself off when
        # it cannot be written; one asked for by name must work.
        check_index_dir(Path(settings.index_dir).expanduser())
    if settings.workers > 1 and settings.port == 0:
        return replace(settings, port=port)
    return settings


def check_listen(host: str, port: int, reuse_port: bool) -> int:
    """The port a server could listen on at ``host:port`` now (a free one for 0).

    The probe binds as cheroot does (each address ``getaddrinfo`` gives, in
    turn). Before serving it goes without ``SO_REUSEPORT``, even for workers
    that will use it: with it, a second zarrdav started on a port another
    one holds would bind too, and the kernel would share the connections
    between the two.
    """
    if not 0 <= port <= 65535:
        raise StartupError(f"port {port} is out of range (0-65535)")
    try:
        addresses = socket.getaddrinfo(host, port, socket.AF_UNSPEC, socket.SOCK_STREAM, 0, socket.AI_PASSIVE)
    except socket.gaierror as error:
        raise StartupError(f"cannot resolve host {host!r}: {_lower(error.strerror)}") from error
    failure: OSError | None = None
    for family, kind, protocol, _, address in addresses:
        try:
            with socket.socket(family, kind, protocol) as probe:
                if port != 0:  # as cheroot: a port in TIME_WAIT is free to bind
                    probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                if reuse_port:
                    probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
                probe.bind(address)
                return int(probe.getsockname()[1])
        except OSError as error:
            failure = failure or error
    where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    reason = _lower(failure.strerror) if failure is not None and failure.strerror else "no address to bind"
    raise StartupError(f"cannot listen on {where}: {reason}") from failure


def check_manifest_root(root: str) -> None:
    """A local manifest root must be a directory zarrdav can list."""
    if root.startswith(_REMOTE_ROOTS):
        return
    path = Path(root)
    if not path.exists():
        raise StartupError(f"manifest root {root} does not exist")
    if not path.is_dir():
        raise StartupError(f"manifest root {root} is not a directory")
    try:
        with os.scandir(path) as entries:
            next(entries, None)
    except OSError as error:
        raise StartupError(f"manifest root {root} cannot be read: {_lower(error.strerror)}") from error


def check_s3_endpoint(url: str) -> None:
    """An endpoint botocore takes: it refuses others only when the first client is made."""
    if not (is_valid_endpoint_url(url) or is_valid_ipv6_endpoint_url(url)):
        raise StartupError(f"S3 endpoint {url!r} is not an http:// or https:// URL")


def check_index_dir(directory: Path) -> None:
    """``directory`` exists (created if need be) and takes files, as the index writes them."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise StartupError(f"index directory {directory} cannot be created: {_lower(error.strerror)}") from error
    try:
        # A file written and removed, not os.access: that ignores read-only
        # mounts and says yes to root.
        with tempfile.TemporaryFile(dir=directory):
            pass
    except OSError as error:
        raise StartupError(f"index directory {directory} is not writable: {_lower(error.strerror)}") from error


def _lower(reason: str | None) -> str:
    """``strerror`` as the rest of a sentence: "Address already in use" -> "address already in use"."""
    if not reason:
        return "unknown error"
    return reason[:1].lower() + reason[1:]
