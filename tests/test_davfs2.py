"""davfs2 mounts `zarrdav demo` read-only with config/davfs2.conf: listed, and files read.

Every file of the mount is a redirect to one S3 object version, which davfs2
follows (one hop, with ``follow_redirect 1``), so a file read through the
mount is the pinned object, and zarr-python opens the Zarrs from the mount
path as local stores. The mount lists (``ls``, ``find``) what PROPFIND
lists, a folder of thousands of chunks included: on Linux 6.16 and later
that needs the configuration's ``buf_size``. The demo's printed davfs2
commands run as pasted into a clean root shell.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit

import httpx
import numpy as np
import pytest
import zarr

from tests.manifests import one_manifest_tree, wide_manifest
from tests.servers import Demo, zarrdav_server
from zarrdav.demo.catalog import DANDISET, OME_PATH, README, README_PATH, RELEASE, TRACES_PATH
from zarrdav.demo.guide import CONFIG_DIR
from zarrdav.demo.sample import ome_image, ome_pyramid
from zarrdav.routes import zarr_version_path

MOUNT_DAVFS = shutil.which("mount.davfs") or shutil.which("mount.davfs", path="/sbin:/usr/sbin")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(os.geteuid() != 0, reason="mounting with davfs2 needs root"),
    pytest.mark.skipif(not Path("/dev/fuse").exists(), reason="no FUSE device (/dev/fuse)"),
    pytest.mark.skipif(
        MOUNT_DAVFS is None, reason="davfs2 is not installed (scripts/test installs it as root)"
    ),
]

CONF = CONFIG_DIR / "davfs2.conf"
VERSIONS = {RELEASE: False, "draft": True}  # version directory -> holds the changed Zarrs
VERSION_DIRS = {RELEASE: f"releases/{RELEASE}", "draft": "draft"}
OME_METADATA = (".zattrs", ".zgroup", ".zmetadata", "0/.zarray", "2/.zarray")
TRACES_METADATA = ("zarr.json", "traces/zarr.json", "time/zarr.json", "events/onsets/zarr.json")
CHANGED_CHUNK = "0/0/0/0"  # level 0, painted over by the change
DELETED_CHUNK = "0/1/1/1"  # level 0, all fill value after the change: deleted from the bucket
# Why a mount cannot be made here (no privilege for FUSE mounts in a container, say).
CANNOT_MOUNT = re.compile(r"permission|not permitted|fuse", re.IGNORECASE)
MOUNT_LIMIT = 30  # seconds


def mounted_at(point: Path) -> bool:
    return any(line.split()[1] == str(point) for line in Path("/proc/mounts").read_text().splitlines())


@pytest.fixture(scope="module")
def mount(demo: Demo, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The demo mounted read-only at a fresh directory; unmounted (and checked gone) afterwards."""
    with mounted(demo.url, tmp_path_factory.mktemp("davfs2")) as point:
        yield point


WIDE_ZARR = "0123abcd-0000-4000-8000-000000000017"
WIDE_CHUNKS = 3000
WIDE_CHECKSUM, WIDE_MANIFEST = wide_manifest(WIDE_CHUNKS)


