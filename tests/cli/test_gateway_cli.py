"""`shuzhi gateway` and `shuzhi audit`, driven as an operator drives them: register a
system, issue its key, apply, approve, call, and check the access log."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from shuzhi.cli.main import main
from shuzhi.client import Client
from shuzhi.server import create_app
from tests.cli.test_cli import cli, cli_json
from tests.conftest import World
from tests.gateway.data import CODE, NAMES, load_people, people_doc
from tests.lake.data import Template, build_template, publish, world_from


@pytest.fixture(scope="session")
def lake_template(sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Template:
    return build_template(sqlite_template, tmp_path_factory.mktemp("lake-template"))


@pytest.fixture
def people(lake_template: Template, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> World:
    world = world_from(lake_template, tmp_path, monkeypatch)
    publish(world.database, people_doc())
    load_people(world.database, tmp_path)
    return world


def shuzhi(
    args: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "argv", ["shuzhi", *args])
    with pytest.raises(SystemExit) as exited:
        main()
    out, err = capsys.readouterr()
    return int(exited.value.code or 0), out, err


def _registered() -> tuple[str, str]:
    cli(
        "gateway",
        "consumers",
        "add",
        "hz_app",
        "--name",
        "杭州社会救助系统",
        "--department",
        "hz_gaj",
    )
    issued = cli_json("gateway", "credentials", "issue", "hz_app")
    return issued["access_key"], issued["secret"]


def _apply(*extra: str) -> dict:
    return cli_json(
        "gateway", "apply", "--consumer", "hz_app", "--resource", CODE,
        "--fields", ",".join(NAMES), "--matter", "330100-QT-0001",
        "--purpose", "办理社会救助资格认定", "--basis", "《社会救助暂行办法》", *extra,
    )  # fmt: skip


def test_an_operator_takes_a_system_from_registration_to_an_audited_read(
    people: World,
) -> None:
    key, secret = _registered()
    assert key.startswith("SZ") and len(secret) >= 40
    listed = cli_json("gateway", "credentials", "list", "hz_app")
    assert [item["access_key"] for item in listed["data"]] == [key]
    assert "secret" not in listed["data"][0]

    application = _apply("--region", "330106", "--clear", "full_name")
    assert application["state"] == "pending"  # conditional sharing waits for the provider
    inbox = cli_json("gateway", "applications", "--inbox")
    assert [item["id"] for item in inbox["data"]] == [application["id"]]
    approved = cli_json("gateway", "approve", str(application["id"]), "--clear", "full_name")
    assert approved["state"] == "approved" and approved["grant_id"]
    grant = cli_json("gateway", "grants", str(approved["grant_id"]))
    modes = {item["name"]: item["mode"] for item in grant["fields"]}
    assert modes["full_name"] == "clear" and modes["id_card"] == "token"
    assert modes["mobile"] == "masked" and modes["region"] == "clear"

    with TestClient(create_app(database=people.database)) as http:
        client = Client("http://testserver", key=key, secret=secret, session=http, user="li.na")
        rows = list(client.iter_records(CODE, limit=4))
    assert len(rows) == 10 and {row["region"] for row in rows} == {"330106"}

    log = cli_json("audit", "log", "--consumer", "hz_app")
    assert log["count"] == 3 and {item["end_user"] for item in log["data"]} == {"li.na"}
    assert "access log intact: 3 entries" in cli("audit", "verify").stdout


def test_audit_verify_exits_1_naming_an_entry_changed_in_the_database(
    people: World, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    key, secret = _registered()
    _apply("--rights", "read,verify")
    approved = cli_json("gateway", "applications")["data"][0]
    cli("gateway", "approve", str(approved["id"]))
    with TestClient(create_app(database=people.database)) as http:
        client = Client("http://testserver", key=key, secret=secret, session=http)
        client.records(CODE, limit=2)
        client.verify(CODE, {"gender": "男"})
        client.records(CODE, limit=3)
    with people.database.transaction() as session:
        session.execute(text("UPDATE gateway_access_log SET rows = rows + 7 WHERE seq = 2"))
    status, out, err = shuzhi(["audit", "verify"], monkeypatch, capsys)
    assert status == 1
    assert "broken at entry 2" in err and "content does not match" in err
    status, out, _ = shuzhi(["audit", "verify", "--json"], monkeypatch, capsys)
    assert status == 1 and '"first_bad": 2' in out


def test_grants_are_suspended_resumed_and_revoked_with_reasons(
    people: World, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _registered()
    grant = cli_json("gateway", "approve", str(_apply()["id"]))["grant_id"]
    status, _, err = shuzhi(["gateway", "suspend", str(grant)], monkeypatch, capsys)
    assert status == 2 and "--reason" in err
    assert cli_json("gateway", "suspend", str(grant), "--reason", "核查中")["state"] == "suspended"
    assert cli_json("gateway", "resume", str(grant))["state"] == "active"
    assert cli_json("gateway", "revoke", str(grant), "--reason", "事项办结")["state"] == "revoked"
    status, _, err = shuzhi(["gateway", "resume", str(grant)], monkeypatch, capsys)
    assert status == 2 and err.startswith("error: ") and "revoked" in err


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["gateway", "consumers", "add", "Bad-Code", "--name", "x", "--department", "hz_gaj"],
         "code"),
        (["gateway", "consumers", "add", "good_code", "--name", "x", "--department", "nope"],
         "nope"),
        (["gateway", "credentials", "issue", "nobody"], "nobody"),
        (["gateway", "credentials", "revoke", "SZNOTAKEY"], "SZNOTAKEY"),
        (["gateway", "applications", "999"], "999"),
        (["gateway", "grants", "999"], "999"),
        (["gateway", "reject", "1", "--reason", "x"], "1"),
        (["gateway", "apply", "--consumer", "hz_app", "--resource", CODE, "--fields", "id_card",
          "--matter", "M-1", "--purpose", "办事", "--basis", "法规", "--from", "2026-13-01"],
         "--from"),
        (["gateway", "apply", "--consumer", "hz_app", "--resource", CODE, "--fields", "nope",
          "--matter", "M-1", "--purpose", "办事", "--basis", "法规"], "nope"),
        (["gateway", "apply", "--consumer", "hz_app", "--resource", CODE, "--fields", "id_card",
          "--rights", "delete", "--matter", "M-1", "--purpose", "办事", "--basis", "法规"],
         "rights"),
    ],
)  # fmt: skip
def test_bad_input_is_one_line_and_changes_nothing(
    people: World,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    fragment: str,
) -> None:
    _registered()
    with people.database.session() as session:
        before = session.execute(text("SELECT count(*) FROM change_log")).scalar()
    status, _, err = shuzhi(args, monkeypatch, capsys)
    assert status == 2 and "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and fragment in lines[0], err
    with people.database.session() as session:
        assert session.execute(text("SELECT count(*) FROM change_log")).scalar() == before
