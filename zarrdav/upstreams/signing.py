"""Presigned URLs for exactly one S3 object version, one method, a few minutes.

Private objects (embargoed data) cannot be read through the unsigned URLs
zarrdav redirects to. zarrdav signs, with its own AWS credentials, exactly
the key and version a request reads, for that request's method (a URL
signed for HEAD is refused for GET), and nothing else: never a prefix,
never a listing. Only URLs on the bucket of ``zarr_base_url`` are signed,
so an asset's metadata naming another host never gets zarrdav's signature.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, unquote

from botocore.exceptions import NoCredentialsError

from zarrdav.errors import UpstreamError
from zarrdav.upstreams.live import parse_s3_url
from zarrdav.upstreams.s3 import make_signing_client, s3_errors

_OPERATIONS = {"GET": "get_object", "HEAD": "head_object"}


class Signer:
    """Turns an unsigned pinned location on the Zarr base's bucket into its presigned URL."""

    def __init__(self, zarr_base_url: str, *, region: str, expires: int) -> None:
        try:
            base = parse_s3_url(zarr_base_url.rstrip("/") + "/")
        except UpstreamError:
            # A base that names no bucket: nothing on it can be signed.
            self.bucket, self._prefix, endpoint = "", "", None
        else:
            self.bucket, self._prefix, endpoint = base.bucket, f"{base.base_url}/", base.endpoint
        self._expires = expires
        self._client: Any = make_signing_client(endpoint, region)

    def signs(self, location: str) -> bool:
        """Whether ``location`` is on the bucket this signer signs for."""
        return bool(self._prefix) and location.startswith(self._prefix)

    def sign(self, location: str, method: str) -> str:
        """``location`` (``<bucket URL>/<key>[?versionId=<id>]``) presigned for ``method``."""
        operation = _OPERATIONS.get(method)
        if operation is None:
            raise ValueError(f"only GET and HEAD are signed, not {method}")
        if not self.signs(location):
            raise UpstreamError("S3: refusing to sign a URL outside the bucket of zarr_base_url")
        path, _, query = location[len(self._prefix):].partition("?")
        params: dict[str, str] = {"Bucket": self.bucket, "Key": unquote(path)}
        fields = parse_qsl(query, keep_blank_values=True)
        if not path or any(name != "versionId" or not value for name, value in fields) or len(fields) > 1:
            raise UpstreamError(f"S3: refusing to sign s3://{self.bucket}/{params['Key'][:200]}: "
                                "not one object version")
        if fields:
            params["VersionId"] = fields[0][1]
        where = f"s3://{self.bucket}/{params['Key']}"
        with s3_errors(where):
            try:
                url: str = self._client.generate_presigned_url(operation, Params=params, ExpiresIn=self._expires)
            except NoCredentialsError as error:
                raise UpstreamError(f"S3: cannot sign {where}: zarrdav has no AWS credentials") from error
        return url
