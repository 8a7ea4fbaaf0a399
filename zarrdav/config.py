"""Settings: built-in defaults < TOML config file < ``ZARRDAV_*`` variables < command line.

The built-in defaults serve the public DANDI Archive; ``config/dandi.toml``
spells the same values out for operators to copy and edit.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

ENV_PREFIX = "ZARRDAV_"


class ConfigError(ValueError):
    """A setting is unknown or has a value of the wrong type."""


@dataclass(frozen=True, slots=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8080
    manifest_root: str = (
        "https://datasets.datalad.org/dandi/zarr-manifests/zarr-manifests-v2-sorted/"
    )
    zarr_base_url: str = "https://dandiarchive.s3.amazonaws.com/zarr"
    api_url: str = "https://api.dandiarchive.org/api"
    archive_page_size: int = 1000
    archive_ttl: float = 60.0
    blob_redirect: str = "archive"
    missing_manifest: str = "live-draft"
    missing_manifest_retry_after: int = 600
    manifest_cache_mb: int = 1024
    index_dir: str = "~/.cache/zarrdav/manifests"
    index_max_mb: int = 10240
    listing_ttl: float = 300.0
    cache_max_age: int = 60
    upstream_timeout: float = 30.0
    s3_endpoint_url: str = ""
    s3_anonymous: bool = False
    threads: int = 32
    workers: int = 1
    pin_cpus: bool = True
    log_level: str = "INFO"
    max_header_bytes: int = 65536
    max_path_bytes: int = 8192
    max_body_bytes: int = 65536
    request_timeout: float = 10.0
    listen_backlog: int = 1024
    max_connections: int = 4096
    drain_seconds: float = 10.0
    manifest_max_mb: int = 1024
    listing_max_mb: int = 64
    redirect_hosts: str = "dandiarchive.s3.amazonaws.com"
    upstream_share: float = 0.75
    log_format: str = "text"
    metrics_address: str = ""
    rate_limit_burst: int = 50
    rate_limit_per_second: float = 20.0
    archive_limit_burst: int = 20
    archive_limit_per_second: float = 5.0
    rate_limit_clients: int = 65536
    trusted_proxies: str = ""
    robots: str = "disallow"
    ready_interval: float = 5.0
    html_page_size: int = 1000
    file_delivery: str = "auto"
    presign_seconds: int = 300
    s3_sign_region: str = "us-east-1"
    allowed_hosts: str = ""
    cors_credentialed_origins: str = ""


HELP = {
    "host": "address to listen on",
    "port": "port to listen on",
    "manifest_root": "manifest tree: an https:// URL, s3://bucket/prefix/, or a directory",
    "zarr_base_url": "entries redirect to <this>/<zarr_id>/<entry path>?versionId=<id>",
    "api_url": "the DANDI Archive API base URL",
    "archive_page_size": "page size of archive API listings",
    "archive_ttl": "seconds archive answers about drafts, latest and Dandiset lists are reused",
    "blob_redirect": "where a blob asset redirects: archive (its /download/ URL) or s3 (one hop)",
    "missing_manifest": "a Zarr asset without a manifest: live-draft (live listing under draft, "
    "503 elsewhere) or error (503 everywhere)",
    "missing_manifest_retry_after": "seconds a 503 for a missing manifest tells clients to wait (Retry-After)",
    "manifest_cache_mb": "memory for parsed manifests, in MiB",
    "index_dir": "directory keeping parsed manifests across restarts (shared by workers); "
    "empty: none",
    "index_max_mb": "disk space for index_dir, in MiB; the least recently used go first",
    "listing_ttl": "seconds a manifest-tree folder listing is reused",
    "cache_max_age": "seconds clients and proxies may reuse answers about what can change "
    "(drafts, latest, listings; pinned paths: a year)",
    "upstream_timeout": "seconds one call to the manifest tree, the archive API or S3 may take, "
    "its whole answer included (504 past it)",
    "s3_endpoint_url": "S3 endpoint for an s3:// manifest root (default AWS)",
    "s3_anonymous": "read an s3:// manifest root without signing requests",
    "threads": "worker threads answering requests, per process",
    "workers": "server processes sharing the port (SO_REUSEPORT); more use more cores",
    "pin_cpus": "run each server process on one CPU, worker n on the n-th (Linux); "
    "its threads then stop passing Python's lock between CPUs",
    "log_level": "DEBUG, INFO, WARNING or ERROR",
    "max_header_bytes": "request line plus headers beyond this many bytes: 431",
    "max_path_bytes": "request target (path and query) beyond this many bytes: 414",
    "max_body_bytes": "request bodies (PROPFIND) beyond this many bytes: 413",
    "request_timeout": "seconds a client has to send a request's headers and body, "
    "from its first byte; then 408 and the connection closes",
    "listen_backlog": "connections the kernel queues before zarrdav accepts them",
    "max_connections": "open connections per process; more are closed at once",
    "drain_seconds": "on SIGTERM, seconds in-flight requests get to finish",
    "manifest_max_mb": "a larger manifest is refused (502) before it is read, in MiB",
    "listing_max_mb": "a larger manifest-tree listing or archive page is refused (502), in MiB",
    "redirect_hosts": "hosts (host[:port], space-separated) blobs may redirect to with "
    "blob_redirect = s3, beside the zarr_base_url's; others go to the archive's download URL",
    "upstream_share": "share of the threads that may wait on upstreams at once; past it, requests "
    "needing one answer 503 at once, so answers from cache keep flowing",
    "log_format": "request and upstream log lines as text or json (one object a line)",
    "metrics_address": "where /-/metrics is served: empty for the main address, host:port for a "
    "listener of its own, off for nowhere",
    "rate_limit_burst": "requests a client may send at once before its rate limit applies; 0: no limit",
    "rate_limit_per_second": "requests a second a client may send past its burst (429 beyond)",
    "archive_limit_burst": "requests needing the archive (uncached /dandisets/ paths) a client may send "
    "at once; 0: no limit",
    "archive_limit_per_second": "requests needing the archive a second a client may send past that burst",
    "rate_limit_clients": "clients whose rate limits are remembered; the longest remembered go first",
    "trusted_proxies": "addresses or networks (space-separated) whose X-Forwarded-For names the client",
    "robots": "robots.txt at the root: disallow (every path, for every crawler) or allow",
    "ready_interval": "seconds /-/readyz reuses its last check of the manifest tree and the archive",
    "html_page_size": "rows per HTML page of a folder for browsers (?page=N); other clients and "
    "PROPFIND always get every row",
    "file_delivery": "how a file's bytes reach the client: redirect (to S3), proxy (streamed through "
    "zarrdav) or auto (proxy for clients known not to follow a redirect to another host)",
    "presign_seconds": "seconds a presigned S3 URL for a private object stays valid",
    "s3_sign_region": "AWS region of the zarr_base_url's bucket, for presigning (SigV4)",
    "allowed_hosts": "Host names (space-separated; .example.org for its subdomains; * for any) "
    "answered; others get 400. Empty: IP addresses, localhost, host, and this machine's name "
    "when listening on every address",
    "cors_credentialed_origins": "origins (space-separated, e.g. https://app.example.org) that may "
    "read answers that depend on credentials, with Access-Control-Allow-Credentials",
}


def load_settings(
    config_file: Path | None = None,
    environ: Mapping[str, str] = os.environ,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Merge every source, later ones winning; ``overrides`` holds command-line values."""
    values: dict[str, Any] = {}
    if config_file is not None:
        try:
            with config_file.open("rb") as handle:
                document = tomllib.load(handle)
        except (OSError, tomllib.TOMLDecodeError) as error:
            raise ConfigError(f"{config_file}: {error}") from None
        values.update(_checked(document, f"{config_file}"))
    from_env = {
        key[len(ENV_PREFIX) :].lower(): value
        for key, value in environ.items()
        if key.startswith(ENV_PREFIX) and key != f"{ENV_PREFIX}CONFIG"
    }
    values.update(_checked(from_env, "environment"))
    values.update(_checked({k: v for k, v in (overrides or {}).items() if v is not None}, "command line"))
    return Settings(**values)


