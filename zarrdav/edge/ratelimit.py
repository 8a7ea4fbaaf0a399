"""Rate limits per client: a token bucket for every request, a tighter one for archive calls.

A client may send ``burst`` requests at once and ``per_second`` after that
(dandidav's defaults: 50 and 20); past that it is answered 429 with
``Retry-After``. Requests that cost calls to the archive API (uncached
``/dandisets/`` paths) also spend the client's archive bucket, one token per
call, charged where the call waits for its upstream slot
(``UpstreamGate.waiting``): a crawler walking the archive through zarrdav is
held to the archive budget while clients reading cached Zarrs are not.

A client is its address; an IPv6 client is its /64, the block one host is
given. Behind a proxy named in ``trusted_proxies``, the client is the
rightmost address of ``X-Forwarded-For`` that is not itself a trusted proxy
(as nginx's ``real_ip_recursive``); from anyone else the header is ignored,
since a client could put anything in it. At most ``max_clients`` clients
are remembered, the longest remembered forgotten first (no reordering on
every request): a forgotten client's bucket starts full again, so memory
stays bounded whatever the number of addresses, at the cost of a fresh
burst for a client once that many others came after it.
"""

from __future__ import annotations

import ipaddress
import math
import threading
import time
from functools import lru_cache

from zarrdav.edge.answer import Answer
from zarrdav.edge.layers import Handler, Layer
from zarrdav.edge.request import Request
from zarrdav.errors import TooManyRequests
from zarrdav.upstreams.archive import KIND as ARCHIVE
from zarrdav.upstreams.calls import BUDGET

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class Rate:
    """A bucket's shape: ``burst`` tokens at most, ``per_second`` back a second (burst 0: no limit)."""

    __slots__ = ("burst", "per_second")

    def __init__(self, burst: int, per_second: float) -> None:
        self.burst = float(burst)
        self.per_second = per_second


class Client:
    """One client's two buckets: requests, and archive calls."""

    __slots__ = ("_limits", "tokens", "stamp", "archive_tokens", "archive_stamp")

    def __init__(self, limits: RateLimits, now: float) -> None:
        self._limits = limits
        self.tokens = limits.requests.burst
        self.stamp = now
        self.archive_tokens = limits.archive.burst
        self.archive_stamp = now

    def charge(self, kind: str) -> None:
        """Spend an archive token for an archive call (``calls.Budget``)."""
        if kind == ARCHIVE:
            self._limits.spend_archive(self)


class RateLimits:
    """The buckets of every client remembered, and who the client of a request is."""

    def __init__(self, requests: Rate, archive: Rate, max_clients: int, trusted_proxies: str = "") -> None:
        self.requests = requests
        self.archive = archive
        self._max_clients = max(1, max_clients)
        self._clients: dict[str, Client] = {}  # in the order first seen
        self._lock = threading.Lock()
        self._trusted = _networks(trusted_proxies)
        self._client_of = lru_cache(maxsize=4096)(self._forwarded_client)

    def client(self, request: Request) -> Client:
        """The request's client, its request token taken; ``TooManyRequests`` when none is left."""
        address = request.client
        if self._trusted and _within(address, self._trusted):
            forwarded: str | None = request.environ.get("HTTP_X_FORWARDED_FOR")
            if forwarded:
                address = self._client_of(address, forwarded[:_LONGEST_FORWARDED])
        key = address if ":" not in address else _block(address)
        burst, per_second = self.requests.burst, self.requests.per_second
        now = time.monotonic()
        clients = self._clients
        with self._lock:
            client = clients.get(key)
            if client is None:
                client = clients[key] = Client(self, now)
                if len(clients) > self._max_clients:
                    # The longest remembered goes: a busy client forgotten
                    # starts with a full bucket, no more than a new one.
                    del clients[next(iter(clients))]
            if burst:
                tokens = client.tokens + (now - client.stamp) * per_second
                if tokens > burst:
                    tokens = burst
                client.stamp = now
                if tokens < 1:
                    client.tokens = tokens
                    raise _refusal("requests", tokens, self.requests)
                client.tokens = tokens - 1
        return client

    def spend_archive(self, client: Client) -> None:
        rate = self.archive
        if not rate.burst:
            return
        now = time.monotonic()
        with self._lock:
            tokens = min(rate.burst, client.archive_tokens + (now - client.archive_stamp) * rate.per_second)
            client.archive_stamp = now
            client.archive_tokens = tokens - 1 if tokens >= 1 else tokens
        if tokens < 1:
            raise _refusal("requests needing the archive", tokens, rate)

    def remembered(self) -> int:
        """How many clients' buckets are kept."""
        return len(self._clients)

    def _forwarded_client(self, peer: str, forwarded: str) -> str:
        """The rightmost address in ``forwarded`` that is not a trusted proxy
        (``peer`` itself when there is none, or one is not an address)."""
        for item in reversed(forwarded.split(",")):
            candidate = item.strip()
            try:
                address = ipaddress.ip_address(candidate)
            except ValueError:
                return peer
            if not any(address in network for network in self._trusted):
                return str(address)
        return peer


def rate_limit(limits: RateLimits) -> Layer:
    """Take a token of the request's client, and hand its archive budget to upstream calls."""

    def layer(inner: Handler) -> Handler:
        def limited(request: Request) -> Answer:
            token = BUDGET.set(limits.client(request))
            try:
                return inner(request)
            finally:
                BUDGET.reset(token)  # nothing after the request spends its client's budget

        return limited

    return layer


# X-Forwarded-For beyond this is cut: its rightmost addresses are the ones read.
_LONGEST_FORWARDED = 1024


def _refusal(what: str, tokens: float, rate: Rate) -> TooManyRequests:
    wait = math.ceil((1 - tokens) / rate.per_second) if rate.per_second > 0 else 3600
    return TooManyRequests(f"too many {what} from this client; try again in {wait} s", max(1, wait))


def _networks(spec: str) -> tuple[Network, ...]:
    """``trusted_proxies`` as networks (a bare address is a network of one)."""
    return tuple(ipaddress.ip_network(item, strict=False) for item in spec.split())


@lru_cache(maxsize=4096)
def _within(address: str, networks: tuple[Network, ...]) -> bool:
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(parsed in network for network in networks)


@lru_cache(maxsize=4096)
def _block(address: str) -> str:
    """An IPv6 client's /64, which one host is given (an IPv4-mapped one stays itself)."""
    try:
        parsed = ipaddress.IPv6Address(address.partition("%")[0])
    except ValueError:
        return address
    if parsed.ipv4_mapped is not None:
        return str(parsed.ipv4_mapped)
    return str(ipaddress.IPv6Network((parsed, 64), strict=False))
