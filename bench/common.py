"""Shared pieces of the benchmarks: servers, a keep-alive load generator, figures.

Everything runs on 127.0.0.1. Servers are subprocesses whose output goes to a
log file (no pipe to drain); the load generator forks one process per client
so that clients are not limited by the benchmark's own GIL.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import multiprocessing
import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from array import array
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from zarrdav.manifests.layout import manifest_path
from zarrdav.routes import zarr_version_path

BENCH = Path(__file__).resolve().parent
HOST = "127.0.0.1"
# Nothing listens there: redirects point at it but are never followed, and
# the archive API is never asked unless a benchmark gives its own
# (``start_zarrdav(api_url=...)``: /dandisets/ paths, ``dandiset_url``).
NOWHERE = f"http://{HOST}:9"
# Rate limits stay on (their cost is measured) but out of reach: every
# benchmark client is one address.
ZARRDAV = [sys.executable, "-m", "zarrdav", "serve", "--port", "0",
           "--api-url", f"{NOWHERE}/api", "--zarr-base-url", f"{NOWHERE}/zarr",
           "--rate-limit-burst", "1000000000", "--rate-limit-per-second", "1000000000"]
_READY = re.compile(rb"http://127\.0\.0\.1:(\d+)/")
PROPFIND_BODY = (
    b'<?xml version="1.0" encoding="utf-8"?>\n<d:propfind xmlns:d="DAV:"><d:prop>'
    b"<d:displayname/><d:getlastmodified/><d:getcontentlength/><d:resourcetype/>"
    b"</d:prop></d:propfind>"
)
_RESPONSE_END = re.compile(rb"</(?:\w+:)?response>")


# --- servers -----------------------------------------------------------------


@dataclass
class Server:
    """A server subprocess listening on ``port``; its output goes to ``log``."""

    process: subprocess.Popen[bytes]
    port: int
    log: Path
    started_in: float

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it lingers."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def free_port() -> int:
    """A port nothing listens on right now (for servers that cannot take port 0)."""
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def start_server(
    command: Sequence[str], log: Path, port: int | None = None,
    env: dict[str, str] | None = None, timeout: float = 60.0, processes: int = 1,
) -> Server:
    """Start ``command`` and wait until it accepts connections.

    Without ``port``, the server must print ``http://127.0.0.1:<port>/`` once
    it listens (zarrdav and the bare app do), once per process when it runs
    ``processes`` processes sharing the port.
    """
    started = time.perf_counter()
    with log.open("wb") as sink:
        process = subprocess.Popen(list(command), stdout=sink, stderr=subprocess.STDOUT, env=env)
    deadline = started + timeout
    while time.perf_counter() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{command[0]} exited with {process.returncode}:\n{log.read_text()}")
        found = _READY.findall(log.read_bytes())
        if port is None and len(found) >= processes:
            port = int(found[0])
        if port is not None and _accepts(port):
            return Server(process, port, log, time.perf_counter() - started)
        time.sleep(0.01)
    process.kill()
    raise RuntimeError(f"{command[0]} did not start in {timeout} s:\n{log.read_text()}")


def _accepts(port: int) -> bool:
    try:
        socket.create_connection((HOST, port), timeout=1).close()
    except OSError:
        return False
    return True


def start_zarrdav(
    manifest_root: Path, log: Path, *options: str, index_dir: Path, api_url: str | None = None
) -> Server:
    """``zarrdav serve`` on a free port over the local tree ``manifest_root``,
    keeping its manifest index in ``index_dir`` (a temporary one, never the user's),
    reading the archive at ``api_url`` if given."""
    workers = int(options[options.index("--workers") + 1]) if "--workers" in options else 1
    command = [*ZARRDAV, "--manifest-root", str(manifest_root), "--index-dir", str(index_dir),
               *(("--api-url", api_url) if api_url else ()), *options]
    return start_server(command, log, processes=workers)


# --- manifest trees ----------------------------------------------------------


def fake_checksum(seed: str, entries: int) -> str:
    """A well-formed Zarr checksum (not the real one of any content)."""
    return f"{hashlib.md5(seed.encode()).hexdigest()}-{entries}--{entries * 5000}"


def fake_zarr_id(seed: str) -> str:
    """A UUID-shaped Zarr id, as on the DANDI Archive."""
    h = hashlib.md5(seed.encode()).hexdigest()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"


def manifest_file(root: Path, zarr_id: str, checksum: str) -> Path:
    """Where the manifest of ``zarr_id`` as of ``checksum`` goes in the tree at ``root``."""
    path = root / manifest_path(zarr_id, checksum)
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def zarr_url(zarr_id: str, checksum: str) -> str:
    """The served path of that Zarr version, ending in ``/``."""
    return zarr_version_path(zarr_id, checksum)


def dandiset_url(dandiset_id: str, version: str, path: str) -> str:
    """The served path of ``path`` in a Dandiset's version (``draft`` or a release), percent-encoded."""
    where = "draft" if version == "draft" else f"releases/{version}"
    return f"/dandisets/{dandiset_id}/{where}/{quote(path)}"


# --- requests ----------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    """A request and the status it should be answered with."""

    method: str
    path: str
    expect: int
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""


def propfind(path: str, depth: str = "1") -> Request:
    """A PROPFIND asking for what rclone asks for."""
    headers = (("Depth", depth), ("Content-Type", "application/xml; charset=utf-8"))
    return Request("PROPFIND", path, 207, headers, PROPFIND_BODY)


def send(
    connection: http.client.HTTPConnection, request: Request
) -> tuple[http.client.HTTPResponse, bytes]:
    """One request on a (kept-alive) connection; the response and its whole body."""
    connection.request(request.method, request.path, request.body or None, dict(request.headers))
    response = connection.getresponse()
    return response, response.read()


def timed(connection: http.client.HTTPConnection, request: Request) -> tuple[float, bytes]:
    """Seconds until the whole answer is read, and its body; raise if the status is unexpected."""
    started = time.perf_counter()
    response, body = send(connection, request)
    elapsed = time.perf_counter() - started
    if response.status != request.expect:
        raise RuntimeError(f"{request.method} {request.path}: {response.status} {body[:200]!r}")
    return elapsed, body


def count_responses(multistatus: bytes) -> int:
    """How many ``<response>`` elements a 207 body holds."""
    return len(_RESPONSE_END.findall(multistatus))


# --- load generation ---------------------------------------------------------


class Rates:
    """Per-second figures of a load measured over ``seconds``."""

    seconds: float
    responses: int
    busy_seconds: float  # CPU time the whole machine spent busy meanwhile

    @property
    def rate(self) -> float:
        """Responses per second."""
        return self.responses / self.seconds

    @property
    def busy_cores(self) -> float:
        """How many of the machine's cores were busy on average: servers, clients and all else."""
        return self.busy_seconds / self.seconds


@dataclass
class Load(Rates):
    """What N keep-alive clients got in a fixed time."""

    clients: int
    seconds: float
    responses: int = 0
    errors: int = 0
    server_closed: int = 0
    latencies: array[float] = field(default_factory=lambda: array("d"))
    first_errors: list[str] = field(default_factory=list)
    busy_seconds: float = 0.0


class ServerClosed(ConnectionError):
    """The server closed the connection before a whole answer."""


class LeanConnection:
    """A keep-alive HTTP/1.1 client that leaves the CPU to the server.

    ``http.client`` spends about 150 µs of CPU a request parsing headers
    through the email package; 16 such clients took a whole core of this
    2-core machine away from the servers they measured. This one sends
    pre-encoded requests and reads the status, Content-Length and
    Connection of each answer: about 25 µs. Every answer zarrdav and the
    bare app give has a Content-Length.
    """

    def __init__(self, port: int, timeout: float = 30.0) -> None:
        self._socket = socket.create_connection((HOST, port), timeout=timeout)
        self._host = f"{HOST}:{port}".encode()
        self._buffer = b""

    def encode(self, request: Request) -> bytes:
        """The bytes of ``request`` on this connection."""
        lines = [f"{request.method} {request.path} HTTP/1.1".encode(), b"Host: " + self._host]
        lines += [f"{name}: {value}".encode() for name, value in request.headers]
        if request.body:
            lines.append(b"Content-Length: %d" % len(request.body))
        return b"\r\n".join(lines) + b"\r\n\r\n" + request.body

    def exchange(self, encoded: bytes) -> tuple[int, bytes, bool]:
        """Send one encoded request; its status, body, and whether the server closes."""
        self._socket.sendall(encoded)
        while (end := self._buffer.find(b"\r\n\r\n")) < 0:
            self._receive()
        head, self._buffer = self._buffer[:end].lower(), self._buffer[end + 4:]
        status = int(head[9:12])
        declared = _header(head, b"content-length")
        if declared is None:
            raise ValueError(f"{status} answer without Content-Length: {head[:200]!r}")
        length = int(declared)
        while len(self._buffer) < length:
            self._receive()
        body, self._buffer = self._buffer[:length], self._buffer[length:]
        return status, body, _header(head, b"connection") == b"close"

    def _receive(self) -> None:
        data = self._socket.recv(65536)
        if not data:
            raise ServerClosed("connection closed by the server")
        self._buffer += data

    def close(self) -> None:
        self._socket.close()


def _header(head: bytes, name: bytes) -> bytes | None:
    """The value of header ``name`` in a lowercased response head, if there."""
    start = head.find(b"\r\n" + name + b":")
    if start < 0:
        return None
    end = head.find(b"\r\n", start + 2)
    return head[start + len(name) + 3:end if end >= 0 else None].strip()


def _client(
    port: int, requests: Sequence[Request], offset: int, go: Any, stop_at: Any, results: Any,
) -> None:
    """One keep-alive client: cycle through ``requests`` until ``stop_at``."""
    tally: dict[str, Any] = {"responses": 0, "errors": 0, "server_closed": 0, "first_errors": []}
    latencies = array("d")
    connection = LeanConnection(port)
    cycle = [(request, connection.encode(request)) for request in requests]
    results.put("ready")
    go.wait()
    deadline = stop_at.value
    index = offset
    clock = time.monotonic
    while (started := clock()) < deadline:
        request, encoded = cycle[index % len(cycle)]
        index += 1
        try:
            status, body, closes = connection.exchange(encoded)
        except ConnectionError as error:
            tally["server_closed"] += 1
            _note(tally, f"{request.method} {request.path}: {error!r}")
            closes = True
        except Exception as error:  # noqa: BLE001 - every failure is counted, none stops the run
            tally["errors"] += 1
            _note(tally, f"{request.method} {request.path}: {error!r}")
            closes = True
        else:
            latencies.append(clock() - started)
            if status == request.expect:
                tally["responses"] += 1
            else:
                tally["errors"] += 1
                _note(tally, f"{request.method} {request.path}: {status} {body[:100]!r}")
            if closes:
                tally["server_closed"] += 1
        if closes:
            connection.close()
            connection = LeanConnection(port)
    connection.close()
    tally["latencies"] = latencies.tobytes()
    results.put(tally)


def _note(tally: dict[str, Any], message: str) -> None:
    if len(tally["first_errors"]) < 3:
        tally["first_errors"].append(message)


def run_load(port: int, requests: Sequence[Request], clients: int, seconds: float) -> Load:
    """``clients`` processes, one keep-alive connection each, for ``seconds``.

    Each client cycles through ``requests`` from its own offset and counts an
    unexpected status as an error and any connection the server
    closed (``Connection: close`` or a dropped socket) as server-closed.
    """
    context = multiprocessing.get_context("fork")
    go, stop_at, results = context.Event(), context.Value("d", 0.0), context.Queue()
    spread = max(1, len(requests) // clients)
    workers = [
        context.Process(target=_client, args=(port, requests, i * spread, go, stop_at, results))
        for i in range(clients)
    ]
    for worker in workers:
        worker.start()
    for _ in workers:
        if results.get(timeout=30) != "ready":
            raise RuntimeError("a client failed to connect")
    started = time.monotonic()
    stop_at.value = started + seconds
    busy = machine_busy_seconds()
    go.set()
    load = Load(clients, seconds)
    for _ in workers:
        tally = results.get(timeout=seconds + 60)
        load.responses += tally["responses"]
        load.errors += tally["errors"]
        load.server_closed += tally["server_closed"]
        load.latencies.frombytes(tally["latencies"])
        load.first_errors += tally["first_errors"]
    load.busy_seconds = machine_busy_seconds() - busy
    for worker in workers:
        worker.join()
    return load


@dataclass
class WrkLoad(Rates):
    """What ``wrk`` got from N keep-alive connections in a fixed time."""

    connections: int
    seconds: float
    responses: int
    errors: int  # connect, read, write and timeout errors, and answers of 400 and up
    p50: float
    p99: float
    busy_seconds: float
    client_seconds: float  # CPU time wrk itself used, its share of the loopback's kernel work included


def wrk_available() -> bool:
    return shutil.which("wrk") is not None


def wrk_load(port: int, requests: Sequence[Request], connections: int, seconds: int) -> WrkLoad:
    """``connections`` keep-alive connections of one ``wrk`` thread GETting
    ``requests``' paths in turn for ``seconds``.

    wrk spent 9 to 22 µs of CPU a request here (the fewer, the more answers
    wake it at once), most of it in the kernel's loopback, where a Python
    client spends about 25 (``LeanConnection``) at two workers' rates: the
    load generator for figures that need the machine's cores left to the
    servers.
    """
    with tempfile.NamedTemporaryFile("w", suffix=".txt") as paths:
        paths.write("".join(f"{request.path}\n" for request in requests))
        paths.flush()
        busy, client = machine_busy_seconds(), _children_cpu_seconds()
        result = subprocess.run(
            ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "-s", str(BENCH / "wrk_paths.lua"),
             f"http://{HOST}:{port}/", "--", paths.name],
            capture_output=True, text=True, check=True,
        )
        busy, client = machine_busy_seconds() - busy, _children_cpu_seconds() - client
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    return WrkLoad(connections, summary["seconds"], summary["responses"], summary["errors"],
                   summary["p50"], summary["p99"], busy, client)


def _children_cpu_seconds() -> float:
    """CPU seconds of this process's ended and waited-for children (wrk, once run)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


# --- process figures ---------------------------------------------------------


def _status_field(pid: int, name: str) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(f"{name}:"):
                return int(line.split()[1]) * 1024
    raise KeyError(name)


def rss(pid: int) -> int:
    """Resident bytes of ``pid`` (VmRSS)."""
    return _status_field(pid, "VmRSS")


def peak_rss(pid: int) -> int:
    """Highest resident bytes ``pid`` has had (VmHWM)."""
    return _status_field(pid, "VmHWM")


def process_tree(pid: int) -> list[int]:
    """``pid`` and its live descendants (a server's worker processes)."""
    pids = [pid]
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            pids += process_tree(int(child))
    return pids


def cpu_seconds(pid: int) -> float:
    """User plus system CPU seconds ``pid`` and its descendants have used, all threads together."""
    total = 0
    for member in process_tree(pid):
        with open(f"/proc/{member}/stat") as stat:
            fields = stat.read().rpartition(")")[2].split()
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def machine_busy_seconds() -> float:
    """CPU seconds all cores of the machine have been busy since boot (user,
    nice, system, interrupts; not idle, I/O wait, or time the hypervisor took)."""
    with open("/proc/stat") as stat:
        fields = [int(value) for value in stat.readline().split()[1:8]]
    user, nice, system, _idle, _iowait, irq, softirq = fields
    return (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK")


MIB = 2**20


# --- statistics and output ---------------------------------------------------


def percentile(values: Sequence[float], p: float) -> float:
    """The ``p``-th percentile (0-100), linearly interpolated."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = (len(ordered) - 1) * p / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def median(values: Sequence[float]) -> float:
    return percentile(values, 50)


def print_table(header: Sequence[str], rows: Sequence[Sequence[object]], left: int = 1) -> None:
    """Columns padded to fit; the first ``left`` ones left-aligned, the others right-aligned."""
    cells = [[str(c) for c in header], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    for n, row in enumerate(cells):
        padded = (c.ljust(w) if i < left else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True)))
        print("  ".join(padded))
        if n == 0:
            print("  ".join("-" * w for w in widths))


@dataclass(frozen=True)
class Figure:
    """One measured figure against its target; ``passed`` is None when not measured."""

    target: str
    name: str
    value: str
    goal: str
    passed: bool | None

    @property
    def verdict(self) -> str:
        return {True: "pass", False: "MISS", None: "-"}[self.passed]


def print_figures(figures: Sequence[Figure]) -> None:
    print_table(
        ["#", "figure", "value", "target", "result"],
        [(f.target, f.name, f.value, f.goal, f.verdict) for f in figures],
        left=2,
    )
