"""What an operator watches zarrdav by: probes, robots.txt, request ids, JSON log lines."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.manifests import one_manifest_tree, sample_manifest
from tests.servers import in_process, zarrdav_server
from zarrdav.config import Settings
from zarrdav.demo.archive import load_archive, serve_archive

ARCHIVE = Path(__file__).parent / "data" / "archive.yaml"
ZARR = "1284a14f-fe4f-4dc3-b10d-48e5db8bf18d"
CHECKSUM, MANIFEST = sample_manifest()


@pytest.fixture(scope="module")
def api() -> Iterator[str]:
    with serve_archive(load_archive(ARCHIVE)) as base_url:
        yield base_url


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    return one_manifest_tree(tmp_path / "tree", ZARR, CHECKSUM, MANIFEST)


def test_healthz_answers_without_any_upstream(tmp_path: Path) -> None:
    # Nothing behind it exists: liveness is the process alone.
    settings = Settings(manifest_root=str(tmp_path / "absent"), api_url="http://127.0.0.1:9/api", index_dir="")
    with in_process(settings) as client:
        answer = client.get("/-/healthz")
        assert (answer.status_code, answer.text) == (200, "ok\n")
        assert answer.headers["Cache-Control"] == "no-store"
        assert answer.headers["Content-Type"].startswith("text/plain")
        assert client.head("/-/healthz").status_code == 200


def test_readyz_names_the_upstream_that_fails(tree: Path, api: str) -> None:
    with in_process(Settings(manifest_root=str(tree), api_url=api, index_dir="")) as client:
        answer = client.get("/-/readyz")
        assert (answer.status_code, answer.text) == (200, "ready\n")
        assert answer.headers["Cache-Control"] == "no-store"
    with in_process(Settings(manifest_root=str(tree), api_url="http://127.0.0.1:9/api", index_dir="")) as client:
        answer = client.get("/-/readyz")
        assert answer.status_code == 503
        assert answer.text.startswith("not ready: archive: ") and "manifest tree" not in answer.text
    with in_process(Settings(manifest_root=str(tree / "absent"), api_url=api, index_dir="")) as client:
        answer = client.get("/-/readyz")
        assert answer.status_code == 503 and answer.text.startswith("not ready: manifest tree: ")


def test_readyz_checks_at_most_every_interval(tree: Path, tmp_path: Path) -> None:
    root = tmp_path / "moving"
    root.mkdir()
    settings = Settings(manifest_root=str(root), api_url="http://127.0.0.1:9/api", index_dir="",
                        ready_interval=3600)
    with in_process(settings) as client:
        first = client.get("/-/readyz").text
        root.rmdir()  # the tree goes away; the verdict is kept for the interval
        assert client.get("/-/readyz").text == first
        assert "manifest tree" not in first


def test_probes_are_outside_the_dav_hierarchy(tree: Path) -> None:
    with in_process(Settings(manifest_root=str(tree), index_dir="")) as client:
        assert client.request("PROPFIND", "/-/healthz", headers={"Depth": "0"}).status_code == 404
        assert client.request("PROPFIND", "/-/", headers={"Depth": "1"}).status_code == 404
        assert client.get("/-/other").status_code == 404
        root = client.request("PROPFIND", "/", headers={"Depth": "1"}).text
        assert "/-/" not in root and "robots.txt" not in root


@pytest.mark.parametrize(("policy", "rules"), [("disallow", "Disallow: /\n"), ("allow", "Disallow:\n")])
def test_robots_txt(tree: Path, policy: str, rules: str) -> None:
    with in_process(Settings(manifest_root=str(tree), index_dir="", robots=policy)) as client:
        answer = client.get("/robots.txt")
        assert answer.status_code == 200
        assert answer.headers["Content-Type"] == "text/plain; charset=utf-8"
        assert answer.text == f"User-agent: *\n{rules}"


def test_a_sane_request_id_is_echoed_and_others_are_replaced(tree: Path) -> None:
    with in_process(Settings(manifest_root=str(tree), index_dir="")) as client:
        assert client.get("/zarrs/", headers={"X-Request-ID": "abc-123.x"}).headers["X-Request-ID"] == "abc-123.x"
        made = {client.get("/zarrs/").headers["X-Request-ID"] for _ in range(3)}
        assert len(made) == 3
        for bad in ("a b", "x" * 129, "", "a\"b", "id\x7f"):
            echoed = client.get("/zarrs/", headers={"X-Request-ID": bad}).headers["X-Request-ID"]
            assert echoed != bad and re.fullmatch(r"[0-9a-f]{12}-\d+", echoed)
        # Errors carry it too.
        assert client.get("/nowhere", headers={"X-Request-ID": "e1"}).headers["X-Request-ID"] == "e1"


def _read_until(log: Path, pattern: str, seconds: float = 10) -> str:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        text = log.read_text(errors="replace")
        if re.search(pattern, text):
            return text
        time.sleep(0.1)
    raise AssertionError(f"{pattern!r} not in the log:\n{log.read_text(errors='replace')}")


def test_the_request_id_is_on_the_request_line_and_its_upstream_calls(tree: Path, api: str, tmp_path: Path) -> None:
    log = tmp_path / "zarrdav.log"
    with zarrdav_server("--manifest-root", str(tree), "--api-url", api, "--index-dir", "", log=log) as url:
        assert httpx.get(f"{url}/dandisets/000001/", headers={"X-Request-ID": "trace-7"}).status_code == 200
        text = _read_until(log, r"GET /dandisets/000001/ 200 \S+ms id=trace-7")
    upstream = [line for line in text.splitlines() if "zarrdav.upstream: archive" in line]
    assert upstream and all(line.endswith("id=trace-7") and " ok " in line for line in upstream)


def test_json_log_lines(tree: Path, api: str, tmp_path: Path) -> None:
    log = tmp_path / "zarrdav.log"
    with zarrdav_server("--manifest-root", str(tree), "--api-url", api, "--index-dir", "",
                        "--log-format", "json", log=log) as url:
        httpx.get(f"{url}/dandisets/000001/draft/", headers={"X-Request-ID": "j-1"})
        text = _read_until(log, r'"path":"/dandisets/000001/draft/"')
    records = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    request = next(r for r in records if r.get("path") == "/dandisets/000001/draft/")
    assert request["method"] == "GET" and request["status"] == 200 and request["request_id"] == "j-1"
    assert isinstance(request["ms"], float) and request["level"] == "INFO"
    calls = [r for r in records if r.get("upstream") == "archive"]
    assert calls and all(r["request_id"] == "j-1" and r["outcome"] == "ok" for r in calls)


def test_many_threads_keep_their_own_request_ids(tree: Path, api: str, tmp_path: Path) -> None:
    log = tmp_path / "zarrdav.log"
    with zarrdav_server("--manifest-root", str(tree), "--api-url", api, "--index-dir", "", "--archive-ttl", "0",
                        log=log) as url:
        def fetch(n: int) -> None:
            httpx.get(f"{url}/dandisets/000001/draft/", headers={"X-Request-ID": f"t{n}"})

        threads = [threading.Thread(target=fetch, args=(n,)) for n in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        _read_until(log, r"(id=t\d+\n(.|\n)*){8}")
        text = log.read_text()
    ids = {line.rsplit("id=", 1)[1] for line in text.splitlines() if "zarrdav.upstream:" in line}
    assert ids and ids <= {f"t{n}" for n in range(8)}
