"""A small DANDI Archive whose assets are real: Zarrs and blobs on a (moto) bucket.

The archive double (``zarrdav.demo.archive``) serves the records built here;
the bytes they point at are on S3, so a client following zarrdav's redirects
gets them. The Dandisets:

- ``OPEN_ID``: two releases and a draft. The latest release (``RELEASE``) pins
  each Zarr at the checksum it was first written with, the draft at the one
  after the rewrite; the first release has a README only.
- ``UNPINNED_ID``: Zarr assets no manifest pins, one with a checksum (also in
  the release ``UNPINNED_RELEASE``) and one still ingesting (digest null).
- ``EMBARGOED_ID``: readable with ``OWNER_TOKEN`` only. Its Zarr has no
  manifest either, so listing it makes zarrdav itself talk to S3, through the
  URL the caller gives (a recording front, to see what zarrdav sends there).
- ``UNPUBLISHED_ID``: a draft only; ``EMPTY_ID``: a draft without assets.

Five Dandisets, three versions of ``OPEN_ID``, and folders of three or more
items: with a page size of 2 each of these listings takes several pages.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.zarr_data import UnpinnedZarr, VersionedZarr, write_unpinned_zarr
from zarrdav.demo.archive import ArchiveData, Asset, Dandiset, Version

OPEN_ID = "000001"
UNPINNED_ID = "000002"
EMBARGOED_ID = "000003"
UNPUBLISHED_ID = "000004"
EMPTY_ID = "000005"
OWNER_TOKEN = "owner-token-5b0c2e"

FIRST_RELEASE = "0.230101.0000"
RELEASE = "0.240101.0000"  # the latest release of OPEN_ID
UNPINNED_RELEASE = "0.240201.0000"

# Where OPEN_ID holds each Zarr, by zarr_format: deep in folders, and beside a blob.
ZARR_PATHS = {3: "sub-01/ses-1/micr/sub-01_ses-1_sample.ome.zarr", 2: "sub-02/sub-02_v2.zarr"}
LIVE_PATH = "live.zarr"  # UNPINNED_ID: a checksum without a manifest
INGESTING_PATH = "ingesting.zarr"  # UNPINNED_ID: no checksum yet
SECRET_ZARR_PATH = "secret.zarr"  # EMBARGOED_ID: no manifest, S3 reached through a recorder
SECRET_BLOB_PATH = "secret.nwb"

_CONTEXT = "https://raw.githubusercontent.com/dandi/schema/master/releases/0.6.4/context.json"


@dataclass(frozen=True)
class Archive:
    """The double's data, and what the tests compare the server's answers with."""

    data: ArchiveData
    blobs: dict[str, bytes]  # blob id -> its bytes on S3
    unpinned: dict[str, UnpinnedZarr]  # asset path -> the Zarr it names, for the unpinned ones

    def version(self, dandiset_id: str, version_id: str) -> Version:
        dandiset = next(d for d in self.data.dandisets if d.identifier == dandiset_id)
        return next(v for v in dandiset.versions if v.version == version_id)

    def asset(self, dandiset_id: str, version_id: str, path: str) -> Asset:
        return next(a for a in self.version(dandiset_id, version_id).assets if a.path == path)


def build_archive(
    s3: Any,
    s3_endpoint: str,
    bucket: str,
    workdir: Path,
    zarrs: Mapping[int, VersionedZarr],
    recorded_s3_endpoint: str,
) -> Archive:
    """Upload the blobs and unpinned Zarrs to ``bucket``; return the archive naming them.

    ``zarrs`` (by zarr_format) are already on the bucket with both manifests.
    The embargoed Zarr's URL uses ``recorded_s3_endpoint`` instead of
    ``s3_endpoint``; every other S3 URL is moto's own, path-style.
    """
    s3_base = f"{s3_endpoint}/{bucket}"
    blobs: dict[str, bytes] = {}

    def blob(path: str, body: bytes, encoding: str, day: str) -> Asset:
        blob_id = str(uuid.uuid4())
        s3.put_object(Bucket=bucket, Key=f"blobs/{blob_id[:3]}/{blob_id[3:6]}/{blob_id}", Body=body)
        blobs[blob_id] = body
        digest = {
            "dandi:dandi-etag": f"{hashlib.md5(hashlib.md5(body).digest()).hexdigest()}-1",
            "dandi:sha2-256": hashlib.sha256(body).hexdigest(),
        }
        return _asset(path, size=len(body), day=day, blob=blob_id,
                      metadata={"encodingFormat": encoding, "digest": digest})

    def pinned(zarr_format: int, state: int, day: str) -> Asset:
        versioned = zarrs[zarr_format]
        checksum = versioned.checksums[state]
        return _zarr_asset(ZARR_PATHS[zarr_format], versioned.zarr_id, checksum, day)

    old_readme = blob("README.md", b"# Versioned Zarrs\n", "text/markdown", "2023-01-01")
    readme = blob("README.md", b"# Versioned Zarrs\n\nNow with a rewritten Zarr.\n",
                  "text/markdown", "2024-03-01")
    session = blob("sub-01/sub-01_ses-1.nwb", b"\x89HDF\r\n\x1a\n" + bytes(range(200)),
                   "application/x-nwb", "2023-12-01")
    probe = blob("sub-02/sub-02.nwb", b"\x89HDF\r\n\x1a\n probe", "application/x-nwb",
                 "2023-12-02")
    notes = blob("docs/lab notes #1.txt", b"calibrated on Monday\n", "text/plain", "2023-12-03")
    released = (old_readme, session, probe, notes,
                pinned(3, 0, "2023-12-10"), pinned(2, 0, "2023-12-11"))
    draft = (readme, session, probe, notes, pinned(3, 1, "2024-03-02"), pinned(2, 1, "2024-03-03"))
    open_dandiset = _dandiset(OPEN_ID, "Versioned Zarrs", [
        (FIRST_RELEASE, "2023-01-01", (old_readme,)),
        (RELEASE, "2024-01-01", released),
        ("draft", "2022-12-01", draft),
    ], modified="2024-03-03")

    unpinned = {
        path: write_unpinned_zarr(s3, bucket, workdir)
        for path in (LIVE_PATH, INGESTING_PATH, SECRET_ZARR_PATH)
    }
    live = _zarr_asset(LIVE_PATH, unpinned[LIVE_PATH].zarr_id, unpinned[LIVE_PATH].checksum,
                       "2024-02-01")
    ingesting = _zarr_asset(INGESTING_PATH, unpinned[INGESTING_PATH].zarr_id, None, "2024-02-02")
    unpinned_dandiset = _dandiset(UNPINNED_ID, "Zarrs waiting for manifests", [
        (UNPINNED_RELEASE, "2024-02-01", (live,)),
        ("draft", "2024-01-15", (live, ingesting)),
    ], modified="2024-02-02")

    secret_zarr = unpinned[SECRET_ZARR_PATH]
    embargoed = _dandiset(EMBARGOED_ID, "Under embargo", [
        ("draft", "2024-04-01", (
            blob(SECRET_BLOB_PATH, b"\x89HDF\r\n\x1a\n secret", "application/x-nwb", "2024-04-01"),
            _zarr_asset(
                SECRET_ZARR_PATH, secret_zarr.zarr_id, secret_zarr.checksum, "2024-04-02",
                # The archive's download URL is of no use for a Zarr; only this one is read.
                content_url=[f"{recorded_s3_endpoint}/{bucket}/zarr/{secret_zarr.zarr_id}/"],
            ),
        )),
    ], modified="2024-04-02", embargoed=True)

    unpublished = _dandiset(UNPUBLISHED_ID, "Never published", [
        ("draft", "2024-05-01", (blob("dataset.nwb", b"\x89HDF draft only", "application/x-nwb",
                                      "2024-05-01"),)),
    ], modified="2024-05-01")
    empty = _dandiset(EMPTY_ID, "Nothing uploaded yet", [("draft", "2024-06-01", ())],
                      modified="2024-06-01")
    data = ArchiveData(
        dandisets=(open_dandiset, unpinned_dandiset, embargoed, unpublished, empty),
        s3_base_url=s3_base,
    )
    return Archive(data, blobs, unpinned)


def _time(day: str) -> str:
    return f"{day}T12:34:56.789000Z"


def _asset(path: str, *, size: int, day: str, metadata: dict[str, Any],
           blob: str | None = None, zarr: str | None = None) -> Asset:
    return Asset(path=path, asset_id=str(uuid.uuid4()), blob=blob, zarr=zarr, size=size,
                 created=_time(day), modified=_time(day),
                 metadata={"path": path, "contentSize": size, **metadata})


def _zarr_asset(path: str, zarr_id: str, checksum: str | None, day: str,
                content_url: list[str] | None = None) -> Asset:
    """A Zarr asset pinned at ``checksum`` (None: still ingesting, so digest is null)."""
    size = int(checksum.rpartition("--")[2]) if checksum else 0
    metadata: dict[str, Any] = {
        "encodingFormat": "application/x-zarr",
        "digest": {"dandi:dandi-zarr-checksum": checksum} if checksum else None,
    }
    if content_url is not None:
        metadata["contentUrl"] = content_url
    return _asset(path, size=size, day=day, zarr=zarr_id, metadata=metadata)


def _dandiset(
    identifier: str, name: str, versions: list[tuple[str, str, tuple[Asset, ...]]], *,
    modified: str, embargoed: bool = False,
) -> Dandiset:
    """``versions`` are ``(version id, day created, assets)``; the draft is modified last."""
    return Dandiset(
        identifier=identifier,
        created=min(_time(day) for _, day, _ in versions),
        modified=_time(modified),
        contact_person="Doe, Jane",
        embargo_status="EMBARGOED" if embargoed else "OPEN",
        owner_tokens=frozenset({OWNER_TOKEN}) if embargoed else frozenset(),
        versions=tuple(
            Version(
                version=version,
                name=name,
                status="Valid" if version == "draft" else "Published",
                created=_time(day),
                modified=_time(modified if version == "draft" else day),
                metadata=_metadata(identifier, version, name, assets),
                assets=assets,
            )
            for version, day, assets in versions
        ),
    )


def _metadata(
    identifier: str, version: str, name: str, assets: tuple[Asset, ...]
) -> dict[str, Any]:
    """Version metadata in the archive's key order, which is not alphabetical."""
    return {
        "id": f"DANDI:{identifier}/{version}",
        "name": name,
        "schemaKey": "Dandiset",
        "@context": _CONTEXT,
        "version": version,
        "description": "Zarrs pinned by manifests; the draft moves on. Ünïcödé kept.",
        "contributor": [
            {"name": "Doe, Jane", "schemaKey": "Person", "roleName": ["dcite:ContactPerson"]},
        ],
        "assetsSummary": {
            "schemaKey": "AssetsSummary",
            "numberOfFiles": len(assets),
            "numberOfBytes": sum(asset.size for asset in assets),
        },
    }
