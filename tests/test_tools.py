"""`zarrdav manifest build|checksum|verify` against moto's S3 server."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from zarrdav.cli import main
from zarrdav.manifests.layout import manifest_path
from zarrdav.manifests.model import ManifestFile
from zarrdav.manifests.reader import read_manifest_file

ZARR = "0f5c3a2e-7d1b-4e8f-9a6c-2b4d8e1f3a5c"
ORIGINAL = {".zgroup": b'{"zarr_format":2}', "0/0": bytes(4)}
# The manifest doc's third test vector: exactly the state above.
ORIGINAL_CHECKSUM = "bd7a1c3efbd29ca8cc36222b308cba8b-2--21"


def put(s3: Any, bucket: str, contents: dict[str, bytes]) -> None:
    for path, body in contents.items():
        s3.put_object(Bucket=bucket, Key=f"zarr/{ZARR}/{path}", Body=body)


def build(endpoint: str, bucket: str, out: Path, capsys: pytest.CaptureFixture[str]) -> list[str]:
    status = main(
        ["manifest", "build", "--bucket", bucket, "--endpoint-url", endpoint, "--zarr-id", ZARR,
         "--out", str(out)]
    )
    assert status == 0
    return capsys.readouterr().out.split()


def pinned_bytes(s3: Any, bucket: str, file: ManifestFile) -> bytes:
    response = s3.get_object(Bucket=bucket, Key=f"zarr/{ZARR}/{file.path}", VersionId=file.version_id)
    return bytes(response["Body"].read())


def test_build_pins_each_state(
    s3: Any, s3_endpoint: str, bucket: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "manifests"
    put(s3, bucket, ORIGINAL)
    put(s3, bucket, {"0/1": b"\x01\x02\x03\x04"})
    s3.delete_object(Bucket=bucket, Key=f"zarr/{ZARR}/0/1")  # latest is a delete marker: gone
    first = build(s3_endpoint, bucket, out, capsys)
    assert first[:4] == [ZARR, ORIGINAL_CHECKSUM, "2", "entries"]
    assert first[4] == "written:"
    first_path = out / manifest_path(ZARR, ORIGINAL_CHECKSUM)
    first_bytes = first_path.read_bytes()

    # Building again from the same state writes nothing new.
    again = build(s3_endpoint, bucket, out, capsys)
    assert again[4] == "unchanged:"
    assert first_path.read_bytes() == first_bytes
    assert len(list(first_path.parent.iterdir())) == 1

    # Rewrite one chunk, delete the group, add a chunk.
    put(s3, bucket, {"0/0": b"\xff" * 4, "0/2": b"\x07" * 8})
    s3.delete_object(Bucket=bucket, Key=f"zarr/{ZARR}/.zgroup")
    second = build(s3_endpoint, bucket, out, capsys)
    assert second[1] != ORIGINAL_CHECKSUM
    assert sorted(p.name for p in first_path.parent.iterdir()) == sorted(
        [f"{ORIGINAL_CHECKSUM}.json", f"{second[1]}.json"]
    )

    old = read_manifest_file(first_path)
    new = read_manifest_file(first_path.parent / f"{second[1]}.json")
    assert {f.path: pinned_bytes(s3, bucket, f) for f in old.files()} == ORIGINAL
    assert {f.path: pinned_bytes(s3, bucket, f) for f in new.files()} == {
        "0/0": b"\xff" * 4, "0/2": b"\x07" * 8
    }
    document = json.loads(first_bytes)
    assert document["statistics"]["zarrChecksum"] == ORIGINAL_CHECKSUM
    assert document["entries"]["0"]["0"][3] == hashlib.md5(bytes(4)).hexdigest()
    # The public layout: indent 1, one entry per line.
    assert b'\n  ".zgroup": ["' in first_bytes


def test_build_all_to_s3(
    s3: Any, s3_endpoint: str, bucket: str, capsys: pytest.CaptureFixture[str]
) -> None:
    put(s3, bucket, ORIGINAL)
    s3.put_object(Bucket=bucket, Key="zarr/another-zarr/zarr.json", Body=b"{}")
    status = main(
        ["manifest", "build", "--bucket", bucket, "--endpoint-url", s3_endpoint, "--all",
         "--out", f"s3://{bucket}/zarr-manifest/"]
    )
    assert status == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == [ZARR, "another-zarr"]  # S3 key order
    key = f"zarr-manifest/{manifest_path(ZARR, ORIGINAL_CHECKSUM)}"
    assert s3.head_object(Bucket=bucket, Key=key)["ContentLength"] > 0


def test_checksum_tool(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from tests.manifests import sample_manifest

    checksum, body = sample_manifest()
    good = tmp_path / f"{checksum}.json"
    good.write_bytes(body)
    assert main(["manifest", "checksum", str(good)]) == 0
    assert capsys.readouterr().out.split() == [checksum, str(good)]

    misnamed = tmp_path / "00000000000000000000000000000000-10--7257.json"
    shutil.copy(good, misnamed)
    assert main(["manifest", "checksum", str(good), str(misnamed)]) == 1
    assert "file name says 00000000000000000000000000000000-10--7257" in capsys.readouterr().err

    tampered = tmp_path / "tampered.json"
    tampered.write_bytes(body.replace(b"1010,", b"1011,"))
    assert main(["manifest", "checksum", str(tampered)]) == 1
    assert f"statistics.zarrChecksum says {checksum}" in capsys.readouterr().err

    broken = tmp_path / "broken.json"
    broken.write_bytes(body[:100])
    assert main(["manifest", "checksum", str(broken)]) == 2
    assert "not valid JSON" in capsys.readouterr().err


def test_verify_finds_expired_versions(
    s3: Any, s3_endpoint: str, bucket: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    put(s3, bucket, ORIGINAL)
    build(s3_endpoint, bucket, tmp_path, capsys)
    path = tmp_path / manifest_path(ZARR, ORIGINAL_CHECKSUM)
    verify = ["manifest", "verify", str(path), "--bucket", bucket, "--endpoint-url", s3_endpoint]
    assert main(verify) == 0
    assert "2 entries checked, 0 versions gone" in capsys.readouterr().err

    put(s3, bucket, {"0/0": b"new!"})  # the pinned version becomes noncurrent...
    pinned = read_manifest_file(path).lookup("0/0")
    assert isinstance(pinned, ManifestFile)
    assert main(verify) == 0
    capsys.readouterr()
    # ...and a lifecycle rule expires it.
    s3.delete_object(Bucket=bucket, Key=f"zarr/{ZARR}/0/0", VersionId=pinned.version_id)
    assert main(verify) == 1
    captured = capsys.readouterr()
    assert captured.out.splitlines() == [f"0/0\t{pinned.version_id}\tversion gone (S3 404)"]
    assert "1 versions gone" in captured.err


def test_console_script(s3_endpoint: str, bucket: str, tmp_path: Path) -> None:
    """The installed `zarrdav` command runs and reports errors without a traceback."""
    beside_python = Path(sys.executable).with_name("zarrdav")
    zarrdav = str(beside_python) if beside_python.exists() else shutil.which("zarrdav")
    assert zarrdav, "the package is not installed"
    result = subprocess.run(
        [zarrdav, "manifest", "build", "--bucket", "no-such-bucket", "--endpoint-url", s3_endpoint,
         "--zarr-id", ZARR, "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 2
    assert "NoSuchBucket" in result.stderr
    assert "Traceback" not in result.stderr
    helped = subprocess.run([zarrdav, "manifest", "verify", "--help"], capture_output=True, text=True)
    assert "--concurrency" in helped.stdout


def test_a_server_wide_api_token_is_refused_with_why(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Visitors bring their own tokens now: a config still naming one must not start as if it acted."""
    config = tmp_path / "old.toml"
    config.write_text('api_token = "secret"\n')
    assert main(["serve", "--config", str(config), "--print-config"]) == 2
    printed = capsys.readouterr()
    assert "visitors now bring their own DANDI API tokens" in printed.err
    assert "secret" not in printed.out + printed.err


