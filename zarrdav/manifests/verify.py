"""Checking that every version a manifest pins still exists on S3.

A lifecycle rule that expires noncurrent versions silently breaks old
manifests; a HEAD of each ``key?versionId=`` finds the entries it broke.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from zarrdav.errors import NotFound
from zarrdav.manifests.model import Manifest, ManifestFile
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
