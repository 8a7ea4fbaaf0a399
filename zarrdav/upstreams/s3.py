"""Making boto3 S3 clients the same way everywhere, and reading their errors one way."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import boto3
from botocore import UNSIGNED
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, ConnectTimeoutError, ReadTimeoutError

from zarrdav.errors import Forbidden, NotFound, UpstreamError, UpstreamTimeout, ZarrdavError
from zarrdav.upstreams.calls import observed

# botocore's attempts at each call (its standard retries): a server that must
# answer within a deadline gives each attempt a third of it.
S3_ATTEMPTS = 3


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
        retries={"max_attempts": S3_ATTEMPTS, "mode": "standard"},
        max_pool_connections=max_connections,
        signature_version=UNSIGNED if anonymous else None,
        s3={"addressing_style": "path"} if endpoint_url else None,
    )
    return boto3.session.Session().client("s3", endpoint_url=endpoint_url, config=config)


def make_signing_client(endpoint_url: str | None, region: str) -> Any:
    """A client that only presigns URLs (SigV4, which every region accepts), with zarrdav's own credentials.

    Presigning makes no request: the usual AWS credential chain is read, and
    the URL computed, in this process.
    """
    config = Config(
        signature_version="s3v4",
        s3={"addressing_style": "path"} if endpoint_url else {"addressing_style": "virtual"},
    )
    return boto3.session.Session().client("s3", endpoint_url=endpoint_url, region_name=region, config=config)


def split_s3_url(url: str) -> tuple[str, str]:
    """``s3://bucket/some/prefix`` -> ``("bucket", "some/prefix/")``."""
    rest = url.removeprefix("s3://")
    bucket, _, prefix = rest.partition("/")
    if not bucket:
        raise ValueError(f"{url!r} names no bucket")
    prefix = prefix.strip("/")
    return bucket, f"{prefix}/" if prefix else ""


# Codes S3 answers for a missing bucket, key or version (a HEAD has no body,
# so only its status), and for a refusal.
_ABSENT = frozenset(("404", "NoSuchKey", "NoSuchBucket", "NoSuchVersion"))
_DENIED = frozenset(("401", "403", "AccessDenied"))


def s3_error(error: ClientError, where: str) -> ZarrdavError:
    """S3's answer as zarrdav's error: absent is 404, refused 403, anything else 502.

    The one translation of S3's errors, for the S3 tree, live listings,
    ``manifest verify`` and the builder alike.
    """
    code = s3_code(error)
    if code in _ABSENT:
        return NotFound(f"S3: {where} does not exist ({code})")
    if code in _DENIED:
        return Forbidden(f"S3: {where}: access denied ({code})")
    return UpstreamError(f"S3: {where}: S3 error {code}")


def s3_code(error: ClientError) -> str:
    """S3's error code (for a HEAD, which has no body, its status)."""
    return str(error.response.get("Error", {}).get("Code", ""))


@contextmanager
def s3_errors(where: str, upstream: str = "S3") -> Iterator[None]:
    """botocore's failures inside the block as zarrdav's, causes kept; the
    block is one call to ``upstream`` (``calls.observed``)."""
    with observed(upstream, where):
        try:
            yield
        except ClientError as error:
            raise s3_error(error, where) from error
        except (ConnectTimeoutError, ReadTimeoutError) as error:
            raise UpstreamTimeout(f"S3: {where}: no answer in time") from error
        except BotoCoreError as error:
            raise UpstreamError(f"S3: {where}: {error.__class__.__name__}") from error
