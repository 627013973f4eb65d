"""The lake over HTTP: ingestion by upload, its errors as problem+json with no new
snapshot, the quarantine, operator SQL, the quality report, sources, and who may do what."""

from __future__ import annotations

import codecs
import csv
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from shuzhi.core.settings import get_settings, reset_settings
from shuzhi.lake.service import lake_of
from shuzhi.server import create_app
from tests.api import test_lake_api_edges as edges
from tests.api.support import assert_problem, auth
from tests.conftest import World
from tests.lake.data import (
    CODE,
    COUNTS,
    NAMES,
    REFUSED,
    ROWS,
    RULE_COUNTS,
    TITLES,
    VALID_A,
    batches_of,
    files_under,
    write_csv,
    write_xlsx,
)

LAKE = "/api/v1/lake"
UPLOAD = f"{LAKE}/resources/{CODE}/batches"
SUMMARY = {"batch_id", "rows_read", "rows_loaded", "rows_quarantined", "duplicates", "snapshot"}


# the all-types resource published, nothing loaded yet: the edge tests' fixtures
lake_template = edges.lake_template
loaded = edges.loaded
client = edges.client


def people(tmp_path: Path, rows: list[list[str | None]] = ROWS) -> bytes:
    return write_csv(tmp_path / "people.csv", rows).read_bytes()


def upload(
    client: TestClient,
    world: World,
    content: bytes,
    *,
    filename: str = "people.csv",
    user: str = "gat_officer",
    code: str = CODE,
    **form: Any,
) -> Any:
    return client.post(
        f"{LAKE}/resources/{code}/batches",
        headers=auth(world, user),
        files={"file": (filename, content)},
        data=form,
    )


def uploads_left() -> list[str]:
    """Upload folders still in the lake's temporary directory."""
    temp = lake_of().temp_dir
    return [item.name for item in temp.glob("upload-*")] if temp.exists() else []


def lake_files() -> set[str]:
    return files_under(get_settings().data_dir / "lake")


# ingestion by upload --------------------------------------------------------------------------


def test_an_uploaded_file_is_loaded_and_answers_the_batch_summary(
    client: TestClient, loaded: World, tmp_path: Path
) -> None:
    response = upload(client, loaded, people(tmp_path))
    assert response.status_code == 201, response.text
    found = response.json()
    assert set(found) >= SUMMARY
    assert {name: found[name] for name in COUNTS} == COUNTS
    assert found["rows_read"] == (
        found["rows_loaded"] + found["rows_quarantined"] + found["duplicates"]
    )
    assert (found["state"], found["connector"], found["actor"]) == (
        "succeeded",
        "csv",
        "gat_officer",
    )
    assert found["rule_counts"] == RULE_COUNTS
    assert found["snapshot"] == lake_of().current(CODE)
    assert found["source"].startswith("upload:") and found["source"].endswith("people.csv")
    assert uploads_left() == []  # the upload is kept only for the batch

    # the batch as it is listed and shown: the refusals counted per rule
    shown = client.get(f"{LAKE}/batches/{found['batch_id']}", headers=auth(loaded, "auditor"))
    assert shown.status_code == 200 and shown.json() == found
    listed = client.get(UPLOAD, headers=auth(loaded, "gat_officer")).json()
    assert listed["count"] == 1 and listed["data"] == [found]

    # the same file again: recorded as unchanged, the snapshot stays
    again = upload(client, loaded, people(tmp_path))
    assert again.status_code == 201
    assert (again.json()["state"], again.json()["snapshot"]) == ("unchanged", found["snapshot"])
    assert again.json()["batch_id"] == found["batch_id"] + 1


