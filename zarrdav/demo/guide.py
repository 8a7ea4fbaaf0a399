"""What ``zarrdav demo`` prints once it is up: where to look, and commands to paste."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

from zarrdav.demo.catalog import DANDISET, OME_PATH, RELEASE, TRACES_PATH

CONFIG_DIR = Path(__file__).resolve().parents[2] / "config"  # there in a source checkout
RCLONE_CONF_URL = "http://127.0.0.1:8080/"  # the url in config/rclone.conf
READY = "Press Ctrl-C to stop"


def guide(url: str, startup: float, permanent: str) -> str:
    """The text for a server at ``url`` (ending in ``/``) that took ``startup`` seconds to start.

    ``permanent`` is the /zarrs/ path (from "/") of the traces Zarr as the release pins it.
    """
    pinned = f"{url}{permanent.strip('/')}"
    release = f"{url}dandisets/{DANDISET}/releases/{RELEASE}/"
    draft = f"{url}dandisets/{DANDISET}/draft/"
    # rclone's remote-specific variable overrides the url written in the config file.
    rclone_url = "" if url == RCLONE_CONF_URL else f"RCLONE_CONFIG_ZARRDAV_URL={url} "
    rclone_conf, davfs2_conf = _config_file("rclone.conf"), _config_file("davfs2.conf")
    rclone = _rclone()
    return f"""
zarrdav demo is up at {url} (started in {startup:.1f} s).

Dandiset {DANDISET} was published as {RELEASE}, then its two Zarrs were changed:
the release keeps serving the bytes it was published with, the draft the new ones.

Browse:
  {url}dandisets/{DANDISET}/

Read with zarr-python 3 (needs fsspec and aiohttp, as in pip install 'zarrdav[demo]'):

{shlex.quote(sys.executable)} - <<'EOF'
import zarr
release = zarr.open_group("{release}{OME_PATH}", mode="r")
draft = zarr.open_group("{draft}{OME_PATH}", mode="r")
print("voxels changed since the release:", (release["0"][:] != draft["0"][:]).sum())
EOF

The release's traces Zarr at its permanent URL (the same bytes for ever):
  {pinned}

Read it with xarray (installed with the demo extra too):

{shlex.quote(sys.executable)} - <<'EOF'
import xarray as xr
release = xr.open_zarr("{pinned}")
draft = xr.open_zarr("{draft}{TRACES_PATH}")
print(dict(release.sizes), "samples changed since the release:", int((release.traces != draft.traces).sum()))
EOF

List with rclone:
  {rclone} lsjson -R --webdav-url {release} --webdav-vendor other :webdav:
  {rclone_url}{rclone} --config {rclone_conf} lsf -R zarrdav:dandisets/{DANDISET}/draft/

Mount with davfs2 (Linux, as root):
  sudo mkdir -p /mnt/zarrdav
  sudo mount -t davfs -o ro,uid=$(id -u),gid=$(id -g),conf={davfs2_conf} {url} /mnt/zarrdav
  ls /mnt/zarrdav/dandisets/{DANDISET}/releases/{RELEASE}/
  sudo umount /mnt/zarrdav

{READY}: the servers stop and everything the demo wrote is deleted.
"""


def _rclone() -> str:
    """How to run rclone from any shell: the one the demo extra installed beside
    this Python (whose bin directory need not be on PATH), else the one on PATH."""
    beside = Path(sys.executable).with_name("rclone")
    return shlex.quote(str(beside)) if beside.is_file() else "rclone"


def _config_file(name: str) -> str:
    """The absolute path of ``config/<name>`` (davfs2 needs one), or where to find it."""
    path = CONFIG_DIR / name
    return shlex.quote(str(path)) if path.is_file() else f"/path/to/zarrdav/config/{name}"
