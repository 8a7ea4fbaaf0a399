"""What the demo's archive says: Dandiset 000001, published and changed since, and 000002, a draft.

000001's published version pins each Zarr's first checksum and its draft the
changed one, as the archive does once Zarrs can be published: the release
keeps its bytes while the draft moves on.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from zarrdav.demo.archive import ArchiveData, Asset, Dandiset, Version
from zarrdav.demo.sample import SampleBlob, SampleZarr

DANDISET = "000001"
DRAFT_ONLY = "000002"
RELEASE = "0.240101.0000"
OME_PATH = "sub-01/sub-01_sample-01.ome.zarr"
TRACES_PATH = "sub-01/sub-01_traces.zarr"
README_PATH = "README.txt"
README_BLOB = "5f0c2d1e-3a4b-4c5d-8e6f-7a8b9c0d1e2f"
README = f"""\
zarrdav demo

Dandiset {DANDISET} was published as version {RELEASE}; its two Zarrs were
changed afterwards (chunks rewritten, one chunk deleted). The published
version still serves the bytes it was published with, and the draft serves
the new ones: every file is a redirect to one exact S3 object version.
"""
# Not DANDI's prefix (10.48324): the demo's DOIs are registered nowhere.
DOI_PREFIX = "10.80507"
CREATED = "2023-12-01T09:00:00.000000Z"
FIRST_UPLOAD = "2023-12-15T12:00:00.000000Z"
PUBLISHED = "2024-01-01T00:00:00.000000Z"
_IDS = uuid.UUID("9a6c5b1e-0f4d-4e2a-9c3b-d7e8f9a0b1c2")  # namespace of the demo's asset ids


def demo_archive(
    zarrs: Mapping[str, SampleZarr], readme: SampleBlob, s3_base_url: str
) -> ArchiveData:
    """The archive over ``zarrs`` (by asset path) and the README blob on ``s3_base_url``."""
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    readme_asset = _readme_asset(DANDISET, readme, FIRST_UPLOAD)
    first = [_zarr_asset(path, z.zarr_id, z.first, FIRST_UPLOAD) for path, z in zarrs.items()]
    changed = [_zarr_asset(path, z.zarr_id, z.changed, now) for path, z in zarrs.items()]
    release = Version(
        RELEASE, "zarrdav demo", "Published", PUBLISHED, PUBLISHED,
        _metadata(DANDISET, RELEASE, "zarrdav demo"), (readme_asset, *first),
    )
    draft = Version(
        "draft", "zarrdav demo", "Valid", CREATED, now,
        _metadata(DANDISET, "draft", "zarrdav demo"), (readme_asset, *changed),
    )
    never_published = Version(
        "draft", "zarrdav demo: never published", "Valid", CREATED, now,
        _metadata(DRAFT_ONLY, "draft", "zarrdav demo: never published"),
        (_readme_asset(DRAFT_ONLY, readme, now),),
    )
    return ArchiveData(
        dandisets=(
            Dandiset(DANDISET, CREATED, now, "Demo, Zarrdav", versions=(release, draft)),
            Dandiset(DRAFT_ONLY, CREATED, now, "Demo, Zarrdav", versions=(never_published,)),
        ),
        s3_base_url=s3_base_url,  # the archive double derives each asset's S3 contentUrl from it
    )


def _metadata(dandiset: str, version: str, name: str) -> dict[str, Any]:
    """A small version document, for ``dandiset.yaml``; a release's has a DOI, as the archive mints."""
    published = version != "draft"
    year = f"20{version[2:4]}" if published else "2023"
    doi = f"{DOI_PREFIX}/dandi.{dandiset}/{version}"
    where = f"https://doi.org/{doi}" if published else f"https://dandiarchive.org/dandiset/{dandiset}/draft"
    return {
        "id": f"DANDI:{dandiset}/{version}",
        "citation": f"Demo, Zarrdav ({year}) {name} (Version {version}) [Data set]. DANDI Archive. {where}",
        **({"doi": doi} if published else {}),
        "identifier": f"DANDI:{dandiset}",
        "name": name,
        "description": "Sample data for zarrdav's offline demo.",
        "version": version,
        "schemaKey": "Dandiset",
        "license": ["spdx:CC-BY-4.0"],
        "contributor": [
            {"name": "Demo, Zarrdav", "roleName": ["dcite:ContactPerson"], "schemaKey": "Person"}
        ],
    }


def _zarr_asset(path: str, zarr_id: str, checksum: str, when: str) -> Asset:
    size = int(checksum.rsplit("--", 1)[1])  # a Zarr checksum ends in --<total bytes>
    return Asset(
        path=path,
        asset_id=_asset_id(DANDISET, path, checksum),
        blob=None,
        zarr=zarr_id,
        size=size,
        created=when,
        modified=when,
        metadata={
            "path": path,
            "contentSize": size,
            "encodingFormat": "application/x-zarr",
            "digest": {"dandi:dandi-zarr-checksum": checksum},
            "dateModified": when,
        },
    )


def _readme_asset(dandiset: str, blob: SampleBlob, when: str) -> Asset:
    return Asset(
        path=README_PATH,
        asset_id=_asset_id(dandiset, README_PATH, blob.etag),
        blob=blob.blob_id,
        zarr=None,
        size=blob.size,
        created=when,
        modified=when,
        metadata={
            "path": README_PATH,
            "contentSize": blob.size,
            "encodingFormat": "text/plain",
            "digest": {"dandi:dandi-etag": blob.etag, "dandi:sha2-256": blob.sha256},
            "dateModified": when,
        },
    )


def _asset_id(dandiset: str, path: str, content: str) -> str:
    """Stable across runs; shared by versions whose asset did not change, as the archive's are."""
    return str(uuid.uuid5(_IDS, f"{dandiset}/{path}/{content}"))
