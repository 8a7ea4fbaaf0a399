"""The demo's S3: moto's server on a thread of this process, and a bucket like DANDI's.

In-process, moto starts in a fraction of a second (no second interpreter to
boot) and leaves no child process behind however the demo ends.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import boto3
from botocore.config import Config
from moto.server import ThreadedMotoServer

HOST = "127.0.0.1"


@contextmanager
def embedded_s3(port: int = 0) -> Iterator[str]:
    """Serve moto's S3 on ``HOST:port`` (0: any free port); yields its endpoint URL."""
    # werkzeug would log every S3 request, uploads included, on its own handler.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address=HOST, port=port, verbose=False)
    server.start()
    try:
        host, bound = server.get_host_and_port()
        yield f"http://{host}:{bound}"
    finally:
        server.stop()


def s3_client(endpoint: str) -> Any:
    """A client for the embedded S3: moto takes any keys, and fixed ones keep the user's AWS out."""
    session = boto3.session.Session(
        aws_access_key_id="zarrdav-demo",
        aws_secret_access_key="zarrdav-demo",
        region_name="us-east-1",
    )
    path_style = Config(s3={"addressing_style": "path"})
    return session.client("s3", endpoint_url=endpoint, config=path_style)


# AWS authorizes a HEAD of an object as s3:GetObject. moto checks an unsigned
# request's method against the bucket policy as "s3:<Method>Object" instead,
# so a HEAD asks for "s3:HeadObject", which no policy written for AWS grants,
# and then falls back to the object's ACL (private): 403. Granting that name
# too makes moto answer anonymous HEADs as S3 does (curl -I, davix, obstore,
# `zarrdav manifest verify --anonymous`).
_MOTO_HEAD = "s3:HeadObject"


def create_public_bucket(client: Any, name: str) -> None:
    """A versioned bucket anyone may read and list, as DANDI's: clients follow redirects unsigned."""
    client.create_bucket(Bucket=name)
    client.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    public_read = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": "*", "Action": ["s3:GetObject", "s3:GetObjectVersion", _MOTO_HEAD],
             "Resource": f"arn:aws:s3:::{name}/*"},
            {"Effect": "Allow", "Principal": "*", "Action": ["s3:ListBucket"],
             "Resource": f"arn:aws:s3:::{name}"},
        ],
    }
    client.put_bucket_policy(Bucket=name, Policy=json.dumps(public_read))
