"""The `shuzhi` command line, driven as a user drives it.

Commands that succeed run in-process through Typer's runner on ``shuzhi.cli.main.app``.
Errors become "error: ..." and exit 2 in ``shuzhi.cli.main.main()``, not in ``app``, so the
error cases run ``python -m shuzhi`` as a subprocess with the test's environment.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import select
from typer.testing import CliRunner, Result

from shuzhi.catalog.models import Resource
from shuzhi.cli.main import app
from shuzhi.core.db import Database
from shuzhi.core.models import ChangeLog
from shuzhi.core.settings import reset_settings
from shuzhi.orgs import queries as orgs_queries
from shuzhi.orgs import service as orgs_service
from shuzhi.orgs.models import ApiToken
from shuzhi.regions.models import Region
from tests.conftest import PASSWORD, USERS, World, add_user, resource_doc

SUBPROCESS_TIMEOUT = 120


# helpers ------------------------------------------------------------------------------


def cli(*args: str, env: dict[str, str] | None = None) -> Result:
    """Run a command in-process; it must succeed."""
    result = CliRunner().invoke(app, list(args), env=env)
    assert result.exit_code == 0, (
        f"shuzhi {' '.join(args)} exited {result.exit_code}\n{result.output}\n{result.exception!r}"
    )
    return result


def cli_json(*args: str, env: dict[str, str] | None = None) -> Any:
    return json.loads(cli(*args, "--json", env=env).stdout)


def run(
    *args: str, timeout: float = SUBPROCESS_TIMEOUT, **extra_env: str
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m shuzhi`` as a user would, with this test's environment."""
    return subprocess.run(
        [sys.executable, "-m", "shuzhi", *args],
        env={**os.environ.copy(), **extra_env},
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=timeout,
        check=False,
    )


def assert_one_line_error(proc: subprocess.CompletedProcess[str], *fragments: str) -> str:
    """Exit 2, one line on stderr starting "error:", no traceback; returns the line."""
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: "), lines[0]
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]


def write_catalog(path: Path, *docs: dict) -> Path:
    path.write_text(
        yaml.safe_dump({"resources": list(docs)}, allow_unicode=True, sort_keys=False),
        encoding="utf-8",
    )
    return path


def state_of(database: Database, code: str) -> str | None:
    with database.session() as session:
        return session.scalar(select(Resource.state).where(Resource.code == code))


