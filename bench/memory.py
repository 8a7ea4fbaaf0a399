"""Resident memory across many distinct manifests and a small manifest cache (target 6).

    python bench/memory.py [--manifests N] [--duration S] [--cache-mb M]

A tree of N distinct manifests (four sizes, 5,000 to 40,000 entries; the
files are hard links, the server parses each as its own). ``zarrdav serve
--manifest-cache-mb M`` with M well below what all of them take parsed;
four keep-alive clients walk all of them over and over (a PROPFIND Depth 1
and a GET redirect each) while the server's VmRSS is sampled. Bounded means
the highest RSS of the second half of the run stays within 10% of the
first half's.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import tempfile
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from common import (
    MIB,
    Figure,
    Request,
    fake_checksum,
    fake_zarr_id,
    manifest_file,
    print_figures,
    print_table,
    propfind,
    rss,
    run_load,
    start_zarrdav,
    zarr_url,
)
from synthetic import write_manifest

from zarrdav.manifests.reader import read_manifest_file

SIZES = (5_000, 10_000, 20_000, 40_000)
CLIENTS = 4
SAMPLE_EVERY = 0.25
TIMELINE = 10


def _tree(work: Path, manifests: int) -> tuple[list[Request], int]:
    """Write the tree; the requests walking it, and what all manifests take parsed."""
    originals = {size: write_manifest(work / f"{size}.json", size) for size in SIZES}
    parsed = {size: read_manifest_file(path).nbytes for size, path in originals.items()}
    requests, total = [], 0
    for n in range(manifests):
        size = SIZES[n % len(SIZES)]
        zarr_id, checksum = fake_zarr_id(f"memory-{n}"), fake_checksum(f"memory-{n}", size)
        os.link(originals[size], manifest_file(work / "tree", zarr_id, checksum))
        root = zarr_url(zarr_id, checksum)
        requests += [propfind(root + "0/0/0/"), Request("GET", root + "0/0/0/0", 307)]
        total += parsed[size]
    return requests, total


def _sample(pid: int, stop: Any, sink: Connection) -> None:
    """Sample the RSS of ``pid`` until ``stop`` is set; send (seconds, bytes) pairs to ``sink``."""
    started = time.monotonic()
    samples = []
    while not stop.wait(SAMPLE_EVERY):
        samples.append((time.monotonic() - started, rss(pid)))
    sink.send(samples)


def run(manifests: int = 200, duration: float = 120.0, cache_mb: int = 64) -> list[Figure]:
    """Measure, print the RSS timeline, and return the figure for target 6."""
    with tempfile.TemporaryDirectory(prefix="zarrdav-bench-") as folder:
        work = Path(folder)
        requests, working_set = _tree(work, manifests)
        options = ("--manifest-cache-mb", str(cache_mb))
        with start_zarrdav(
            work / "tree", work / "zarrdav.log", *options, index_dir=work / "index"
        ) as server:
            baseline = rss(server.pid)
            # A process, not a thread: run_load forks, and forking beside threads is unsafe.
            context = multiprocessing.get_context("fork")
            stop = context.Event()
            receiver, sender = context.Pipe(duplex=False)
            sampler = context.Process(target=_sample, args=(server.pid, stop, sender))
            sampler.start()
            load = run_load(server.port, requests, CLIENTS, duration)
            stop.set()
            samples: list[tuple[float, int]] = receiver.recv()
            sampler.join()
    values = [value for _, value in samples]
    half = len(values) // 2
    early, late = max(values[:half]), max(values[half:])
    bounded = late <= early * 1.1 and load.errors == 0
    print(f"{manifests} manifests ({working_set / MIB:.0f} MiB parsed, cache {cache_mb} MiB), "
          f"{CLIENTS} clients for {duration:g} s: {load.responses} answers "
          f"({load.responses / len(requests):.1f} walks), {load.errors} errors, "
          f"{load.server_closed} server-closed")
    for message in load.first_errors:
        print(f"  {message}")
    step = max(1, len(samples) // TIMELINE)
    timeline = samples[step - 1 :: step]
    print_table(["t s", "RSS MiB"], [(f"{t:.0f}", f"{v / MIB:.0f}") for t, v in timeline])
    print(f"RSS MiB: at start {baseline / MIB:.0f}, min {min(values) / MIB:.0f}, "
          f"max {max(values) / MIB:.0f}, final {values[-1] / MIB:.0f}; "
          f"max first half {early / MIB:.0f}, second half {late / MIB:.0f}")
    return [Figure("6", f"RSS over {manifests} manifests, {duration:g} s, cache {cache_mb} MiB",
                   f"max {max(values) / MIB:.0f} MiB, 2nd/1st half {late / early:.2f}",
                   "bounded (<= 1.10)", bounded)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--manifests", type=int, default=200, help="distinct manifests (default 200)")
    parser.add_argument("--duration", type=float, default=120.0,
                        help="seconds of walking (default 120)")
    parser.add_argument("--cache-mb", type=int, default=64, help="--manifest-cache-mb (default 64)")
    arguments = parser.parse_args()
    print_figures(run(arguments.manifests, arguments.duration, arguments.cache_mb))


if __name__ == "__main__":
    main()
