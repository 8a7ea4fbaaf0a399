"""Which versions of the archive pin which of a Zarr's manifests.

A manifest no published version uses can be retired (deleted from the tree)
before collecting garbage, which then frees what only it pinned.
"""

from __future__ import annotations

from zarrdav.upstreams.archive import ArchiveClient, Asset


def manifest_users(archive: ArchiveClient, zarr_id: str) -> dict[str, list[str]]:
    """checksum -> the versions (``draft`` first, then published ones) whose asset pins it.

    A Zarr belongs to one Dandiset, and the archive names it by its draft
    asset's path; each published version is looked up at that path, so a
    version where the asset sat elsewhere is not seen.
    """
    record = archive.zarr(zarr_id)
    users: dict[str, list[str]] = {}
    if record.checksum:
        users[record.checksum] = ["draft"]
    for version in archive.published_versions(record.dandiset):
        item = archive.item_at(record.dandiset, version.version, record.name)
        if isinstance(item, Asset) and item.zarr == zarr_id and item.zarr_checksum:
            users.setdefault(item.zarr_checksum, []).append(version.version)
    return users
