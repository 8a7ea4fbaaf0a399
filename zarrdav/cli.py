"""The ``zarrdav`` command line."""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import fields
from collections.abc import Callable, Sequence
from pathlib import Path

from botocore.exceptions import BotoCoreError, ClientError

from zarrdav import __version__
from zarrdav.config import HELP, ConfigError, Settings, as_toml, load_settings
from zarrdav.errors import ZarrdavError
from zarrdav.manifests.builder import ManifestStore, build_manifest, terminal_progress, zarr_ids
from zarrdav.manifests.checksum import zarr_checksum
from zarrdav.manifests.layout import checksum_of_filename
from zarrdav.manifests.reader import read_manifest_file
from zarrdav.manifests.verify import verify_manifest
from zarrdav.upstreams.s3 import make_s3_client
from zarrdav.edge.server import serve

Command = Callable[[argparse.Namespace], int]


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    arguments = parser.parse_args(argv)
    command: Command = arguments.command
    try:
        return command(arguments)
    except ZarrdavError as error:
        print(f"zarrdav: error: {error}", file=sys.stderr)
    except (BotoCoreError, ClientError) as error:
        print(f"zarrdav: S3 error: {error}", file=sys.stderr)
    except KeyboardInterrupt:
        print("zarrdav: interrupted", file=sys.stderr)
    return 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="zarrdav", description="A read-only WebDAV server for versioned Zarrs."
    )
    parser.add_argument("--version", action="version", version=f"zarrdav {__version__}")
    commands = parser.add_subparsers(title="commands", required=True, metavar="COMMAND")
    manifest = commands.add_parser(
        "manifest", help="build, checksum and verify Zarr manifests",
        description="Tools for Zarr manifests: files that freeze one state of a Zarr "
        "on a versioned S3 bucket.",
    )
    tools = manifest.add_subparsers(title="manifest commands", required=True, metavar="TOOL")

    build = tools.add_parser(
        "build", help="build manifests from a versioned bucket",
        description="List the object versions of a Zarr, keep each key's latest live "
        "version, and write <p1>/<p2>/<zarr_id>/<checksum>.json under --out. Building "
        "again from the same state writes nothing new.",
    )
    _add_s3_arguments(build)
    which = build.add_mutually_exclusive_group(required=True)
    which.add_argument("--zarr-id", help="the Zarr to build (a folder name under --prefix)")
    which.add_argument("--all", action="store_true", help="build every Zarr under --prefix")
    build.add_argument(
        "--out", required=True, metavar="ROOT",
        help="manifest tree to write into: a local directory or s3://bucket/prefix/",
    )
    build.set_defaults(command=_build)

    checksum = tools.add_parser(
        "checksum", help="recompute manifests' Zarr checksums",
        description="Recompute each manifest's DANDI Zarr checksum from its entries and "
        "print it. Exit 1 if it differs from the file name or statistics.zarrChecksum.",
    )
    checksum.add_argument("files", nargs="+", type=Path, metavar="FILE", help="manifest files")
    checksum.set_defaults(command=_checksum)

    verify = tools.add_parser(
        "verify", help="check that every pinned version still exists",
        description="HEAD every entry's key?versionId= on the bucket and print each entry "
        "whose version is gone (for example expired by a lifecycle rule). Exit 1 if any is.",
    )
    verify.add_argument("file", type=Path, metavar="FILE", help="the manifest file")
    _add_s3_arguments(verify)
    verify.add_argument(
        "--zarr-id", help="the Zarr the manifest describes (default: the file's parent folder)"
    )
    verify.add_argument(
        "--concurrency", type=int, default=16, metavar="N", help="HEAD requests at once (default 16)"
    )
    verify.set_defaults(command=_verify)

    serve = commands.add_parser(
        "serve", help="serve Zarrs over WebDAV and HTML",
        description="Serve /zarrs/<p1>/<p2>/<zarr_id>/<checksum>.zarr/... from a manifest tree: "
        "listings over WebDAV and HTML, and every file as a redirect to its version-pinned "
        "URL. Settings come from, in rising priority, the built-in defaults (the public DANDI "
        "Archive), --config, ZARRDAV_* environment variables, and these options.",
    )
    serve.add_argument(
        "--config", type=Path, metavar="FILE",
        help="a TOML settings file (default: $ZARRDAV_CONFIG if set); see config/dandi.toml",
    )
    for field in fields(Settings):
        flag = "--" + field.name.replace("_", "-")
        help_text = f"{HELP[field.name]} (default {getattr(Settings(), field.name)!r})"
        if field.type == "bool":
            serve.add_argument(flag, action=argparse.BooleanOptionalAction, default=None, help=help_text)
        else:
            kind = {"int": int, "float": float}.get(str(field.type), str)
            serve.add_argument(flag, type=kind, default=None, metavar=field.name.upper(), help=help_text)
    serve.add_argument(
        "--print-config", action="store_true",
        help="print the settings in effect (all sources merged) as TOML, and exit",
    )
    serve.set_defaults(command=_serve)

    demo = commands.add_parser(
        "demo", help="try zarrdav offline on sample data",
        description="Start an embedded S3 (moto) holding sample Zarrs, each changed once after it "
        "was published, and a stand-in DANDI Archive, serve them with zarrdav, and print what to "
        "open and commands to paste. Needs the demo extra (pip install 'zarrdav[demo]') and no "
        "network. The S3 and the archive listen on 127.0.0.1 only, so use clients on this machine. "
        "Ctrl-C stops everything and deletes what the demo wrote.",
    )
    demo.add_argument(
        "--host", default="127.0.0.1", help="address zarrdav listens on (default 127.0.0.1)"
    )
    demo.add_argument(
        "--port", type=int, default=8080, help="port zarrdav listens on (default 8080)"
    )
    demo.add_argument(
        "--s3-port", type=int, default=0, help="port of the embedded S3 (default 0: any free port)"
    )
    demo.set_defaults(command=_demo)
    return parser


