"""Upstream faults: the deadline kept, cached answers during a drip, memory refusing a huge manifest.

    python bench/upstream_faults.py [--timeout S] [--waiting N] [--probes N]

Uses the tests' fault-injecting upstream (``tests/faulty.py``) as the
archive and as an HTTP manifest tree, with ``zarrdav serve --upstream-timeout S`` (default 5, as in the
issue) and its default 32 threads:

1. deadline kept: the time to the answer (504) of ``GET /dandisets/`` while
   the archive sends one byte every 2 s;
2. cached GETs during the drip: the p50/p99 of a cached redirect while N
   (default 40) requests wait on the dripping archive, beside the same
   run's p50/p99 with the archive healthy (the ratio is the figure);
3. the same for an HTTP manifest tree sending its manifest at one byte a
   second (``GET`` of the Zarr version's root);
4. memory refusing a 2 GB sparse file named like a manifest in a local
   tree: the growth of the server's VmHWM (resident high-water mark).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.faulty import drip, faulty_upstream, tree_backend, wsgi_backend  # noqa: E402
from tests.servers import zarrdav_process  # noqa: E402
from tests.test_faults import (  # noqa: E402
    BODY,
    CHECKSUM,
    RELEASED,
    ZARR,
    ZARR_BASE,
    ZARR_ROOT,
    archive_data,
    peak_rss,
)
from zarrdav.demo.archive import create_archive_app  # noqa: E402
from zarrdav.manifests.layout import manifest_path  # noqa: E402


def percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


def probe(client: httpx.Client, path: str, count: int) -> list[float]:
    times = []
    for _ in range(count):
        started = time.perf_counter()
        assert client.get(path).status_code == 307
        times.append(time.perf_counter() - started)
    return times


def archive_figures(timeout: float, waiting: int, probes: int) -> None:
    with faulty_upstream() as archive:
        archive.backend = wsgi_backend(create_archive_app(archive_data(), base_url=f"{archive.url}api"))
        args = ["--manifest-root", "/nonexistent", "--zarr-base-url", ZARR_BASE,
                "--api-url", f"{archive.url}api", "--upstream-timeout", str(timeout)]
        with zarrdav_process(*args) as (url, _), httpx.Client(base_url=url, timeout=120) as client:
            cached = f"{RELEASED}file2.nwb"
            probe(client, cached, 50)  # warm: cached, and the connection kept alive
            base50, base99 = percentiles(probe(client, cached, probes))

            with archive.injected(drip("/api/dandisets/", interval=2.0)):
                started = time.perf_counter()
                status = client.get("/dandisets/").status_code
                to_answer = time.perf_counter() - started
            print(f"deadline kept: GET /dandisets/ under a 1 byte/2 s archive answered {status} "
                  f"after {to_answer:.2f} s (upstream_timeout {timeout:g} s)")

            with archive.injected(drip("/api/dandisets/", interval=2.0)), \
                    ThreadPoolExecutor(waiting) as pool, httpx.Client(base_url=url, timeout=120) as slow:
                held = [pool.submit(slow.get, f"/dandisets/?n={n}") for n in range(waiting)]
                time.sleep(0.5)
                during = probe(client, cached, probes)
                still = sum(not future.done() for future in held)
                statuses = sorted({future.result().status_code for future in held})
            fault50, fault99 = percentiles(during)
            print(f"cached GET while {waiting} requests wait on the dripping archive "
                  f"({still} still waiting after the probes; they answered {statuses}): "
                  f"p50 {fault50 * 1e3:.2f} ms, p99 {fault99 * 1e3:.2f} ms; healthy archive p50 "
                  f"{base50 * 1e3:.2f} ms, p99 {base99 * 1e3:.2f} ms; p99 ratio {fault99 / base99:.2f}")


def tree_figure(timeout: float) -> None:
    with tempfile.TemporaryDirectory(prefix="zarrdav-bench-") as root, faulty_upstream() as tree:
        target = Path(root, manifest_path(ZARR, CHECKSUM))
        target.parent.mkdir(parents=True)
        target.write_bytes(BODY)
        tree.backend = tree_backend(Path(root))
        args = ["--manifest-root", tree.url, "--zarr-base-url", ZARR_BASE, "--index-dir", "",
                "--upstream-timeout", str(timeout)]
        with zarrdav_process(*args) as (url, _), httpx.Client(base_url=url, timeout=120) as client, \
                tree.injected(drip(f"{CHECKSUM}.json", interval=1.0)):
            started = time.perf_counter()
            status = client.get(ZARR_ROOT).status_code
            to_answer = time.perf_counter() - started
        print(f"deadline kept: a manifest from a 1 byte/s HTTP tree answered {status} "
              f"after {to_answer:.2f} s (upstream_timeout {timeout:g} s)")


def memory_figure() -> None:
    with tempfile.TemporaryDirectory(prefix="zarrdav-bench-") as root:
        target = Path(root, manifest_path(ZARR, CHECKSUM))
        target.parent.mkdir(parents=True)
        with target.open("wb") as sparse:
            sparse.truncate(2 * 2**30)
        args = ["--manifest-root", root, "--zarr-base-url", ZARR_BASE, "--index-dir", ""]
        with zarrdav_process(*args) as (url, process), httpx.Client(base_url=url, timeout=120) as client:
            client.get("/zarrs/")
            before = peak_rss(process)
            status = client.get(ZARR_ROOT).status_code
            growth = peak_rss(process) - before
        print(f"memory refusing a 2 GB sparse manifest: answered {status}, "
              f"VmHWM grew {growth / 2**20:.1f} MiB (from {before / 2**20:.1f} MiB)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--timeout", type=float, default=5.0)
    parser.add_argument("--waiting", type=int, default=40)
    parser.add_argument("--probes", type=int, default=400)
    options = parser.parse_args()
    archive_figures(options.timeout, options.waiting, options.probes)
    tree_figure(options.timeout)
    memory_figure()


if __name__ == "__main__":
    main()
