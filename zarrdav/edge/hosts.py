"""The Host names zarrdav answers to, against DNS rebinding.

A web page on a name its author controls can point that name at 127.0.0.1
and have the visitor's browser read a zarrdav on the visitor's own machine
as if it were that page's own site; the browser then sends the attacker's
name as ``Host``. Answering only known names ends that, as Django's
``ALLOWED_HOSTS`` and Vite's ``server.allowedHosts`` do.

By default (``allowed_hosts`` empty) zarrdav answers, as Vite does: any IP
address (an address cannot be rebound: a page reaching zarrdav by one is
already on zarrdav's origin), ``localhost`` and names under ``.localhost``,
the ``host`` it listens on, and, when it listens on every address, this
machine's host name. Behind any other name, list it in ``allowed_hosts``.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from functools import lru_cache

from zarrdav.edge.answer import Answer
from zarrdav.edge.layers import Handler, Layer
from zarrdav.edge.request import Request
from zarrdav.errors import BadRequest

_EVERY_ADDRESS = ("", "0.0.0.0", "::")


def allowed_hosts(setting: str, listen_host: str) -> Layer:
    """Refuse, with a 400, a request whose ``Host`` is not one ``setting`` allows."""
    allows = host_rule(setting, listen_host)

    def layer(inner: Handler) -> Handler:
        def checked(request: Request) -> Answer:
            host: str | None = request.environ.get("HTTP_HOST")
            # HTTP/1.0 may send none; framing already refuses HTTP/1.1 without one.
            if host is not None and not allows(host):
                raise BadRequest(f"Host {host[:100]!r} is not served here (see the allowed_hosts setting)")
            return inner(request)

        return checked

    return layer


def host_rule(setting: str, listen_host: str) -> Callable[[str], bool]:
    """Whether a ``Host`` value (``name`` or ``name:port``) is allowed by ``setting``."""
    entries = setting.split()
    names: set[str] = set()
    suffixes: list[str] = []
    with_port: set[tuple[str, str]] = set()
    addresses = not entries
    if not entries:
        names |= {"localhost", _split(listen_host)[0]}
        suffixes.append(".localhost")
        if listen_host.strip("[]") in _EVERY_ADDRESS:
            names.add(socket.gethostname().lower())
    for entry in entries:
        if entry.startswith("."):
            suffixes.append(entry.lower().rstrip("."))
            continue
        name, port = _split(entry)
        if port:
            with_port.add((name, port))
        else:
            names.add(name)
    anything = "*" in names

    @lru_cache(maxsize=1024)
    def allows(host: str) -> bool:
        if anything:
            return True
        name, port = _split(host)
        if not name or (port and not port.isdigit()):
            return False
        return (
            name in names
            or (name, port) in with_port
            or any(name.endswith(suffix) or name == suffix[1:] for suffix in suffixes)
            or (addresses and _is_address(name))
        )

    return allows


def _split(host: str) -> tuple[str, str]:
    """``Name:8080`` -> ``("name", "8080")``; ``[::1]:8080`` -> ``("::1", "8080")``; a final dot dropped."""
    host = host.strip().lower()
    if host.startswith("["):
        name, _, rest = host[1:].partition("]")
        return name, rest.removeprefix(":") if rest.startswith(":") or not rest else "?"
    if host.count(":") > 1:  # an IPv6 address without brackets (a listen address)
        return host, ""
    name, colon, port = host.rpartition(":")
    if not colon:
        name, port = host, ""
    return name.rstrip("."), port


def _is_address(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True