def test_print_config_shows_merged_settings(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "mine.toml"
    config.write_text('port = 9000\nthreads = 4\n')
    monkeypatch.setenv("ZARRDAV_THREADS", "8")
    assert main(["serve", "--config", str(config), "--threads", "16", "--print-config"]) == 0
    printed = capsys.readouterr().out
    assert "port = 9000\n" in printed and "threads = 16\n" in printed
    assert "api_token" not in printed
    monkeypatch.delenv("ZARRDAV_THREADS")
    assert main(["serve", "--print-config"]) == 0
    defaults = capsys.readouterr().out
    repo_config = Path(__file__).resolve().parents[1] / "config" / "dandi.toml"
    assert [line for line in repo_config.read_text().splitlines() if line and not line.startswith("#")] == [
        line for line in defaults.splitlines() if line and not line.startswith("#")
    ]


SECOND = "0f5d9b7e-1c2a-4b3d-8e4f-5a6b7c8d9e0f"  # in another <p2> folder than ZARR


def test_verify_all_summarizes_by_zarr(
    s3: Any, s3_endpoint: str, bucket: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    put(s3, bucket, ORIGINAL)
    build(s3_endpoint, bucket, tmp_path, capsys)
    put(s3, bucket, {"0/0": b"new!", "0/1": b"more"})
    second_checksum = build(s3_endpoint, bucket, tmp_path, capsys)[1]
    s3.put_object(Bucket=bucket, Key=f"zarr/{SECOND}/zarr.json", Body=b"{}")
    assert main(["manifest", "build", "--bucket", bucket, "--endpoint-url", s3_endpoint,
                 "--zarr-id", SECOND, "--out", str(tmp_path)]) == 0
    capsys.readouterr()
    everything = ["manifest", "verify", "--all", "--manifest-root", str(tmp_path),
                  "--bucket", bucket, "--endpoint-url", s3_endpoint, "--concurrency", "4"]
    assert main(everything) == 0
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.splitlines()[-1] == (
        "3 manifests of 2 Zarrs checked, 6 entries, 0 versions gone, 0 checks failed"
    )
    assert "verify: 3/3 manifests" in captured.err  # the plain progress line off a terminal

    pinned = read_manifest_file(tmp_path / manifest_path(ZARR, ORIGINAL_CHECKSUM)).lookup("0/0")
    assert isinstance(pinned, ManifestFile)
    s3.delete_object(Bucket=bucket, Key=f"zarr/{ZARR}/0/0", VersionId=pinned.version_id)
    (tmp_path / manifest_path(SECOND, "0" * 32 + "-1--2")).write_text("{not json")
    assert main(everything) == 1
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert f"{ZARR}\t{ORIGINAL_CHECKSUM}\t0/0\t{pinned.version_id}\tversion gone (S3 404)" in lines
    assert any(line.startswith(f"{SECOND}\t{'0' * 32}-1--2\t-\t-\tmanifest unreadable:") for line in lines)
    assert len(lines) == 2
    summary = captured.err.splitlines()
    assert f"{ZARR}: 2 manifests, 5 entries, 1 versions gone, 0 checks failed" in summary
    assert f"{SECOND}: 1 manifests, 1 entries, 0 versions gone, 1 checks failed" in summary
    assert summary[-1] == "3 manifests of 2 Zarrs checked, 6 entries, 1 versions gone, 1 checks failed"

    # --id-prefix walks only the matching folders; --zarr-id one Zarr's manifests.
    assert main([*everything, "--id-prefix", SECOND[:5]]) == 2
    assert capsys.readouterr().err.splitlines()[-1].startswith("1 manifests of 1 Zarrs checked")
    one = ["manifest", "verify", "--zarr-id", ZARR, "--manifest-root", str(tmp_path),
           "--bucket", bucket, "--endpoint-url", s3_endpoint]
    assert main(one) == 1
    assert capsys.readouterr().out.splitlines() == [
        f"{ZARR}\t{ORIGINAL_CHECKSUM}\t0/0\t{pinned.version_id}\tversion gone (S3 404)"
    ]
    assert second_checksum != ORIGINAL_CHECKSUM


def test_verify_lifecycle_names_rules_that_expire_pinned_versions(
    s3: Any, s3_endpoint: str, bucket: str, capsys: pytest.CaptureFixture[str]
) -> None:
    lifecycle = ["manifest", "verify", "--lifecycle", "--bucket", bucket, "--endpoint-url", s3_endpoint]
    assert main(lifecycle) == 0  # no lifecycle configuration at all
    assert capsys.readouterr().out == ""

    harmless = [
        {"ID": "abort-uploads", "Status": "Enabled", "Filter": {"Prefix": ""},
         "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 7}},
        {"ID": "orphan-markers", "Status": "Enabled", "Filter": {"Prefix": "zarr/"},
         "Expiration": {"ExpiredObjectDeleteMarker": True}},
        {"ID": "old-logs", "Status": "Enabled", "Filter": {"Prefix": "logs/"},
         "NoncurrentVersionExpiration": {"NoncurrentDays": 1}},
        {"ID": "switched-off", "Status": "Disabled", "Filter": {"Prefix": "zarr/"},
         "NoncurrentVersionExpiration": {"NoncurrentDays": 1}},
    ]
    s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": harmless})
    assert main(lifecycle) == 0
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("0 lifecycle rule actions")

    trailing_delete = {"ID": "trailing-delete", "Status": "Enabled", "Filter": {"Prefix": ""},
                       "NoncurrentVersionExpiration": {"NoncurrentDays": 30}}
    s3.put_bucket_lifecycle_configuration(
        Bucket=bucket, LifecycleConfiguration={"Rules": [*harmless, trailing_delete]}
    )
    assert main(lifecycle) == 1
    assert capsys.readouterr().out.splitlines() == [
        "lifecycle\trule 'trailing-delete' (every key): "
        "expires noncurrent versions 30 days after they become noncurrent"
    ]

    archiving = {"ID": "cold", "Status": "Enabled", "Filter": {"Prefix": "zarr/old/"},
                 "NoncurrentVersionTransitions": [{"NoncurrentDays": 90, "StorageClass": "GLACIER"}]}
    s3.put_bucket_lifecycle_configuration(
        Bucket=bucket, LifecycleConfiguration={"Rules": [*harmless, archiving]}
    )
    assert main(lifecycle) == 1
    assert capsys.readouterr().out.splitlines() == [
        "lifecycle\trule 'cold' (prefix 'zarr/old/'): "
        "moves noncurrent versions to GLACIER after 90 days (unreadable until restored)"
    ]


def test_build_refuses_a_key_that_is_also_a_folder(
    s3: Any, s3_endpoint: str, bucket: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    put(s3, bucket, {"0/0": b"a", "0/0/1": b"b"})
    assert main(["manifest", "build", "--bucket", bucket, "--endpoint-url", s3_endpoint,
                 "--zarr-id", ZARR, "--out", str(tmp_path)]) == 2
    assert f"zarr/{ZARR}/0/0 is both a file and a folder" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())
