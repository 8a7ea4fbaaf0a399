"""Only allowed Host names are answered: a rebound name gets a 400 of one line."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.manifests import one_manifest_tree, sample_manifest
from tests.servers import in_process, zarrdav_server
from zarrdav.config import Settings
from zarrdav.edge.hosts import host_rule
from zarrdav.routes import zarr_version_path

ZARR = "1284a14f-fe4f-4dc3-b10d-48e5db8bf18d"


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    checksum, body = sample_manifest()
    return one_manifest_tree(tmp_path_factory.mktemp("tree"), ZARR, checksum, body)


@pytest.fixture(scope="module")
def server(tree: Path) -> Iterator[tuple[str, int]]:
    with zarrdav_server("--manifest-root", str(tree), "--index-dir", "") as url:
        host, port = url.removeprefix("http://").split(":")
        yield host, int(port)


def exchange(server: tuple[str, int], host: str) -> tuple[bytes, bytes]:
    """The head and body of the answer to a GET / with ``Host: host``, read to the close."""
    with socket.create_connection(server, timeout=10) as connection:
        connection.sendall(f"GET /zarrs/ HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        received = b""
        while chunk := connection.recv(65536):
            received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    return head, body


@pytest.mark.parametrize("host", ["evil.example", "127.0.0.1.evil.example", "localhost.evil.example:8080",
                                  "[::1]x", "127.0.0.1:http"])
def test_other_host_names_are_refused_with_one_line(server: tuple[str, int], host: str) -> None:
    head, body = exchange(server, host)
    assert head.startswith(b"HTTP/1.1 400 ")
    assert b"\r\nConnection: close" in head
    assert body.count(b"\n") == 1 and b"allowed_hosts" in body and b"Traceback" not in body


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.1:{port}", "localhost", "LOCALHOST:{port}",
                                  "[::1]:{port}", "viewer.localhost", "10.1.2.3:{port}"])
def test_loopback_names_and_addresses_are_answered(server: tuple[str, int], host: str) -> None:
    head, _ = exchange(server, host.format(port=server[1]))
    assert head.startswith(b"HTTP/1.1 200 ")


def test_named_hosts_replace_the_defaults(tree: Path) -> None:
    settings = Settings(manifest_root=str(tree), index_dir="", allowed_hosts="dav.example.org .example.net")
    with in_process(settings) as client:
        path = f"{zarr_version_path(ZARR, sample_manifest()[0])}.zattrs"
        for host in ("dav.example.org", "DAV.example.org.:443", "example.net", "a.b.example.net"):
            assert client.get(path, headers={"Host": host}).status_code == 307, host
        for host in ("localhost", "127.0.0.1", "example.org", "evil-example.net"):
            assert client.get(path, headers={"Host": host}).status_code == 400, host


def test_a_star_allows_any_host(tree: Path) -> None:
    with in_process(Settings(manifest_root=str(tree), index_dir="", allowed_hosts="*")) as client:
        assert client.get("/zarrs/", headers={"Host": "anything.example"}).status_code == 200


def test_a_port_in_an_entry_allows_that_port_only() -> None:
    allows = host_rule("dav.example.org:8443", "0.0.0.0")
    assert allows("dav.example.org:8443") and not allows("dav.example.org") and not allows("dav.example.org:80")


def test_listening_on_every_address_adds_this_machines_name() -> None:
    name = socket.gethostname()
    assert host_rule("", "0.0.0.0")(name) and host_rule("", "::")(f"{name}:8080")
    assert not host_rule("", "127.0.0.1")(f"{name}.evil.example")
    assert host_rule("", "dav.internal")("dav.internal:8080")
