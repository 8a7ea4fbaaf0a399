"""Checking that every version a manifest pins still exists on S3.

A lifecycle rule that expires noncurrent versions silently breaks old
manifests; a HEAD of each ``key?versionId=`` finds the entries it broke.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from zarrdav.errors import NotFound, ZarrdavError
from zarrdav.manifests.model import Manifest, ManifestFile
from zarrdav.manifests.progress import Meter
from zarrdav.manifests.trees import ManifestTree
from zarrdav.upstreams.s3 import s3_code, s3_error

# A HEAD of a malformed version id answers 400: no such version can exist.
_MALFORMED_VERSION = frozenset(("400", "InvalidArgument"))


@dataclass(frozen=True, slots=True)
class Problem:
    file: ManifestFile
    gone: bool  # False: the check itself failed
    reason: str


def verify_manifest(
    manifest: Manifest,
    client: Any,
    bucket: str,
    prefix: str,
    zarr_id: str,
    concurrency: int = 16,
) -> Iterator[Problem]:
    """Yield a ``Problem`` for each entry whose pinned version cannot be read."""

    def check(file: ManifestFile) -> Problem | None:
        key = f"{prefix}{zarr_id}/{file.path}"
        try:
            client.head_object(Bucket=bucket, Key=key, VersionId=file.version_id)
        except ClientError as error:
            code = s3_code(error)
            if isinstance(s3_error(error, key), NotFound) or code in _MALFORMED_VERSION:
                return Problem(file, True, f"version gone (S3 {code})")
            return Problem(file, False, f"S3 error {code}")
        except BotoCoreError as error:
            return Problem(file, False, str(error))
        return None

    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        pending: set[Future[Problem | None]] = set()
        for file in manifest.files():
            if len(pending) >= concurrency * 4:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                yield from _problems(done)
            pending.add(pool.submit(check, file))
        yield from _problems(wait(pending).done)


def _problems(done: set[Future[Problem | None]]) -> Iterator[Problem]:
    for future in done:
        problem = future.result()
        if problem is not None:
            yield problem


@dataclass(slots=True)
class Verified:
    """What verifying the manifests of one Zarr found."""

    manifests: int = 0
    entries: int = 0
    gone: int = 0
    failed: int = 0  # checks that could not be made, manifests that could not be read


@dataclass(frozen=True, slots=True)
class Finding:
    zarr_id: str
    checksum: str
    problem: Problem | None  # None: the manifest itself could not be read
    reason: str


def verify_tree(
    tree: ManifestTree,
    manifests: Iterable[tuple[str, str]],
    client: Any,
    bucket: str,
    prefix: str,
    summary: dict[str, Verified],
    concurrency: int = 16,
    meter: Meter | None = None,
) -> Iterator[Finding]:
    """Verify each ``(zarr_id, checksum)`` of the tree in turn, ``concurrency``
    HEADs at a time; yield what is wrong, and count everything in ``summary``.

    One manifest at a time keeps memory to one parsed manifest however large
    the tree; an unreadable manifest is reported and the run goes on.
    """
    for zarr_id, checksum in manifests:
        tally = summary.setdefault(zarr_id, Verified())
        try:
            manifest = tree.fetch_manifest(zarr_id, checksum)
        except ZarrdavError as error:
            tally.failed += 1
            yield Finding(zarr_id, checksum, None, f"manifest unreadable: {error}")
        else:
            tally.manifests += 1
            tally.entries += manifest.statistics.entries
            for problem in verify_manifest(manifest, client, bucket, prefix, zarr_id, concurrency):
                tally.gone += problem.gone
                tally.failed += not problem.gone
                yield Finding(zarr_id, checksum, problem, problem.reason)
        if meter:
            meter.advance()
            meter.note(f"{zarr_id}: {tally.entries} entries, {tally.gone} gone")
