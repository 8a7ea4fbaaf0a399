"""The signer presigns one object version for one method, on the Zarr base's bucket only.

moto accepts any signature (and its IAM mode fails on presigned URLs), so
what a URL was signed for is checked here by recomputing its AWS Signature
Version 4 from the specification, with the test's secret key: a URL signed
for HEAD does not verify as GET, and one for another key or version does
not verify at all.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import uuid
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit

import httpx
import pytest

from zarrdav.errors import UpstreamError
from zarrdav.upstreams.signing import Signer

SECRET = os.environ["AWS_SECRET_ACCESS_KEY"]  # set for moto in conftest.py


def sigv4_signs(url: str, method: str, secret: str = SECRET) -> bool:
    """Whether ``url``'s query signature is the one SigV4 gives ``method`` on that URL."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    given = dict(query)
    signed = sorted((name, value) for name, value in query if name != "X-Amz-Signature")
    canonical_query = "&".join(f"{quote(n, safe='-_.~')}={quote(v, safe='-_.~')}" for n, v in signed)
    canonical = "\n".join(
        (method, parts.path, canonical_query, f"host:{parts.netloc}\n", "host", "UNSIGNED-PAYLOAD")
    )
    scope = given["X-Amz-Credential"].split("/", 1)[1]
    to_sign = "\n".join(("AWS4-HMAC-SHA256", given["X-Amz-Date"], scope,
                         hashlib.sha256(canonical.encode()).hexdigest()))
    key = f"AWS4{secret}".encode()
    for part in scope.split("/"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    expected = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, given["X-Amz-Signature"])


@pytest.fixture
def private_object(s3: Any, s3_endpoint: str) -> tuple[str, str, str]:
    """(zarr base URL, unsigned pinned location, pinned version id) of a private bucket's object
    whose key was written again after the pinned version."""
    bucket = f"private-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    key = "zarr/4a1b/arr/0.0"
    version = s3.put_object(Bucket=bucket, Key=key, Body=b"pinned bytes")["VersionId"]
    s3.put_object(Bucket=bucket, Key=key, Body=b"later bytes")
    base = f"{s3_endpoint}/{bucket}/zarr"
    return base, f"{base}/4a1b/arr/0.0?versionId={version}", version


def test_presigned_urls_read_the_pinned_version_of_a_private_object(private_object: tuple[str, str, str]) -> None:
    base, location, version = private_object
    assert httpx.get(location).status_code == 403  # moto refuses it unsigned
    signer = Signer(base, region="us-east-1", expires=120)
    get = signer.sign(location, "GET")
    assert httpx.get(get).content == b"pinned bytes"
    head = signer.sign(location, "HEAD")
    answer = httpx.head(head)
    assert answer.status_code == 200 and answer.headers["content-length"] == str(len(b"pinned bytes"))
    query = dict(parse_qsl(urlsplit(get).query))
    assert query["versionId"] == version and query["X-Amz-Expires"] == "120"
    assert sigv4_signs(get, "GET") and not sigv4_signs(get, "HEAD")
    assert sigv4_signs(head, "HEAD") and not sigv4_signs(head, "GET")
    other = get.replace("arr/0.0", "arr/0.1")
    assert not sigv4_signs(other, "GET")
    assert not sigv4_signs(get.replace(version, version[::-1]), "GET")


def test_virtual_hosted_base_signs_on_the_buckets_host() -> None:
    signer = Signer("https://dandiarchive.s3.amazonaws.com/zarr", region="us-east-1", expires=300)
    url = signer.sign("https://dandiarchive.s3.amazonaws.com/zarr/abc/0/0?versionId=v.1_x", "GET")
    parts = urlsplit(url)
    assert (parts.scheme, parts.netloc, parts.path) == ("https", "dandiarchive.s3.amazonaws.com", "/zarr/abc/0/0")
    assert dict(parse_qsl(parts.query))["versionId"] == "v.1_x"
    assert sigv4_signs(url, "GET")
    blob = signer.sign("https://dandiarchive.s3.amazonaws.com/blobs/2a1/b3c/2a1b3c", "HEAD")
    assert urlsplit(blob).path == "/blobs/2a1/b3c/2a1b3c" and sigv4_signs(blob, "HEAD")


@pytest.mark.parametrize("location", [
    "https://elsewhere.example/zarr/abc/0/0?versionId=1",  # another host
    "https://dandiarchive.s3.amazonaws.com.evil.example/zarr/abc?versionId=1",
    "https://dandiarchive.s3.amazonaws.com/zarr/abc/0/0?versionId=1&x-id=PutObject",  # more than a version
    "https://dandiarchive.s3.amazonaws.com/zarr/abc/0/0?versionId=",
    "https://dandiarchive.s3.amazonaws.com/",
])
def test_nothing_but_one_object_of_the_bucket_is_signed(location: str) -> None:
    signer = Signer("https://dandiarchive.s3.amazonaws.com/zarr", region="us-east-1", expires=300)
    with pytest.raises(UpstreamError):
        signer.sign(location, "GET")


def test_only_reads_are_signed() -> None:
    signer = Signer("https://dandiarchive.s3.amazonaws.com/zarr", region="us-east-1", expires=300)
    with pytest.raises(ValueError):
        signer.sign("https://dandiarchive.s3.amazonaws.com/zarr/abc/0/0?versionId=1", "PUT")


def test_a_base_naming_no_bucket_signs_nothing() -> None:
    signer = Signer("http://127.0.0.1:9", region="us-east-1", expires=300)
    assert not signer.signs("http://127.0.0.1:9/zarr/abc?versionId=1")
    with pytest.raises(UpstreamError):
        signer.sign("http://127.0.0.1:9/zarr/abc?versionId=1", "GET")
