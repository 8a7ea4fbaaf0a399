"""The dates of a manifest's directories, against parsing the manifest itself.

Writes a synthetic manifest (default the size of the largest real one, 1.3
million entries), parses it, then times the first ``directory_modified``
call (which dates every directory at once) and later calls, and prints them
with their ratio to the parse measured in the same run.

    python bench/directory_dates.py [--entries N]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from synthetic import write_manifest  # noqa: E402

from zarrdav.manifests.model import ManifestDirectory  # noqa: E402
from zarrdav.manifests.reader import read_manifest_file  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=1_300_000)
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        path = write_manifest(Path(folder, "manifest.json"), arguments.entries)
        started = time.perf_counter()
        manifest = read_manifest_file(path)
        parse_s = time.perf_counter() - started
    directories = len(manifest.directory_table.names)
    deepest = ManifestDirectory("", directories - 1)
    started = time.perf_counter()
    manifest.directory_modified(deepest)
    first_s = time.perf_counter() - started
    later = []
    for number in range(0, directories, max(1, directories // 1000)):
        started = time.perf_counter()
        manifest.directory_modified(ManifestDirectory("", number))
        later.append(time.perf_counter() - started)
    later_us = statistics.median(later) * 1e6
    print(f"manifest: {manifest.statistics.entries} entries, {directories} directories")
    print(f"parse {parse_s:.2f} s; first directory date (all directories) {first_s * 1000:.1f} ms; "
          f"later ones {later_us:.1f} us (median)")
    print(f"ratio first date / parse: {first_s / parse_s:.3f}")


if __name__ == "__main__":
    main()
