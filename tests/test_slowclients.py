"""Slow clients cannot keep zarrdav from answering the others (issue 15), on real sockets.

Hundreds of slowloris connections (headers one byte at a time) and slow
PROPFIND bodies hold on to a real ``zarrdav serve`` while a normal
keep-alive client GETs; and a burst of connections arrives while the server
accepts none. Every wait here only bounds the test: nothing asserts how
fast an answer came (``bench/slowclients.py`` measures that).
"""

from __future__ import annotations

import os
import re
import resource
import select
import signal
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.manifests import one_manifest_tree, sample_manifest
from tests.servers import zarrdav_server

ZARR = "1284a14f-fe4f-4dc3-b10d-48e5db8bf18d"
CHECKSUM, MANIFEST = sample_manifest()
FILE = f"/zarrs/128/4a1/{ZARR}/{CHECKSUM}.zarr/arr/.zarray"
ROOT = f"/zarrs/128/4a1/{ZARR}/{CHECKSUM}.zarr/"
NOWHERE = "http://127.0.0.1:9"  # redirect target and archive; never contacted
SLOWLORIS = 300
SLOW_BODIES = 32
REQUEST_TIMEOUT = 2.0  # seconds; the setting's default is 10
TRICKLE = 0.5  # seconds between two bytes of a slow client
# Seconds a GET or a connect may take before it counts as not answered. It
# bounds the test: where slow clients hold the workers, no answer comes.
ANSWER_BOUND = 10.0
BURST = 200
SLOWLORIS_HEAD = b"GET /zarrs/ HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "
SLOW_BODY_HEAD = (
    f"PROPFIND {ROOT} HTTP/1.1\r\nHost: 127.0.0.1\r\nDepth: 1\r\n"
    "Content-Type: application/xml\r\nContent-Length: 1000\r\n\r\n"
).encode()


@contextmanager
def _zarrdav(tmp_path: Path) -> Iterator[tuple[str, int]]:
    """``zarrdav serve`` over a one-Zarr tree, with a short request timeout;
    yields its URL and the pid of its one process."""
    tree = one_manifest_tree(tmp_path / "tree", ZARR, CHECKSUM, MANIFEST)
    log = tmp_path / "zarrdav.log"
    with zarrdav_server(
        "--manifest-root", str(tree), "--zarr-base-url", f"{NOWHERE}/zarr",
        "--api-url", f"{NOWHERE}/api", "--workers", "1",
        "--request-timeout", str(REQUEST_TIMEOUT), log=log,
    ) as url:
        found = re.search(r"\(process (\d+)", log.read_text())
        assert found, log.read_text()
        yield url, int(found[1])


def _allow_open_files(needed: int) -> None:
    """Raise this process's open-file limit to ``needed`` if it is lower
    (``zarrdav serve`` inherits it), or skip where the hard limit forbids."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= needed:
        return
    if hard != resource.RLIM_INFINITY and hard < needed:
        pytest.skip(f"needs {needed} open files; the hard limit (ulimit -Hn) is {hard}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))


class SlowClients:
    """Slowloris connections and slow PROPFIND bodies; one thread sends each
    of them one more byte every ``TRICKLE`` seconds.

    While ``replacing``, each connection the server closes is replaced, as an
    attacker would, so that the normal client always competes with all of
    them. What the server sent each closed connection is kept in ``answers``.
    """

    def __init__(self, port: int, slowloris: int, slow_bodies: int) -> None:
        self._port = port
        self.replacing = True
        self.answers: list[bytes] = []
        self.failures: list[str] = []
        self._open: dict[socket.socket, tuple[bytes, bytearray]] = {}
        self._stop = threading.Event()
        for head in [SLOWLORIS_HEAD] * slowloris + [SLOW_BODY_HEAD] * slow_bodies:
            self._connect(head)
        self._thread = threading.Thread(target=self._trickle, name="slow-clients", daemon=True)
        self._thread.start()

    @property
    def still_open(self) -> int:
        return len(self._open)

    def _connect(self, head: bytes) -> None:
        try:
            sock = socket.create_connection(("127.0.0.1", self._port), timeout=ANSWER_BOUND)
            sock.sendall(head)
        except OSError as error:
            self.failures.append(f"connect: {error!r}")
            return
        sock.setblocking(False)
        self._open[sock] = (head, bytearray())

    def _trickle(self) -> None:
        while not self._stop.wait(TRICKLE):
            for sock, (head, received) in list(self._open.items()):
                if self._closed_by_server(sock, received):
                    del self._open[sock]
                    sock.close()
                    self.answers.append(bytes(received))
                    if self.replacing:
                        self._connect(head)

    @staticmethod
    def _closed_by_server(sock: socket.socket, received: bytearray) -> bool:
        """Read what the server sent; if it has not closed, send the next byte
        (a header value's or the body's: neither ever completes here)."""
        try:
            while data := sock.recv(65536):
                received += data
            return True
        except BlockingIOError:
            pass
        except ConnectionError:
            return True
        try:
            sock.send(b"a")
        except BlockingIOError:
            pass
        except ConnectionError:
            return True
        return False

    def wait_until_all_closed(self, bound: float) -> None:
        """Stop replacing, and wait up to ``bound`` seconds for the server to close the rest."""
        self.replacing = False
        deadline = time.monotonic() + bound
        while self._open and time.monotonic() < deadline:
            time.sleep(TRICKLE)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(ANSWER_BOUND)
        for sock in self._open:
            sock.close()


def _normal_client(url: str, seconds: float) -> list[str]:
    """A keep-alive client GETting one file every 50 ms for ``seconds``;
    each answer's status, or what went wrong (then it stops)."""
    outcomes: list[str] = []
    deadline = time.monotonic() + seconds
    with httpx.Client(base_url=url, timeout=ANSWER_BOUND) as client:
        while time.monotonic() < deadline:
            try:
                outcomes.append(str(client.get(FILE).status_code))
            except httpx.HTTPError as error:
                outcomes.append(repr(error))
                break
            time.sleep(0.05)
    return outcomes