def resource_count(database: Database) -> int:
    with database.session() as session:
        return len(list(session.scalars(select(Resource.code))))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def empty_sqlite(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The settings point at a SQLite file that no one has migrated."""
    path = tmp_path / "fresh.db"
    monkeypatch.setenv("SHUZHI_DATABASE__URL", f"sqlite:///{path}")
    reset_settings()
    return path


# db ---------------------------------------------------------------------------------


def test_db_current_json_reports_the_revision(sqlite_db: Database) -> None:
    info = cli_json("db", "current")
    assert info["backend"] == "sqlite"
    assert info["current"] == info["head"] == sqlite_db.head_revision()
    assert info["head"] is not None


def test_empty_file_is_migrated_then_loads_the_zhejiang_tree(empty_sqlite: Path) -> None:
    before = cli_json("db", "current")
    assert before["current"] is None
    assert before["head"]

    upgraded = cli("db", "upgrade")
    assert f"database at {before['head']} (sqlite)" in upgraded.stdout
    assert cli_json("db", "current")["current"] == before["head"]

    loaded = cli("regions", "load", "--builtin", "zhejiang")
    assert loaded.stdout.startswith("102 created, 0 updated, 0 unchanged")
    again = cli("regions", "load", "--builtin", "zhejiang")
    assert again.stdout.startswith("0 created, 0 updated, 102 unchanged")

    tree = cli("regions", "tree", "--root", "330100").stdout.splitlines()
    assert tree[0] == "330100 杭州市"
    children = [line for line in tree[1:] if line.startswith(("├─ ", "└─ "))]
    assert len(children) == 13
    assert children[-1].startswith("└─ ")
    assert "├─ 330106 西湖区" in tree

    nodes = cli_json("regions", "tree", "--root", "330100")
    assert [node["code"] for node in nodes] == ["330100"]
    assert len(nodes[0]["children"]) == 13
    xihu = next(child for child in nodes[0]["children"] if child["code"] == "330106")
    assert xihu["name"] == "西湖区"


def test_upgrading_to_an_unknown_revision_is_one_line(sqlite_db: Database) -> None:
    before = sqlite_db.current_revision()
    assert_one_line_error(run("db", "upgrade", "nosuchrev"), "nosuchrev")
    assert sqlite_db.current_revision() == before


def test_commands_refuse_an_unmigrated_database(empty_sqlite: Path) -> None:
    proc = run("catalog", "list")
    assert_one_line_error(proc, "shuzhi db upgrade")


def test_serve_refuses_an_unmigrated_database(empty_sqlite: Path) -> None:
    # a server that wrongly started would run until the timeout ends it, failing the test
    proc = run("serve", "--port", str(free_port()), timeout=30)
    assert_one_line_error(proc, "shuzhi db upgrade")
    assert "serving" not in proc.stdout


# regions ----------------------------------------------------------------------------


def test_regions_load_a_csv_file(sqlite_db: Database, tmp_path: Path) -> None:
    csv = tmp_path / "extra.csv"
    csv.write_text("code,name,level,parent\n330199,新区,county,330100\n", encoding="utf-8")

    result = cli_json("regions", "load", str(csv))
    assert result == {"created": 1, "updated": 0, "unchanged": 0}

    nodes = cli_json("regions", "tree", "--root", "330100")
    codes = [child["code"] for child in nodes[0]["children"]]
    assert "330199" in codes
    assert len(codes) == 14


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (
            "code,name,level,parent\n330199,新区,county,330100\n33019,坏,county,330100\n",
            "bad.csv:3",
        ),
        ("code,name\n330199,新区\n", "missing column(s) level, parent"),
        ("code,name,level,parent\n330199,新区,county,339900\n", "parent 339900"),
    ],
)
def test_a_bad_region_csv_is_one_line_and_loads_nothing(
    sqlite_db: Database, tmp_path: Path, content: str, expected: str
) -> None:
    csv = tmp_path / "bad.csv"
    csv.write_text(content, encoding="utf-8")

    assert_one_line_error(run("regions", "load", str(csv)), "bad.csv", expected)

    with sqlite_db.session() as session:
        assert session.get(Region, "330199") is None


def test_regions_load_names_a_missing_file(sqlite_db: Database, tmp_path: Path) -> None:
    assert_one_line_error(
        run("regions", "load", str(tmp_path / "nowhere.csv")), "nowhere.csv: no such file"
    )


# departments, users, roles --------------------------------------------------------------


def test_departments_list_json(sqlite_world: World) -> None:
    departments = {d["code"]: d for d in cli_json("departments", "list")}
    assert set(departments) == {"zj_dsj", "zj_gat", "zj_wjw", "hz_gaj"}
    assert departments["hz_gaj"]["parent"] == "zj_gat"
    assert departments["hz_gaj"]["region"] == "330100"
    assert departments["zj_gat"]["name"] == "浙江省公安厅"

    in_hangzhou = {d["code"] for d in cli_json("departments", "list", "--region", "330100")}
    assert in_hangzhou == {"hz_gaj"}


def test_users_create_grant_and_token(sqlite_world: World) -> None:
    database = sqlite_world.database
    created = cli_json(
        "users",
        "create",
        "li_lei",
        "--name",
        "李雷",
        "--department",
        "zj_wjw",
        env={"SHUZHI_PASSWORD": PASSWORD},
    )
    assert created["username"] == "li_lei"
    assert created["grants"] == []
    with database.transaction() as session:
        assert orgs_service.authenticate(session, username="li_lei", password=PASSWORD)

    granted = cli("users", "grant", "li_lei", "--role", "data_officer", "--department", "zj_wjw")
    assert "granted data_officer to li_lei" in granted.stdout
    listed = {u["username"]: u for u in cli_json("users", "list", "--department", "zj_wjw")}
    assert [(g["role"], g["department"]) for g in listed["li_lei"]["grants"]] == [
        ("data_officer", "zj_wjw")
    ]

    token = cli_json("users", "token-create", "li_lei", "--name", "etl")
    plaintext = token["token"]
    assert plaintext.startswith("shz_")
    with database.session() as session:
        stored = session.get(ApiToken, token["id"])
        assert stored is not None
        assert plaintext not in (stored.token_hash, stored.prefix)
        assert orgs_service.resolve_token(session, plaintext=plaintext).username == "li_lei"
    # shown once: no listing prints it again
    assert plaintext not in cli("users", "list", "--json").stdout


def test_token_create_prints_the_secret_alone_on_stdout(sqlite_world: World) -> None:
    result = CliRunner().invoke(app, ["users", "token-create", "viewer", "--name", "cron"])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip().startswith("shz_")
    assert len(result.stdout.strip().splitlines()) == 1
    assert "not shown again" in result.stderr


def test_users_create_without_a_password_source_is_refused(sqlite_world: World) -> None:
    assert_one_line_error(
        run("users", "create", "han_meimei", "--name", "韩梅梅"), "SHUZHI_PASSWORD"
    )
    proc = run("users", "create", "han_meimei", "--name", "韩梅梅", SHUZHI_PASSWORD="short")
    assert_one_line_error(proc, "password must have at least")
    assert "han_meimei" not in cli("users", "list").stdout


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (
            ("departments", "create", "--code", "BAD", "--name", "x", "--region", "330000"),
            ("error: code: ", "pattern"),
        ),
        (
            ("departments", "create", "--code", "zj_new", "--name", "   ", "--region", "330000"),
            ("error: name: ", "at least 2"),
        ),
        (("users", "create", "BAD", "--name", "x"), ("error: username: ", "pattern")),
        (("users", "create", "li_lei", "--name", "  "), ("error: display_name: ", "at least 1")),
        (("users", "grant", "viewer", "--role", "  "), ("error: ",)),
    ],
    ids=["department-code", "department-blank-name", "username", "blank-name", "blank-role"],
)
def test_a_schema_violation_is_one_line_naming_the_field(
    sqlite_world: World, args: tuple[str, ...], fragments: tuple[str, ...]
) -> None:
    changes = _change_count(sqlite_world.database)
    line = assert_one_line_error(run(*args, SHUZHI_PASSWORD=PASSWORD), *fragments)
    assert line.startswith(fragments[0])
    assert _change_count(sqlite_world.database) == changes


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (("users", "token-revoke", "99999999999999999999"), ("2147483647", "token-revoke --help")),
        (("users", "token-revoke", "0"), ("token_id",)),
        (("users", "token-create", "viewer", "--name", "t", "--days", "99999999"), ("3650",)),
        (("users", "token-create", "viewer", "--name", "t", "--days", "0"), ("--days",)),
        (("users", "token-create", "viewer", "--name", "t", "--days", "abc"), ("--days",)),
        (("users", "list", "--no-such-option"), ("--no-such-option",)),
        (("no-such-command",), ("no-such-command",)),
        (("serve", "--port", "99999999999"), ("--port",)),
    ],
    ids=["huge-id", "zero-id", "huge-days", "zero-days", "text-days", "option", "command", "port"],
)
def test_a_bad_command_line_is_one_line(
    sqlite_world: World, args: tuple[str, ...], fragments: tuple[str, ...]
) -> None:
    assert_one_line_error(run(*args), *fragments)
    with sqlite_world.database.session() as session:
        viewer_tokens = session.scalars(
            select(ApiToken.name).where(ApiToken.kind == "api", ApiToken.name == "t")
        )
        assert list(viewer_tokens) == []


def test_a_bare_command_group_still_shows_its_help() -> None:
    proc = run("users")
    assert proc.returncode == 2
    assert "Usage:" in proc.stdout + proc.stderr
    assert "token-create" in proc.stdout + proc.stderr
    assert "error:" not in proc.stderr


def test_help_exits_0() -> None:
    proc = run("users", "--help")
    assert (proc.returncode, proc.stderr) == (0, "")
    assert "deactivate" in proc.stdout


def test_users_list_with_a_token_lists_only_the_users_it_manages(sqlite_world: World) -> None:
    def listed(user: str, *args: str) -> set[str]:
        env = {"SHUZHI_TOKEN": sqlite_world.tokens[user]}
        return {u["username"] for u in cli_json("users", "list", *args, env=env)}

    assert listed("viewer") == set()
    assert listed("gat_admin") == {"gat_officer", "gat_admin"}
    assert listed("gat_admin", "--department", "zj_wjw") == set()
    assert listed("admin") == {username for username, *_ in USERS}
    assert {u["username"] for u in cli_json("users", "list")} == {
        username for username, *_ in USERS
    }


def test_a_deactivated_user_cannot_act_until_activated(sqlite_world: World) -> None:
    viewer = {"SHUZHI_TOKEN": sqlite_world.tokens["viewer"]}
    assert "user viewer deactivated" in cli("users", "deactivate", "viewer").stdout
    assert [u["active"] for u in cli_json("users", "list") if u["username"] == "viewer"] == [False]
    assert_one_line_error(run("catalog", "list", **viewer))
    with sqlite_world.database.session() as session:
        (log,) = session.scalars(select(ChangeLog).where(ChangeLog.action == "user.deactivate"))
        assert (log.object_id, log.actor_name) == ("viewer", "system")

    assert "user viewer activated" in cli("users", "activate", "viewer").stdout
    assert cli_json("catalog", "list", env=viewer)["count"] == 0


def test_a_user_cannot_deactivate_whom_it_does_not_manage(sqlite_world: World) -> None:
    gat_admin = {"SHUZHI_TOKEN": sqlite_world.tokens["gat_admin"]}
    assert_one_line_error(run("users", "deactivate", "viewer", **gat_admin))
    assert_one_line_error(run("users", "deactivate", "no_such_user"), "no_such_user")
    assert all(u["active"] for u in cli_json("users", "list"))


def token_ids(world: World, username: str) -> list[int]:
    with world.database.session() as session:
        account = orgs_queries.user(session, username)
        return [t.id for t in orgs_queries.tokens_of(session, account.id)]


def test_a_department_admin_cannot_mint_a_platform_admin_token(sqlite_world: World) -> None:
    add_user(sqlite_world, "ops", department="zj_gat", role="platform_admin")
    proc = run(
        "users", "token-create", "ops", "--name", "mine",
        SHUZHI_TOKEN=sqlite_world.tokens["gat_admin"],
    )  # fmt: skip
    assert proc.returncode == 2, f"gat_admin minted a platform admin token: {proc.stdout}"
    assert token_ids(sqlite_world, "ops") == []


def test_roles_list(sqlite_db: Database) -> None:
    roles = {r["code"]: r for r in cli_json("roles", "list")}
    assert {"platform_admin", "data_officer", "auditor", "viewer"} <= set(roles)
    assert "catalog.submit" in roles["data_officer"]["actions"]
    assert "catalog.review" not in roles["data_officer"]["actions"]
    assert roles["viewer"]["actions"] == []
    table = cli("roles", "list").stdout
    assert "数据专员" in table


# catalog ----------------------------------------------------------------------------


def test_catalog_apply_then_list_search_and_show(sqlite_world: World, tmp_path: Path) -> None:
    path = write_catalog(
        tmp_path / "catalog.yaml",
        resource_doc(),
        resource_doc(
            code="wjw_births",
            name="出生医学证明信息",
            provider="zj_wjw",
            summary="新生儿出生信息",
            tags=["出生"],
        ),
    )

    applied = cli_json("catalog", "apply", str(path))
    assert applied == {"created": ["gat_population", "wjw_births"], "updated": [], "unchanged": []}
    assert cli("catalog", "apply", str(path)).stdout.startswith("0 created, 0 updated, 2 unchanged")

    listed = cli_json("catalog", "list")
    assert listed["count"] == 2
    assert {r["code"]: r["state"] for r in listed["data"]} == {
        "gat_population": "draft",
        "wjw_births": "draft",
    }
    assert cli_json("catalog", "list", "--provider", "zj_wjw")["count"] == 1

    found = cli_json("catalog", "search", "人口")
    assert [r["code"] for r in found["data"]] == ["gat_population"]
    assert "gat_population" in cli("catalog", "search", "人口").stdout
    assert cli_json("catalog", "search", "人口 出生")["count"] == 0

    shown = cli_json("catalog", "show", "gat_population")
    assert shown["name"] == "浙江省常住人口基本信息"
    assert shown["provider"] == "zj_gat"
    assert [f["name"] for f in shown["fields"]] == [
        "id_card",
        "full_name",
        "region_code",
        "registered_on",
    ]
    assert shown["fields"][0]["primary_key"] is True
    assert shown["history"] == []


def test_catalog_lifecycle_through_the_cli(sqlite_world: World, tmp_path: Path) -> None:
    database = sqlite_world.database
    cli("catalog", "apply", str(write_catalog(tmp_path / "c.yaml", resource_doc())))
    code = "gat_population"

    assert "draft -> pending_review" in cli("catalog", "submit", code).stdout
    cli("catalog", "reject", code, "-m", "字段说明不全")
    assert state_of(database, code) == "rejected"
    moved = cli_json("catalog", "submit", code, "-m", "已补充")
    assert (moved["from_state"], moved["to_state"], moved["actor"]) == (
        "rejected",
        "pending_review",
        "system",
    )
    assert "pending_review -> published" in cli("catalog", "approve", code).stdout
    cli("catalog", "withdraw", code, "-m", "数据源停用")
    assert state_of(database, code) == "withdrawn"
    assert "withdrawn -> draft" in cli("catalog", "revise", code).stdout
    assert state_of(database, code) == "draft"

    history = cli_json("catalog", "show", code)["history"]
    assert [(h["transition"], h["comment"]) for h in history] == [
        ("submit", None),
        ("reject", "字段说明不全"),
        ("submit", "已补充"),
        ("approve", None),
        ("withdraw", "数据源停用"),
        ("revise", None),
    ]


def test_reject_and_withdraw_need_a_reason(sqlite_world: World, tmp_path: Path) -> None:
    cli("catalog", "apply", str(write_catalog(tmp_path / "c.yaml", resource_doc())))
    cli("catalog", "submit", "gat_population")
    missing = CliRunner().invoke(app, ["catalog", "reject", "gat_population"])
    assert missing.exit_code == 2
    assert "--comment" in missing.output
    assert state_of(sqlite_world.database, "gat_population") == "pending_review"


def test_a_bad_resource_rejects_the_whole_file(sqlite_world: World, tmp_path: Path) -> None:
    path = write_catalog(
        tmp_path / "bad.yaml",
        resource_doc(),
        resource_doc(code="gat_vehicles", name="机动车登记信息", grade="L9"),
    )
    changes_before = _change_count(sqlite_world.database)

    assert_one_line_error(run("catalog", "apply", str(path)), "bad.yaml", "gat_vehicles", "grade")

    assert resource_count(sqlite_world.database) == 0
    assert _change_count(sqlite_world.database) == changes_before


def test_a_resource_the_services_refuse_rejects_the_file(
    sqlite_world: World, tmp_path: Path
) -> None:
    path = write_catalog(
        tmp_path / "unknown.yaml", resource_doc(), resource_doc(code="x_orphan", provider="zj_xxx")
    )
    assert_one_line_error(run("catalog", "apply", str(path)), "unknown.yaml", "x_orphan", "zj_xxx")
    assert resource_count(sqlite_world.database) == 0


def test_yaml_that_does_not_parse_names_the_file_and_line(
    sqlite_world: World, tmp_path: Path
) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("resources:\n  - code: a_b\n    name: [unclosed\n", encoding="utf-8")
    assert_one_line_error(run("catalog", "apply", str(path)), "broken.yaml:", "not valid YAML")
    assert resource_count(sqlite_world.database) == 0


def test_an_illegal_transition_exits_2(sqlite_world: World, tmp_path: Path) -> None:
    cli("catalog", "apply", str(write_catalog(tmp_path / "c.yaml", resource_doc())))

    assert_one_line_error(run("catalog", "approve", "gat_population"), "draft")
    assert_one_line_error(run("catalog", "revise", "gat_population"), "draft")
    assert state_of(sqlite_world.database, "gat_population") == "draft"


def test_submitting_without_a_primary_key_is_refused(sqlite_world: World, tmp_path: Path) -> None:
    doc = resource_doc(fields=[{"name": "remark", "title": "备注"}])
    cli("catalog", "apply", str(write_catalog(tmp_path / "c.yaml", doc)))
    assert_one_line_error(run("catalog", "submit", "gat_population"), "primary key")
    assert state_of(sqlite_world.database, "gat_population") == "draft"


def _change_count(database: Database) -> int:
    with database.session() as session:
        return len(list(session.scalars(select(ChangeLog.id))))


# acting through a token -------------------------------------------------------------------


def test_a_token_without_a_grant_cannot_see_or_submit_a_draft(
    sqlite_world: World, tmp_path: Path
) -> None:
    database = sqlite_world.database
    gat = {"SHUZHI_TOKEN": sqlite_world.tokens["gat_officer"]}
    wjw = {"SHUZHI_TOKEN": sqlite_world.tokens["wjw_officer"]}
    cli("catalog", "apply", str(write_catalog(tmp_path / "c.yaml", resource_doc())), env=gat)

    assert_one_line_error(run("catalog", "show", "gat_population", **wjw), "no catalog resource")
    assert_one_line_error(run("catalog", "submit", "gat_population", **wjw), "no catalog resource")
    assert state_of(database, "gat_population") == "draft"
    assert cli_json("catalog", "list", env=wjw)["count"] == 0

    assert cli_json("catalog", "show", "gat_population", env=gat)["state"] == "draft"
    cli("catalog", "submit", "gat_population", env=gat)
    assert state_of(database, "gat_population") == "pending_review"
    history = cli_json("catalog", "show", "gat_population", env=gat)["history"]
    assert [(h["transition"], h["actor"]) for h in history] == [("submit", "gat_officer")]


def test_an_officer_cannot_approve_its_own_submission(sqlite_world: World, tmp_path: Path) -> None:
    gat = {"SHUZHI_TOKEN": sqlite_world.tokens["gat_officer"]}
    cli("catalog", "apply", str(write_catalog(tmp_path / "c.yaml", resource_doc())), env=gat)
    cli("catalog", "submit", "gat_population", env=gat)

    assert_one_line_error(run("catalog", "approve", "gat_population", **gat))
    assert state_of(sqlite_world.database, "gat_population") == "pending_review"


def test_a_token_cannot_apply_resources_of_another_department(
    sqlite_world: World, tmp_path: Path
) -> None:
    path = write_catalog(tmp_path / "c.yaml", resource_doc())
    proc = run("catalog", "apply", str(path), SHUZHI_TOKEN=sqlite_world.tokens["wjw_officer"])
    assert_one_line_error(proc, "c.yaml", "gat_population")
    assert resource_count(sqlite_world.database) == 0


def test_an_unknown_token_is_refused(sqlite_world: World) -> None:
    assert_one_line_error(run("catalog", "list", SHUZHI_TOKEN="shz_not-a-real-token"), "token")


# Commands that only act and report success in a sentence; every other command prints data
# and must offer --json.
ACTION_ONLY = {
    "db upgrade",
    "lake recover",
    "lake review-pii",
    "quarantine export",
    "sources remove",
    "worker",
    "docs generate",
    "serve",
    "users activate",
    "users deactivate",
    "users grant",
    "users revoke",
    "users set-password",
    "users token-revoke",
    "version",
}


def test_every_command_that_prints_data_offers_json() -> None:
    import typer

    def walk(command: Any, path: str) -> list[tuple[str, Any]]:
        if hasattr(command, "commands"):
            return [
                leaf
                for name, sub in command.commands.items()
                for leaf in walk(sub, f"{path} {name}".strip())
            ]
        return [(path, command)]

    missing = [
        path
        for path, command in walk(typer.main.get_command(app), "")
        if path not in ACTION_ONLY
        and not any("--json" in getattr(p, "opts", ()) for p in command.params)
    ]
    assert missing == []


def test_an_unusable_data_directory_is_one_line(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    proc = run("users", "list", SHUZHI_DATA_DIR=str(blocker / "data"))
    assert_one_line_error(proc, "cannot use")