def test_upload_options_reach_the_connector(
    client: TestClient, loaded: World, tmp_path: Path
) -> None:
    headers = [*TITLES[:-1], "收入（元）"]
    book = write_xlsx(tmp_path / "人员.xlsx", headers=headers, sheet="登记表", header_row=2)
    response = upload(
        client,
        loaded,
        book.read_bytes(),
        filename="人员.xlsx",
        sheet="登记表",
        header_row="2",
        map=["收入（元）=income", "联系电话=mobile"],
    )
    assert response.status_code == 201, response.text
    found = response.json()
    assert {name: found[name] for name in COUNTS} == COUNTS
    assert found["connector"] == "xlsx"
    assert (found["mapping"]["收入（元）"], found["mapping"]["联系电话"]) == ("income", "mobile")

    # a GBK CSV under a name that says nothing, its format and encoding declared
    gbk = write_csv(tmp_path / "export.dat", [VALID_A], headers=TITLES, encoding="gbk")
    response = upload(
        client, loaded, gbk.read_bytes(), filename="export.dat", format="csv", encoding="gbk"
    )
    assert response.status_code == 201, response.text
    assert (response.json()["connector"], response.json()["rows_loaded"]) == ("csv", 1)


def test_an_unknown_resource_is_404_and_loads_nothing(
    client: TestClient, loaded: World, tmp_path: Path
) -> None:
    body = assert_problem(upload(client, loaded, people(tmp_path), code="nope"), 404, "not-found")
    assert "no catalog resource 'nope'" in body["detail"]
    assert lake_files() == set()
    assert uploads_left() == []


UNLOADABLE = {
    "a row longer than the header": (
        "people.csv",
        f"id_card,full_name\n{VALID_A[0]},张三,多余\n".encode(),
        "people.csv does not parse",
    ),
    "a corrupt workbook": ("people.xlsx", b"PK\x03\x04 not a zip", "is not a readable XLSX"),
    "broken JSON": ("people.json", b'[{"id_card": "1"', "people.json does not parse"),
    "a header that matches no field": (
        "people.csv",
        "籍贯,姓名\n杭州,张三\n".encode(),
        "column '籍贯' matches no field",
    ),
    "an empty file": ("people.csv", b"", "people.csv is empty"),
}


def test_a_file_that_cannot_be_loaded_is_422_and_the_snapshot_stays(
    client: TestClient, loaded: World, tmp_path: Path
) -> None:
    """Every case against one previous snapshot (a store per case would be slow)."""
    first = upload(client, loaded, people(tmp_path)).json()
    before = lake_files()
    wrong: dict[str, str] = {}
    for case, (filename, content, fragment) in UNLOADABLE.items():
        response = upload(client, loaded, content, filename=filename)
        try:
            body = assert_problem(response, 422, "validation")
        except AssertionError as exc:
            wrong[case] = str(exc)
            continue
        problems = [
            f"{body['detail']!r} lacks {fragment!r}" if fragment not in body["detail"] else "",
            "the detail spans lines" if "\n" in body["detail"] else "",
            "the current snapshot moved" if lake_of().current(CODE) != first["snapshot"] else "",
            f"the lake changed: {lake_files() ^ before}" if lake_files() != before else "",
            f"uploads left: {uploads_left()}" if uploads_left() else "",
        ]
        if any(problems):
            wrong[case] = "; ".join(problem for problem in problems if problem)
    assert wrong == {}
    states = [item.state for item in batches_of(loaded.database)]
    # an empty file is refused before a batch starts; the others fail theirs
    assert states == ["succeeded"] + ["failed"] * (len(UNLOADABLE) - 1)


