"""Server processes and the CPUs they run on (``--workers``, ``--pin-cpus``)."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import httpx
import pytest

from tests.servers import zarrdav_process, zarrdav_server
from zarrdav.config import Settings
from zarrdav.edge.server import _serve_process, choose_cpus
from zarrdav.edge.supervisor import run_workers
from zarrdav.errors import StartupError

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
        wait_for(lambda: len(served(log)) == 2, "second serving worker")  # one may answer first
        workers = served(log)
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


def children(parent: int) -> set[int]:
    """The processes whose parent is ``parent`` (this kernel has no /proc/<pid>/task/*/children)."""
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue  # it ended meanwhile
            if int(stat.rsplit(")", 1)[1].split()[1]) == parent:
                found.add(int(entry.name))
    return found


def wait_for(condition: Callable[[], bool], what: str, limit: float = 60) -> None:
    deadline = time.monotonic() + limit
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"no {what} within {limit} s")
        time.sleep(0.05)


def test_a_killed_worker_is_restarted_on_its_cpu_and_sigterm_stops_them_all(tmp_path: Path) -> None:
    log = tmp_path / "serve.log"
    with zarrdav_process("--manifest-root", str(tmp_path), "--workers", "2", log=log) as (url, parent):
        wait_for(lambda: len(served(log)) == 2, "two serving workers")
        (victim, cpu), (survivor, _) = served(log)
        assert children(parent.pid) == {victim, survivor}
        os.kill(victim, signal.SIGKILL)
        wait_for(lambda: len(served(log)) == 3, "restarted worker")
        ended = rf"zarrdav: worker [12] \(process {victim}\) killed by SIGKILL; restarting in 0\.5 s"
        assert re.search(ended, log.read_text()), log.read_text()
        replacement, its_cpu = served(log)[2]
        assert replacement not in (victim, survivor)
        assert its_cpu == cpu
        if cpu is not None:
            assert allowed_cpus(replacement) == {cpu}
        assert children(parent.pid) == {survivor, replacement}
        for _ in range(4):
            assert httpx.get(f"{url}/").status_code == 200
        parent.send_signal(signal.SIGTERM)
        assert parent.wait(60) == 0
        # The parent waited for its workers: they are gone, not orphaned.
        assert not any(Path(f"/proc/{pid}").exists() for pid in (survivor, replacement))


def test_workers_that_keep_dying_stop_the_server_with_status_1(tmp_path: Path) -> None:
    log = tmp_path / "serve.log"
    with zarrdav_process("--manifest-root", str(tmp_path), "--workers", "2", log=log) as (_, parent):
        deadline = time.monotonic() + 120
        while parent.poll() is None and time.monotonic() < deadline:
            for worker in children(parent.pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(worker, signal.SIGKILL)
            time.sleep(0.05)
        assert parent.wait(60) == 1
        said = log.read_text()
        # Two workers may die twice each within the window; the fifth death ends it.
        assert said.count("killed by SIGKILL; restarting in") == 4, said
        assert said.splitlines()[-1] == "zarrdav: error: workers keep dying (5 deaths within 60 s); stopping"


def test_a_worker_that_cannot_listen_stops_the_server_with_its_reason(
    taken_port: int, tmp_path: Path
) -> None:
    # The port was free when the parent checked, and taken before the worker
    # bound it: the worker says why, and the parent does not restart it.
    settings = Settings(host="127.0.0.1", port=taken_port, manifest_root=str(tmp_path), index_dir="")
    with pytest.raises(StartupError, match=rf"^cannot listen on 127\.0\.0\.1:{taken_port}: address already in use$"):
        run_workers(partial(_serve_process, settings, True), [None, None], stop_within=10)


def test_one_process_that_cannot_listen_says_why(taken_port: int, tmp_path: Path) -> None:
    settings = Settings(host="127.0.0.1", port=taken_port, manifest_root=str(tmp_path), index_dir="")
    with pytest.raises(StartupError, match=rf"^cannot listen on 127\.0\.0\.1:{taken_port}: address already in use$"):
        _serve_process(settings, reuse_port=False, cpu=None)
