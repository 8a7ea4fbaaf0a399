"""Large listings: bytes and time gzip against identity, and memory while streaming (issue 17.4).

    python bench/compression.py [--entries N] [--rounds K] [--memory-entries M]
                                [--clients C] [--baseline-ref REF]

A flat Zarr directory of N (default 100,000) files: its PROPFIND Depth 1
(allprop) and its HTML page, each asked K times with ``Accept-Encoding:
gzip`` and with ``identity``, in turns, on fresh connections read to their
end (``Connection: close``): bytes on the wire (headers and chunked framing
included) and the time until the last byte. The gzipped bodies are checked
to decompress to the identity ones.

Then C (default 16) clients at once PROPFIND a directory of M (default
50,000) files, on a fresh server each time, identity and gzip, while the
server's resident memory is sampled: the growth is the highest sample less
the resident memory before (manifest already loaded). With
``--baseline-ref``, the same on the code of that git commit (zarrdav
checked out into a temporary directory), e.g. the commit before answers
were streamed.
"""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path

from common import (
    BENCH,
    HOST,
    NOWHERE,
    Figure,
    Server,
    count_responses,
    fake_checksum,
    fake_zarr_id,
    manifest_file,
    median,
    print_figures,
    print_table,
    rss,
    start_server,
    start_zarrdav,
    zarr_url,
)
from synthetic import write_manifest

ENCODINGS = ("gzip", "identity")
MEMORY_GOAL_MB = 100
_SAMPLE_SECONDS = 0.01


def exchange(port: int, method: str, path: str, encoding: str, depth: str | None = None) -> tuple[int, float, bytes]:
    """Bytes received, seconds until the last one, and the decoded body of one request."""
    head = f"{method} {path} HTTP/1.1\r\nHost: {HOST}\r\nAccept-Encoding: {encoding}\r\nConnection: close\r\n"
    if depth is not None:
        head += f"Depth: {depth}\r\n"
    started = time.perf_counter()
    pieces: list[bytes] = []
    with socket.create_connection((HOST, port), timeout=120) as connection:
        connection.sendall(f"{head}\r\n".encode())
        while piece := connection.recv(1 << 20):
            pieces.append(piece)
    elapsed = time.perf_counter() - started
    answer = b"".join(pieces)
    return len(answer), elapsed, _decoded(answer)


def _decoded(answer: bytes) -> bytes:
    head, _, body = answer.partition(b"\r\n\r\n")
    headers = head.lower()
    status = int(head.split(b" ", 2)[1])
    if status not in (200, 207):
        raise RuntimeError(f"answered {head[:200]!r}")
    if b"\r\ntransfer-encoding: chunked" in headers:
        body = _dechunked(body)
    if b"\r\ncontent-encoding: gzip" in headers:
        body = zlib.decompress(body, 16 + zlib.MAX_WBITS)
    return body


def _dechunked(body: bytes) -> bytes:
    parts, position = [], 0
    while True:
        end = body.index(b"\r\n", position)
        size = int(body[position:end].split(b";")[0], 16)
        if size == 0:
            return b"".join(parts)
        parts.append(body[end + 2 : end + 2 + size])
        position = end + 4 + size


def _drain(port: int, path: str, encoding: str, failures: list[str]) -> None:
    """A PROPFIND read to its end without keeping it (the client's memory is not measured)."""
    head = (f"PROPFIND {path} HTTP/1.1\r\nHost: {HOST}\r\nDepth: 1\r\nAccept-Encoding: {encoding}\r\n"
            "Connection: close\r\n\r\n")
    try:
        with socket.create_connection((HOST, port), timeout=120) as connection:
            connection.sendall(head.encode())
            first = connection.recv(1 << 16)
            if not first.startswith(b"HTTP/1.1 207"):
                failures.append(first[:100].decode(errors="replace"))
            while connection.recv(1 << 16):
                pass
    except OSError as error:
        failures.append(str(error))


def concurrent_growth(server: Server, path: str, encoding: str, clients: int) -> tuple[float, float]:
    """Resident MB growth of ``server`` (highest sample less before) with ``clients`` PROPFINDs at once; seconds."""
    exchange(server.port, "PROPFIND", path, encoding, depth="1")  # the manifest loaded and indexed
    time.sleep(1.0)  # the index written and swapped in for the parsed copy
    before = rss(server.pid)
    failures: list[str] = []
    threads = [threading.Thread(target=_drain, args=(server.port, path, encoding, failures))
               for _ in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    highest = before
    while any(thread.is_alive() for thread in threads):
        highest = max(highest, rss(server.pid))
        time.sleep(_SAMPLE_SECONDS)
    elapsed = time.perf_counter() - started
    if failures:
        raise RuntimeError(f"{len(failures)} PROPFINDs failed: {failures[0]}")
    return (highest - before) / 2**20, elapsed


def _baseline_server(ref: str, work: Path, tree: Path) -> Server:
    """``zarrdav serve`` as of git commit ``ref``, from a temporary checkout of its package."""
    source = work / f"zarrdav-{ref}"
    source.mkdir()
    archive = subprocess.run(["git", "-C", str(BENCH.parent), "archive", ref, "zarrdav"],
                             capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(source)], input=archive, check=True)
    # Its package ahead of this checkout's (an editable install, or the working directory).
    launcher = (f"import sys, runpy; sys.path.insert(0, {str(source)!r}); "
                "runpy.run_module('zarrdav', run_name='__main__')")
    command = [sys.executable, "-c", launcher, "serve", "--port", "0", "--api-url", f"{NOWHERE}/api",
               "--zarr-base-url", f"{NOWHERE}/zarr", "--manifest-root", str(tree),
               "--index-dir", str(work / f"index-{ref}")]
    return start_server(command, work / f"baseline-{ref}.log")


