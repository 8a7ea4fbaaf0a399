"""Scale-out: pinned-path GETs through nginx's cache against zarrdav alone, and two replicas against one (issue 20).

    python bench/scaleout.py [--seconds S] [--connections N]

Everything runs on 127.0.0.1 in the same run: zarrdav replicas A and B
(`zarrdav serve`, one process each, A held to CPU 0 and B to CPU 1 with
``taskset``), and nginx on the shipped ``deploy/nginx/zarrdav.conf`` (ports and
paths substituted) in front of both, once as shipped (its cache on) and once
with ``proxy_cache off`` (load balancing alone). ``wrk`` (16 keep-alive
connections, one thread) GETs the same 256 pinned entries from each setup in
turns, ``--seconds`` split into 3 windows: A alone, nginx's cache, A and B
behind nginx. Prints req/s, p50/p99, errors, the share of cache hits nginx
reports, the busy cores of the machine and wrk's own CPU.

How the machine bounds the figures: it has 2 cores for everything. One
zarrdav process is CPU-bound on one core; two behind nginx share both cores
with nginx's workers and wrk, so their req/s is bounded by 2 cores less what
nginx and wrk take (both printed), far from twice one replica's. On a real
deployment each replica has its cores, and nginx its own machine.
"""

from __future__ import annotations

import argparse
import http.client
import os
import re
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

from common import (
    BENCH,
    HOST,
    ZARRDAV,
    Figure,
    Server,
    WrkLoad,
    fake_checksum,
    fake_zarr_id,
    free_port,
    manifest_file,
    median,
    print_figures,
    print_table,
    start_server,
    wrk_available,
    wrk_load,
    zarr_url,
)
from redirects import redirect_paths, warm
from synthetic import write_manifest

CONFIG = BENCH.parent / "deploy" / "nginx" / "zarrdav.conf"
NGINX = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/sbin")
ENTRIES = 10_000
WINDOWS = 3


def _nginx_config(prefix: Path, listen: int, replicas: list[int], cache: bool) -> Path:
    text = CONFIG.read_text()
    servers = re.findall(r"^\s*server 127\.0\.0\.1:\d+ .*;$", text, flags=re.M)
    for line, port in zip(servers, replicas, strict=True):
        text = text.replace(line, re.sub(r":\d+ ", f":{port} ", line))
    text = text.replace("listen 8080;", f"listen {HOST}:{listen};")
    if not cache:
        text = text.replace("proxy_cache zarrdav;", "proxy_cache off;")
    for folder in ("logs", "temp", "cache"):
        (prefix / folder).mkdir(parents=True, exist_ok=True)
    (prefix / "zarrdav.conf").write_text(text)
    return prefix / "zarrdav.conf"


def _start_nginx(prefix: Path, replicas: list[int], cache: bool) -> Server:
    assert NGINX is not None
    listen = free_port()
    _nginx_config(prefix, listen, replicas, cache)
    # As root, nginx's workers would run as nobody, who cannot enter the temporary directory.
    user = "daemon off; user root;" if os.geteuid() == 0 else "daemon off;"
    command = [NGINX, "-p", f"{prefix}/", "-e", "logs/error.log", "-c", f"{prefix}/zarrdav.conf", "-g", user]
    return start_server(command, prefix / "nginx.out", port=listen)


def _stop_nginx(server: Server) -> None:
    server.process.send_signal(signal.SIGQUIT)
    try:
        server.process.wait(10)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait()


def _cache_status(port: int, path: str) -> str:
    connection = http.client.HTTPConnection(HOST, port, timeout=30)
    connection.request("HEAD", path)
    status = connection.getresponse().getheader("X-Cache-Status", "-")
    connection.close()
    return status


def run(seconds: float, connections: int = 16) -> list[Figure]:
    if not wrk_available() or NGINX is None or shutil.which("taskset") is None:
        print("scaleout.py needs wrk, nginx and taskset; not measured")
        return [Figure("20", "GET req/s nginx cache / zarrdav alone", "-", "> 1", None)]
    with tempfile.TemporaryDirectory(prefix="zarrdav-bench-") as folder:
        work = Path(folder)
        tree = work / "tree"
        zarr_id, checksum = fake_zarr_id("scaleout"), fake_checksum("scaleout", ENTRIES)
        manifest = write_manifest(manifest_file(tree, zarr_id, checksum), ENTRIES)
        requests = redirect_paths(manifest, zarr_url(zarr_id, checksum))
        replicas = []
        for name, cpu in (("a", "0"), ("b", "1")):
            command = ["taskset", "-c", cpu, *ZARRDAV, "--manifest-root", str(tree),
                       "--index-dir", str(work / f"index-{name}"), "--trusted-proxies", HOST]
            replicas.append(start_server(command, work / f"zarrdav-{name}.log"))
        cached = balanced = None
        try:
            for replica in replicas:
                warm(replica.port, requests)
            ports = [replica.port for replica in replicas]
            cached = _start_nginx(work / "nginx-cache", ports, cache=True)
            balanced = _start_nginx(work / "nginx-balance", ports, cache=False)
            for server in (cached, balanced):
                warm(server.port, requests)
            hit = _cache_status(cached.port, requests[0].path)
            setups = {"zarrdav A alone": replicas[0].port, "nginx cache (A, B behind)": cached.port,
                      "A and B behind nginx, no cache": balanced.port}
            loads: dict[str, list[WrkLoad]] = {name: [] for name in setups}
            window = max(1, round(seconds / WINDOWS))
            for _ in range(WINDOWS):
                for name, port in setups.items():
                    loads[name].append(wrk_load(port, requests, connections, window))
        finally:
            for server in (cached, balanced):
                if server is not None:
                    _stop_nginx(server)
            for replica in replicas:
                replica.stop()
    rows = []
    rates = {}
    for name, runs in loads.items():
        rates[name] = median([run.rate for run in runs])
        rows.append([name, f"{rates[name]:.0f}", f"{median([r.p50 for r in runs]) * 1e3:.2f}",
                     f"{max(r.p99 for r in runs) * 1e3:.2f}", sum(r.errors for r in runs),
                     f"{median([r.busy_cores for r in runs]):.2f}",
                     f"{median([r.client_seconds / r.seconds for r in runs]):.2f}"])
    print(f"wrk, {connections} connections, {WINDOWS} windows of {window} s each, in turns; "
          f"nginx cache status of a pinned GET after warm-up: {hit}")
    print_table(["setup", "req/s", "p50 ms", "p99 ms", "errors", "busy cores", "wrk cores"], rows)
    alone, cache, two = (rates[name] for name in setups)
    print("(2 cores for everything: two replicas share them with nginx's workers and wrk, "
          "so their req/s is bounded by 2 cores less the busy share of nginx and wrk)")
    return [
        Figure("20", f"GET req/s through nginx's cache / zarrdav alone (cache {hit})", f"{cache / alone:.2f}",
               "> 1", cache > alone),
        Figure("20", "GET req/s two replicas behind nginx / one alone (2 cores shared)", f"{two / alone:.2f}",
               "-", None),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30, help="seconds of load per setup (default 30)")
    parser.add_argument("--connections", type=int, default=16, help="wrk connections (default 16)")
    arguments = parser.parse_args()
    print_figures(run(arguments.seconds, arguments.connections))


if __name__ == "__main__":
    main()
