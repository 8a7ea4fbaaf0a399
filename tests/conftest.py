from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.servers import Demo, moto_server, zarrdav_demo
from tests.zarr_data import VersionedZarr, write_v2_zarr, write_v3_zarr
from zarrdav.demo.s3 import create_public_bucket
from zarrdav.upstreams.s3 import make_s3_client

# moto accepts any credentials; boto3 insists on having some.
os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    with moto_server() as endpoint:
        yield endpoint


@pytest.fixture(scope="session")
def s3(s3_endpoint: str) -> Any:
    return make_s3_client(s3_endpoint)


@pytest.fixture
def bucket(s3: Any) -> str:
    """A fresh bucket with versioning on."""
    name = f"test-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    return name


@pytest.fixture(scope="module")
def demo() -> Iterator[Demo]:
    """`zarrdav demo` in its own process, once per test module (test_demo.py stops its own)."""
    with zarrdav_demo() as running:
        yield running


@pytest.fixture(scope="module")
def public_bucket(s3: Any) -> str:
    """A versioned bucket anyone may read and list, as DANDI's: clients follow
    the server's redirects to it without credentials."""
    name = f"public-{uuid.uuid4().hex[:12]}"
    create_public_bucket(s3, name)
    return name


@pytest.fixture(scope="module")
def manifest_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("manifests")


@pytest.fixture(scope="module")
def zarrs(
    s3: Any, s3_endpoint: str, public_bucket: str, manifest_root: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[int, VersionedZarr]:
    """A Zarr v2 and a Zarr v3 written with zarr-python, each pinned before and
    after a rewrite (two manifests), by zarr_format."""
    workdir = tmp_path_factory.mktemp("zarrs")
    return {
        2: write_v2_zarr(s3, s3_endpoint, public_bucket, workdir, manifest_root),
        3: write_v3_zarr(s3, s3_endpoint, public_bucket, workdir, manifest_root),
    }


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A port of 127.0.0.1 another program listens on."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        yield int(listener.getsockname()[1])
