"""The DANDI Archive test double answers as the real archive does (docs/archive-api.md)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from zarrdav.demo.archive import ArchiveData, create_archive_app, load_archive, serve_archive

DATA = Path(__file__).parent / "data" / "archive.yaml"
NWB_ID = "838bab7b-9ab4-4d66-97b3-898a367c9c7e"
NWB_BLOB = "2dbaf0fd-5003-4a0a-b4c0-bc8cdbdb3826"
PUBLISHED_NWB_ID = "9e0c7b1a-5555-4e00-8000-000000000005"
PROBE_ZARR = "c8e1d7a4-1111-4f00-8000-000000000001"
PENDING_ZARR = "c8e1d7a4-2222-4f00-8000-000000000002"
SECRET_ID = "8e8e8e8e-8888-4e00-8000-000000000008"
S3 = "http://127.0.0.1:9/dandiarchive"
NOT_FOUND = {"detail": "Not found."}


@pytest.fixture(scope="module")
def data() -> ArchiveData:
    return load_archive(DATA)


@pytest.fixture(scope="module")
def api(data: ArchiveData) -> Iterator[str]:
    with serve_archive(data) as base_url:
        yield base_url


@pytest.fixture(scope="module")
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10) as client:
        yield client


def get_json(client: httpx.Client, url: str, status: int = 200, **params: str) -> Any:
    response = client.get(url, params=params or None)  # httpx drops the URL's query for {}
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    return response.json()


def follow(client: httpx.Client, url: str, **params: str) -> list[dict[str, Any]]:
    """Every page of a listing, by its absolute ``next`` links; checks the page envelope."""
    pages = [get_json(client, url, **params)]
    while pages[-1]["next"] is not None:
        assert pages[-1]["next"].startswith(url + "?")
        pages.append(get_json(client, pages[-1]["next"]))
    for page in pages:
        assert list(page) == ["count", "next", "previous", "results"]
        assert page["count"] == sum(len(p["results"]) for p in pages)
    return pages


def atpath(client: httpx.Client, api: str, status: int = 200, **params: str) -> Any:
    return get_json(client, f"{api}/webdav/assets/atpath/", status,
                    **{"dandiset_id": "000001", "version_id": "draft", **params})


def test_dandisets_are_listed_in_pages_with_summaries(api: str, client: httpx.Client) -> None:
    pages = follow(client, f"{api}/dandisets/", page_size="2")
    assert [len(page["results"]) for page in pages] == [2, 1]
    assert pages[0]["next"] == f"{api}/dandisets/?page=2&page_size=2"
    assert pages[0]["previous"] is None
    assert pages[1]["previous"] == f"{api}/dandisets/?page_size=2"
    first, never_published, embargoed = [item for page in pages for item in page["results"]]
    assert first == {
        "identifier": "000001",
        "created": "2020-03-15T22:56:55.655000Z",
        "modified": "2024-01-01T00:00:00.000000Z",
        "contact_person": "Doe, Jane",
        "embargo_status": "OPEN",
        "most_recent_published_version": {
            "version": "0.240101.0000", "name": "Rat recordings", "asset_count": 2,
            "size": 18792 + 900, "status": "Published",
            "created": "2024-01-01T00:00:00.000000Z", "modified": "2024-01-01T00:00:00.000000Z",
        },
        "draft_version": {
            "version": "draft", "name": "Rat recordings", "asset_count": 5,
            "size": 18792 + 1000 + 500 + 10 + 200, "status": "Valid",
            "created": "2020-03-15T22:56:55.655000Z", "modified": "2024-02-01T00:00:00.000000Z",
        },
    }
    assert never_published["most_recent_published_version"] is None
    assert never_published["contact_person"] == ""
    assert never_published["draft_version"]["asset_count"] == 1
    assert embargoed["identifier"] == "000003"
    assert embargoed["embargo_status"] == "EMBARGOED"


def test_one_dandiset_nests_itself_in_its_versions(api: str, client: httpx.Client) -> None:
    dandiset = get_json(client, f"{api}/dandisets/000001/")
    assert dandiset["identifier"] == "000001"
    assert dandiset["draft_version"]["dandiset"]["identifier"] == "000001"
    assert dandiset["most_recent_published_version"]["version"] == "0.240101.0000"
    assert get_json(client, f"{api}/dandisets/000002/")["most_recent_published_version"] is None
    assert get_json(client, f"{api}/dandisets/999999/", 404) == NOT_FOUND


def test_versions_are_listed_by_creation(api: str, client: httpx.Client) -> None:
    pages = follow(client, f"{api}/dandisets/000001/versions/", page_size="2")
    versions = [item for page in pages for item in page["results"]]
    assert [v["version"] for v in versions] == ["draft", "0.230629.1955", "0.240101.0000"]
    assert versions[1]["asset_count"] == 0 and versions[1]["size"] == 0
    assert versions[0]["dandiset"]["contact_person"] == "Doe, Jane"
    assert get_json(client, f"{api}/dandisets/999999/versions/", 404) == NOT_FOUND


def test_version_metadata_is_raw_in_key_order(api: str, client: httpx.Client) -> None:
    response = client.get(f"{api}/dandisets/000001/versions/draft/")
    assert response.status_code == 200
    metadata = response.json()
    assert list(metadata) == ["id", "name", "schemaKey", "@context", "dateCreated", "contributor"]
    assert metadata["dateCreated"] == "2020-03-15T22:56:55.655000Z"  # not a YAML timestamp
    assert get_json(client, f"{api}/dandisets/000001/versions/0.999999.9999/", 404) == NOT_FOUND


def test_version_info_is_the_summary_with_metadata(api: str, client: httpx.Client) -> None:
    info = get_json(client, f"{api}/dandisets/000001/versions/0.240101.0000/info/")
    assert info["version"] == "0.240101.0000"
    assert info["asset_count"] == 2
    assert info["status"] == "Published"
    assert info["metadata"] == {"id": "DANDI:000001/0.240101.0000"}
    assert info["contact_person"] == "Doe, Jane"
    assert info["dandiset"]["identifier"] == "000001"


def test_asset_metadata_is_served_within_its_version(api: str, client: httpx.Client) -> None:
    """zarrdav's pages link each asset's metadata at versions/{v}/assets/{id}/."""
    metadata = get_json(client, f"{api}/dandisets/000001/versions/draft/assets/{NWB_ID}/")
    assert metadata["path"] == "sub-RAT123/sub-RAT123.nwb"
    assert metadata["contentUrl"] == [
        f"{api}/assets/{NWB_ID}/download/", f"{S3}/blobs/2db/af0/{NWB_BLOB}"
    ]
    other_version = f"{api}/dandisets/000001/versions/0.240101.0000/assets/{NWB_ID}/"
    assert get_json(client, other_version, 404) == NOT_FOUND


def test_atpath_root_lists_only_its_children(api: str, client: httpx.Client) -> None:
    page = atpath(client, api, children="true")
    assert [(item["type"], item["resource"]["path"]) for item in page["results"]] == [
        ("asset", "README.md"), ("folder", "sub-RAT123"), ("folder", "sub-RAT124"),
    ]
    assert page["results"][1]["resource"] == {
        "path": "sub-RAT123", "total_assets": 3, "total_size": 18792 + 1000 + 500,
    }
    assert atpath(client, api)["results"] == []  # the root is no item of its own


def test_atpath_folder_comes_first_then_its_sorted_children(api: str, client: httpx.Client) -> None:
    results = atpath(client, api, path="sub-RAT123", children="true")["results"]
    assert [(item["type"], item["resource"]["path"]) for item in results] == [
        ("folder", "sub-RAT123"),
        ("folder", "sub-RAT123/anat"),
        ("asset", "sub-RAT123/sub-RAT123.nwb"),
        ("asset", "sub-RAT123/sub-RAT123_probe.zarr"),
    ]
    assert results[1] == {
        "type": "folder",
        "resource": {"path": "sub-RAT123/anat", "total_assets": 1, "total_size": 500},
    }
    only_folder = atpath(client, api, path="sub-RAT123")["results"]
    assert only_folder == [results[0]]


def test_atpath_asset_items_and_their_metadata(api: str, client: httpx.Client) -> None:
    bare = atpath(client, api, path="sub-RAT123/sub-RAT123.nwb", children="true")["results"]
    assert bare == [{"type": "asset", "resource": {
        "asset_id": NWB_ID, "blob": NWB_BLOB, "zarr": None, "path": "sub-RAT123/sub-RAT123.nwb",
        "size": 18792, "created": "2023-03-02T22:10:45.985334Z",
        "modified": "2023-03-02T22:10:46.064360Z",
    }}]
    [item] = atpath(client, api, path="sub-RAT123/sub-RAT123.nwb", metadata="true")["results"]
    assert item["resource"]["metadata"] == {
        "path": "sub-RAT123/sub-RAT123.nwb",
        "contentSize": 18792,
        "encodingFormat": "application/x-nwb",
        "digest": {"dandi:dandi-etag": "6ec084ca9d3be17ec194a8f700d65344-1"},
        "contentUrl": [f"{api}/assets/{NWB_ID}/download/", f"{S3}/blobs/2db/af0/{NWB_BLOB}"],
    }
    probe = "sub-RAT123/sub-RAT123_probe.zarr"
    [zarr] = atpath(client, api, path=probe, metadata="true")["results"]
    assert zarr["resource"]["blob"] is None and zarr["resource"]["zarr"] == PROBE_ZARR
    assert zarr["resource"]["metadata"]["contentUrl"][1] == f"{S3}/zarr/{PROBE_ZARR}/"


def test_atpath_keeps_given_metadata_as_is(api: str, client: httpx.Client) -> None:
    [published] = atpath(client, api, version_id="0.240101.0000", path="sub-RAT123/sub-RAT123.nwb",
                         metadata="true")["results"]
    given = published["resource"]["metadata"]["contentUrl"]
    assert given[0].startswith("https://api.dandiarchive.org/")
    [pending] = atpath(client, api, dandiset_id="000002", path="fresh.zarr",
                       metadata="true")["results"]
    assert pending["resource"]["metadata"]["digest"] is None


def test_atpath_refusals(api: str, client: httpx.Client) -> None:
    missing = atpath(client, api, 404, path="sub-RAT999")
    assert list(missing) == ["detail"]
    assert list(atpath(client, api, 404, path="sub-RAT123/sub-RAT123.nwb/")) == ["detail"]
    assert atpath(client, api, path="sub-RAT123/")["results"][0]["resource"]["path"] == "sub-RAT123"
    assert atpath(client, api, 404, version_id="0.999999.9999") == NOT_FOUND
    assert atpath(client, api, 404, dandiset_id="999999") == NOT_FOUND
    refused = get_json(client, f"{api}/webdav/assets/atpath/", 400, children="maybe")
    assert refused == {
        "dandiset_id": ["This field is required."],
        "version_id": ["This field is required."],
        "children": ["Must be a valid boolean."],
    }
    assert atpath(client, api, 400, path="") == {"path": ["This field may not be blank."]}


def test_atpath_pages_keep_the_other_parameters(api: str, client: httpx.Client) -> None:
    pages = follow(client, f"{api}/webdav/assets/atpath/", dandiset_id="000001", version_id="draft",
                   path="sub-RAT123", children="true", page_size="2")
    assert [len(page["results"]) for page in pages] == [2, 2]
    assert pages[0]["next"] == (f"{api}/webdav/assets/atpath/?children=true&dandiset_id=000001"
                                "&page=2&page_size=2&path=sub-RAT123&version_id=draft")
    paths = [item["resource"]["path"] for page in pages for item in page["results"]]
    assert paths[0] == "sub-RAT123" and paths[1:] == sorted(paths[1:])


@pytest.mark.parametrize("url", [
    "/dandisets/000003/versions/",
    "/dandisets/000003/versions/draft/",
    "/dandisets/000003/versions/draft/info/",
    f"/dandisets/000003/versions/draft/assets/{SECRET_ID}/",
    "/webdav/assets/atpath/?dandiset_id=000003&version_id=draft&children=true",
])
def test_embargoed_dandisets_need_an_owner_token(api: str, client: httpx.Client, url: str) -> None:
    anonymous = client.get(api + url)
    assert anonymous.status_code == 401
    assert anonymous.json() == {"detail": "Authentication credentials were not provided."}
    stranger = client.get(api + url, headers={"Authorization": "token someone-else"})
    assert stranger.status_code == 403
    assert list(stranger.json()) == ["detail"]
    assert client.get(api + url, headers={"Authorization": "token owner-token"}).status_code == 200


def test_embargoed_dandisets_are_still_listed(api: str, client: httpx.Client) -> None:
    assert get_json(client, f"{api}/dandisets/000003/")["embargo_status"] == "EMBARGOED"
    owner = {"Authorization": "token owner-token"}
    assert client.get(f"{api}/assets/{SECRET_ID}/download/").status_code == 401
    assert client.get(f"{api}/assets/{SECRET_ID}/download/", headers=owner).status_code == 302


def test_zarrs_report_their_draft_checksum(api: str, client: httpx.Client) -> None:
    assert get_json(client, f"{api}/zarr/{PROBE_ZARR}/") == {
        "zarr_id": PROBE_ZARR,
        "name": "sub-RAT123/sub-RAT123_probe.zarr",
        "dandiset": "000001",
        "status": "Complete",
        "checksum": "0123456789abcdef0123456789abcdef-3--1000",
    }
    pending = get_json(client, f"{api}/zarr/{PENDING_ZARR}/")
    assert (pending["status"], pending["checksum"]) == ("Pending", None)
    assert get_json(client, f"{api}/zarr/unknown/", 404) == NOT_FOUND


def test_downloads_redirect_blobs_and_refuse_zarrs(api: str, client: httpx.Client) -> None:
    blob = client.get(f"{api}/assets/{NWB_ID}/download/")
    assert blob.status_code == 302
    assert blob.headers["location"] == f"{S3}/blobs/2db/af0/{NWB_BLOB}"
    given = client.get(f"{api}/assets/{PUBLISHED_NWB_ID}/download/")
    assert given.headers["location"] == (
        f"https://dandiarchive.s3.amazonaws.com/blobs/2db/af0/{NWB_BLOB}"
    )
    zarr = client.get(f"{api}/assets/5b1a2f0e-0c4b-4a57-9d6e-1f1d4f8e6a01/download/")
    assert zarr.status_code == 400
    assert "zarr" in zarr.json()
    assert get_json(client, f"{api}/assets/unknown/download/", 404) == NOT_FOUND


@pytest.mark.parametrize("url", ["/api/nowhere/", "/api/dandisets", "/elsewhere/dandisets/", "/"])
def test_unknown_paths_are_json_404s(api: str, client: httpx.Client, url: str) -> None:
    origin = api.removesuffix("/api")
    assert get_json(client, origin + url, 404) == NOT_FOUND


def test_only_reads_are_allowed(api: str, client: httpx.Client) -> None:
    response = client.post(f"{api}/dandisets/")
    assert response.status_code == 405
    assert response.json() == {"detail": 'Method "POST" not allowed.'}
    head = client.head(f"{api}/dandisets/000001/")
    assert head.status_code == 200 and head.content == b""


def test_page_size_is_capped_and_bad_pages_are_404(data: ArchiveData) -> None:
    app = create_archive_app(data, base_url="http://archive.test/api", max_page_size=1)
    with httpx.Client(transport=httpx.WSGITransport(app=app)) as client:
        page = get_json(client, "http://archive.test/api/dandisets/", page_size="50")
        assert len(page["results"]) == 1
        assert page["next"] == "http://archive.test/api/dandisets/?page=2&page_size=50"
        for bad in ("0", "4", "x"):
            assert get_json(client, "http://archive.test/api/dandisets/", 404, page=bad) == {
                "detail": "Invalid page."
            }


def test_json_data_files_load_too(tmp_path: Path) -> None:
    raw = {"dandisets": [{"identifier": "000009", "created": "c", "modified": "m", "versions": [
        {"version": "draft", "name": "n", "status": "Valid", "created": "c", "modified": "m",
         "assets": [{"path": "a/b.nwb", "asset_id": "x", "blob": "y", "size": 1, "created": "c",
                     "modified": "m", "metadata": {"contentUrl": ["u"]}}]},
    ]}]}
    path = tmp_path / "archive.json"
    path.write_text(json.dumps(raw))
    loaded = load_archive(path)
    assert loaded.dandisets[0].versions[0].assets[0].path == "a/b.nwb"
    assert loaded.s3_base_url is None


@pytest.mark.parametrize(("text", "fault"), [
    ("dandisets: [{identifier: 000001}]", "'identifier' has the wrong type"),
    ("dandisets: [{identifier: '000001', created: c}]", "'modified' is missing"),
    ("dandisets: [{identifier: '1', created: c, modified: m, embargo_status: SECRET}]",
     "embargo_status"),
    ("dandisets: [{identifier: '1', created: c, modified: m, versions: [{version: draft, name: n,"
     " status: s, created: c, modified: m, assets: [{path: a, asset_id: i, blob: b, size: 1,"
     " created: c, modified: m}]}]}]", "no s3_base_url"),
    ("s3_base_url: s\ndandisets: [{identifier: '1', created: c, modified: m, versions: [{version:"
     " d, name: n, status: s, created: c, modified: m, assets: [{path: a, asset_id: i, size: 1,"
     " created: c, modified: m}, {path: a/b, asset_id: j, size: 1, created: c, modified: m}]}]}]",
     "both an asset and a folder"),
])
def test_bad_data_files_say_what_is_wrong(tmp_path: Path, text: str, fault: str) -> None:
    path = tmp_path / "archive.yaml"
    path.write_text(text)
    with pytest.raises(ValueError, match=fault):
        load_archive(path)
