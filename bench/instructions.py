"""Instructions per GET redirect inside the server: zarrdav against bare cheroot (target 1).

    python bench/instructions.py [--requests N] [--entries N]

Both servers run under valgrind's callgrind, which counts the instructions
the whole process executes (every thread: cheroot, the app, the request
log's flusher). After the same warm-up as ``redirects.py``, one keep-alive
client sends ``--requests`` GETs of the same 256 files to each; the counts
between two dumps, divided by the requests, are the same every run whatever
else the machine does, unlike req/s or CPU time on a shared VM. The ratio
bare / zarrdav is the req/s ratio a CPU-bound server would show if both ran
their instructions equally fast. A third server, the bare app on zarrdav's
``KeepAliveConnection``, separates the application's own cost from what the
connection saves. Needs ``valgrind`` (Debian package); takes a few minutes.
"""

from __future__ import annotations

import argparse
import http.client
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import (
    BENCH,
    HOST,
    ZARRDAV,
    Request,
    Server,
    fake_checksum,
    fake_zarr_id,
    manifest_file,
    send,
    start_server,
    zarr_url,
)
from redirects import redirect_paths, warm
from synthetic import write_manifest

SETTLE_SECONDS = 20  # the background indexer saves the manifest after the warm-up
THREADS = "32"  # as redirects.py runs both servers


def _under_callgrind(command: list[str], out: Path) -> list[str]:
    # valgrind's own messages go to a file: the server's log must show only its ready line.
    return ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
            f"--log-file={out}.valgrind", *command]


def _dumped(server: Server, out: Path) -> int:
    """Dump the counts since the last dump; their total."""
    before = set(out.parent.glob(f"{out.name}.*[0-9]"))
    subprocess.run(["callgrind_control", "-d", str(server.pid)], capture_output=True, check=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        for dump in set(out.parent.glob(f"{out.name}.*[0-9]")) - before:
            for line in dump.read_text(errors="replace").splitlines():
                if line.startswith("summary:"):
                    return int(line.split()[1])
        time.sleep(0.2)
    raise RuntimeError("callgrind wrote no dump")


def _per_request(server: Server, out: Path, requests: list[Request], count: int) -> float:
    time.sleep(SETTLE_SECONDS)
    connection = http.client.HTTPConnection(HOST, server.port, timeout=600)
    _dumped(server, out)
    for n in range(count):
        request = requests[n % len(requests)]
        response, _ = send(connection, request)
        if response.status != request.expect:
            raise RuntimeError(f"GET {request.path}: {response.status}")
    total = _dumped(server, out)
    connection.close()
    return total / count


def run(count: int, entries: int) -> tuple[float, float, float]:
    """Instructions per GET redirect of zarrdav, of bare cheroot, and of bare
    cheroot serving through zarrdav's connection."""
    with tempfile.TemporaryDirectory(prefix="zarrdav-bench-") as folder:
        work = Path(folder)
        tree = work / "tree"
        zarr_id, checksum = fake_zarr_id("redirects"), fake_checksum("redirects", entries)
        manifest = write_manifest(manifest_file(tree, zarr_id, checksum), entries)
        requests = redirect_paths(manifest, zarr_url(zarr_id, checksum))
        command = [*ZARRDAV, "--manifest-root", str(tree), "--index-dir", str(work / "index"),
                   "--threads", THREADS]
        out = work / "zarrdav.callgrind"
        with start_server(_under_callgrind(command, out), work / "zarrdav.log", timeout=600) as zarrdav:
            headers = warm(zarrdav.port, requests)
            zarrdav_count = _per_request(zarrdav, out, requests, count)
        bare_command = [sys.executable, str(BENCH / "bare_server.py"), THREADS, "307 Temporary Redirect",
                        json.dumps(headers)]
        bare_counts = []
        for name, extra in (("bare", []), ("bare-connection", ["--zarrdav-connection"])):
            out = work / f"{name}.callgrind"
            with start_server(_under_callgrind([*bare_command, *extra], out), work / f"{name}.log",
                              timeout=600) as bare:
                warm(bare.port, requests)
                bare_counts.append(_per_request(bare, out, requests, count))
    return zarrdav_count, bare_counts[0], bare_counts[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000, help="GETs counted (default 2000)")
    parser.add_argument("--entries", type=int, default=10_000, help="manifest entries (default 10000)")
    arguments = parser.parse_args()
    if shutil.which("valgrind") is None:
        sys.exit("instructions.py needs valgrind (Debian: apt-get install valgrind)")
    zarrdav, bare, bare_connection = run(arguments.requests, arguments.entries)
    print(f"instructions per GET redirect, {arguments.requests} GETs over one keep-alive connection:")
    print(f"  zarrdav                                   {zarrdav:10,.0f}")
    print(f"  bare cheroot                              {bare:10,.0f}")
    print(f"  bare cheroot with zarrdav's connection    {bare_connection:10,.0f}")
    print(f"  bare / zarrdav {bare / zarrdav:.2f} (target 1 asks >= 0.9 of the req/s)")
    print(f"  bare with zarrdav's connection / zarrdav {bare_connection / zarrdav:.2f} "
          "(the application's own cost)")


if __name__ == "__main__":
    main()