@pytest.fixture(scope="module")
def wide_mount(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """`zarrdav serve` of a Zarr whose array folder holds 3,000 chunks, mounted; its ``0/`` folder."""
    tree = one_manifest_tree(tmp_path_factory.mktemp("tree"), WIDE_ZARR, WIDE_CHECKSUM, WIDE_MANIFEST)
    with zarrdav_server("--manifest-root", str(tree)) as url, \
            mounted(f"{url}/", tmp_path_factory.mktemp("davfs2")) as point:
        yield point / zarr_version_path(WIDE_ZARR, WIDE_CHECKSUM).strip("/") / "0"


@contextmanager
def mounted(url: str, where: Path, conf: Path = CONF) -> Iterator[Path]:
    """``url`` mounted read-only at ``where/mnt`` with davfs2 and ``conf``; unmounted after."""
    point = where / "mnt"
    point.mkdir()
    # ask_auth 0 should keep davfs2 from asking for credentials; if a version
    # asks anyway, the empty input answers it rather than blocking.
    result = subprocess.run(
        ["mount", "-t", "davfs", "-o", f"ro,conf={conf}", url, str(point)],
        input="\n\n", capture_output=True, text=True, timeout=MOUNT_LIMIT,
    )
    said = (result.stderr + result.stdout).strip()
    if result.returncode != 0:
        if CANNOT_MOUNT.search(said):
            pytest.skip(f"davfs2 cannot mount here: {said}")
        pytest.fail(f"mount -t davfs failed ({result.returncode}): {said}")
    try:
        deadline = time.monotonic() + MOUNT_LIMIT
        while not mounted_at(point):
            assert time.monotonic() < deadline, f"{point} never appeared in /proc/mounts: {said}"
            time.sleep(0.1)
        yield point
    finally:
        _unmount(point)


def _unmount(point: Path) -> None:
    """``umount``, which waits for mount.davfs to write back and exit; then drop its cache."""
    result = subprocess.run(["umount", str(point)], capture_output=True, text=True, timeout=120)
    deadline = time.monotonic() + MOUNT_LIMIT
    while mounted_at(point) and time.monotonic() < deadline:
        time.sleep(0.1)
    if mounted_at(point):
        subprocess.run(["umount", "-l", str(point)], capture_output=True, timeout=30)
        pytest.fail(f"umount left {point} mounted: {result.stderr.strip()}")
    # davfs2 keeps a cache per host, mount point and user for the next mount of the same point.
    cache = Path("/var/cache/davfs2") / f"127.0.0.1+{str(point).strip('/').replace('/', '-')}+root"
    shutil.rmtree(cache, ignore_errors=True)


def zarr_dir(mount: Path, version: str, path: str) -> Path:
    return mount / "dandisets" / DANDISET / VERSION_DIRS[version] / path


def over_http(demo: Demo, version: str, path: str) -> bytes:
    """The file as zarrdav serves it: through its 307 to the pinned S3 object version."""
    url = f"{demo.url}dandisets/{DANDISET}/{VERSION_DIRS[version]}/{path}"
    response = httpx.get(url, follow_redirects=True, timeout=10)
    assert response.status_code == 200, url
    assert [r.status_code for r in response.history] == [307], url
    return response.content


def listed_over_http(url: str) -> set[str]:
    """Every path below ``url`` (a folder), found by PROPFIND Depth 1 a folder at a time, as find prints them."""
    found: set[str] = set()
    folders = [url]
    while folders:
        folder = folders.pop()
        response = httpx.request("PROPFIND", folder, headers={"Depth": "1"}, timeout=30)
        assert response.status_code == 207, folder
        own = urlsplit(folder).path
        for href in re.findall(r"<D:href>(.*?)</D:href>", response.text):
            if href == own:
                continue
            found.add(unquote(href.removeprefix(urlsplit(url).path)).rstrip("/"))
            if href.endswith("/"):
                folders.append(urljoin(folder, href))
    return found


def test_ls_lists_the_mount_as_propfind_does(demo: Demo, mount: Path) -> None:
    assert {"dandisets", "zarrs"} <= set(os.listdir(mount))
    release = zarr_dir(mount, RELEASE, "")
    result = subprocess.run(["ls", "-la", str(release)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and not result.stderr, result.stderr
    url = f"{demo.url}dandisets/{DANDISET}/{VERSION_DIRS[RELEASE]}/"
    listed = {name for name in listed_over_http(url) if "/" not in name}
    assert set(os.listdir(release)) - {"lost+found"} == listed


def test_find_walks_a_zarr_as_propfind_does(demo: Demo, mount: Path) -> None:
    for version in VERSIONS:
        folder = zarr_dir(mount, version, OME_PATH)
        result = subprocess.run(["find", str(folder)], capture_output=True, text=True, timeout=120)
        assert result.returncode == 0 and not result.stderr, result.stderr
        walked = {line.removeprefix(f"{folder}/") for line in result.stdout.splitlines()} - {str(folder)}
        url = f"{demo.url}dandisets/{DANDISET}/{VERSION_DIRS[version]}/{OME_PATH}/"
        assert walked == listed_over_http(url), version


def test_a_folder_of_thousands_of_chunks_lists_whole(wide_mount: Path) -> None:
    names = os.listdir(wide_mount)
    assert sorted(names) == sorted(str(n) for n in range(WIDE_CHUNKS))
    assert (wide_mount / "2999").stat().st_size == 1000 + 2999 % 7


def test_the_printed_davfs2_commands_run_in_a_clean_root_shell(
    demo: Demo, tmp_path_factory: pytest.TempPathFactory
) -> None:
    printed = demo.printed.split("Mount with davfs2", 1)[1].split("\n\n", 1)[0]
    commands = [line.strip() for line in printed.splitlines()[1:]]
    assert [c.split()[0] for c in commands] == ["mkdir", "mount", "ls", "umount"], printed
    point = str(tmp_path_factory.mktemp("pasted") / "zarrdav")  # not the printed /mnt/zarrdav
    script = "\n".join(["set -e", *(c.replace("/mnt/zarrdav", point) for c in commands)])
    clean = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root"}
    try:
        result = subprocess.run(["bash", "-c", script], capture_output=True, text=True, env=clean,
                                stdin=subprocess.DEVNULL, timeout=120)
        left_mounted = mounted_at(Path(point))
    finally:
        _unmount(Path(point))  # and its cache
    if result.returncode != 0 and CANNOT_MOUNT.search(result.stderr):
        pytest.skip(f"davfs2 cannot mount here: {result.stderr.strip()}")
    assert result.returncode == 0, f"{script}\n{result.stderr}"
    assert {"README.txt", "dandiset.yaml", "sub-01"} <= set(result.stdout.split())
    assert not left_mounted


def test_the_mount_is_read_only(mount: Path) -> None:
    options = next(line.split()[3] for line in Path("/proc/mounts").read_text().splitlines()
                   if line.split()[1] == str(mount))
    assert "ro" in options.split(",")
    with pytest.raises(OSError):
        (mount / "dandisets" / DANDISET / "draft" / "new.txt").write_text("no")


@pytest.mark.parametrize("version", VERSIONS)
def test_a_blob_asset_reads_as_its_s3_object(demo: Demo, mount: Path, version: str) -> None:
    read = zarr_dir(mount, version, README_PATH).read_bytes()
    assert read == over_http(demo, version, README_PATH)
    assert read == README.encode()


@pytest.mark.parametrize("version", VERSIONS)
def test_zarr_metadata_files_read_by_path_are_the_pinned_versions(
    demo: Demo, mount: Path, version: str
) -> None:
    for zarr_path, names in ((OME_PATH, OME_METADATA), (TRACES_PATH, TRACES_METADATA)):
        for name in names:
            read = (zarr_dir(mount, version, zarr_path) / name).read_bytes()
            assert read == over_http(demo, version, f"{zarr_path}/{name}"), f"{zarr_path}/{name}"


def test_chunks_read_by_path_differ_where_the_zarr_changed(demo: Demo, mount: Path) -> None:
    release, draft = (zarr_dir(mount, version, OME_PATH) for version in VERSIONS)
    published = (release / CHANGED_CHUNK).read_bytes()
    assert published == over_http(demo, RELEASE, f"{OME_PATH}/{CHANGED_CHUNK}")
    assert published != (draft / CHANGED_CHUNK).read_bytes()
    # The release keeps the chunk the change deleted; the draft has none.
    assert (release / DELETED_CHUNK).read_bytes() == over_http(
        demo, RELEASE, f"{OME_PATH}/{DELETED_CHUNK}"
    )
    assert not (draft / DELETED_CHUNK).exists()


@pytest.mark.parametrize("version", VERSIONS)
def test_zarr_python_reads_the_v2_zarr_from_the_mount(mount: Path, version: str) -> None:
    # Consolidated metadata: opening the group lists nothing.
    group = zarr.open_group(str(zarr_dir(mount, version, OME_PATH)), mode="r")
    assert group.metadata.consolidated_metadata is not None
    assert group.attrs["multiscales"][0]["datasets"][2]["path"] == "2"
    for level, expected in enumerate(ome_pyramid(ome_image(VERSIONS[version]))):
        np.testing.assert_array_equal(group[str(level)][...], expected, err_msg=str(level))


def test_zarr_python_reads_the_v3_zarr_from_the_mount(demo: Demo, mount: Path) -> None:
    opened = {
        version: zarr.open_group(str(zarr_dir(mount, version, TRACES_PATH)), mode="r")
        for version in VERSIONS
    }
    for version, group in opened.items():
        assert group.attrs["description"] == "four channels sampled at 1 kHz"
        assert group["traces"].attrs["units"] == "mV"
        onsets = np.arange(12, dtype="u4") * 30 + 10 + (5 if VERSIONS[version] else 0)
        np.testing.assert_array_equal(group["events/onsets"][...], onsets)  # a sharded array
        # The same values as zarr-python reads over HTTP.
        url = f"{demo.url}dandisets/{DANDISET}/{VERSION_DIRS[version]}/{TRACES_PATH}"
        remote = zarr.open_group(url, mode="r")
        for name in ("traces", "time"):
            np.testing.assert_array_equal(group[name][...], remote[name][...], err_msg=name)
    release, draft = (opened[version]["traces"][...] for version in VERSIONS)
    np.testing.assert_array_equal(draft[0, :100], -release[0, :100])
    np.testing.assert_array_equal(draft[0, 100:], release[0, 100:])
    assert release[2:4, 300:400].any() and not draft[2:4, 300:400].any()