def test_a_normal_client_is_answered_while_slow_clients_hold_on(tmp_path: Path) -> None:
    _allow_open_files(4 * (SLOWLORIS + SLOW_BODIES))
    with _zarrdav(tmp_path) as (url, _):
        slow = SlowClients(int(url.rsplit(":", 1)[1]), SLOWLORIS, SLOW_BODIES)
        try:
            # Three request timeouts: each slow client is closed and replaced meanwhile.
            outcomes = _normal_client(url, 3 * REQUEST_TIMEOUT)
            assert outcomes and set(outcomes) == {"307"}, outcomes[-3:]
            slow.wait_until_all_closed(REQUEST_TIMEOUT + 2 * ANSWER_BOUND)
        finally:
            slow.close()
    assert slow.failures == []
    assert slow.still_open == 0, "slow clients the server never closed"
    assert len(slow.answers) >= SLOWLORIS + SLOW_BODIES
    unexpected = [a[:80] for a in slow.answers if a and not a.startswith(b"HTTP/1.1 408 ")]
    assert unexpected == [], "a slow client timed out is answered 408 or nothing"


def _established(sockets: list[socket.socket], bound: float) -> int:
    """How many of ``sockets`` (connecting, non-blocking) complete their
    handshake within ``bound`` seconds."""
    poll = select.poll()
    for sock in sockets:
        poll.register(sock, select.POLLOUT)
    done = 0
    deadline = time.monotonic() + bound
    while done < len(sockets) and (left := deadline - time.monotonic()) > 0:
        for fd, _ in poll.poll(left * 1000):
            poll.unregister(fd)
            done += 1
    return done


def _stop(pid: int) -> None:
    """SIGSTOP ``pid`` and wait until every thread of it has stopped (the
    selector thread may accept a few connections before it does)."""
    os.kill(pid, signal.SIGSTOP)
    tasks = Path(f"/proc/{pid}/task")
    deadline = time.monotonic() + ANSWER_BOUND
    while time.monotonic() < deadline:
        states = [(task / "stat").read_text().rpartition(")")[2].split()[0]
                  for task in tasks.iterdir()]
        if set(states) == {"T"}:
            return
        time.sleep(0.01)
    raise AssertionError(f"zarrdav serve did not stop: thread states {states}")


def _status(sock: socket.socket) -> str:
    """GET the file on ``sock``; the status code of the answer."""
    sock.settimeout(ANSWER_BOUND)
    sock.sendall(f"GET {FILE} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
    received = b""
    while b"\r\n" not in received:
        data = sock.recv(4096)
        if not data:
            return "closed"
        received += data
    return received.split(b" ", 2)[1].decode()


def test_a_burst_of_connections_waits_in_the_listen_queue(tmp_path: Path) -> None:
    """200 connections arrive while the server accepts none (stopped): at
    least 128 complete their handshake in the kernel's listen queue, and all
    are answered once it runs again."""
    _allow_open_files(4 * BURST)
    with _zarrdav(tmp_path) as (url, pid):
        port = int(url.rsplit(":", 1)[1])
        sockets = []
        try:
            _stop(pid)
            for _ in range(BURST):
                sock = socket.socket()
                sock.setblocking(False)
                sock.connect_ex(("127.0.0.1", port))
                sockets.append(sock)
            # The queue holds backlog + 1; the others' SYNs are dropped while it is full.
            queued = _established(sockets, bound=3.0)
        finally:
            os.kill(pid, signal.SIGCONT)
        try:
            assert queued >= 128
            statuses = [_status(sock) for sock in sockets]
        finally:
            for sock in sockets:
                sock.close()
    assert statuses == ["307"] * BURST
