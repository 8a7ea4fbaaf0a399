"""What ``zarrdav serve`` cannot start with: one line, exit status 2, with one worker and with two."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.servers import zarrdav_process

STARTUP_LIMIT = 60  # seconds; the checks fail within one or two
WORKERS = pytest.mark.parametrize("workers", [1, 2])
# Root reads and writes whatever the permission bits say; without these
# capabilities it is held to them, as the users zarrdav usually runs as.
_AS_A_USER = ["setpriv", "--bounding-set", "-dac_override,-dac_read_search"]


def refused(*args: str, workers: int, held_to_permissions: bool = False) -> str:
    """Run `zarrdav serve` expecting it to refuse to start; what it wrote on stderr.

    It listens on a free port of 127.0.0.1 unless ``args`` say otherwise.
    ``held_to_permissions``: file permissions apply to it even when the tests
    run as root.
    """
    command = [sys.executable, "-m", "zarrdav", "serve", "--host", "127.0.0.1", "--port", "0",
               "--workers", str(workers), *args]
    environment = {k: v for k, v in os.environ.items() if not k.startswith("ZARRDAV_")}
    if held_to_permissions and os.geteuid() == 0:
        if shutil.which("setpriv") is None:
            pytest.skip("needs setpriv (util-linux) to run as root without its file access")
        command = [*_AS_A_USER, *command]
    process = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=environment,
        start_new_session=True,
    )
    try:
        _, stderr = process.communicate(timeout=STARTUP_LIMIT)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)  # its workers too
        _, stderr = process.communicate()
        raise AssertionError(f"zarrdav serve {' '.join(args)} started:\n{stderr}") from None
    assert process.returncode == 2, stderr
    assert "Traceback" not in stderr
    return stderr


def assert_one_error_line(stderr: str, pattern: str) -> None:
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    assert re.fullmatch(f"zarrdav: error: {pattern}", lines[0]), lines[0]


@WORKERS
def test_a_port_in_use(workers: int, taken_port: int, tmp_path: Path) -> None:
    stderr = refused("--port", str(taken_port), "--manifest-root", str(tmp_path), workers=workers)
    assert_one_error_line(stderr, rf"cannot listen on 127\.0\.0\.1:{taken_port}: address already in use")


def test_a_port_another_zarrdav_serves_on_with_workers(tmp_path: Path) -> None:
    # Workers bind with SO_REUSEPORT: without the check a second server
    # would bind beside them and take half of their connections.
    with zarrdav_process("--manifest-root", str(tmp_path), "--workers", "2") as (url, _):
        port = url.rsplit(":", 1)[1]
        for workers in (1, 2):
            stderr = refused("--port", port, "--manifest-root", str(tmp_path), workers=workers)
            assert_one_error_line(stderr, rf"cannot listen on 127\.0\.0\.1:{port}: address already in use")


@WORKERS
@pytest.mark.parametrize("port", ["70000", "-1"])
def test_a_port_out_of_range(workers: int, port: str, tmp_path: Path) -> None:
    stderr = refused("--port", port, "--manifest-root", str(tmp_path), workers=workers)
    assert_one_error_line(stderr, rf"port {port} is out of range \(0-65535\)")


@WORKERS
def test_a_host_that_does_not_resolve(workers: int, tmp_path: Path) -> None:
    stderr = refused("--host", "no.such.host.invalid", "--manifest-root", str(tmp_path), workers=workers)
    # The reason is the resolver's own ("name or service not known", ...).
    assert_one_error_line(stderr, r"cannot resolve host 'no\.such\.host\.invalid': \S.*")


@WORKERS
def test_a_host_that_is_not_this_machine(workers: int, tmp_path: Path) -> None:
    # 192.0.2.0/24 is reserved for documentation: never a local address.
    stderr = refused("--host", "192.0.2.1", "--manifest-root", str(tmp_path), workers=workers)
    assert_one_error_line(stderr, r"cannot listen on 192\.0\.2\.1:0: cannot assign requested address")


@WORKERS
def test_a_manifest_root_that_does_not_exist(workers: int, tmp_path: Path) -> None:
    root = tmp_path / "absent"
    stderr = refused("--manifest-root", str(root), workers=workers)
    assert_one_error_line(stderr, f"manifest root {re.escape(str(root))} does not exist")


@WORKERS
def test_a_manifest_root_that_is_a_file(workers: int, tmp_path: Path) -> None:
    root = tmp_path / "manifests.json"
    root.write_text("{}")
    stderr = refused("--manifest-root", str(root), workers=workers)
    assert_one_error_line(stderr, f"manifest root {re.escape(str(root))} is not a directory")


@WORKERS
def test_a_manifest_root_that_cannot_be_read(workers: int, tmp_path: Path) -> None:
    root = tmp_path / "closed"
    root.mkdir(mode=0o000)
    try:
        stderr = refused("--manifest-root", str(root), workers=workers, held_to_permissions=True)
    finally:
        root.chmod(0o755)
    assert_one_error_line(stderr, f"manifest root {re.escape(str(root))} cannot be read: permission denied")


@WORKERS
def test_an_s3_endpoint_that_is_not_a_url(workers: int) -> None:
    stderr = refused("--manifest-root", "s3://bucket/manifests/", "--s3-endpoint-url", "not a url",
                     workers=workers)
    assert_one_error_line(stderr, r"S3 endpoint 'not a url' is not an http:// or https:// URL")


@WORKERS
def test_an_index_directory_that_is_not_writable(workers: int, tmp_path: Path) -> None:
    index = tmp_path / "index"
    index.mkdir(mode=0o555)
    try:
        stderr = refused(
            "--manifest-root", str(tmp_path), "--index-dir", str(index),
            workers=workers, held_to_permissions=True,
        )
    finally:
        index.chmod(0o755)
    assert_one_error_line(stderr, f"index directory {re.escape(str(index))} is not writable: permission denied")


@WORKERS
def test_an_index_directory_that_cannot_be_created(workers: int, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    index = blocker / "index"
    stderr = refused("--manifest-root", str(tmp_path), "--index-dir", str(index), workers=workers)
    assert_one_error_line(stderr, f"index directory {re.escape(str(index))} cannot be created: not a directory")