def _add_s3_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--bucket", required=True, help="the versioned bucket holding the Zarrs")
    parser.add_argument(
        "--prefix", default="zarr/", help="key prefix of the Zarrs in the bucket (default zarr/)"
    )
    parser.add_argument(
        "--endpoint-url", metavar="URL", help="S3 endpoint (default AWS); e.g. a MinIO or moto server"
    )
    parser.add_argument(
        "--anonymous", action="store_true",
        help="send unsigned requests (public buckets) instead of using AWS credentials",
    )


def _prefix(arguments: argparse.Namespace) -> str:
    prefix: str = arguments.prefix.strip("/")
    return f"{prefix}/" if prefix else ""


def _build(arguments: argparse.Namespace) -> int:
    client = make_s3_client(arguments.endpoint_url, anonymous=arguments.anonymous)
    prefix = _prefix(arguments)
    store = ManifestStore(arguments.out, client if arguments.out.startswith("s3://") else None)
    progress = terminal_progress()
    ids = list(zarr_ids(client, arguments.bucket, prefix)) if arguments.all else [arguments.zarr_id]
    for zarr_id in ids:
        result = build_manifest(client, arguments.bucket, prefix, zarr_id, store, progress)
        if progress:
            progress("")
            sys.stderr.write("\r")
        state = "written" if result.written else "unchanged"
        print(f"{result.zarr_id} {result.checksum} {result.entries} entries {state}: {result.location}")
    return 0


def _checksum(arguments: argparse.Namespace) -> int:
    status = 0
    for path in arguments.files:
        try:
            manifest = read_manifest_file(path)
        except OSError as error:
            print(f"{path}: cannot read: {error.strerror}", file=sys.stderr)
            status = 2
            continue
        computed = zarr_checksum((f.path, f.size, f.etag) for f in manifest.files())
        print(f"{computed}  {path}")
        claims = {
            "file name": checksum_of_filename(path.name),
            "statistics.zarrChecksum": manifest.statistics.zarr_checksum,
        }
        for where, claimed in claims.items():
            if claimed is not None and claimed != computed:
                print(f"{path}: {where} says {claimed}, entries give {computed}", file=sys.stderr)
                status = max(status, 1)
    return status


def _verify(arguments: argparse.Namespace) -> int:
    manifest = read_manifest_file(arguments.file)
    zarr_id = arguments.zarr_id or arguments.file.resolve().parent.name
    client = make_s3_client(
        arguments.endpoint_url, anonymous=arguments.anonymous, max_connections=arguments.concurrency
    )
    gone = failed = 0
    problems = verify_manifest(
        manifest, client, arguments.bucket, _prefix(arguments), zarr_id, arguments.concurrency
    )
    for problem in problems:
        print(f"{problem.file.path}\t{problem.file.version_id}\t{problem.reason}")
        gone += problem.gone
        failed += not problem.gone
    checked = manifest.statistics.entries
    print(f"{checked} entries checked, {gone} versions gone, {failed} checks failed", file=sys.stderr)
    return 1 if gone else (2 if failed else 0)


def _serve(arguments: argparse.Namespace) -> int:
    config_file = arguments.config or (
        Path(os.environ["ZARRDAV_CONFIG"]) if os.environ.get("ZARRDAV_CONFIG") else None
    )
    overrides = {field.name: getattr(arguments, field.name) for field in fields(Settings)}
    try:
        settings = load_settings(config_file, overrides=overrides)
    except ConfigError as error:
        print(f"zarrdav: configuration error: {error}", file=sys.stderr)
        return 2
    if arguments.print_config:
        print(as_toml(settings), end="")
        return 0
    return serve(settings)


def _demo(arguments: argparse.Namespace) -> int:
    started = time.perf_counter()
    try:
        from zarrdav.demo.run import run_demo
    except ModuleNotFoundError as error:
        print(f"zarrdav demo needs {error.name}: pip install 'zarrdav[demo]'", file=sys.stderr)
        return 2
    run_demo(arguments.host, arguments.port, arguments.s3_port, started)
    return 0
