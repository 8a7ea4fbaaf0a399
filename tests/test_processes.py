"""Server processes and the CPUs they run on (``--workers``, ``--pin-cpus``)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import httpx
import pytest

from tests.servers import zarrdav_server
from zarrdav.edge.server import choose_cpus

pytestmark = pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="CPU affinity is Linux's")

SERVING = re.compile(r"zarrdav serving \S+ on \S+ \(process (\d+)(?:, CPU (\d+))?\)")


def allowed_cpus(pid: int, thread: int | None = None) -> set[int]:
    """The CPUs ``taskset -p`` would list for the process or one of its threads."""
    status = Path(f"/proc/{pid}") / ("" if thread is None else f"task/{thread}") / "status"
    for line in status.read_text().splitlines():
        if line.startswith("Cpus_allowed_list:"):
            cpus: set[int] = set()
            for part in line.split()[1].split(","):
                first, _, last = part.partition("-")
                cpus.update(range(int(first), int(last or first) + 1))
            return cpus
    raise AssertionError(f"no Cpus_allowed_list in {status}")


def served(log: Path) -> list[tuple[int, int | None]]:
    """Each serving process's id and CPU, as its first line says."""
    return [(int(pid), int(cpu) if cpu else None) for pid, cpu in SERVING.findall(log.read_text())]


@pytest.mark.parametrize(
    ("workers", "allowed", "current", "expected"),
    [
        (1, [0, 1, 2, 3], 2, [2]),
        (3, [0, 1, 2, 3], 2, [2, 3, 0]),
        (4, [4, 6], 6, [6, 4, 6, 4]),  # more workers than CPUs: they share
        (2, [4, 6], 5, [4, 6]),  # placed outside the allowed set: start at its first
    ],
)
def test_workers_take_consecutive_cpus_from_the_current_one(
    workers: int, allowed: list[int], current: int, expected: list[int]
) -> None:
    assert choose_cpus(workers, allowed, current) == expected


def test_one_process_runs_its_threads_on_one_cpu(tmp_path: Path) -> None:
    log = tmp_path / "serve.log"
    with zarrdav_server("--manifest-root", str(tmp_path), "--threads", "4", log=log) as url:
        assert httpx.get(f"{url}/").status_code == 200
        [(pid, cpu)] = served(log)
        assert cpu in os.sched_getaffinity(0)
        assert allowed_cpus(pid) == {cpu}
        # The main thread, cheroot's loop and its 4 workers at least; numpy's
        # BLAS threads start on import, before the process pins itself.
        threads = [int(task) for task in os.listdir(f"/proc/{pid}/task")]
        assert sum(allowed_cpus(pid, thread) == {cpu} for thread in threads) >= 6


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs two CPUs")
def test_two_workers_run_on_two_cpus(tmp_path: Path) -> None:
    log = tmp_path / "serve.log"
    with zarrdav_server("--manifest-root", str(tmp_path), "--workers", "2", log=log) as url:
        for _ in range(4):  # the kernel spreads connections over both workers
            assert httpx.get(f"{url}/").status_code == 200
        workers = served(log)
        assert len(workers) == 2
        cpus = {cpu for _, cpu in workers}
        assert len(cpus) == 2 and cpus <= os.sched_getaffinity(0)
        for pid, cpu in workers:
            assert allowed_cpus(pid) == {cpu}


def test_no_pin_cpus_leaves_the_choice_to_the_kernel(tmp_path: Path) -> None:
    log = tmp_path / "serve.log"
    with zarrdav_server("--manifest-root", str(tmp_path), "--no-pin-cpus", log=log) as url:
        assert httpx.get(f"{url}/").status_code == 200
        [(pid, cpu)] = served(log)
        assert cpu is None
        assert allowed_cpus(pid) == os.sched_getaffinity(0)
