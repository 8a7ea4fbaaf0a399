from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.servers import Demo, moto_server, zarrdav_demo
from zarrdav.s3 import make_s3_client

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
