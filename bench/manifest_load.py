"""Cold load of a large manifest: zarrdav's reader against plain ``json.loads``.

Writes a synthetic manifest the size of the largest real one (1.3 million
entries), then loads it in fresh processes, several times each, and prints
median load time and resident-memory growth, with ratios to the baseline.

    python bench/manifest_load.py [--entries N] [--runs K]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from synthetic import write_manifest  # noqa: E402

PROBE = """
import json, os, sys, time
def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
path = sys.argv[2]
if sys.argv[1] != "json.loads":  # imports happen before the clock and the memory baseline
    from pathlib import Path
    from zarrdav.manifests.reader import read_manifest_file
before = rss()
start = time.perf_counter()
if sys.argv[1] == "json.loads":
    with open(path, "rb") as f:
        kept = json.loads(f.read())
else:
    kept = read_manifest_file(Path(path))
elapsed = time.perf_counter() - start
print(json.dumps({"seconds": elapsed, "rss_growth": rss() - before}))
"""


def measure(kind: str, path: Path, runs: int) -> tuple[float, float]:
    seconds, growth = [], []
    for _ in range(runs):
        output = subprocess.run(
            [sys.executable, "-c", PROBE, kind, str(path)], check=True, capture_output=True, text=True
        ).stdout
        result = json.loads(output)
        seconds.append(result["seconds"])
        growth.append(result["rss_growth"] / 2**20)
    return statistics.median(seconds), statistics.median(growth)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=1_300_000)
    parser.add_argument("--runs", type=int, default=3)
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        path = write_manifest(Path(folder, "manifest.json"), arguments.entries)
        size = path.stat().st_size / 2**20
        print(f"manifest: {arguments.entries} entries, {size:.0f} MiB; median of {arguments.runs} runs")
        base_s, base_mb = measure("json.loads", path, arguments.runs)
        ours_s, ours_mb = measure("zarrdav", path, arguments.runs)
    print(f"{'reader':<12}{'load s':>9}{'RSS growth MiB':>16}")
    print(f"{'json.loads':<12}{base_s:>9.2f}{base_mb:>16.0f}")
    print(f"{'zarrdav':<12}{ours_s:>9.2f}{ours_mb:>16.0f}")
    print(f"ratio zarrdav/json.loads: time {ours_s / base_s:.2f}, memory {ours_mb / base_mb:.2f}")


if __name__ == "__main__":
    main()
