"""How many slow clients zarrdav survives beside stock cheroot (issue 15, targets 3 and 9).

    python bench/slowclients.py [--duration S] [--quick]

For each level of slow clients (slowloris connections sending their headers
one byte every ``PERIOD`` seconds, and PROPFINDs sending a 1000-byte body
the same way), a fresh zarrdav with its default settings and a fresh bare
cheroot app with the same thread count (``bare_server.py``, answering the
same 307), measured in turns, zarrdav first on even levels. The slow clients
come from a process of their own, so that their load generator does not take
Python's lock from the normal client; each one the server closes is
replaced, as an attacker would. Meanwhile one normal keep-alive client GETs
a file every ``PAUSE`` seconds for ``--duration`` seconds; a GET not answered
within ``GET_TIMEOUT`` seconds (or answered wrongly) is a failure and counts
as ``GET_TIMEOUT`` seconds in the percentiles, so that a p99 under 1 s also
means under 1% failed. A server survives a level when the normal client's p99
is under 1 s there and at every lower level.

First, ``BURST`` connections opened at once to each server, a GET on each:
seconds from the burst until each answer. A listen backlog shorter than the
burst drops SYNs, which clients send again after 1 s, 3 s, 7 s...

``--quick`` (the smoke run) takes two small levels, 2-s windows and a burst
of ``QUICK_BURST``. Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import multiprocessing
import resource
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path

from common import (
    BENCH,
    HOST,
    Figure,
    LeanConnection,
    Request,
    Server,
    fake_checksum,
    fake_zarr_id,
    machine_busy_seconds,
    manifest_file,
    percentile,
    print_figures,
    print_table,
    start_server,
    start_zarrdav,
    zarr_url,
)
from redirects import redirect_paths, warm
from synthetic import write_manifest

from zarrdav.config import Settings

# (slowloris, slow PROPFIND bodies); the 512 + 128 is the target level.
LEVELS = ((0, 0), (32, 0), (0, 32), (128, 32), (512, 128), (896, 128))
QUICK_LEVELS = ((0, 0), (8, 4))
TARGET_LEVEL = (512, 128)
PERIOD = 3.0  # seconds between two bytes of a slow client, as in the issue
PAUSE = 0.01  # seconds the normal client waits between an answer and its next GET
GET_TIMEOUT = 5.0
CONNECT_TIMEOUT = 10.0
# Slow clients connect a few at a time: the burst below measures the listen
# backlog, and the levels should measure holding connections, not opening them.
CONCURRENT_CONNECTS = 4
RAMP_TIMEOUT = 120.0  # seconds for all slow clients to try to connect
BURST = 200
QUICK_BURST = 20
BURST_TIMEOUT = 30.0
P99_GOAL = 1.0
ENTRIES = 1000
SLOWLORIS_HEAD = b"GET /zarrs/ HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "
# Never completes: one byte every PERIOD seconds of a 1000-byte body.
BODY_LENGTH = 1000


def slow_body_head(path: str) -> bytes:
    """A PROPFIND's whole head announcing a body of ``BODY_LENGTH`` bytes."""
    return (f"PROPFIND {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nDepth: 1\r\n"
            f"Content-Type: application/xml\r\nContent-Length: {BODY_LENGTH}\r\n\r\n").encode()


# --- slow clients, in a process of their own ---------------------------------


def _hold(port: int, heads: list[bytes], control: Connection) -> None:
    """Open a slow client for each of ``heads``; send ``control`` the number
    open once each has tried to connect, feed them until ``control`` says
    stop, then send it the tally and close them all."""
    logging.getLogger("asyncio").setLevel(logging.CRITICAL)  # writes after a server's close
    asyncio.run(_hold_all(port, heads, control))


async def _hold_all(port: int, heads: list[bytes], control: Connection) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()

    def on_stop() -> None:
        loop.remove_reader(control.fileno())
        stop.set()

    tally: Counter[str] = Counter()
    connects = asyncio.Semaphore(CONCURRENT_CONNECTS)
    tasks = [asyncio.create_task(
        _slow_client(port, head, PERIOD * n / len(heads), connects, stop, tally))
        for n, head in enumerate(heads)]
    while tally["tried"] < len(heads):
        await asyncio.sleep(0.05)
    control.send(tally["open"])
    loop.add_reader(control.fileno(), on_stop)
    await stop.wait()
    at_stop = dict(tally)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    control.send(at_stop)


