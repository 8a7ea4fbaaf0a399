"""What a Zarr's history costs, and which of its object versions nothing needs.

Every object version under a Zarr's prefix is one of: pinned by a manifest
(kept forever, it is what a published version serves), the key's current
version not yet pinned (the live Zarr; kept), or neither: reclaimable.
Delete markers are counted apart; they hold no bytes and are never removed
here, as removing a current one would bring a deleted key back.

Deleting is a separate call on a survey, and refuses a Zarr whose set of
manifests changed since it was surveyed, or that has no manifest at all: a
wrong manifest root would otherwise make a Zarr's whole history look
reclaimable.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, TextIO

from zarrdav.manifests.progress import Meter
from zarrdav.manifests.trees import ManifestTree
from zarrdav.manifests.versions import ObjectVersion, zarr_versions
from zarrdav.manifests.walk import zarr_manifests

# DeleteObjects takes at most this many keys a request.
DELETE_BATCH = 1000


@dataclass(slots=True)
class Tally:
    count: int = 0
    bytes: int = 0

    def add(self, size: int) -> None:
        self.count += 1
        self.bytes += size


@dataclass(slots=True)
class ZarrStorage:
    """One Zarr's object versions weighed against its manifests."""

    zarr_id: str
    manifests: list[str]  # checksums, sorted
    pinned: Tally = field(default_factory=Tally)
    current_unpinned: Tally = field(default_factory=Tally)
    reclaimable: Tally = field(default_factory=Tally)
    delete_markers: int = 0
    # Versions a manifest pins that the bucket no longer has (``verify`` names them).
    pins_missing: int = 0
    # The reclaimable versions themselves, when the survey was asked to keep them.
    candidates: list[ObjectVersion] = field(default_factory=list)
    # checksum -> the archive versions ("draft", "0.240101.0000") pinning it; None: not asked.
    used_by: dict[str, list[str]] | None = None

    def as_json(self) -> dict[str, Any]:
        document: dict[str, Any] = {
            "zarr_id": self.zarr_id,
            "manifests": self.manifests,
            "pinned": _tally_json(self.pinned),
            "current_unpinned": _tally_json(self.current_unpinned),
            "reclaimable": _tally_json(self.reclaimable),
            "delete_markers": self.delete_markers,
            "pins_missing": self.pins_missing,
        }
        if self.used_by is not None:
            document["used_by"] = self.used_by
            document["unpublished_manifests"] = self.unpublished
        return document

    @property
    def unpublished(self) -> list[str]:
        """Manifests no published version uses: the first to retire, when retiring any."""
        used = self.used_by or {}
        return [c for c in self.manifests if not any(v != "draft" for v in used.get(c, []))]


def _tally_json(tally: Tally) -> dict[str, int]:
    return {"count": tally.count, "bytes": tally.bytes}


def pinned_versions(tree: ManifestTree, zarr_id: str, checksums: Iterable[str]) -> set[tuple[str, str]]:
    """``(path, version id)`` of every entry any of the manifests pins."""
    pins: set[tuple[str, str]] = set()
    for checksum in checksums:
        pins.update((file.path, file.version_id) for file in tree.fetch_manifest(zarr_id, checksum).files())
    return pins


def survey_zarr(
    client: Any,
    bucket: str,
    prefix: str,
    zarr_id: str,
    tree: ManifestTree,
    *,
    keep_candidates: bool = False,
    meter: Meter | None = None,
) -> ZarrStorage:
    """Weigh every version under the Zarr's prefix against its manifests.

    The manifests are read before the bucket is listed. A manifest built in
    between pins versions that were current when it was built; any of them
    overwritten since looks reclaimable here, and ``delete_reclaimable``,
    seeing a manifest the survey did not read, refuses to delete.
    """
    storage = ZarrStorage(zarr_id, zarr_manifests(tree, zarr_id))
    pins = pinned_versions(tree, zarr_id, storage.manifests)
    found = 0
    listed = 0
    for page in zarr_versions(client, bucket, prefix, zarr_id):
        listed += len(page)
        for version in page:
            if version.delete_marker:
                storage.delete_markers += 1
            elif (version.path, version.version_id) in pins:
                found += 1
                storage.pinned.add(version.size)
            elif version.is_latest:
                storage.current_unpinned.add(version.size)
            else:
                storage.reclaimable.add(version.size)
                if keep_candidates:
                    storage.candidates.append(version)
        if meter:
            meter.note(f"{zarr_id}: {listed} versions listed")
    storage.pins_missing = len(pins) - found
    return storage


class SurveyOutdated(Exception):
    """The Zarr's manifests are not those it was surveyed with; nothing was deleted."""


def delete_reclaimable(
    client: Any,
    bucket: str,
    prefix: str,
    storage: ZarrStorage,
    tree: ManifestTree,
    record: TextIO,
    *,
    dry_run: bool,
) -> tuple[Tally, list[str]]:
    """Delete the survey's candidates; (what was deleted, one line per failure).

    Each version deleted (or, in a dry run, that would be) is written to
    ``record`` as a JSON line as soon as S3 confirms it, so an interrupted
    run still says what it removed.
    """
    if not storage.manifests:
        raise SurveyOutdated(f"{storage.zarr_id} has no manifest: nothing deleted")
    if zarr_manifests(tree, storage.zarr_id) != storage.manifests:
        raise SurveyOutdated(f"{storage.zarr_id}: its manifests changed since the survey: nothing deleted")
    zarr_key = f"{prefix}{storage.zarr_id}/"
    deleted = Tally()
    failures: list[str] = []
    for start in range(0, len(storage.candidates), DELETE_BATCH):
        batch = storage.candidates[start : start + DELETE_BATCH]
        if dry_run:
            done = batch
        else:
            done, errors = _delete_batch(client, bucket, zarr_key, batch)
            failures += errors
        for version in done:
            deleted.add(version.size)
            record.write(json.dumps({
                "bucket": bucket, "key": zarr_key + version.path, "version_id": version.version_id,
                "size": version.size, "last_modified": version.last_modified.isoformat(),
                "deleted": not dry_run,
            }) + "\n")
        record.flush()
    return deleted, failures


def _delete_batch(
    client: Any, bucket: str, zarr_key: str, batch: list[ObjectVersion]
) -> tuple[list[ObjectVersion], list[str]]:
    by_id = {(zarr_key + v.path, v.version_id): v for v in batch}
    answer = client.delete_objects(
        Bucket=bucket,
        Delete={"Objects": [{"Key": key, "VersionId": vid} for key, vid in by_id], "Quiet": False},
    )
    confirmed = ((item.get("Key"), item.get("VersionId")) for item in answer.get("Deleted", []))
    done = [by_id[pair] for pair in confirmed if pair in by_id]
    errors = [
        f"{item.get('Key')}?versionId={item.get('VersionId')}: {item.get('Code')} {item.get('Message', '')}"
        for item in answer.get("Errors", [])
    ]
    return done, errors
