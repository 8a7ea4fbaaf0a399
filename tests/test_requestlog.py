"""The request log layer: one line per request, a plain 500 for any bug.

It writes its lines straight to a file descriptor (not through ``logging``),
in batches, so these tests read what lands in a pipe.
"""

from __future__ import annotations

import logging
import os
import re
import select
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from zarrdav.edge.answer import Answer
from zarrdav.edge.layers import Handler, answer_safely, request_log, stacked
from zarrdav.edge.request import Request
from zarrdav.edge.requestlog import FLUSH_SECONDS, RequestLog
from zarrdav.edge.wsgi import Edge
from zarrdav.errors import UpstreamError

LINE = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} INFO zarrdav: (?P<rest>.*)\n")


@pytest.fixture
def pipe() -> Iterator[tuple[int, int]]:
    read, write = os.pipe()
    yield read, write
    os.close(read)
    os.close(write)


@pytest.fixture(autouse=True)
def info_level() -> Iterator[None]:
    logger = logging.getLogger("zarrdav")
    level = logger.level
    logger.setLevel(logging.INFO)
    yield
    logger.setLevel(level)


def Logged(handler: Handler, requests: RequestLog) -> Edge:
    """``handler`` behind the two layers that make a line of every request."""
    return Edge(stacked(handler, [request_log(requests), answer_safely]), requests)


def call(app: Callable[..., Iterable[bytes]], method: str, path: str) -> tuple[str, list[tuple[str, str]], bytes]:
    answered: list[Any] = []
    body = b"".join(app({"REQUEST_METHOD": method, "PATH_INFO": path},
                        lambda status, headers, exc_info=None: answered.extend((status, headers))))
    return answered[0], answered[1], body


def test_each_request_is_one_line_with_method_wire_path_status_and_time(pipe: tuple[int, int]) -> None:
    def app(request: Request) -> Answer:
        return Answer.redirect(307, "http://s3/x")

    wrapped = Logged(app, RequestLog(pipe[1]))
    call(wrapped, "GET", "/zarrs/0.1.2")
    call(wrapped, "HEAD", "/a b\n\u00c3\u00a9")  # "é" as WSGI gives it (latin-1); a newline stays encoded
    wrapped.close()
    lines = os.read(pipe[0], 65536).decode().splitlines(keepends=True)
    rests = [LINE.fullmatch(line).group("rest") for line in lines]  # type: ignore[union-attr]
    assert [rest.split(" ")[:3] for rest in rests] == [["GET", "/zarrs/0.1.2", "307"],
                                                         ["HEAD", "/a%20b%0A%C3%A9", "307"]]
    assert all(re.fullmatch(r"\d+\.\dms id=-", " ".join(rest.split(" ")[3:])) for rest in rests)


def test_a_bug_is_a_plain_500_and_a_traceback_in_the_log(
    pipe: tuple[int, int], caplog: pytest.LogCaptureFixture
) -> None:
    def broken(request: Request) -> Answer:
        raise RuntimeError("secret detail")

    status, headers, body = call(Logged(broken, RequestLog(pipe[1])), "GET", "/zarrs/")
    os.set_blocking(pipe[0], False)  # a server error's line is written at once
    assert (status, body) == ("500 Internal Server Error", b"internal error\n")
    assert ("Content-Type", "text/plain; charset=utf-8") in headers
    assert "RuntimeError: secret detail" in caplog.text
    assert LINE.fullmatch(os.read(pipe[0], 65536).decode()).group("rest").startswith("GET /zarrs/ 500 ")  # type: ignore[union-attr]


def test_no_lines_above_info(pipe: tuple[int, int]) -> None:
    logging.getLogger("zarrdav").setLevel(logging.WARNING)

    def app(request: Request) -> Answer:
        return Answer(200, [], b"x")

    wrapped = Logged(app, RequestLog(pipe[1]))
    assert call(wrapped, "GET", "/")[2] == b"x"
    wrapped.close()
    os.set_blocking(pipe[0], False)
    with pytest.raises(BlockingIOError):
        os.read(pipe[0], 1)


