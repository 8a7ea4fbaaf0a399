"""The DANDI Zarr checksum against the test vectors of the manifest doc."""

import hashlib

import pytest

from zarrdav.manifests.checksum import zarr_checksum
from zarrdav.manifests.layout import is_checksum


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ([], "481a2f77ab786a0f45aafd5db0971caa-0--0"),
        (
            [("a/b", 1, "9dd4e461268c8034f5c8564e155c67a6"), ("c", 1, "415290769594460e2e485922904f345d")],
            "26054e501f570a8bfa69a2bc75e7c82d-2--2",
        ),
        (
            [(".zgroup", 17, md5(b'{"zarr_format":2}')), ("0/0", 4, md5(bytes(4)))],
            "bd7a1c3efbd29ca8cc36222b308cba8b-2--21",
        ),
        ([("0", 4, md5(bytes(4)))], "48d89be4f9b02ad059bca7516d8ec3d6-1--4"),
    ],
)
def test_vectors(files: list[tuple[str, int, str]], expected: str) -> None:
    assert zarr_checksum(files) == expected
    assert is_checksum(expected)


def test_order_of_files_does_not_matter() -> None:
    files = [("b/x", 3, md5(b"abc")), ("a", 1, md5(b"z")), ("b/a/q", 2, md5(b"hi"))]
    assert zarr_checksum(files) == zarr_checksum(reversed(files))