async def _slow_client(port: int, head: bytes, offset: float, connects: asyncio.Semaphore,
                       stop: asyncio.Event, tally: Counter[str]) -> None:
    """One slow client: connect, send ``head``, then one byte every
    ``PERIOD`` seconds (the first after ``offset``); again once the server
    closes, until ``stop``. (Cancelled too; ``stop`` also ends it should a
    cancellation arrive as a wait ends, which it may then miss.)"""
    first = True
    while not stop.is_set():
        async with connects:
            try:
                async with asyncio.timeout(CONNECT_TIMEOUT):
                    reader, writer = await asyncio.open_connection(HOST, port)
            except (OSError, TimeoutError):
                reader = writer = None
        if first:
            tally["tried"] += 1
            first = False
        if reader is None or writer is None:
            tally["connect failed"] += 1
            await asyncio.sleep(PERIOD)
            continue
        tally["open"] += 1
        tally["opened"] += 1
        try:
            writer.write(head)
            answer = await _trickle(reader, writer, offset, stop)
        finally:
            tally["open"] -= 1
            writer.close()
        if answer is not None:
            tally["closed by server"] += 1
            tally["408"] += answer.startswith(b"HTTP/1.1 408 ")


async def _trickle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, offset: float,
                   stop: asyncio.Event) -> bytes | None:
    """Send a byte each ``PERIOD`` seconds until the server closes, and
    return what it answered; None if ``stop`` came first."""
    answer = b""
    wait = offset
    while not stop.is_set():
        try:
            async with asyncio.timeout(wait):
                data = await reader.read(4096)
        except TimeoutError:
            writer.write(b"a")  # a header value's next byte, or the body's
            wait = PERIOD
            continue
        except ConnectionError:
            return answer
        if not data:
            return answer
        answer += data
    return None


# --- the normal client -------------------------------------------------------


@dataclass
class Normal:
    """What the normal client got in one window."""

    latencies: list[float] = field(default_factory=list)  # failures count as GET_TIMEOUT
    failures: int = 0
    server_closed: int = 0
    first_errors: list[str] = field(default_factory=list)

    def p(self, percent: float) -> float:
        return percentile(self.latencies, percent)

    def fail(self, error: str) -> None:
        self.failures += 1
        self.latencies.append(GET_TIMEOUT)
        if len(self.first_errors) < 3:
            self.first_errors.append(error)


def _normal_client(port: int, requests: Sequence[Request], seconds: float) -> Normal:
    """One keep-alive client GETting ``requests`` in turn for ``seconds``,
    reconnecting whenever the server closes; a new connection's connect
    counts in the GET that needed it, as any client would feel it."""
    normal = Normal()
    connection: LeanConnection | None = None
    deadline = time.monotonic() + seconds
    index = 0
    while (started := time.monotonic()) < deadline:
        request = requests[index % len(requests)]
        index += 1
        try:
            if connection is None:
                connection = LeanConnection(port, timeout=GET_TIMEOUT)
            status, body, closes = connection.exchange(connection.encode(request))
        except (OSError, ValueError) as error:
            normal.fail(f"{request.method} {request.path}: {error!r}")
            if connection is not None:
                connection.close()
                connection = None
            time.sleep(PAUSE)
            continue
        if status == request.expect:
            normal.latencies.append(time.monotonic() - started)
        else:
            normal.fail(f"{request.method} {request.path}: {status} {body[:100]!r}")
        if closes:
            normal.server_closed += 1
            connection.close()
            connection = None
        time.sleep(PAUSE)
    if connection is not None:
        connection.close()
    return normal


# --- one window and the burst -----------------------------------------------


@dataclass
class Window:
    """One server at one level: the normal client's figures and the slow clients' tally."""

    server: str
    slowloris: int
    slow_bodies: int
    open_at_start: int
    normal: Normal
    slow: dict[str, int]
    busy_cores: float

    @property
    def slow_clients(self) -> int:
        return self.slowloris + self.slow_bodies

    @property
    def survived(self) -> bool:
        return self.normal.p(99) < P99_GOAL


def _window(server: Server, name: str, level: tuple[int, int], requests: Sequence[Request],
            folder: str, seconds: float) -> Window:
    """The normal client GETting ``requests`` while ``level`` slow clients
    hold on, the slow bodies PROPFINDing ``folder``."""
    slowloris, slow_bodies = level
    heads = [SLOWLORIS_HEAD] * slowloris + [slow_body_head(folder)] * slow_bodies
    context = multiprocessing.get_context("fork")
    ours, theirs = context.Pipe()
    holder = context.Process(target=_hold, args=(server.port, heads, theirs), name="slow-clients")
    holder.start()
    try:
        if not ours.poll(RAMP_TIMEOUT):
            raise RuntimeError(f"{name}: the slow clients did not connect")
        open_at_start = ours.recv()
        busy = machine_busy_seconds()
        normal = _normal_client(server.port, requests, seconds)
        busy_cores = (machine_busy_seconds() - busy) / seconds
        ours.send("stop")
        if not ours.poll(60):
            raise RuntimeError(f"{name}: the slow clients did not stop")
        slow = ours.recv()
    finally:
        holder.join(30)
        if holder.is_alive():
            holder.kill()
            holder.join()
    return Window(name, slowloris, slow_bodies, open_at_start, normal, slow, busy_cores)