def test_lines_are_written_soon_without_closing(pipe: tuple[int, int]) -> None:
    def app(request: Request) -> Answer:
        return Answer(200, [], b"x")

    call(Logged(app, RequestLog(pipe[1])), "GET", "/soon")
    ready, _, _ = select.select([pipe[0]], [], [], 20 * FLUSH_SECONDS)
    assert ready
    assert LINE.fullmatch(os.read(pipe[0], 65536).decode()).group("rest").startswith("GET /soon 200 ")  # type: ignore[union-attr]


def test_lines_of_many_threads_come_whole_and_once(tmp_path: Path) -> None:
    def app(request: Request) -> Answer:
        return Answer.redirect(307, "http://s3/x")

    with (tmp_path / "log").open("wb") as sink:
        wrapped = Logged(app, RequestLog(sink.fileno()))
        paths = [f"/zarrs/{thread}/{n}" for thread in range(8) for n in range(500)]
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda path: call(wrapped, "GET", path), paths))
        wrapped.close()
    lines = (tmp_path / "log").read_text().splitlines(keepends=True)
    rests = [LINE.fullmatch(line).group("rest").split()[1] for line in lines]  # type: ignore[union-attr]
    assert sorted(rests) == sorted(paths)


def test_a_cause_with_newlines_stays_on_its_line_with_its_chain(pipe: tuple[int, int]) -> None:
    def failing(request: Request) -> Answer:
        try:
            raise OSError("disk\nINFO zarrdav: GET /forged 200")
        except OSError as error:
            raise UpstreamError("manifest tree: x.json\r\nunreadable") from error

    status, _, body = call(Logged(failing, RequestLog(pipe[1])), "GET", "/zarrs/x")
    assert status.startswith("502") and body.count(b"\n") == 1
    os.set_blocking(pipe[0], False)
    lines = os.read(pipe[0], 65536).decode().splitlines()
    assert len(lines) == 1
    assert lines[0].endswith(
        "(manifest tree: x.json\\r\\nunreadable <- OSError: disk\\nINFO zarrdav: GET /forged 200)")


def test_a_very_long_path_is_logged_by_its_beginning(pipe: tuple[int, int]) -> None:
    def app(request: Request) -> Answer:
        return Answer(404, [], b"")

    wrapped = Logged(app, RequestLog(pipe[1]))
    call(wrapped, "GET", "/" + "\n" * 5000)
    wrapped.close()
    line = os.read(pipe[0], 65536).decode()
    assert line.count("\n") == 1
    assert LINE.fullmatch(line).group("rest").startswith(  # type: ignore[union-attr]
        "GET /" + "%0A" * 199 + "...(5001 characters) 404 ")


@pytest.mark.parametrize("value", ['"abc"\r\nSet-Cookie: pwned=1', "caf\u00e9\u2603", "a\x00b"])
def test_a_header_value_that_cannot_be_sent_is_a_502_naming_it_and_logged_so(
    pipe: tuple[int, int], value: str
) -> None:
    def app(request: Request) -> Answer:
        return Answer.redirect(307, "http://s3/x", [("ETag", value)])

    status, headers, body = call(Logged(app, RequestLog(pipe[1])), "GET", "/zarrs/x")
    assert status == "502 Bad Gateway" and body == b"the value for the ETag header cannot be sent\n"
    assert not any(name in ("ETag", "Set-Cookie") for name, _ in headers)
    os.set_blocking(pipe[0], False)
    assert " GET /zarrs/x 502 " in os.read(pipe[0], 65536).decode()


def test_latin1_and_tabs_in_header_values_are_sent() -> None:
    def app(request: Request) -> Answer:
        return Answer(200, [("X-Note", "caf\u00e9\tok")], b"")

    status, headers, _ = call(Logged(app, RequestLog(os.open(os.devnull, os.O_WRONLY))), "GET", "/")
    assert status == "200 OK" and ("X-Note", "caf\u00e9\tok") in headers