CHOICES = {
    "blob_redirect": ("archive", "s3"),
    "missing_manifest": ("live-draft", "error"),
    "log_level": ("DEBUG", "INFO", "WARNING", "ERROR"),
    "file_delivery": ("auto", "redirect", "proxy"),
    "log_format": ("text", "json"),
    "robots": ("disallow", "allow"),
}


def _checked(raw: Mapping[str, Any], origin: str) -> dict[str, Any]:
    types = {field.name: field.type for field in fields(Settings)}
    if "api_token" in raw:
        raise ConfigError(f"{origin}: api_token was removed: visitors now bring their own DANDI API "
                          "tokens (README, \"Embargoed data\"); a server-wide token acts for no one")
    unknown = sorted(set(raw) - set(types))
    if unknown:
        raise ConfigError(f"{origin}: unknown setting(s) {', '.join(unknown)}")
    values = {name: _convert(name, value, types[name], origin) for name, value in raw.items()}
    if "log_level" in values:
        values["log_level"] = values["log_level"].upper()
    for name, allowed in CHOICES.items():
        if name in values and values[name] not in allowed:
            raise ConfigError(f"{origin}: {name} must be one of {', '.join(allowed)}, not {values[name]!r}")
    return values


def _convert(name: str, value: Any, kind: Any, origin: str) -> Any:
    kind = {"str": str, "int": int, "float": float, "bool": bool}[str(kind)]
    if isinstance(value, str) and kind is bool:
        lowered = value.strip().lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off", ""):
            return False
    elif isinstance(value, kind) and not (kind is int and isinstance(value, bool)):
        return value
    elif isinstance(value, str | int) and kind in (int, float) and not isinstance(value, bool):
        try:
            return kind(value)
        except ValueError:
            pass
    raise ConfigError(f"{origin}: {name} must be a {kind.__name__}, not {value!r}")


def as_toml(settings: Settings) -> str:
    """The settings as a TOML document (``serve --print-config``); none of them is a secret."""
    lines = []
    for name, value in dataclasses.asdict(settings).items():
        rendered = str(value).lower() if isinstance(value, bool) else repr(value)
        if isinstance(value, str):
            rendered = '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
        lines.append(f"# {HELP[name]}\n{name} = {rendered}")
    return "\n".join(lines) + "\n"