def run(entries: int = 100_000, rounds: int = 3, memory_entries: int = 50_000, clients: int = 16,
        baseline_ref: str | None = None) -> list[Figure]:
    with tempfile.TemporaryDirectory(prefix="zarrdav-bench-") as folder, ExitStack() as servers:
        work = Path(folder)
        tree = work / "tree"
        big = (fake_zarr_id("compression"), fake_checksum("compression", entries + 3))
        wide = (fake_zarr_id("streaming"), fake_checksum("streaming", memory_entries + 3))
        write_manifest(manifest_file(tree, *big), entries, flat=True)
        write_manifest(manifest_file(tree, *wide), memory_entries, flat=True)
        server = servers.enter_context(start_zarrdav(tree, work / "zarrdav.log", index_dir=work / "index"))
        folder_path = zarr_url(*big) + "0/"
        asks = {"PROPFIND": ("PROPFIND", "1"), "HTML": ("GET", None)}
        wire: dict[tuple[str, str], list[int]] = {}
        times: dict[tuple[str, str], list[float]] = {}
        bodies: dict[tuple[str, str], bytes] = {}
        for kind, (method, depth) in asks.items():
            exchange(server.port, method, folder_path, "identity", depth)  # warm
            for _ in range(rounds):
                for encoding in ENCODINGS:
                    size, elapsed, body = exchange(server.port, method, folder_path, encoding, depth)
                    wire.setdefault((kind, encoding), []).append(size)
                    times.setdefault((kind, encoding), []).append(elapsed)
                    bodies[(kind, encoding)] = body
            if bodies[(kind, "gzip")] != bodies[(kind, "identity")]:
                raise RuntimeError(f"{kind}: the gzipped body does not decompress to the identity one")
        responses = count_responses(bodies[("PROPFIND", "identity")])
        print(f"A directory of {entries:,} files ({responses:,} PROPFIND responses), "
              f"median of {rounds}, fresh connections, read to the end")
        print_table(
            ["answer", "encoding", "MB on the wire", "median ms"],
            [(kind, encoding, f"{median(wire[(kind, encoding)]) / 1e6:.2f}",
              f"{median(times[(kind, encoding)]) * 1e3:.0f}")
             for kind in asks for encoding in ENCODINGS],
        )
        figures = []
        for kind in asks:
            gz, plain = (median(wire[(kind, encoding)]) for encoding in ENCODINGS)
            tg, tp = (median(times[(kind, encoding)]) for encoding in ENCODINGS)
            figures += [
                Figure("17.4", f"{kind} of {entries:,} entries, bytes gzip / identity",
                       f"{gz / plain:.3f} ({gz / 1e6:.1f} / {plain / 1e6:.1f} MB)", "(not a target)", None),
                Figure("17.4", f"{kind} of {entries:,} entries, time gzip / identity",
                       f"{tg / tp:.2f} ({tg * 1e3:.0f} / {tp * 1e3:.0f} ms)", "(not a target)", None),
            ]
        server.stop()

        wide_path = zarr_url(*wide) + "0/"
        variants: list[tuple[str, str, Server]] = []
        rows = []
        for encoding in ENCODINGS:
            variants.append((f"streaming, {encoding}", encoding, servers.enter_context(start_zarrdav(
                tree, work / f"memory-{encoding}.log", index_dir=work / f"index-{encoding}"))))
        if baseline_ref is not None:
            variants.append((f"baseline {baseline_ref}, identity", "identity",
                             servers.enter_context(_baseline_server(baseline_ref, work, tree))))
        growth: dict[str, float] = {}
        for name, encoding, variant in variants:
            growth[name], elapsed = concurrent_growth(variant, wide_path, encoding, clients)
            variant.stop()
            rows.append((name, f"{growth[name]:.0f}", f"{elapsed:.1f}"))
        print(f"\n{clients} PROPFIND Depth 1 at once of a directory of {memory_entries:,} files, fresh servers")
        print_table(["server", "RSS growth MB", "seconds"], rows)
        for name, _, _ in variants:
            streamed = name.startswith("streaming")
            figures.append(Figure(
                "17.4", f"RSS growth, {clients} PROPFINDs of {memory_entries:,} entries, {name}",
                f"{growth[name]:.0f} MB", f"< {MEMORY_GOAL_MB} MB" if streamed else "(baseline)",
                growth[name] < MEMORY_GOAL_MB if streamed else None,
            ))
        return figures


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=100_000, help="files in the listed directory")
    parser.add_argument("--rounds", type=int, default=3, help="requests per answer and encoding")
    parser.add_argument("--memory-entries", type=int, default=50_000,
                        help="files in the directory of the concurrent PROPFINDs")
    parser.add_argument("--clients", type=int, default=16, help="concurrent PROPFINDs")
    parser.add_argument("--baseline-ref", help="also measure memory on the code of this git commit")
    arguments = parser.parse_args(argv)
    print_figures(run(arguments.entries, arguments.rounds, arguments.memory_entries,
                      arguments.clients, arguments.baseline_ref))


if __name__ == "__main__":
    main()
