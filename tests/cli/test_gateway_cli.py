"""`shuzhi gateway` and `shuzhi audit`, driven as an operator drives them: register a
system, issue its key, apply, approve, call, and check the access log."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from shuzhi.cli.main import main
from shuzhi.client import Client, GatewayError
from shuzhi.core.settings import reset_settings
from shuzhi.server import create_app
from tests.cli.test_cli import cli, cli_json
from tests.conftest import World
from tests.gateway.data import CODE, NAMES, PEOPLE, load_people, people_doc
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


# -- the rest of the surface: keys, decisions, consumers, services, usage and flags ------


def refused(
    world: World,
    args: list[str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    *fragments: str,
    user: str | None = None,
) -> str:
    """The command, run as ``user`` (the local operator if None), fails in one line and
    records no change; returns the line."""
    with world.database.session() as session:
        before = session.execute(text("SELECT count(*) FROM change_log")).scalar()
    with monkeypatch.context() as patch:
        if user is not None:
            patch.setenv("SHUZHI_TOKEN", world.tokens[user])
        status, out, err = shuzhi(args, monkeypatch, capsys)
    assert status == 2 and out == "" and "Traceback" not in err, (status, out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    with world.database.session() as session:
        assert session.execute(text("SELECT count(*) FROM change_log")).scalar() == before
    return lines[0]


def states(consumer: str = "hz_app") -> dict[str, str]:
    listed = cli_json("gateway", "credentials", "list", consumer)["data"]
    return {item["access_key"]: item["state"] for item in listed}


def test_a_key_is_rotated_with_an_overlap_and_then_revoked(
    people: World, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    key, secret = _registered()
    cli("gateway", "approve", str(_apply()["id"]))
    rotated = cli_json("gateway", "credentials", "rotate", key)
    new_key, new_secret = rotated["access_key"], rotated["secret"]
    assert (rotated["consumer"], rotated["state"]) == ("hz_app", "active")
    assert new_key != key and new_secret not in (None, secret)
    assert states() == {key: "rotating", new_key: "active"}
    overlap = next(
        item["expires_at"]
        for item in cli_json("gateway", "credentials", "list", "hz_app")["data"]
        if item["access_key"] == key
    )
    assert overlap is not None
    # the plain answer shows the next key and its secret once, and says so
    shown = cli("gateway", "credentials", "rotate", new_key).stdout.splitlines()
    assert shown[0].startswith("access key  SZ") and shown[1].startswith("secret      ")
    assert "shown this once" in shown[2]
    assert len(states()) == 3

    with TestClient(create_app(database=people.database)) as http:
        # during the overlap both the old and the new secret are good
        for pair in ((key, secret), (new_key, new_secret)):
            client = Client("http://testserver", key=pair[0], secret=pair[1], session=http)
            assert len(client.records(CODE, limit=1)["data"]) == 1
        revoked = cli_json("gateway", "credentials", "revoke", key)
        assert (revoked["access_key"], revoked["state"]) == (key, "revoked")
        assert revoked["revoked_at"] is not None and "secret" not in revoked
        assert cli("gateway", "credentials", "revoke", new_key).stdout == (
            f"credential {new_key} revoked\n"
        )
        old = Client("http://testserver", key=key, secret=secret, session=http)
        with pytest.raises(GatewayError) as caught:
            old.records(CODE, limit=1)
        assert (caught.value.status, caught.value.type) == (401, "/problems/revoked-key")
    assert states()[key] == states()[new_key] == "revoked"

    refused(people, ["gateway", "credentials", "revoke", key], monkeypatch, capsys,
            key, "already revoked")  # fmt: skip
    refused(people, ["gateway", "credentials", "rotate", key], monkeypatch, capsys, "revoked")
    refused(people, ["gateway", "credentials", "rotate", "SZNOSUCHKEY"], monkeypatch, capsys,
            "SZNOSUCHKEY")  # fmt: skip
    # the provincial police officer sees the city's system but does not manage its keys
    [current] = [k for k, state in states().items() if state == "active"]
    for args in (["rotate", current], ["revoke", current]):
        refused(people, ["gateway", "credentials", *args], monkeypatch, capsys,
                "may not gateway.manage_consumers", user="gat_officer")  # fmt: skip
    refused(people, ["gateway", "credentials", "revoke", current], monkeypatch, capsys,
            "no consumer", user="wjw_officer")  # fmt: skip
    assert states()[current] == "active"


def test_a_rejection_needs_its_reason_and_a_pending_application_is_withdrawn(
    people: World, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _registered()
    first = str(_apply()["id"])

    def state(application_id: str) -> str:
        return cli_json("gateway", "applications", application_id)["state"]

    refused(people, ["gateway", "reject", first], monkeypatch, capsys, "--reason")
    refused(people, ["gateway", "reject", first, "--reason", "  "], monkeypatch, capsys,
            "comment")  # fmt: skip
    # the health commission's officer is neither side of this application
    refused(people, ["gateway", "reject", first, "--reason", "不同意"], monkeypatch, capsys,
            first, user="wjw_officer")  # fmt: skip
    assert state(first) == "pending"
    assert cli("gateway", "reject", first, "--reason", "用途不明确").stdout == (
        f"application {first} rejected\n"
    )
    shown = cli_json("gateway", "applications", first)
    assert (shown["state"], shown["reason"], shown["grant_id"]) == ("rejected", "用途不明确", None)
    assert [(step["transition"], step["comment"]) for step in shown["history"]] == [
        ("reject", "用途不明确")
    ]
    refused(people, ["gateway", "reject", first, "--reason", "再次驳回"], monkeypatch, capsys,
            "reject")  # fmt: skip

    second = str(_apply()["id"])
    refused(people, ["gateway", "withdraw", second], monkeypatch, capsys, second, user="viewer")
    refused(people, ["gateway", "withdraw", "999"], monkeypatch, capsys, "999")
    withdrawn = cli_json("gateway", "withdraw", second)
    assert (withdrawn["id"], withdrawn["state"]) == (int(second), "withdrawn")
    assert cli_json("gateway", "applications", "--state", "withdrawn")["count"] == 1
    refused(people, ["gateway", "withdraw", second], monkeypatch, capsys, "withdraw")
    refused(people, ["gateway", "approve", second], monkeypatch, capsys, "approve")
    assert state(second) == "withdrawn"
    assert cli_json("gateway", "grants")["count"] == 0


def test_a_disabled_consumer_is_refused_until_enabled(
    people: World, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    key, secret = _registered()
    cli("gateway", "approve", str(_apply()["id"]))

    def active() -> bool:
        [item] = cli_json("gateway", "consumers", "list")["data"]
        return item["active"]

    refused(people, ["gateway", "consumers", "disable", "hz_app"], monkeypatch, capsys,
            "may not gateway.manage_consumers", user="gat_officer")  # fmt: skip
    refused(people, ["gateway", "consumers", "disable", "nobody"], monkeypatch, capsys, "nobody")
    assert active()
    with TestClient(create_app(database=people.database)) as http:
        client = Client("http://testserver", key=key, secret=secret, session=http)
        disabled = cli_json("gateway", "consumers", "disable", "hz_app")
        assert (disabled["code"], disabled["active"], disabled["credentials"]) == (
            "hz_app",
            False,
            1,
        )
        with pytest.raises(GatewayError) as caught:
            client.records(CODE, limit=1)
        assert caught.value.status == 401 and "disabled" in caught.value.problem["detail"]
        assert cli("gateway", "consumers", "enable", "hz_app").stdout == "consumer hz_app enabled\n"
        assert len(client.records(CODE, limit=1)["data"]) == 1
    assert active()
    assert states() == {key: "active"}  # its key was never touched
    refused(people, ["gateway", "consumers", "enable", "hz_app"], monkeypatch, capsys,
            "no consumer", user="wjw_officer")  # fmt: skip


def test_usage_and_flags_tell_what_the_calls_were(
    people: World, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # three distinct people looked up in a day is a walk through IDs here
    monkeypatch.setenv("SHUZHI_GATEWAY__FLAG_DISTINCT_LOOKUPS", "2")
    reset_settings()
    key, secret = _registered()
    cli("gateway", "approve", str(_apply("--rights", "read,verify")["id"]))
    with TestClient(create_app(database=people.database)) as http:
        client = Client(
            "http://testserver", key=key, secret=secret, session=http, purpose="救助-2026-001"
        )
        assert len(client.records(CODE, limit=3)["data"]) == 3
        for person in PEOPLE[:3]:
            assert client.verify(CODE, {"id_card": person["id_card"]})
        with pytest.raises(GatewayError):
            client.records(CODE, fields="no_such_field")

    report = cli_json("gateway", "usage")
    assert [(t["key"], t["calls"], t["refused"], t["rows"]) for t in report["by_consumer"]] == [
        ("hz_app", 5, 1, 3)
    ]
    assert [(row["purpose"], row["calls"]) for row in report["rows"]] == [("救助-2026-001", 5)]
    table = cli("gateway", "usage").stdout
    assert "hz_app" in table and "救助-2026-001" in table and CODE in table
    assert cli_json("gateway", "usage", "--consumer", "nobody")["rows"] == []
    assert cli_json("gateway", "usage", "--resource", CODE)["by_target"][0]["calls"] == 5

    flags = cli_json("audit", "flags")
    walking = [flag for flag in flags["data"] if flag["kind"] == "distinct_lookups"]
    assert [(flag["consumer"], flag["calls"]) for flag in walking] == [("hz_app", 5)]
    assert "3 distinct records" in walking[0]["explanation"]
    assert "hz_app" in cli("audit", "flags").stdout
    assert "3 distinct records" in cli("audit", "flags").stdout
    # a user without oversight of the system sees neither its usage nor its flags
    viewer = {"SHUZHI_TOKEN": people.tokens["viewer"]}
    assert cli_json("gateway", "usage", env=viewer)["rows"] == []
    assert cli_json("audit", "flags", env=viewer)["data"] == []
    refused(people, ["audit", "flags", "--days", "0"], monkeypatch, capsys, "--days")
    refused(people, ["gateway", "usage", "--days", "367"], monkeypatch, capsys, "--days")


def test_a_service_is_registered_changed_and_listed(
    people: World,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    monkeypatch.setenv("SHUZHI_GATEWAY__SERVICE_HOSTS", '["127.0.0.1"]')
    reset_settings()
    document = tmp_path / "openapi.json"
    document.write_text('{"openapi": "3.0.0", "paths": {}}', encoding="utf-8")
    made = cli_json(
        "gateway", "services", "register", CODE, "--base-url", "http://127.0.0.1:8080/api/",
        "--methods", "get,POST", "--paths", "/licences/*,/echo", "--timeout", "5",
        "--openapi", str(document),
    )  # fmt: skip
    assert made["code"] == CODE and made["provider"] == "zj_gat"
    assert made["base_url"] == "http://127.0.0.1:8080/api"
    assert (made["methods"], made["paths"]) == (["GET", "POST"], ["/licences/*", "/echo"])
    assert (made["timeout_seconds"], made["max_response_kb"]) == (5, 1024)
    assert made["openapi"] == {"openapi": "3.0.0", "paths": {}}
    assert made["registered_by"] == "system"

    changed = cli("gateway", "services", "register", CODE, "--base-url", "http://127.0.0.1:9090")
    assert changed.stdout == f"service {CODE} registered at http://127.0.0.1:9090\n"
    listed = cli_json("gateway", "services", "list")
    assert listed["count"] == 1
    [one] = listed["data"]
    assert (one["base_url"], one["methods"], one["paths"], one["openapi"]) == (
        "http://127.0.0.1:9090",
        ["GET"],
        ["/**"],
        None,
    )
    assert CODE in cli("gateway", "services", "list").stdout

    def register(*extra: str) -> list[str]:
        return ["gateway", "services", "register", *extra]

    refused(people, register(CODE, "--base-url", "http://169.254.169.254/latest"),
            monkeypatch, capsys, "169.254.169.254", "allow-list")  # fmt: skip
    refused(people, register("no_such_resource", "--base-url", "http://127.0.0.1"),
            monkeypatch, capsys, "no_such_resource")  # fmt: skip
    refused(people, register(CODE, "--base-url", "http://127.0.0.1", "--methods", "BREW"),
            monkeypatch, capsys, "BREW")  # fmt: skip
    document.write_text("{not json", encoding="utf-8")
    refused(people, register(CODE, "--base-url", "http://127.0.0.1", "--openapi", str(document)),
            monkeypatch, capsys, "JSON")  # fmt: skip
    # the health commission's officer does not run the police's services
    refused(people, register(CODE, "--base-url", "http://127.0.0.1"), monkeypatch, capsys,
            "may not gateway.services", CODE, user="wjw_officer")  # fmt: skip
    assert cli_json("gateway", "services", "list")["data"] == [one]
