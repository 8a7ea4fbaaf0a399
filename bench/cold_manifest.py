"""The first request into a large manifest nobody has asked for yet (target 3).

    python bench/cold_manifest.py [--entries N]

A synthetic manifest of 1.3 million entries (the largest real one) in a local
tree. A fresh ``zarrdav serve`` with an empty manifest index answers a first
PROPFIND Depth 1 into one of its directories: its time (parsing the manifest
and saving it to the index), and the server's resident-memory growth (VmRSS
after, and VmHWM for the peak on the way, each less VmRSS before). Then the
server is restarted with the same index directory and answers the same first
PROPFIND again, from the index. Both files were just written, so they sit in
the page cache: this measures parsing and loading, not disk reads.
"""

from __future__ import annotations

import argparse
import http.client
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from common import (
    HOST,
    Figure,
    fake_checksum,
    fake_zarr_id,
    manifest_file,
    peak_rss,
    print_figures,
    print_table,
    propfind,
    rss,
    start_zarrdav,
    timed,
    zarr_url,
)
from synthetic import write_manifest

SETTLE = 0.5
MB = 10**6  # the target is in MB


@dataclass(frozen=True)
class FirstAnswer:
    started_in: float
    first: float
    second: float
    rss_growth: int
    peak_growth: int


def _first_answer(tree: Path, index: Path, log: Path, path: str) -> FirstAnswer:
    """Start a server, let it settle, and time its first and second PROPFIND of ``path``."""
    with start_zarrdav(tree, log, index_dir=index) as server:
        time.sleep(SETTLE)
        before = rss(server.pid)
        connection = http.client.HTTPConnection(HOST, server.port, timeout=120)
        first, _ = timed(connection, propfind(path))
        growth, peak_growth = rss(server.pid) - before, peak_rss(server.pid) - before
        second, _ = timed(connection, propfind(path))
        connection.close()
        return FirstAnswer(server.started_in, first, second, growth, peak_growth)


def run(entries: int = 1_300_000) -> list[Figure]:
    """Measure, print the detail table, and return the figures for target 3."""
    with tempfile.TemporaryDirectory(prefix="zarrdav-bench-") as folder:
        work = Path(folder)
        tree = work / "tree"
        zarr_id, checksum = fake_zarr_id("cold"), fake_checksum("cold", entries)
        manifest = write_manifest(manifest_file(tree, zarr_id, checksum), entries)
        size = manifest.stat().st_size
        path = zarr_url(zarr_id, checksum) + "0/0/0/"
        cold = _first_answer(tree, work / "index", work / "cold.log", path)
        restart = _first_answer(tree, work / "index", work / "restart.log", path)
    print(f"first PROPFIND Depth 1 into a {entries}-entry manifest ({size / MB:.0f} MB on local disk)")
    print_table(
        ["server", "ready s", "first answer s", "second answer ms", "RSS growth MB", "peak growth MB"],
        [(name, f"{a.started_in:.2f}", f"{a.first:.3f}", f"{a.second * 1e3:.1f}",
          f"{a.rss_growth / MB:.0f}", f"{a.peak_growth / MB:.0f}")
         for name, a in (("fresh", cold), ("restarted", restart))],
    )
    return [
        Figure("3", f"cold first PROPFIND, {entries} entries", f"{cold.first:.2f} s", "<= 1.5 s",
               cold.first <= 1.5),
        Figure("3", "cold RSS growth (peak)",
               f"{cold.rss_growth / MB:.0f} ({cold.peak_growth / MB:.0f}) MB",
               "<= 150 MB", max(cold.rss_growth, cold.peak_growth) <= 150 * MB),
        Figure("3", "first answer after restart, manifest on disk", f"{restart.first * 1e3:.0f} ms",
               "<= 100 ms", restart.first <= 0.1),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=1_300_000,
                        help="manifest entries (default 1300000)")
    print_figures(run(parser.parse_args().entries))


if __name__ == "__main__":
    main()
