"""Proxied downloads: zarrdav's resident memory and throughput against redirects to S3 (issue #18).

    python bench/proxy.py [--size-mb 100] [--clients 16]

moto's S3 server holds one object of ``--size-mb`` in a public versioned
bucket, pinned by a manifest. Two ``zarrdav serve`` over the same tree:
``--file-delivery redirect`` (the baseline: clients follow the 307 and read
from moto directly) and ``--file-delivery proxy`` (zarrdav streams the
bytes). Against each, in turn, ``--clients`` processes download the object
at once; zarrdav's VmRSS is sampled every 20 ms from just before. Prints,
per mode, the resident growth (peak less the level before the downloads,
after one warm-up download), the bytes every client got, and the aggregate
throughput; then proxy / redirect throughput. Target: growth under 64 MB
with 16 concurrent 100 MB proxied downloads.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import tempfile
import time
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from pathlib import Path

import httpx
from common import HOST, Figure, Server, free_port, print_figures, print_table, rss, start_server, start_zarrdav

from zarrdav.demo.s3 import create_public_bucket
from zarrdav.manifests.checksum import zarr_checksum
from zarrdav.manifests.layout import manifest_path
from zarrdav.manifests.model import ManifestFile
from zarrdav.manifests.writer import render_manifest
from zarrdav.routes import zarr_version_path
from zarrdav.upstreams.s3 import make_s3_client

ZARR = "5eed0b1e-0000-4000-8000-000000000018"
BUCKET = "bench-proxy"
ENTRY = "arr/0"
GOAL_MB = 64
SAMPLE_EVERY = 0.02  # seconds


def _download(url: str, sink: Connection) -> None:
    """One client: GET ``url`` (following a redirect), count the bytes, report them."""
    got = 0
    with httpx.Client(timeout=300, follow_redirects=True) as client:
        with client.stream("GET", url) as response:
            for chunk in response.iter_raw(65536):
                got += len(chunk)
    sink.send(got)


def _measure(server: Server, url: str, clients: int) -> tuple[int, list[int], float]:
    """(resident growth, bytes each client got, seconds) for ``clients`` downloads at once."""
    _one(url)  # warm-up: connections, imports, the manifest
    time.sleep(0.5)
    before = rss(server.process.pid)
    peak = before
    pipes = [multiprocessing.Pipe(duplex=False) for _ in range(clients)]
    processes = [multiprocessing.Process(target=_download, args=(url, sink)) for _, sink in pipes]
    started = time.perf_counter()
    for process in processes:
        process.start()
    while any(process.is_alive() for process in processes):
        peak = max(peak, rss(server.process.pid))
        time.sleep(SAMPLE_EVERY)
    elapsed = time.perf_counter() - started
    got = [receiver.recv() if receiver.poll() else 0 for receiver, _ in pipes]
    for process in processes:
        process.join()
    return peak - before, got, elapsed


def _one(url: str) -> None:
    with httpx.Client(timeout=300, follow_redirects=True) as client, client.stream("GET", url) as response:
        for _ in response.iter_raw(65536):
            pass


def run(size_mb: int = 100, clients: int = 16) -> list[Figure]:
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    size = size_mb * 10**6
    with tempfile.TemporaryDirectory(prefix="zarrdav-bench-proxy-") as work:
        root = Path(work)
        port = free_port()
        moto = start_server([sys.executable, "-m", "moto.server", "-H", HOST, "-p", str(port)], root / "moto.log",
                            port=port, env={**os.environ, "MOTO_ALLOW_NONEXISTENT_REGION": "1"})
        servers = [moto]
        try:
            endpoint = f"http://{HOST}:{port}"
            s3 = make_s3_client(endpoint)
            create_public_bucket(s3, BUCKET)
            body = os.urandom(size)
            put = s3.put_object(Bucket=BUCKET, Key=f"zarr/{ZARR}/{ENTRY}", Body=body)
            del body
            etag = put["ETag"].strip('"')
            files = [ManifestFile(ENTRY, put["VersionId"], datetime(2026, 1, 1, tzinfo=UTC), size, etag)]
            checksum = zarr_checksum([(ENTRY, size, etag)])
            tree = root / "tree"
            target = tree / manifest_path(ZARR, checksum)
            target.parent.mkdir(parents=True)
            target.write_bytes(render_manifest(files, checksum))
            rows, results = [], {}
            for mode in ("redirect", "proxy"):
                server = start_zarrdav(tree, root / f"{mode}.log", "--file-delivery", mode, "--zarr-base-url",
                                       f"{endpoint}/{BUCKET}/zarr", index_dir=root / f"index-{mode}")
                servers.append(server)
                url = f"http://{HOST}:{server.port}{zarr_version_path(ZARR, checksum)}{ENTRY}"
                growth, got, elapsed = _measure(server, url, clients)
                server.process.terminate()
                server.process.wait(30)
                complete = sum(g == size for g in got)
                rate = sum(got) / elapsed / 2**20
                results[mode] = (growth, rate, complete)
                rows.append((mode, f"{growth / 2**20:.1f}", f"{complete}/{clients}", f"{elapsed:.1f}", f"{rate:.0f}"))
        finally:
            for server in servers:
                if server.process.poll() is None:
                    server.process.terminate()
                    server.process.wait(30)
    print(f"\n{clients} concurrent downloads of one {size_mb} MB object from moto, through zarrdav")
    print_table(["delivery", "RSS growth MiB", "complete", "seconds", "MiB/s"], rows)
    proxy_growth, proxy_rate, proxy_complete = results["proxy"]
    redirect_growth, redirect_rate, _ = results["redirect"]
    print(f"throughput proxy / redirect (direct from moto): {proxy_rate / redirect_rate:.2f}")
    return [
        Figure("18", f"proxy RSS growth, {clients} x {size_mb} MB at once (redirect: "
               f"{redirect_growth / 2**20:.1f})", f"{proxy_growth / 2**20:.1f} MiB", f"< {GOAL_MB} MB",
               proxy_growth < GOAL_MB * 10**6 and proxy_complete == clients),
        Figure("18", "proxy / direct-from-S3 throughput", f"{proxy_rate / redirect_rate:.2f} "
               f"({proxy_rate:.0f} / {redirect_rate:.0f} MiB/s)", "(not a target)", None),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=100)
    parser.add_argument("--clients", type=int, default=16)
    arguments = parser.parse_args()
    print_figures(run(arguments.size_mb, arguments.clients))


if __name__ == "__main__":
    main()