def burst(port: int, path: str, connections: int) -> list[float]:
    """``connections`` connections opened at once, a GET of ``path`` on each:
    seconds from the burst until each 307 arrived (``BURST_TIMEOUT`` for
    those that did not)."""
    return asyncio.run(_burst(port, path, connections))


async def _burst(port: int, path: str, connections: int) -> list[float]:
    request = f"GET {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\nConnection: close\r\n\r\n".encode()
    started = time.monotonic()

    async def one() -> float:
        try:
            reader, writer = await asyncio.open_connection(HOST, port)
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            writer.close()
        except (OSError, asyncio.IncompleteReadError):
            return BURST_TIMEOUT
        return time.monotonic() - started if head.startswith(b"HTTP/1.1 307 ") else BURST_TIMEOUT

    async def bounded() -> float:
        try:
            return await asyncio.wait_for(one(), BURST_TIMEOUT)
        except TimeoutError:
            return BURST_TIMEOUT

    return list(await asyncio.gather(*(bounded() for _ in range(connections))))


# --- the run -----------------------------------------------------------------


def _allowed_levels(levels: Sequence[tuple[int, int]], burst_size: int) -> list[tuple[int, int]]:
    """The levels the open-file limit allows, raising the soft limit to the
    hard one if needed (servers inherit it); each slow client takes one file
    in its generator and one in the server."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    spare = max(burst_size, 256)  # the burst, and the files a Python process has open anyway
    needed = max(sum(level) for level in levels) + spare
    if soft < needed:
        soft = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    allowed = [level for level in levels if sum(level) + spare <= soft]
    for level in levels:
        if level not in allowed:
            print(f"level {level[0]} + {level[1]}: skipped, needs more open files "
                  f"than {soft} (ulimit -n)")
    return allowed


def _load_average() -> str:
    with open("/proc/loadavg") as loadavg:
        return " ".join(loadavg.read().split()[:3])


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:.1f}"


def run(duration: float = 10.0, levels: Sequence[tuple[int, int]] = LEVELS,
        burst_size: int = BURST) -> list[Figure]:
    """Measure, print the windows and the bursts, and return the figures of targets 3 and 9."""
    levels = _allowed_levels(levels, burst_size)
    threads = Settings().threads
    windows: list[Window] = []
    bursts: dict[str, list[float]] = {}
    print(f"slow clients: one byte every {PERIOD:g} s, replaced when closed; one normal "
          f"keep-alive client GETting every {PAUSE * 1e3:g} ms for {duration:g} s, failures at "
          f"{GET_TIMEOUT:g} s; zarrdav with default settings, bare cheroot with its {threads} "
          f"threads; load average {_load_average()}")
    with tempfile.TemporaryDirectory(prefix="zarrdav-bench-") as folder:
        work = Path(folder)
        tree = work / "tree"
        zarr_id, checksum = fake_zarr_id("slowclients"), fake_checksum("slowclients", ENTRIES)
        manifest = write_manifest(manifest_file(tree, zarr_id, checksum), ENTRIES)
        root = zarr_url(zarr_id, checksum)
        requests = redirect_paths(manifest, root)
        with start_zarrdav(tree, work / "zarrdav-burst.log", index_dir=work / "index") as zarrdav:
            headers = warm(zarrdav.port, requests)  # the bare app answers with the same
            bursts["zarrdav"] = burst(zarrdav.port, requests[0].path, burst_size)
        bare_command = [sys.executable, str(BENCH / "bare_server.py"), str(threads),
                        "307 Temporary Redirect", json.dumps(headers)]
        with start_server(bare_command, work / "bare-burst.log") as bare:
            warm(bare.port, requests)
            bursts["bare cheroot"] = burst(bare.port, requests[0].path, burst_size)

        def start(name: str, label: str) -> Server:
            """A fresh server, warmed: no level inherits another's connections."""
            log = work / f"{name.split()[0]}-{label}.log"
            server = (start_zarrdav(tree, log, index_dir=work / "index") if name == "zarrdav"
                      else start_server(bare_command, log))
            warm(server.port, requests)
            return server

        for n, level in enumerate(levels):
            for name in ("zarrdav", "bare cheroot")[::1 if n % 2 == 0 else -1]:
                with start(name, f"{level[0]}-{level[1]}") as server:
                    windows.append(_window(server, name, level, requests, root, duration))
    _print_windows(windows)
    for name, seconds in bursts.items():
        failed = sum(s >= BURST_TIMEOUT for s in seconds)
        print(f"{len(seconds)} connections at once, {name}: until answered "
              f"p50 {_ms(percentile(seconds, 50))} ms, p99 {_ms(percentile(seconds, 99))} ms, "
              f"max {_ms(max(seconds))} ms, {failed} unanswered in {BURST_TIMEOUT:g} s")
    print(f"load average after: {_load_average()}")
    return _figures(windows, bursts, levels)


