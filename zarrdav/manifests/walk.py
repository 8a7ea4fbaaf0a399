"""Every manifest of a tree, or of the Zarrs whose ids start a given way."""

from __future__ import annotations

from collections.abc import Iterator

from zarrdav.errors import NotFound
from zarrdav.manifests.trees import ManifestTree


def tree_zarr_ids(tree: ManifestTree, starting: str = "") -> Iterator[str]:
    """The Zarr ids with a folder in the tree, in tree order; only the folders
    ``<p1>/<p2>/`` that can hold ids beginning with ``starting`` are listed."""
    for p1 in tree.list_directory("").directories:
        if not p1.startswith(starting[:3]):
            continue
        for p2 in tree.list_directory(p1).directories:
            if not p2.startswith(starting[3:6]):
                continue
            for zarr_id in tree.list_directory(f"{p1}/{p2}").directories:
                # A Zarr filed under the wrong <p1>/<p2> could never be served: skip it.
                if zarr_id.startswith(starting) and zarr_id[:3] == p1 and zarr_id[3:6] == p2:
                    yield zarr_id



def zarr_manifests(tree: ManifestTree, zarr_id: str) -> list[str]:
    """The checksums of the Zarr's manifests, sorted; none when the tree has no folder for it."""
    try:
        return tree.checksums(zarr_id)
    except NotFound:
        return []