def test_a_file_over_the_upload_limit_is_413_before_any_batch(
    loaded: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHUZHI_LAKE__UPLOAD_MAX_MB", "1")
    reset_settings()
    content = people(tmp_path)  # written with CRLF line ends, as blank lines are padded
    pairs = (2**20 - len(content)) // 2
    with TestClient(create_app(database=loaded.database)) as client:
        over = content + b"\r\n" * (pairs + 1)  # a byte or two over 1 MiB
        body = assert_problem(upload(client, loaded, over), 413, "too-large")
        assert body["detail"] == "people.csv is over the upload limit of 1 MiB"
        # at most the limit is taken
        under = content + b"\r\n" * pairs
        assert 2**20 - 1 <= len(under) <= 2**20
        assert upload(client, loaded, under).status_code == 201
    assert [item.state for item in batches_of(loaded.database)] == ["succeeded"]
    assert uploads_left() == []


def test_a_request_announced_over_the_limit_is_refused_before_it_is_read(
    loaded: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHUZHI_LAKE__UPLOAD_MAX_MB", "1")
    reset_settings()
    with TestClient(create_app(database=loaded.database)) as client:
        # 3 MiB: more than the file limit and the room for the form around it
        body = assert_problem(
            upload(client, loaded, people(tmp_path) + b"\r\n" * (3 * 2**19)), 413, "too-large"
        )
    assert body["detail"] == "the request is over the upload limit of 1 MiB"
    assert batches_of(loaded.database) == []
    assert uploads_left() == []  # not even spooled into an upload folder


@pytest.mark.parametrize("user", ["wjw_officer", "viewer", "auditor"])
def test_only_the_providers_officers_may_upload(
    client: TestClient, loaded: World, tmp_path: Path, user: str
) -> None:
    body = assert_problem(upload(client, loaded, people(tmp_path), user=user), 403, "forbidden")
    assert body["detail"] == f"{user} may not lake.ingest on resource {CODE}"
    assert batches_of(loaded.database) == []
    assert lake_of().current(CODE) is None
    assert uploads_left() == []


def test_an_upload_without_a_token_is_401(
    client: TestClient, loaded: World, tmp_path: Path
) -> None:
    response = client.post(UPLOAD, files={"file": ("people.csv", people(tmp_path))})
    assert_problem(response, 401, "unauthenticated")
    assert response.headers["www-authenticate"] == "Bearer"
    assert batches_of(loaded.database) == []


# the quarantine -------------------------------------------------------------------------------


def test_the_quarantine_is_listed_filtered_and_exported(
    client: TestClient, loaded: World, tmp_path: Path
) -> None:
    batch = upload(client, loaded, people(tmp_path)).json()
    officer = auth(loaded, "gat_officer")
    listed = client.get(f"{LAKE}/resources/{CODE}/quarantine", headers=officer).json()
    assert listed["count"] == len(REFUSED)
    assert {
        item["row"]: (item["rule"], item["field"], item["value"]) for item in listed["data"]
    } == REFUSED
    assert {item["batch_id"] for item in listed["data"]} == {batch["batch_id"]}
    nineteen = next(item for item in listed["data"] if item["row"] == 19)
    assert nineteen["failures"] == ["mobile:mobile", "type:age"]
    assert nineteen["record"]["mobile"] == "110"

    only = client.get(
        f"{LAKE}/resources/{CODE}/quarantine",
        params={"rule": "primary_key", "limit": 1, "offset": 1},
        headers=officer,
    ).json()
    assert (only["count"], [item["row"] for item in only["data"]]) == (2, [6])

    exported = client.get(f"{LAKE}/resources/{CODE}/quarantine.csv", headers=officer)
    assert exported.status_code == 200
    assert exported.headers["content-type"].startswith("text/csv")
    assert f"{CODE}-quarantine.csv" in exported.headers["content-disposition"]
    assert exported.content.startswith(codecs.BOM_UTF8)
    lines = list(csv.reader(exported.content.decode("utf-8-sig").splitlines()))
    assert lines[0] == ["行号 row", "规则 rule", "字段 field", *NAMES]
    assert [int(line[0]) for line in lines[1:]] == sorted(REFUSED)
    assert lines[1][3:] == ["" if value is None else value for value in ROWS[4]]


def test_auditors_see_the_quarantine_masked_and_others_are_refused(
    client: TestClient, loaded: World, tmp_path: Path
) -> None:
    upload(client, loaded, people(tmp_path))
    audited = client.get(
        f"{LAKE}/resources/{CODE}/quarantine",
        params={"rule": "primary_key"},
        headers=auth(loaded, "auditor"),
    ).json()
    assert audited["count"] == 2
    for item in audited["data"]:
        assert item["value"] != REFUSED[item["row"]][2]  # a citizen ID, masked
        assert item["record"]["full_name"] not in ("孙七", "周八")

    for user in ("wjw_officer", "viewer"):
        for path in ("quarantine", "quarantine.csv", "batches"):
            response = client.get(f"{LAKE}/resources/{CODE}/{path}", headers=auth(loaded, user))
            body = assert_problem(response, 403, "forbidden")
            assert body["detail"] == f"{user} may not lake.read on data of {CODE}"


def test_the_quarantine_of_an_unknown_resource_is_404(client: TestClient, loaded: World) -> None:
    for path in ("quarantine", "quarantine.csv", "batches", "data"):
        response = client.get(f"{LAKE}/resources/nope/{path}", headers=auth(loaded, "admin"))
        assert_problem(response, 404, "not-found")


# operator SQL ---------------------------------------------------------------------------------


def query(client: TestClient, world: World, sql: str, user: str = "admin", **body: Any) -> Any:
    return client.post(f"{LAKE}/query", json={"sql": sql, **body}, headers=auth(world, user))


def test_operators_query_the_current_snapshots(
    client: TestClient, loaded: World, tmp_path: Path
) -> None:
    batch = upload(client, loaded, people(tmp_path)).json()
    sql = f"SELECT full_name, age FROM {CODE} ORDER BY id_card"
    response = query(client, loaded, sql)
    assert response.status_code == 200, response.text
    assert response.json() == {
        "columns": ["full_name", "age"],
        "rows": [["张三", 74], ["李四", 34], ["王五", None]],
        "count": 3,
        "truncated": False,
        "snapshots": {CODE: batch["snapshot"]},
    }
    limited = query(client, loaded, sql, limit=2).json()
    assert (limited["count"], limited["truncated"]) == (2, True)


REFUSED_SQL = {
    f"DROP VIEW {CODE}": "only SELECT",
    f"DELETE FROM {CODE}": "only SELECT",
    f"INSERT INTO {CODE} (full_name) VALUES ('x')": "only SELECT",
    "CREATE TABLE stolen AS SELECT 1": "only SELECT",
    f"COPY {CODE} TO '{{tmp}}/out.csv'": "only SELECT",
    "ATTACH '{tmp}/other.db' AS other": "only SELECT",
    "SET enable_external_access = true": "only SELECT",
    f"SELECT 1; DROP VIEW {CODE}": "exactly one SQL statement",
    "SELECT * FROM read_csv('{tmp}/people.csv')": "query failed",
    "SELEC 1": "does not parse",
}


def test_the_lake_query_refuses_anything_but_one_read(
    client: TestClient, loaded: World, tmp_path: Path
) -> None:
    upload(client, loaded, people(tmp_path))
    before = set(tmp_path.iterdir())
    wrong: dict[str, str] = {}
    for sql, fragment in REFUSED_SQL.items():
        response = query(client, loaded, sql.format(tmp=tmp_path))
        try:
            detail = assert_problem(response, 422, "validation")["detail"]
        except AssertionError as exc:
            wrong[sql] = str(exc)
            continue
        if fragment not in detail:
            wrong[sql] = f"{detail!r} lacks {fragment!r}"
    assert wrong == {}
    assert set(tmp_path.iterdir()) == before  # nothing written
    after = query(client, loaded, f"SELECT count(*) AS n FROM {CODE}").json()
    assert after["rows"] == [[3]]


@pytest.mark.parametrize("user", ["gat_officer", "auditor", "viewer"])
def test_only_operators_query_the_lake(client: TestClient, loaded: World, user: str) -> None:
    body = assert_problem(query(client, loaded, "SELECT 1", user=user), 403, "forbidden")
    assert body["detail"] == f"{user} may not lake.query on the lake"


# the quality report ---------------------------------------------------------------------------


def test_the_quality_report_shows_the_lights_and_coverage(
    client: TestClient, loaded: World, tmp_path: Path
) -> None:
    viewer = auth(loaded, "viewer")
    before = client.get(f"{LAKE}/quality", headers=viewer).json()
    [never] = before["resources"]
    assert (never["code"], never["light"], never["snapshot"]) == (CODE, "no_data", None)
    assert (before["overall"]["published"], before["overall"]["current"]) == (1, 0)

    batch = upload(client, loaded, people(tmp_path)).json()
    report = client.get(f"{LAKE}/quality", headers=viewer)
    assert report.status_code == 200
    found = report.json()
    assert (found["overall"]["published"], found["overall"]["current"]) == (1, 1)
    assert found["overall"]["coverage"] == 1.0
    [row] = found["resources"]
    assert (row["code"], row["snapshot"], row["rows"]) == (CODE, batch["snapshot"], 3)
    assert (row["last_batch_state"], row["freshness"]) == ("succeeded", "green")
    # loaded today, but 15 of 18 distinct rows refused: broken
    assert row["light"] == "red"
    assert row["validity"] == pytest.approx(3 / 18)
    assert [item["key"] for item in found["by_provider"]] == ["zj_gat"]

    other = client.get(f"{LAKE}/quality", params={"provider": "zj_wjw"}, headers=viewer).json()
    assert (other["resources"], other["overall"]["published"]) == ([], 0)
    missing = client.get(f"{LAKE}/quality", params={"provider": "zj_nope"}, headers=viewer)
    assert "no department 'zj_nope'" in assert_problem(missing, 404, "not-found")["detail"]
    assert_problem(client.get(f"{LAKE}/quality"), 401, "unauthenticated")


# sources --------------------------------------------------------------------------------------


def test_sources_are_registered_listed_and_pulled_over_http(
    client: TestClient, loaded: World
) -> None:
    inbox = get_settings().inbox_dir
    inbox.mkdir(parents=True, exist_ok=True)
    location = str(write_csv(inbox / "people.csv"))
    officer = auth(loaded, "gat_officer")
    sources = f"{LAKE}/resources/{CODE}/sources"

    bad = client.post(sources, json={"name": "s", "location": location, "schedule": "0 25 * * *"})
    assert_problem(bad, 401, "unauthenticated")
    bad = client.post(
        sources, json={"name": "s", "location": location, "schedule": "0 25 * * *"}, headers=officer
    )
    assert "not a usable cron expression" in assert_problem(bad, 422, "validation")["detail"]
    unknown = client.post(
        f"{LAKE}/resources/nope/sources", json={"name": "s", "location": location}, headers=officer
    )
    assert_problem(unknown, 404, "not-found")
    refused = client.post(
        sources, json={"name": "s", "location": location}, headers=auth(loaded, "wjw_officer")
    )
    assert_problem(refused, 403, "forbidden")

    created = client.post(sources, json={"name": "夜间", "location": location}, headers=officer)
    assert created.status_code == 201, created.text
    source = created.json()
    assert (source["resource"], source["schedule"], source["running"]) == (CODE, "cycle", False)
    assert source["next_run_at"] is not None and source["last_run_at"] is None

    listed = client.get(f"{LAKE}/sources", headers=officer).json()
    assert listed["count"] == 1 and listed["data"][0]["id"] == source["id"]
    assert client.get(f"{LAKE}/sources", headers=auth(loaded, "wjw_officer")).json() == {
        "data": [],
        "count": 0,
    }

    others = client.post(f"{LAKE}/sources/{source['id']}/run", headers=auth(loaded, "wjw_officer"))
    assert_problem(others, 403, "forbidden")
    pulled = client.post(f"{LAKE}/sources/{source['id']}/run", headers=officer)
    assert pulled.status_code == 200, pulled.text
    assert {name: pulled.json()[name] for name in COUNTS} == COUNTS
    after = client.get(f"{LAKE}/sources", headers=officer).json()["data"][0]
    assert after["last_batch_id"] == pulled.json()["batch_id"]
    assert_problem(client.post(f"{LAKE}/sources/99/run", headers=officer), 404, "not-found")

    removed = client.delete(f"{LAKE}/sources/{source['id']}", headers=officer)
    assert removed.status_code == 204
    assert client.get(f"{LAKE}/sources", headers=officer).json()["count"] == 0
