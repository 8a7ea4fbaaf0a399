"""The ``zarrdav`` command line."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import fields
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from zarrdav import __version__
from zarrdav.config import HELP, ConfigError, Settings, as_toml, load_settings
from zarrdav.dav.html import human_size
from zarrdav.edge.server import serve
from zarrdav.errors import NotFound, ZarrdavError
from zarrdav.manifests.builder import ManifestStore, build_manifest, zarr_ids
from zarrdav.manifests.checksum import zarr_checksum
from zarrdav.manifests.diff import DiffSummary, diff_manifests
from zarrdav.manifests.gc import SurveyOutdated, Tally, ZarrStorage, delete_reclaimable, survey_zarr
from zarrdav.manifests.layout import checksum_of_filename
from zarrdav.manifests.lifecycle import risky_rules
from zarrdav.manifests.progress import Meter
from zarrdav.manifests.published import manifest_users
from zarrdav.manifests.reader import read_manifest_file
from zarrdav.manifests.table import render_table
from zarrdav.manifests.trees import ManifestTree, open_tree
from zarrdav.manifests.verify import Verified, verify_manifest, verify_tree
from zarrdav.manifests.walk import tree_zarr_ids, zarr_manifests
from zarrdav.upstreams.archive import ArchiveClient
from zarrdav.upstreams.s3 import make_s3_client

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
    except OSError as error:
        print(f"zarrdav: error: {error.filename or ''}: {error.strerror or error}", file=sys.stderr)
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
        "whose version is gone (for example expired by a lifecycle rule). Exit 1 if any is. "
        "Give one manifest FILE, or a --manifest-root with --all (every Zarr of the tree, or "
        "those whose ids start with --id-prefix) or --zarr-id (all of that Zarr's manifests).",
    )
    verify.add_argument("file", type=Path, nargs="?", metavar="FILE", help="one manifest file")
    _add_s3_arguments(verify)
    verify.add_argument(
        "--zarr-id",
        help="with FILE: the Zarr it describes (default: the file's parent folder); "
        "with --manifest-root: verify all of this Zarr's manifests",
    )
    verify.add_argument("--all", action="store_true", help="verify every manifest of --manifest-root")
    verify.add_argument(
        "--manifest-root", metavar="ROOT",
        help="manifest tree for --all / --zarr-id: a directory, s3://bucket/prefix/ or https:// mirror",
    )
    verify.add_argument(
        "--id-prefix", default="", metavar="TEXT",
        help="with --all: only the Zarrs whose ids start with TEXT",
    )
    verify.add_argument(
        "--lifecycle", action="store_true",
        help="also report the bucket's lifecycle rules that can expire, delete-mark or archive "
        "versions under --prefix (exit 1 if any); alone, check only that",
    )
    verify.add_argument(
        "--concurrency", type=int, default=16, metavar="N", help="HEAD requests at once (default 16)"
    )
    verify.set_defaults(command=_verify)

    gc = tools.add_parser(
        "gc", help="what a Zarr's history costs, and what no manifest needs",
        description="Weigh every object version under each Zarr's prefix against the Zarr's "
        "manifests: versions pinned by a manifest, current versions no manifest pins yet, and "
        "reclaimable ones (neither), with delete markers and pinned versions the bucket lacks. "
        "With --delete, remove the reclaimable versions (a dry run unless --yes); a Zarr without "
        "manifests, or whose manifests change during the run, is left alone.",
    )
    _add_s3_arguments(gc)
    which = gc.add_mutually_exclusive_group(required=True)
    which.add_argument("--zarr-id", help="the Zarr to weigh (a folder name under --prefix)")
    which.add_argument("--all", action="store_true", help="every Zarr under --prefix")
    gc.add_argument(
        "--manifest-root", required=True, metavar="ROOT",
        help="the manifest tree: a directory, s3://bucket/prefix/ or https:// mirror",
    )
    gc.add_argument(
        "--api-url", metavar="URL",
        help="the archive API (e.g. https://api.dandiarchive.org/api): also say which versions "
        "pin each manifest, and which manifests no published version uses",
    )
    gc.add_argument("--json", action="store_true", help="print JSON instead of a table")
    gc.add_argument(
        "--delete", action="store_true",
        help="delete the reclaimable versions: never a pinned one, never a key's current one",
    )
    gc.add_argument("--yes", action="store_true", help="with --delete: really delete (else a dry run)")
    gc.add_argument(
        "--record", type=Path, metavar="FILE",
        help="with --delete: JSON lines of each version deleted (or, in a dry run, that would "
        "be) (default gc-<UTC time>.jsonl)",
    )
    gc.set_defaults(command=_gc)

    diff = tools.add_parser(
        "diff", help="what changed between two manifests",
        description="Print the entries added (+), removed (-) and changed (~, new content) from "
        "A to B, with their sizes, then the counts and bytes. A and B are manifest files, or "
        "checksums of --zarr-id in --manifest-root.",
    )
    diff.add_argument("old", metavar="A", help="the earlier manifest: a file, or a checksum")
    diff.add_argument("new", metavar="B", help="the later manifest: a file, or a checksum")
    diff.add_argument("--zarr-id", help="the Zarr whose checksums A and B are")
    diff.add_argument("--manifest-root", metavar="ROOT", help="the manifest tree holding them")
    diff.add_argument(
        "--endpoint-url", metavar="URL", help="S3 endpoint of an s3:// --manifest-root"
    )
    diff.add_argument("--anonymous", action="store_true", help="unsigned requests to an s3:// root")
    diff.add_argument("--json", action="store_true", help="print JSON instead of lines")
    diff.set_defaults(command=_diff)

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
    ids = list(zarr_ids(client, arguments.bucket, prefix)) if arguments.all else [arguments.zarr_id]
    with Meter("build", total=len(ids), unit="zarrs") as meter:
        for zarr_id in ids:
            result = build_manifest(client, arguments.bucket, prefix, zarr_id, store, meter)
            meter.advance()
            state = "written" if result.written else "unchanged"
            meter.echo(
                f"{result.zarr_id} {result.checksum} {result.entries} entries {state}: {result.location}"
            )
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
    over_tree = bool(arguments.all or (arguments.zarr_id and arguments.manifest_root))
    if arguments.file is not None and arguments.all:
        return _usage("verify takes a manifest FILE or --all, not both")
    if over_tree and not arguments.manifest_root:
        return _usage("verify --all needs --manifest-root")
    if arguments.file is None and not over_tree and not arguments.lifecycle:
        return _usage("verify needs a manifest FILE, --all or --zarr-id with --manifest-root, or --lifecycle")
    client = make_s3_client(
        arguments.endpoint_url, anonymous=arguments.anonymous, max_connections=arguments.concurrency
    )
    statuses = [0]
    if arguments.lifecycle:
        statuses.append(_verify_lifecycle(arguments, client))
    if arguments.file is not None:
        statuses.append(_verify_file(arguments, client))
    elif over_tree:
        statuses.append(_verify_tree(arguments, client))
    return 1 if 1 in statuses else max(statuses)


def _usage(message: str) -> int:
    print(f"zarrdav: error: {message}", file=sys.stderr)
    return 2


def _verify_lifecycle(arguments: argparse.Namespace, client: Any) -> int:
    prefix = _prefix(arguments)
    rules = risky_rules(client, arguments.bucket, prefix)
    for rule in rules:
        print(f"lifecycle\t{rule}")
    where = f"s3://{arguments.bucket}/{prefix}"
    print(f"{len(rules)} lifecycle rule actions can remove or archive versions under {where}",
          file=sys.stderr)
    return 1 if rules else 0


def _verify_file(arguments: argparse.Namespace, client: Any) -> int:
    manifest = read_manifest_file(arguments.file)
    zarr_id = arguments.zarr_id or arguments.file.resolve().parent.name
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


def _verify_tree(arguments: argparse.Namespace, client: Any) -> int:
    tree = _tree(arguments)
    ids = [arguments.zarr_id] if arguments.zarr_id else tree_zarr_ids(tree, arguments.id_prefix)
    with Meter("listing manifests", unit="zarrs") as meter:
        manifests = []
        for zarr_id in ids:
            manifests += [(zarr_id, checksum) for checksum in zarr_manifests(tree, zarr_id)]
            meter.advance()
    summary: dict[str, Verified] = {}
    with Meter("verify", total=len(manifests), unit="manifests") as meter:
        findings = verify_tree(
            tree, manifests, client, arguments.bucket, _prefix(arguments), summary,
            arguments.concurrency, meter,
        )
        for finding in findings:
            where = (finding.problem.file.path, finding.problem.file.version_id) if finding.problem else ("-", "-")
            meter.echo("\t".join([finding.zarr_id, finding.checksum, *where, finding.reason]))
    for zarr_id, tally in summary.items():
        if tally.gone or tally.failed:
            print(f"{zarr_id}: {tally.manifests} manifests, {tally.entries} entries, "
                  f"{tally.gone} versions gone, {tally.failed} checks failed", file=sys.stderr)
    total = Verified(*(sum(getattr(t, name) for t in summary.values()) for name in
                       ("manifests", "entries", "gone", "failed")))
    print(f"{total.manifests} manifests of {len(summary)} Zarrs checked, {total.entries} entries, "
          f"{total.gone} versions gone, {total.failed} checks failed", file=sys.stderr)
    return 1 if total.gone else (2 if total.failed else 0)


def _tree(arguments: argparse.Namespace) -> ManifestTree:
    return open_tree(
        arguments.manifest_root, s3_endpoint_url=arguments.endpoint_url, s3_anonymous=arguments.anonymous
    )


def _gc(arguments: argparse.Namespace) -> int:
    if arguments.yes and not arguments.delete:
        return _usage("--yes only goes with --delete")
    client = make_s3_client(arguments.endpoint_url, anonymous=arguments.anonymous)
    prefix = _prefix(arguments)
    tree = _tree(arguments)
    archive = ArchiveClient(arguments.api_url) if arguments.api_url else None
    ids = list(zarr_ids(client, arguments.bucket, prefix)) if arguments.all else [arguments.zarr_id]
    record_path = arguments.record or Path(f"gc-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}.jsonl")
    dry_run = not arguments.yes
    surveys: list[ZarrStorage] = []
    deleted = Tally()
    failures: list[str] = []
    with contextlib.ExitStack() as stack:
        record = stack.enter_context(record_path.open("a")) if arguments.delete else None
        meter = stack.enter_context(Meter("gc", total=len(ids), unit="zarrs"))
        for zarr_id in ids:
            storage = survey_zarr(
                client, arguments.bucket, prefix, zarr_id, tree,
                keep_candidates=arguments.delete, meter=meter,
            )
            if archive is not None:
                storage.used_by = _users(archive, zarr_id)
            if record is not None:
                try:
                    done, failed = delete_reclaimable(
                        client, arguments.bucket, prefix, storage, tree, record, dry_run=dry_run
                    )
                except SurveyOutdated as refusal:
                    meter.echo(f"gc: {refusal}", file=sys.stderr)
                else:
                    deleted.count += done.count
                    deleted.bytes += done.bytes
                    failures += failed
                storage.candidates = []  # the next Zarr's may be as many
            surveys.append(storage)
            meter.advance()
    for failure in failures:
        print(f"gc: not deleted: {failure}", file=sys.stderr)
    if arguments.json:
        document: dict[str, Any] = {"bucket": arguments.bucket, "prefix": prefix,
                                    "zarrs": [storage.as_json() for storage in surveys]}
        if arguments.delete:
            document["deleted" if not dry_run else "would_delete"] = {
                "count": deleted.count, "bytes": deleted.bytes, "record": str(record_path),
            }
        print(json.dumps(document, indent=1))
    else:
        print(_gc_table(surveys, archive is not None), end="")
    if arguments.delete:
        verb = "would delete" if dry_run else "deleted"
        print(f"gc: {verb} {deleted.count} versions ({deleted.bytes} bytes), listed in {record_path}"
              + ("; add --yes to delete them" if dry_run else ""), file=sys.stderr)
    return 2 if failures else 0


def _users(archive: ArchiveClient, zarr_id: str) -> dict[str, list[str]]:
    try:
        return manifest_users(archive, zarr_id)
    except NotFound:
        return {}  # a Zarr the archive does not know: no version uses it


def _gc_table(surveys: list[ZarrStorage], with_archive: bool) -> str:
    def cell(tally: Tally) -> str:
        return f"{tally.count} ({human_size(tally.bytes)})"

    headers = ["ZARR", "MANIFESTS", "PINNED", "CURRENT UNPINNED", "RECLAIMABLE", "DELETE MARKERS",
               "PINS MISSING"] + (["UNPUBLISHED"] if with_archive else [])
    rows = []
    for s in surveys:
        rows.append([s.zarr_id, str(len(s.manifests)), cell(s.pinned), cell(s.current_unpinned),
                     cell(s.reclaimable), str(s.delete_markers), str(s.pins_missing)]
                    + ([str(len(s.unpublished))] if with_archive else []))
    table = render_table(headers, rows)
    if with_archive:
        table += "".join(f"{s.zarr_id} {checksum}: no published version uses it\n"
                         for s in surveys for checksum in s.unpublished)
    return table


def _diff(arguments: argparse.Namespace) -> int:
    if arguments.zarr_id and not arguments.manifest_root:
        return _usage("diff --zarr-id needs --manifest-root")
    if arguments.zarr_id:
        tree = _tree(arguments)
        old = tree.fetch_manifest(arguments.zarr_id, arguments.old)
        new = tree.fetch_manifest(arguments.zarr_id, arguments.new)
    else:
        old, new = read_manifest_file(Path(arguments.old)), read_manifest_file(Path(arguments.new))
    summary = DiffSummary()
    changes: dict[str, list[dict[str, Any]]] = {"added": [], "removed": [], "changed": []}
    for change in diff_manifests(old, new):
        summary.count(change)
        if arguments.json:
            sizes = ({"size": change.new_size} if change.kind == "added" else
                     {"size": change.old_size} if change.kind == "removed" else
                     {"old_size": change.old_size, "new_size": change.new_size})
            changes[change.kind].append({"path": change.path, **sizes})
        elif change.kind == "changed":
            print(f"~ {change.path}\t{change.old_size} -> {change.new_size}")
        else:
            mark, size = ("+", change.new_size) if change.kind == "added" else ("-", change.old_size)
            print(f"{mark} {change.path}\t{size}")
    if arguments.json:
        print(json.dumps({"old": old.source, "new": new.source, **changes, "summary": summary.as_json()},
                         indent=1))
    else:
        print(f"{summary.added} added, {summary.removed} removed, {summary.changed} changed; "
              f"{summary.bytes_added} bytes added, {summary.bytes_removed} bytes removed", file=sys.stderr)
    return 0


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
