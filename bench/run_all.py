"""Every benchmark in one go, ending with one table of figures against the targets (issues #6, #15, #17, #19).

    python bench/run_all.py [--smoke]

``--smoke`` uses short runs and small sizes (for CI; well under two minutes);
the default is the full run (about fifteen minutes). Targets of issues #15,
#17 and #19 are numbered <issue>.<point> (15.3, 17.4, 19.1). Misses are printed, never raised: the exit
status is 0 whenever every benchmark ran.
"""

from __future__ import annotations

import argparse
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import cold_manifest
import compression
import dandisets
import memory
import propfind
import proxy
import redirects
import scaleout
import slowclients
from common import Figure, print_figures


@dataclass(frozen=True)
class Plan:
    """Sizes and durations of one run."""

    redirect_seconds: float
    propfind_requests: int
    cold_entries: int
    memory_manifests: int
    memory_seconds: float
    memory_cache_mb: int
    slow_seconds: float
    slow_levels: tuple[tuple[int, int], ...]
    slow_burst: int
    dandiset_assets: int
    dandiset_seconds: float
    dandiset_requests: int
    proxy_mb: int
    proxy_clients: int
    scaleout_seconds: float
    listing_entries: int
    listing_rounds: int
    streamed_entries: int


SMOKE = Plan(redirect_seconds=2, propfind_requests=5, cold_entries=200_000,
             memory_manifests=40, memory_seconds=10, memory_cache_mb=16,
             slow_seconds=2, slow_levels=slowclients.QUICK_LEVELS,
             slow_burst=slowclients.QUICK_BURST,
             dandiset_assets=1000, dandiset_seconds=2, dandiset_requests=2, proxy_mb=8, proxy_clients=2,
             scaleout_seconds=3, listing_entries=10_000, listing_rounds=1,
             streamed_entries=5_000)
FULL = Plan(redirect_seconds=30, propfind_requests=20, cold_entries=1_300_000,
            memory_manifests=200, memory_seconds=120, memory_cache_mb=64,
            slow_seconds=10, slow_levels=slowclients.LEVELS, slow_burst=slowclients.BURST,
            dandiset_assets=10_000, dandiset_seconds=15, dandiset_requests=10,
            proxy_mb=100, proxy_clients=16, scaleout_seconds=30,
            listing_entries=100_000, listing_rounds=3, streamed_entries=50_000)


def _machine() -> str:
    cores = subprocess.run(["nproc"], capture_output=True, text=True, check=True).stdout.strip()
    return f"{platform.machine()}, {cores} cores (nproc), Python {platform.python_version()}"


def _load_average() -> str:
    """The 1-minute load average: other work on the machine skews every figure."""
    with open("/proc/loadavg") as loadavg:
        return loadavg.read().split()[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="short runs and small sizes, for CI")
    plan = SMOKE if parser.parse_args().smoke else FULL
    steps: list[tuple[str, Callable[[], list[Figure]]]] = [
        ("redirects", lambda: redirects.run(plan.redirect_seconds)),
        ("propfind", lambda: propfind.run(requests=plan.propfind_requests)),
        ("cold manifest", lambda: cold_manifest.run(plan.cold_entries)),
        ("memory",
         lambda: memory.run(plan.memory_manifests, plan.memory_seconds, plan.memory_cache_mb)),
        ("slow clients",
         lambda: slowclients.run(plan.slow_seconds, plan.slow_levels, plan.slow_burst)),
        ("dandisets",
         lambda: dandisets.run(plan.dandiset_assets, plan.dandiset_seconds, plan.dandiset_requests)),
        ("proxy", lambda: proxy.run(plan.proxy_mb, plan.proxy_clients)),
        ("scale-out", lambda: scaleout.run(plan.scaleout_seconds)),
        ("compression",
         lambda: compression.run(plan.listing_entries, plan.listing_rounds, plan.streamed_entries)),
    ]
    started, load_before = time.perf_counter(), _load_average()
    figures: list[Figure] = []
    for name, step in steps:
        print(f"\n== {name}", flush=True)
        figures += step()
        sys.stdout.flush()
    elapsed = time.perf_counter() - started
    print(f"\n== figures ({'smoke' if plan is SMOKE else 'full'} run, "
          f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {_machine()}, {elapsed:.0f} s, "
          f"load average {load_before} before, {_load_average()} after)")
    # "15.3" after "6": targets of issues #15 and #19 are numbered <issue>.<point>.
    print_figures(sorted(figures, key=lambda f: [int(part) for part in f.target.split(".")]))


if __name__ == "__main__":
    main()
