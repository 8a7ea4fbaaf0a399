"""The edge of a running `zarrdav serve`, spoken to over raw sockets: limits,
request framing, deadlines and draining, each answered at once with one
line of text while the server goes on serving everyone else."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.manifests import one_manifest_tree, sample_manifest
from tests.servers import UNLIMITED, free_port, in_process, wait_until_up, zarrdav_server
from zarrdav.config import Settings

ZARR = "1284a14f-fe4f-4dc3-b10d-48e5db8bf18d"
CHECKSUM, MANIFEST = sample_manifest()
ROOT = f"/zarrs/128/4a1/{ZARR}/{CHECKSUM}.zarr/"
PROP_BODY = (b'<?xml version="1.0"?><D:propfind xmlns:D="DAV:"><D:prop><D:displayname/>'
             b"</D:prop></D:propfind>")


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return one_manifest_tree(tmp_path_factory.mktemp("tree"), ZARR, CHECKSUM, MANIFEST)


@pytest.fixture(scope="module")
def log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("log") / "zarrdav.log"


@pytest.fixture(scope="module")
def server(tree: Path, log: Path) -> Iterator[tuple[str, int]]:
    with zarrdav_server("--manifest-root", str(tree), "--request-timeout", "1", log=log) as url:
        parts = urlsplit(url)
        yield parts.hostname or "", parts.port or 0


class Answer:
    def __init__(self, raw: bytes) -> None:
        head, _, self.body = raw.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        self.status = int(lines[0].split()[1])
        self.headers = {k.lower(): v for k, v in (line.split(": ", 1) for line in lines[1:])}


def exchange(server: tuple[str, int], data: bytes, timeout: float = 10) -> tuple[list[Answer], bool]:
    """Send ``data`` on a fresh connection; the answers read until the server
    closes it or ``timeout`` passes, and whether it closed it."""
    with socket.create_connection(server, timeout=timeout) as connection:
        connection.sendall(data)
        return read_answers(connection, timeout)


def read_answers(connection: socket.socket, timeout: float) -> tuple[list[Answer], bool]:
    received = b""
    deadline = time.monotonic() + timeout
    closed = False
    while time.monotonic() < deadline:
        connection.settimeout(max(0.01, min(0.5, deadline - time.monotonic())))
        try:
            data = connection.recv(65536)
        except TimeoutError:
            if _whole(received):
                break
            continue
        if not data:
            closed = True
            break
        received += data
    return _split(received)[0], closed


def _whole(received: bytes) -> bool:
    answers, rest = _split(received)
    return bool(answers) and rest == b""


def _split(received: bytes) -> tuple[list[Answer], bytes]:
    """The whole answers in ``received``, and what follows them."""
    answers = []
    while b"\r\n\r\n" in received:
        answer = Answer(received)
        length = int(answer.headers.get("content-length", 0 if answer.status < 200 else len(answer.body)))
        head_length = received.index(b"\r\n\r\n") + 4
        answer.body = received[head_length : head_length + length]
        answers.append(answer)
        received = received[head_length + length :]
    return answers, received


def request(method: str, target: str, *headers: str, body: bytes = b"") -> bytes:
    lines = [f"{method} {target} HTTP/1.1", "Host: 127.0.0.1", *headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def assert_refused(answers: list[Answer], closed: bool, status: int) -> None:
    assert [answer.status for answer in answers] == [status]
    assert answers[0].body.count(b"\n") == 1 and b"Traceback" not in answers[0].body
    assert answers[0].headers["content-type"].startswith("text/plain")
    assert answers[0].headers.get("connection") == "close" and closed


def assert_still_serving(server: tuple[str, int]) -> None:
    answers, _ = exchange(server, request("GET", f"{ROOT}.zattrs", "Connection: close"))
    assert [answer.status for answer in answers] == [307]


def log_lines(log: Path, needle: str, timeout: float = 5) -> list[str]:
    deadline = time.monotonic() + timeout
    while True:
        lines = [line for line in log.read_text(errors="replace").splitlines() if needle in line]
        if lines or time.monotonic() > deadline:
            return lines
        time.sleep(0.05)


def test_headers_beyond_64_kib_are_431(server: tuple[str, int], log: Path) -> None:
    data = request("GET", "/431-probe", *(f"X-Filler-{n}: {'a' * 1000}" for n in range(80)))
    assert_refused(*exchange(server, data), 431)
    assert log_lines(log, "GET /431-probe 431")
    assert_still_serving(server)


def test_headers_that_never_end_are_431_before_they_are_all_read(server: tuple[str, int]) -> None:
    with socket.create_connection(server, timeout=10) as connection:
        connection.sendall(b"GET / HTTP/1.1\r\nHost: test\r\nX-Long: ")
        sent = 0
        try:
            while sent < 100 * 2**20:  # 100 MB, as the audit's clients sent
                connection.sendall(b"a" * 65536)
                sent += 65536
        except (BrokenPipeError, ConnectionResetError):
            pass
        answers, _ = read_answers(connection, 10)
    assert sent < 100 * 2**20
    assert [answer.status for answer in answers] == [431]


def test_a_path_beyond_8_kib_is_414_and_logged_by_its_beginning(server: tuple[str, int], log: Path) -> None:
    assert_refused(*exchange(server, request("GET", "/zarrs/" + "%C3%A9x" * 1500)), 414)
    lines = log_lines(log, " 414 ")
    assert lines and "...(" in lines[-1] and len(lines[-1]) < 1000


def test_a_body_to_a_method_that_takes_none_is_not_read(server: tuple[str, int]) -> None:
    with socket.create_connection(server, timeout=10) as connection:
        connection.sendall(request("PUT", "/x", f"Content-Length: {200 * 2**20}", body=b"x" * 2**20))
        answers, closed = read_answers(connection, 10)
    assert [answer.status for answer in answers] == [405]
    assert answers[0].headers["connection"] == "close" and closed


@pytest.mark.parametrize("framing", [
    ("Content-Length: 5", "Content-Length: 6"),
    ("Content-Length: 5", "Content-Length: 5"),
    ("Content-Length: 5, 5",),
    ("Content-Length: -5",),
    ("Content-Length: five",),
    ("Content-Length: 5", "Transfer-Encoding: chunked"),
])
def test_bad_framing_is_400_at_once(server: tuple[str, int], framing: tuple[str, ...]) -> None:
    started = time.monotonic()
    answers, closed = exchange(server, request("PROPFIND", ROOT, "Depth: 0", *framing, body=b"hello"))
    assert_refused(answers, closed, 400)
    assert time.monotonic() - started < 5  # "at once": not after a read timeout


def test_empty_lines_before_a_request(server: tuple[str, int]) -> None:
    answers, _ = exchange(server, b"\r\n" + request("GET", f"{ROOT}.zattrs", "Connection: close"))
    assert [answer.status for answer in answers] == [307]  # one is allowed
    answers, closed = exchange(server, b"\r\n" * 30000 + request("GET", f"{ROOT}.zattrs"))
    assert_refused(answers, closed, 400)
    assert_still_serving(server)


def test_an_unknown_transfer_coding_is_501(server: tuple[str, int]) -> None:
    answers, closed = exchange(server, request("PROPFIND", ROOT, "Transfer-Encoding: gzip"))
    assert_refused(answers, closed, 501)


def test_http11_without_host_is_400(server: tuple[str, int]) -> None:
    answers, closed = exchange(server, f"GET {ROOT}.zattrs HTTP/1.1\r\n\r\n".encode())
    assert_refused(answers, closed, 400)
    answers, _ = exchange(server, f"GET {ROOT}.zattrs HTTP/1.0\r\n\r\n".encode())
    assert [answer.status for answer in answers] == [307]


def chunked(body: bytes, size: int = 7) -> bytes:
    pieces = [body[n : n + size] for n in range(0, len(body), size)]
    return b"".join(b"%x\r\n%s\r\n" % (len(piece), piece) for piece in pieces) + b"0\r\n\r\n"


def test_a_chunked_propfind_body_is_read_and_the_connection_goes_on(server: tuple[str, int]) -> None:
    data = request("PROPFIND", ROOT, "Depth: 0", "Transfer-Encoding: chunked", body=chunked(PROP_BODY))
    answers, _ = exchange(server, data + request("GET", f"{ROOT}.zattrs"), timeout=3)
    assert [answer.status for answer in answers] == [207, 307]
    assert b"displayname" in answers[0].body and b"getetag" not in answers[0].body


def test_a_chunked_body_over_the_limit_is_413(server: tuple[str, int]) -> None:
    data = request("PROPFIND", ROOT, "Depth: 0", "Transfer-Encoding: chunked",
                   body=chunked(b" " * 70_000, 4096))
    answers, closed = exchange(server, data)
    assert_refused(answers, closed, 413)


def test_a_length_over_the_limit_is_413_unread(server: tuple[str, int]) -> None:
    answers, closed = exchange(server, request("PROPFIND", ROOT, "Depth: 0", "Content-Length: 10000000"))
    assert_refused(answers, closed, 413)


def test_expect_100_continue_is_answered_and_the_body_read(server: tuple[str, int]) -> None:
    with socket.create_connection(server, timeout=10) as connection:
        connection.sendall(request("PROPFIND", ROOT, "Depth: 0", "Expect: 100-continue",
                                   f"Content-Length: {len(PROP_BODY)}"))
        assert connection.recv(100).startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
        connection.sendall(PROP_BODY)
        # cheroot says "100 Continue" once more when it reads the request;
        # HTTP allows any number of interim answers.
        answers, _ = read_answers(connection, 3)
        answers = [answer for answer in answers if answer.status != 100]
    assert answers[-1].status == 207 and b"displayname" in answers[-1].body


def test_a_request_that_does_not_arrive_in_time_is_408(server: tuple[str, int]) -> None:
    with socket.create_connection(server, timeout=10) as connection:
        connection.sendall(b"GET / HTTP/1.1\r\nHost: test\r\n")
        answers, closed = read_answers(connection, 8)
    assert_refused(answers, closed, 408)


def test_control_characters_in_a_path_stay_on_one_log_line(server: tuple[str, int], log: Path) -> None:
    answers, _ = exchange(server, request("GET", "/zarrs/x%0AINFO%20zarrdav:%20forged%0D", "Connection: close"))
    assert answers[0].status == 404 and answers[0].body.count(b"\n") == 1
    lines = log_lines(log, "forged")
    assert len(lines) == 1 and "x%0AINFO" in lines[0]


def test_sigterm_drains_keep_alive_connections_without_reset(tree: Path) -> None:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "zarrdav", "serve", "--port", str(port), "--manifest-root", str(tree),
         "--index-dir", ""], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, **UNLIMITED})
    try:
        wait_until_up(f"http://127.0.0.1:{port}/", process)
        errors: list[BaseException] = []
        last: list[dict[str, str]] = []
        stop = threading.Event()

        def client() -> None:
            with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
                while not stop.is_set():
                    try:
                        connection.sendall(request("GET", f"{ROOT}.zattrs"))
                        answers, closed = read_answers(connection, 2)
                    except OSError as error:  # a reset shows here
                        errors.append(error)
                        return
                    if closed or not answers:
                        return
                    last[:] = [answers[-1].headers]

        clients = [threading.Thread(target=client) for _ in range(4)]
        for thread in clients:
            thread.start()
        time.sleep(0.5)
        process.send_signal(signal.SIGTERM)
        assert process.wait(20) == 0
        stop.set()
        for thread in clients:
            thread.join(10)
        assert errors == []
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_200_simultaneous_connects_are_all_answered(server: tuple[str, int]) -> None:
    connections = [socket.create_connection(server, timeout=10) for _ in range(200)]
    try:
        for connection in connections:
            connection.sendall(request("GET", f"{ROOT}.zattrs", "Connection: close"))
        statuses = [read_answers(connection, 10)[0][0].status for connection in connections]
    finally:
        for connection in connections:
            connection.close()
    assert statuses == [307] * 200


def test_in_process_edge_answers_every_method(tree: Path) -> None:
    """The same app, in process: handler logic without sockets, with tracebacks."""
    with in_process(Settings(manifest_root=str(tree), index_dir="")) as client:
        assert client.get(f"{ROOT}.zattrs").status_code == 307
        assert client.request("PROPFIND", ROOT, headers={"Depth": "0"}).status_code == 207
        put = client.put("/x", content=b"x")
        assert (put.status_code, put.headers["allow"]) == (405, "OPTIONS, GET, HEAD, PROPFIND")
        brew = client.request("BREW", "/")
        assert brew.status_code == 501  # RFC 9110: a method the server does not know
        assert client.get("/" + "a" * 9000).status_code == 414
        options = client.options(ROOT)
        assert options.headers.get_list("dav") == ["1"]
        for answer in (put, brew, options, client.get("/nothing"), client.get(f"{ROOT}.zattrs")):
            assert answer.headers["access-control-allow-origin"] == "*"
            assert answer.headers["dav"] == "1"  # every answer, as dandidav