def _print_windows(windows: list[Window]) -> None:
    rows = [[w.server, w.slowloris, w.slow_bodies, w.open_at_start, len(w.normal.latencies),
             w.normal.failures, w.normal.server_closed, _ms(w.normal.p(50)), _ms(w.normal.p(99)),
             w.slow.get("closed by server", 0), w.slow.get("408", 0), f"{w.busy_cores:.2f}"]
            for w in sorted(windows, key=lambda w: (w.server != "zarrdav", w.slow_clients,
                                                    w.slow_bodies))]
    print_table(["server", "slowloris", "slow bodies", "slow open", "GETs", "failed",
                 "server-closed", "p50 ms", "p99 ms", "slow closed by server", "of them 408",
                 "busy cores"], rows)
    for w in windows:
        for message in w.normal.first_errors:
            print(f"  {w.server}, {w.slowloris} + {w.slow_bodies}: {message}")


def survived(windows: list[Window], server: str) -> int:
    """The most slow clients ``server`` kept the normal client's p99 under
    the goal with, at that level and all lower ones (-1: not even with none)."""
    best = -1
    for w in sorted((w for w in windows if w.server == server), key=lambda w: w.slow_clients):
        if not w.survived:
            break
        best = w.slow_clients
    return best


def _figures(windows: list[Window], bursts: dict[str, list[float]],
             levels: Sequence[tuple[int, int]]) -> list[Figure]:
    figures = []
    at_target = [w for w in windows
                 if w.server == "zarrdav" and (w.slowloris, w.slow_bodies) == TARGET_LEVEL]
    name = (f"GET p99 with {TARGET_LEVEL[0]} slowloris + {TARGET_LEVEL[1]} slow PROPFIND bodies "
            "(zarrdav)")
    if at_target:
        p99, failed = at_target[0].normal.p(99), at_target[0].normal.failures
        figures.append(Figure("15.3", name, f"{p99 * 1e3:.0f} ms ({failed} failed)",
                              f"< {P99_GOAL * 1e3:.0f} ms", p99 < P99_GOAL))
    else:
        figures.append(Figure("15.3", name, "not measured", f"< {P99_GOAL * 1e3:.0f} ms", None))
    p99s = {server: percentile(seconds, 99) for server, seconds in bursts.items()}
    figures.append(Figure(
        "15.3", f"{len(bursts['zarrdav'])} connections at once: p99 until answered, zarrdav "
        "(bare cheroot)",
        f"{p99s['zarrdav'] * 1e3:.0f} ms ({p99s['bare cheroot'] * 1e3:.0f} ms)",
        "< 1000 ms (no SYN dropped)", p99s["zarrdav"] < 1.0))
    ours, theirs = survived(windows, "zarrdav"), survived(windows, "bare cheroot")
    ratio = f"{ours / theirs:.1f}" if theirs > 0 else "-"
    most = max(sum(level) for level in levels)
    goal = sum(TARGET_LEVEL) if most >= sum(TARGET_LEVEL) else most
    figures.append(Figure(
        "15.9", f"slow clients survived with GET p99 < 1 s, zarrdav / bare cheroot ({most} tried)",
        f"{ours} / {theirs} (ratio {ratio})", f">= {goal} / -", ours >= goal))
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=10.0,
                        help="seconds of the normal client per server and level (default 10)")
    parser.add_argument("--quick", action="store_true",
                        help=f"levels {QUICK_LEVELS} only, 2-s windows and a burst of "
                        f"{QUICK_BURST}, for a smoke run")
    arguments = parser.parse_args()
    if arguments.quick:
        print_figures(run(min(arguments.duration, 2.0), QUICK_LEVELS, QUICK_BURST))
    else:
        print_figures(run(arguments.duration))


if __name__ == "__main__":
    main()
