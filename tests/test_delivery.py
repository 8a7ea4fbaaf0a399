"""Files delivered by redirect, presigned redirect and proxy, against moto's S3 and real clients.

Two Zarrs, each pinned by a manifest of real object versions: one in a
bucket anyone may read (DANDI's public data), one in a bucket that refuses
anonymous readers (embargoed data: the Zarr of an embargoed Dandiset of the
archive double, read by its owner). Each key was written twice, and the
manifests pin the first version, so bytes of the wrong version show.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from tests.archive_data import EMBARGOED_ID, OWNER_TOKEN, _dandiset, _zarr_asset
from tests.manifests import WHEN, one_manifest_tree
from tests.servers import zarrdav_server
from zarrdav.demo.archive import ArchiveData, serve_archive
from zarrdav.manifests.checksum import zarr_checksum
from zarrdav.manifests.model import ManifestFile
from zarrdav.manifests.writer import render_manifest
from zarrdav.routes import zarr_version_path

CHUNK = "arr/0/0"
CHUNK_BYTES = os.urandom(300_000)  # several 64 KiB chunks of the proxy, and a partial one
ATTRS = ".zattrs"
ATTRS_BYTES = b'{"name": "pinned"}'
NEON = "cadaver/0.24 neon/0.32.5"
OWNER = ("anyone", OWNER_TOKEN)  # HTTP Basic: the token as the password
SECRET_ZARR = "secret.zarr"


@dataclass(frozen=True)
class PinnedZarr:
    bucket: str
    zarr_id: str
    checksum: str
    versions: dict[str, str]  # entry -> pinned version id
    etags: dict[str, str]
    tree: Path  # a manifest tree holding its one manifest

    @property
    def private(self) -> bool:
        return self.bucket.startswith("private-")

    def path(self, entry: str) -> str:
        """Its entry's path: an embargoed Zarr's under its Dandiset (never presigned under /zarrs/)."""
        if self.private:
            return f"/dandisets/{EMBARGOED_ID}/draft/{SECRET_ZARR}/{entry}"
        return f"{zarr_version_path(self.zarr_id, self.checksum)}{entry}"


def pin_zarr(s3: Any, bucket: str, root: Path) -> PinnedZarr:
    """Two entries written twice; a manifest tree at ``root`` pinning their first versions."""
    zarr_id = str(uuid.uuid4())
    files, versions, etags = [], {}, {}
    for entry, body in ((ATTRS, ATTRS_BYTES), (CHUNK, CHUNK_BYTES)):
        key = f"zarr/{zarr_id}/{entry}"
        first = s3.put_object(Bucket=bucket, Key=key, Body=body)
        s3.put_object(Bucket=bucket, Key=key, Body=b"a later version, not pinned")
        head = s3.head_object(Bucket=bucket, Key=key, VersionId=first["VersionId"])
        etag = first["ETag"].strip('"')
        versions[entry], etags[entry] = first["VersionId"], etag
        files.append(ManifestFile(entry, first["VersionId"], head["LastModified"], len(body), etag))
    checksum = zarr_checksum((f.path, f.size, f.etag) for f in files)
    one_manifest_tree(root, zarr_id, checksum, render_manifest(files, checksum))
    return PinnedZarr(bucket, zarr_id, checksum, versions, etags, root)


@pytest.fixture(scope="module")
def private_bucket(s3: Any) -> str:
    """A versioned bucket with no policy: moto refuses its objects to anonymous readers."""
    name = f"private-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    return name


@pytest.fixture(scope="module")
def embargoed(s3: Any, private_bucket: str, tmp_path_factory: pytest.TempPathFactory) -> PinnedZarr:
    return pin_zarr(s3, private_bucket, tmp_path_factory.mktemp("private-tree"))


@pytest.fixture(scope="module")
def public(s3: Any, public_bucket: str, tmp_path_factory: pytest.TempPathFactory) -> PinnedZarr:
    return pin_zarr(s3, public_bucket, tmp_path_factory.mktemp("public-tree"))


@contextmanager
def serve(s3_endpoint: str, zarr: PinnedZarr, *options: str, log: Path | None = None) -> Iterator[str]:
    """``zarrdav serve`` of the Zarr; an embargoed one as the Zarr asset of an embargoed Dandiset."""
    with ExitStack() as stack:
        archive: tuple[str, ...] = ()
        if zarr.private:
            asset = _zarr_asset(SECRET_ZARR, zarr.zarr_id, zarr.checksum, "2024-04-02")
            dandiset = _dandiset(EMBARGOED_ID, "Under embargo", [("draft", "2024-04-01", (asset,))],
                                 modified="2024-04-02", embargoed=True)
            data = ArchiveData((dandiset,), s3_base_url=f"{s3_endpoint}/{zarr.bucket}")
            archive = ("--api-url", stack.enter_context(serve_archive(data)))
        yield stack.enter_context(zarrdav_server(
            "--manifest-root", str(zarr.tree), "--zarr-base-url", f"{s3_endpoint}/{zarr.bucket}/zarr",
            "--s3-sign-region", "us-east-1", "--index-dir", "", *archive, *options, log=log,
        ))


@dataclass(frozen=True)
class Served:
    mode: str
    url: str
    log: Path


@pytest.fixture(scope="module", params=["redirect", "proxy", "auto"])
def embargoed_server(
    request: pytest.FixtureRequest, s3_endpoint: str, embargoed: PinnedZarr,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Served]:
    log = tmp_path_factory.mktemp("log") / "zarrdav.log"
    with serve(s3_endpoint, embargoed, "--file-delivery", request.param, log=log) as url:
        yield Served(request.param, url, log)


def test_moto_refuses_the_private_objects_to_anonymous_readers(s3_endpoint: str, embargoed: PinnedZarr) -> None:
    url = f"{s3_endpoint}/{embargoed.bucket}/zarr/{embargoed.zarr_id}/{CHUNK}?versionId={embargoed.versions[CHUNK]}"
    assert httpx.get(url).status_code == 403


def test_private_files_are_redirected_presigned_or_proxied(embargoed_server: Served, embargoed: PinnedZarr) -> None:
    url = embargoed_server.url + embargoed.path(CHUNK)
    assert httpx.get(url, timeout=30).status_code == 401
    with httpx.Client(timeout=30, auth=OWNER) as client:
        answer = client.get(url)
        assert answer.headers["cache-control"] == "private, no-store"
        assert "access-control-allow-origin" not in answer.headers
        # auto redirects: httpx is no client that cannot follow.
        if embargoed_server.mode != "proxy":
            assert answer.status_code == 307
            location = answer.headers["location"]
            assert "X-Amz-Signature=" in location and f"versionId={embargoed.versions[CHUNK]}" in location
            assert urlsplit(location).path.endswith(f"/zarr/{embargoed.zarr_id}/{CHUNK}")
            assert httpx.get(location).content == CHUNK_BYTES
            head = client.head(url)
            assert head.status_code == 307 and head.headers["location"] != location
            followed = httpx.head(head.headers["location"])
            assert followed.status_code == 200 and followed.headers["content-length"] == str(len(CHUNK_BYTES))
        else:
            assert answer.status_code == 200 and answer.content == CHUNK_BYTES
        assert client.get(url, follow_redirects=True).content == CHUNK_BYTES
    # A signed URL is a credential, and so is the token: neither is written to the log.
    said = embargoed_server.log.read_text()
    assert "X-Amz-Signature" not in said and OWNER_TOKEN not in said


def test_a_listing_is_never_signed(embargoed_server: Served, embargoed: PinnedZarr) -> None:
    page = httpx.get(embargoed_server.url + embargoed.path("arr/0/"), timeout=30, auth=OWNER)
    assert page.status_code == 200 and b"X-Amz" not in page.content
    assert page.headers["cache-control"] == "private, no-store"


@pytest.fixture(scope="module")
def proxy(s3_endpoint: str, embargoed: PinnedZarr, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with serve(s3_endpoint, embargoed, "--file-delivery", "proxy") as url:
        yield url


@pytest.fixture(scope="module")
def public_proxy(s3_endpoint: str, public: PinnedZarr, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with serve(s3_endpoint, public, "--file-delivery", "proxy") as url:
        yield url


def test_proxied_private_file_keeps_s3s_validators(proxy: str, embargoed: PinnedZarr) -> None:
    answer = httpx.get(proxy + embargoed.path(CHUNK), timeout=30, auth=OWNER)
    assert answer.status_code == 200 and answer.content == CHUNK_BYTES
    assert answer.headers["etag"] == f'"{embargoed.etags[CHUNK]}"'
    assert answer.headers["content-length"] == str(len(CHUNK_BYTES))
    assert "last-modified" in answer.headers and "location" not in answer.headers
    head = httpx.head(proxy + embargoed.path(CHUNK), timeout=30, auth=OWNER)
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-length"] == str(len(CHUNK_BYTES))


def test_proxy_passes_ranges_through(proxy: str, embargoed: PinnedZarr) -> None:
    url = proxy + embargoed.path(CHUNK)
    part = httpx.get(url, headers={"Range": "bytes=70000-200000"}, timeout=30, auth=OWNER)
    assert part.status_code == 206 and part.content == CHUNK_BYTES[70000:200001]
    assert part.headers["content-range"] == f"bytes 70000-200000/{len(CHUNK_BYTES)}"
    beyond = httpx.get(url, headers={"Range": f"bytes={len(CHUNK_BYTES) + 10}-"}, timeout=30, auth=OWNER)
    assert beyond.status_code == 416 and beyond.text.count("\n") == 1


def test_proxy_answers_not_modified(proxy: str, embargoed: PinnedZarr) -> None:
    url = proxy + embargoed.path(ATTRS)
    answer = httpx.get(url, headers={"If-None-Match": f'"{embargoed.etags[ATTRS]}"'}, timeout=30, auth=OWNER)
    assert answer.status_code == 304 and answer.content == b""


def test_public_files_are_proxied_unsigned_and_offered_to_every_origin(public_proxy: str, public: PinnedZarr) -> None:
    answer = httpx.get(public_proxy + public.path(CHUNK), timeout=30)
    assert answer.status_code == 200 and answer.content == CHUNK_BYTES
    assert answer.headers["access-control-allow-origin"] == "*"
    assert answer.headers["cache-control"] == "public, max-age=31536000, immutable"


def test_a_version_gone_from_the_bucket_is_404_and_s3_away_502(
    s3: Any, s3_endpoint: str, public_bucket: str, tmp_path: Path
) -> None:
    zarr_id = str(uuid.uuid4())
    key = f"zarr/{zarr_id}/{ATTRS}"
    put = s3.put_object(Bucket=public_bucket, Key=key, Body=ATTRS_BYTES)
    s3.delete_object(Bucket=public_bucket, Key=key, VersionId=put["VersionId"])
    file = ManifestFile(ATTRS, put["VersionId"], WHEN, len(ATTRS_BYTES), put["ETag"].strip('"'))
    checksum = zarr_checksum([(file.path, file.size, file.etag)])
    tree = one_manifest_tree(tmp_path / "tree", zarr_id, checksum, render_manifest([file], checksum))
    path = f"{zarr_version_path(zarr_id, checksum)}{ATTRS}"
    base = ("--manifest-root", str(tree), "--index-dir", "", "--file-delivery", "proxy")
    with zarrdav_server(*base, "--zarr-base-url", f"{s3_endpoint}/{public_bucket}/zarr") as url:
        gone = httpx.get(url + path, timeout=30)
        assert gone.status_code == 404 and "no longer in the bucket" in gone.text
    with zarrdav_server(*base, "--zarr-base-url", "http://127.0.0.1:9/bucket/zarr") as url:
        away = httpx.get(url + path, timeout=30)
        assert away.status_code == 502 and away.text.count("\n") == 1 and "Traceback" not in away.text


@pytest.fixture(scope="module")
def auto(s3_endpoint: str, embargoed: PinnedZarr, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with serve(s3_endpoint, embargoed) as url:  # the default: auto
        yield url


def test_auto_proxies_only_for_clients_that_cannot_follow(auto: str, embargoed: PinnedZarr) -> None:
    url = auto + embargoed.path(CHUNK)
    assert httpx.get(url, timeout=30, auth=OWNER).status_code == 307
    for agent in (NEON, "Microsoft-WebDAV-MiniRedir/10.0.19045"):
        answer = httpx.get(url, headers={"User-Agent": agent}, timeout=30, auth=OWNER)
        assert answer.status_code == 200 and answer.content == CHUNK_BYTES


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("cadaver") is None, reason="cadaver is not installed")
def test_cadaver_gets_the_pinned_bytes_through_auto(auto: str, embargoed: PinnedZarr, tmp_path: Path) -> None:
    target = tmp_path / "chunk"
    folder = auto + embargoed.path("arr/0/")
    # cadaver reads its credentials from ~/.netrc (any login, the token as the password)
    # and its commands from standard input when it is not a terminal.
    netrc = tmp_path / ".netrc"
    netrc.write_text(f"machine 127.0.0.1\nlogin anyone\npassword {OWNER_TOKEN}\n")
    netrc.chmod(0o600)
    done = subprocess.run(
        ["cadaver", folder], input=f"get 0 {target}\nquit\n", capture_output=True, text=True,
        timeout=60, env={**os.environ, "HOME": str(tmp_path)},
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert target.read_bytes() == CHUNK_BYTES
    assert OWNER_TOKEN not in done.stdout + done.stderr


def test_credentialed_cors_only_for_named_origins(
    s3_endpoint: str, public: PinnedZarr, tmp_path_factory: pytest.TempPathFactory
) -> None:
    named = "https://viewer.example.org"
    with serve(s3_endpoint, public, "--file-delivery", "redirect",
               "--cors-credentialed-origins", named) as url, httpx.Client(base_url=url, timeout=30) as client:
        path = public.path(CHUNK)
        anonymous = client.get(path, headers={"Origin": "https://elsewhere.example"})
        assert anonymous.headers["access-control-allow-origin"] == "*"
        with_token = {"Authorization": "token abc"}
        elsewhere = client.get(path, headers={**with_token, "Origin": "https://elsewhere.example"})
        assert "access-control-allow-origin" not in elsewhere.headers
        assert elsewhere.headers["vary"] == "Origin"
        allowed = client.get(path, headers={**with_token, "Origin": named})
        assert allowed.headers["access-control-allow-origin"] == named
        assert allowed.headers["access-control-allow-credentials"] == "true"
        assert allowed.headers["vary"] == "Origin"
        preflight = client.options(path, headers={"Origin": named, "Access-Control-Request-Method": "GET",
                                                  "Access-Control-Request-Headers": "authorization"})
        assert preflight.headers["access-control-allow-origin"] == named
        assert "Authorization" in preflight.headers["access-control-allow-headers"]
