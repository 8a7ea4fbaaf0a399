"""Making boto3 S3 clients the same way everywhere."""

from __future__ import annotations

from typing import Any

import boto3
from botocore import UNSIGNED
from botocore.config import Config


def make_s3_client(
    endpoint_url: str | None = None,
    *,
    anonymous: bool = False,
    timeout: float = 30.0,
    max_connections: int = 32,
) -> Any:
    """An S3 client for AWS or any S3 endpoint; anonymous skips signing.

    Without ``anonymous`` the usual AWS credential chain applies (environment,
    shared files, instance roles).
    """
    config = Config(
        connect_timeout=timeout,
        read_timeout=timeout,
        retries={"max_attempts": 3, "mode": "standard"},
        max_pool_connections=max_connections,
        signature_version=UNSIGNED if anonymous else None,
        s3={"addressing_style": "path"} if endpoint_url else None,
    )
    return boto3.session.Session().client("s3", endpoint_url=endpoint_url, config=config)


def split_s3_url(url: str) -> tuple[str, str]:
    """``s3://bucket/some/prefix`` -> ``("bucket", "some/prefix/")``."""
    rest = url.removeprefix("s3://")
    bucket, _, prefix = rest.partition("/")
    if not bucket:
        raise ValueError(f"{url!r} names no bucket")
    prefix = prefix.strip("/")
    return bucket, f"{prefix}/" if prefix else ""
