"""GET redirect throughput over keep-alive: zarrdav against a bare cheroot app (targets 1, 4, 5).

    python bench/redirects.py [--duration S] [--entries N] [--threads N] [--log-level LEVEL]

One Zarr (a synthetic manifest), warmed; then 1 and 16 keep-alive clients GET
its files for ``--duration`` seconds each, against zarrdav and against a bare
cheroot app with the same thread count answering the same 307 with the same
headers: stock (the baseline of target 1), and held to one CPU as zarrdav
holds itself (like for like). Each duration is split into ``WINDOWS``
windows taken in turns (zarrdav, bare, bare on one CPU, zarrdav, ...), so
that a slower or faster spell of a shared machine falls on all alike. With
``wrk`` installed, also 16 connections of wrk against 1 and 2 zarrdav worker
processes, and against the bare app run as 1 and 2 processes the same way
(what a second process gives on this machine without any application): the
Python clients take a third of a core at these rates, which on two cores
would bound what two processes can show. As wrk runs on the same cores,
the most two workers can reach is printed beside the figure.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import sys
import tempfile
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import TypeVar
from urllib.parse import quote

from common import (
    BENCH,
    HOST,
    Figure,
    Load,
    Rates,
    Request,
    Server,
    WrkLoad,
    cpu_seconds,
    fake_checksum,
    fake_zarr_id,
    manifest_file,
    median,
    percentile,
    print_figures,
    print_table,
    run_load,
    send,
    start_server,
    start_zarrdav,
    wrk_available,
    wrk_load,
    zarr_url,
)
from synthetic import write_manifest

from zarrdav.manifests.reader import read_manifest_file

CLIENTS = (1, 16)
PATHS = 256
WINDOWS = 5
_VARYING = frozenset(("date", "server"))
AnyLoad = TypeVar("AnyLoad", bound=Rates)


def redirect_paths(manifest: Path, root: str) -> list[Request]:
    """GETs of ``PATHS`` files spread over the manifest."""
    files = [f.path for f in read_manifest_file(manifest).files()]
    step = max(1, len(files) // PATHS)
    return [Request("GET", root + quote(path), 307) for path in files[::step][:PATHS]]


def warm(port: int, requests: list[Request]) -> list[tuple[str, str]]:
    """GET every path once; the headers of the last answer, but for Date and Server."""
    connection = http.client.HTTPConnection(HOST, port, timeout=60)
    headers: list[tuple[str, str]] = []
    for request in requests:
        response, _ = send(connection, request)
        if response.status != request.expect:
            raise RuntimeError(f"GET {request.path}: {response.status}")
        headers = [(k, v) for k, v in response.getheaders() if k.lower() not in _VARYING]
    connection.close()
    return headers


def _take_turns(
    servers: list[Server], measure: Callable[[Server], AnyLoad], windows: int
) -> tuple[list[list[AnyLoad]], list[float]]:
    """Each server's loads in ``windows`` windows taken in turns, so that a
    slow spell of the machine falls on all alike; and the CPU seconds each
    server used in them."""
    loads: list[list[AnyLoad]] = [[] for _ in servers]
    cpu = [0.0 for _ in servers]
    for _ in range(windows):
        for n, server in enumerate(servers):
            before = cpu_seconds(server.pid)
            loads[n].append(measure(server))
            cpu[n] += cpu_seconds(server.pid) - before
    return loads, cpu


def _in_turns(
    servers: list[Server], requests: list[Request], clients: int, seconds: float
) -> tuple[list[Load], list[float], list[float]]:
    """Each server's load over ``WINDOWS`` windows taken in turns, its CPU
    microseconds per answer, and the first server's rate over the second's
    in each round."""
    windows, cpu = _take_turns(
        servers, lambda server: run_load(server.port, requests, clients, seconds / WINDOWS), WINDOWS)
    loads = [Load(clients, 0.0) for _ in servers]
    for total, of_one in zip(loads, windows, strict=True):
        for window in of_one:
            _add(total, window)
    ratios = [first.rate / second.rate for first, second in zip(windows[0], windows[1], strict=True)]
    per_answer = [used / max(1, load.responses) * 1e6 for used, load in zip(cpu, loads, strict=True)]
    return loads, per_answer, ratios


def _add(total: Load, window: Load) -> None:
    total.seconds += window.seconds
    total.responses += window.responses
    total.errors += window.errors
    total.server_closed += window.server_closed
    total.latencies.extend(window.latencies)
    total.first_errors += window.first_errors[: 3 - len(total.first_errors)]
    total.busy_seconds += window.busy_seconds


def _row(name: str, load: Load, cpu_us: float) -> list[object]:
    return [
        name, load.clients, f"{load.rate:.0f}", f"{median(load.latencies) * 1e3:.2f}",
        f"{percentile(load.latencies, 99) * 1e3:.2f}", load.errors, load.server_closed, f"{cpu_us:.0f}",
        f"{load.busy_cores:.2f}",
    ]


def _workers(tree: Path, work: Path, requests: list[Request], threads: int, seconds: float,
             log_level: str, bare_command: list[str]) -> dict[tuple[str, int], tuple[WrkLoad, float]]:
    """16 wrk connections against zarrdav with 1 and 2 worker processes, and
    against the bare app with 1 and 2 processes run the same way (the same
    machine and load generator, no application), in up to ``WINDOWS`` windows
    taken in turns (wrk counts whole seconds); for each, the load and the CPU
    cores the server used."""
    windows = max(1, min(WINDOWS, int(seconds)))
    with ExitStack() as stack:
        servers: dict[tuple[str, int], Server] = {}
        for processes in (1, 2):
            servers["zarrdav", processes] = stack.enter_context(start_zarrdav(
                tree, work / f"workers-{processes}.log", "--workers", str(processes), "--threads",
                str(threads), "--log-level", log_level, index_dir=work / "index"))
        for processes in (1, 2):
            servers["bare cheroot", processes] = stack.enter_context(start_server(
                [*bare_command, "--processes", str(processes)], work / f"bare-processes-{processes}.log",
                processes=processes))
        for (_, processes), server in servers.items():
            for _ in range(4 * processes):  # the kernel spreads connections over processes
                warm(server.port, requests)
        seconds_each = int(seconds) // windows
        loads, cpu = _take_turns(
            list(servers.values()),
            lambda server: wrk_load(server.port, requests, CLIENTS[-1], seconds_each), windows)
    return {key: (load, used / load.seconds)
            for key, load, used in zip(servers, map(_combined, loads), cpu, strict=True)}


def _combined(windows: list[WrkLoad]) -> WrkLoad:
    """One load of several windows: p50 the median of theirs, p99 the worst."""
    return WrkLoad(
        windows[0].connections, sum(w.seconds for w in windows), sum(w.responses for w in windows),
        sum(w.errors for w in windows), median([w.p50 for w in windows]),
        max(w.p99 for w in windows), sum(w.busy_seconds for w in windows),
        sum(w.client_seconds for w in windows),
    )


def run(
    duration: float = 10.0, entries: int = 10_000, threads: int = 32, log_level: str = "INFO"
) -> list[Figure]:
    """Measure, print the detail table, and return the figures for targets 1, 4 and 5."""
    with tempfile.TemporaryDirectory(prefix="zarrdav-bench-") as folder, ExitStack() as servers:
        work = Path(folder)
        tree = work / "tree"
        zarr_id, checksum = fake_zarr_id("redirects"), fake_checksum("redirects", entries)
        manifest = write_manifest(manifest_file(tree, zarr_id, checksum), entries)
        requests = redirect_paths(manifest, zarr_url(zarr_id, checksum))
        zarrdav = servers.enter_context(start_zarrdav(
            tree, work / "zarrdav.log", "--threads", str(threads), "--log-level", log_level,
            index_dir=work / "index"))
        headers = warm(zarrdav.port, requests)
        bare_command = [sys.executable, str(BENCH / "bare_server.py"), str(threads),
                        "307 Temporary Redirect", json.dumps(headers)]
        bare = servers.enter_context(start_server(bare_command, work / "bare.log"))
        bare_one_cpu = servers.enter_context(start_server([*bare_command, "--processes", "1"],
                                                          work / "bare-one-cpu.log"))
        for server in (bare, bare_one_cpu):
            warm(server.port, requests)
        names = ("zarrdav", "bare cheroot", "bare cheroot, one CPU")
        print(f"GET redirects: {len(requests)} files of a {entries}-entry manifest, {duration:g} s "
              f"a server in {WINDOWS} windows taken in turns, {threads} server threads, "
              f"zarrdav log level {log_level}")
        results: dict[tuple[str, int], Load] = {}
        cpu: dict[tuple[str, int], float] = {}
        ratios: dict[int, list[float]] = {}
        rows = []
        for clients in CLIENTS:
            loads, per_answer, ratios[clients] = _in_turns([zarrdav, bare, bare_one_cpu], requests,
                                                           clients, duration)
            for name, load, cpu_us in zip(names, loads, per_answer, strict=True):
                results[name, clients], cpu[name, clients] = load, cpu_us
                rows.append(_row(name, load, cpu_us))
                for message in load.first_errors:
                    print(f"  {name}, {clients} clients: {message}")
        servers.close()
        workers = (_workers(tree, work, requests, threads, duration, log_level, bare_command)
                   if wrk_available() else None)
    for (name, processes), (wrk, used) in (workers or {}).items():
        rows.append([f"{name}, {processes} process{'es' if processes > 1 else ''} (wrk)", wrk.connections,
                     f"{wrk.rate:.0f}", f"{wrk.p50 * 1e3:.2f}", f"{wrk.p99 * 1e3:.2f}", wrk.errors, "-",
                     f"{used / wrk.rate * 1e6:.0f}", f"{wrk.busy_cores:.2f}"])
    print_table(["server", "clients", "req/s", "p50 ms", "p99 ms", "errors", "server-closed",
                 "server CPU us/req", "busy cores"], rows)

    for clients in CLIENTS:
        cpu_ratio = cpu["bare cheroot", clients] / cpu["zarrdav", clients]
        spread = ", ".join(f"{ratio:.2f}" for ratio in ratios[clients])
        print(f"{clients} client(s): req/s zarrdav / bare cheroot by window {spread}; "
              f"bare cheroot CPU/req over zarrdav CPU/req {cpu_ratio:.2f} "
              "(the req/s ratio a CPU-bound server would show; less sensitive to other load)")
        like_for_like = results["zarrdav", clients].rate / results[names[2], clients].rate
        print(f"{clients} client(s): req/s zarrdav / bare cheroot on one CPU {like_for_like:.2f} "
              "(both held to one CPU: the application's cost and what zarrdav's connection saves)")
    figures = []
    for clients in CLIENTS:
        ratio = results["zarrdav", clients].rate / results["bare cheroot", clients].rate
        figures.append(Figure("1", f"GET 307 req/s zarrdav / bare cheroot, {clients} client(s)",
                              f"{ratio:.2f}", ">= 0.9", ratio >= 0.9))
    many, one = results["zarrdav", CLIENTS[-1]], results["zarrdav", 1]
    figures.append(Figure("4", f"{many.clients} clients {duration:g} s: errors / server-closed",
                          f"{many.errors} / {many.server_closed}", "0 / 0",
                          many.errors == 0 and many.server_closed == 0))
    scaling = many.rate / one.rate
    figures.append(Figure("4", f"req/s {many.clients} clients / 1 client", f"{scaling:.2f}",
                          ">= 1.0", scaling >= 1.0))
    scaling_name = "req/s 2 workers / 1 worker (wrk, 16 connections)"
    if workers is None:
        print("workers: not measured; needs wrk (Debian: apt-get install wrk)")
        figures.append(Figure("5", scaling_name, "needs wrk", ">= 1.7", None))
    else:
        (one_worker, one_cores), (two_workers, two_cores) = workers["zarrdav", 1], workers["zarrdav", 2]
        gain = two_workers.rate / one_worker.rate
        per_core = (two_workers.rate / two_cores) / (one_worker.rate / one_cores)
        bare_gain = workers["bare cheroot", 2][0].rate / workers["bare cheroot", 1][0].rate
        cores = len(os.sched_getaffinity(0))  # those the servers may run on
        print(f"workers: zarrdav used {one_cores:.2f} cores with 1 worker and {two_cores:.2f} with 2; "
              f"the whole machine (servers, wrk, all else) {one_worker.busy_cores:.2f} and "
              f"{two_workers.busy_cores:.2f} of {os.cpu_count()}; req/s per core zarrdav used, "
              f"2 workers / 1 worker {per_core:.2f}")
        # The most two workers can answer, if each answer costs them what it
        # cost one: two cores' worth, or, where wrk has no core of its own,
        # all cores shared between their answers and wrk's share of each.
        zarrdav_cpu = one_cores / one_worker.rate
        wrk_cpu = two_workers.client_seconds / two_workers.responses
        ceiling = min(2 / zarrdav_cpu, cores / (zarrdav_cpu + wrk_cpu)) / one_worker.rate
        print(f"workers: CPU per answer: zarrdav {zarrdav_cpu * 1e6:.0f} µs with 1 worker and "
              f"{two_cores / two_workers.rate * 1e6:.0f} µs with 2, wrk {wrk_cpu * 1e6:.1f} µs with 2; "
              f"so 2 workers / 1 worker can reach at most {ceiling:.2f} here with wrk on the same cores")
        print(f"workers: req/s 2 processes / 1 process, bare cheroot (no application, same windows) "
              f"{bare_gain:.2f}, zarrdav {gain:.2f}")
        figures.append(Figure("5", scaling_name, f"{gain:.2f}", ">= 1.7", gain >= 1.7))
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per run (default 10)")
    parser.add_argument("--entries", type=int, default=10_000, help="manifest entries (default 10000)")
    parser.add_argument("--threads", type=int, default=32, help="server threads (default 32)")
    parser.add_argument("--log-level", default="INFO",
                        help="zarrdav's log level (default INFO, as served)")
    arguments = parser.parse_args()
    figures = run(arguments.duration, arguments.entries, arguments.threads, arguments.log_level)
    print_figures(figures)


if __name__ == "__main__":
    main()
