"""Review of the first slice: each test here reproduces one defect found in review.

Every test fails on the code as reviewed and passes once the defect is fixed; the
assertions check the outcome a user or an attacker sees, not one particular fix.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from shuzhi.catalog import queries as catalog_queries
from shuzhi.catalog import service as catalog
from shuzhi.catalog.models import Resource
from shuzhi.catalog.schemas import ResourceCreate
from shuzhi.core import events
from shuzhi.core.db import Database
from shuzhi.core.errors import InvalidTransition, NotFound, PermissionDenied, ShuzhiError
from shuzhi.core.permissions import SYSTEM, Actor, Scope, allowed
from shuzhi.orgs import queries as orgs_queries
from shuzhi.orgs import service as orgs
from shuzhi.orgs.models import ApiToken
from shuzhi.orgs.schemas import DepartmentCreate, DepartmentUpdate, GrantCreate, UserCreate
from shuzhi.regions import service as regions
from shuzhi.regions.models import Region
from shuzhi.server import create_app
from tests.conftest import PASSWORD, World, resource_doc
from tests.web.support import csrf_of, login

PROBLEM = "application/problem+json"


# helpers ------------------------------------------------------------------------------


def add_user(
    world: World,
    username: str,
    *,
    department: str,
    role: str,
    grant_department: str | None = None,
    grant_region: str | None = None,
) -> Actor:
    """A user made by the platform operator, with one grant; returns its actor."""
    with world.database.transaction() as session:
        orgs.create_user(
            session,
            actor=SYSTEM,
            data=UserCreate(
                username=username,
                display_name=username,
                password=PASSWORD,
                department=department,
            ),
        )
        orgs.grant_role(
            session,
            actor=SYSTEM,
            username=username,
            data=GrantCreate(role=role, department=grant_department, region=grant_region),
        )
    return world.actor(username)


def token_ids(world: World, username: str) -> list[int]:
    with world.database.session() as session:
        account = orgs_queries.user(session, username)
        return [t.id for t in orgs_queries.tokens_of(session, account.id)]


def assert_clean_error(response: Any) -> None:
    """A 4xx answer, never a 500; API errors as problem+json."""
    assert response.status_code < 500, (response.status_code, response.text[:300])
    if response.request.url.path.startswith("/api/") and response.status_code >= 400:
        assert response.headers["content-type"].startswith(PROBLEM), response.text[:300]


def run_cli(*args: str, **extra_env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "shuzhi", *args],
        env={**os.environ.copy(), **extra_env},
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=120,
        check=False,
    )


def assert_one_line_error(proc: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in proc.stderr, proc.stderr[-600:]
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr[-600:])
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr[-600:]


@pytest.fixture
def client(sqlite_world: World) -> Iterator[TestClient]:
    with TestClient(
        create_app(database=sqlite_world.database), raise_server_exceptions=False
    ) as test_client:
        yield test_client


@pytest.fixture
def any_client(world: World) -> Iterator[TestClient]:
    """A client on each backend in turn, PostgreSQL included."""
    with TestClient(create_app(database=world.database), raise_server_exceptions=False) as c:
        yield c


def bearer(world: World, user: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {world.tokens[user]}"}


# 1. privilege escalation: a department admin takes over a platform admin -----------------


@pytest.mark.parametrize("operation", ["create_token", "set_password", "set_active"])
def test_a_department_admin_cannot_take_over_a_platform_admin_of_its_department(
    world: World, operation: str
) -> None:
    """gat_admin manages the users of zj_gat. A platform-wide administrator who happens to
    sit in zj_gat must not become reachable through that: minting a token for them,
    setting their password or deactivating them gives gat_admin powers it may not grant."""
    add_user(world, "ops", department="zj_gat", role="platform_admin")
    gat_admin = world.actors["gat_admin"]
    calls = {
        "create_token": lambda s: orgs.create_token(
            s, actor=gat_admin, username="ops", name="mine"
        ),
        "set_password": lambda s: orgs.set_password(
            s, actor=gat_admin, username="ops", password="Taken-Over-99"
        ),
        "set_active": lambda s: orgs.set_active(s, actor=gat_admin, username="ops", active=False),
    }
    with pytest.raises(PermissionDenied), world.database.transaction() as session:
        calls[operation](session)


def test_a_department_admin_cannot_mint_a_platform_admin_token_through_the_cli(
    sqlite_world: World,
) -> None:
    add_user(sqlite_world, "ops", department="zj_gat", role="platform_admin")
    proc = run_cli(
        "users", "token-create", "ops", "--name", "mine",
        SHUZHI_TOKEN=sqlite_world.tokens["gat_admin"],
    )  # fmt: skip
    assert proc.returncode == 2, f"gat_admin minted a platform admin token: {proc.stdout}"
    assert token_ids(sqlite_world, "ops") == []


# 2. grant_role widens the grantor's own region scope ----------------------------------


def test_a_grant_cannot_reach_beyond_the_grantors_region(world: World) -> None:
    """hz_admin administers hz_gaj only within the Hangzhou region subtree (330100). Granting
    for hz_gaj with no region gives the grantee hz_gaj's resources in every region, which
    hz_admin itself may not touch."""
    hz_admin = add_user(
        world,
        "hz_admin",
        department="hz_gaj",
        role="department_admin",
        grant_department="hz_gaj",
        grant_region="330100",
    )
    add_user(world, "helper", department="hz_gaj", role="viewer")
    with world.database.session() as session:
        hz_gaj = orgs_queries.department(session, "hz_gaj").id
    province_wide = Scope(department_id=hz_gaj, region_code="330000")
    assert not allowed(hz_admin, "catalog.edit", province_wide)

    try:
        with world.database.transaction() as session:
            orgs.grant_role(
                session,
                actor=hz_admin,
                username="helper",
                data=GrantCreate(role="data_officer", department="hz_gaj"),
            )
    except PermissionDenied:
        pass
    assert not allowed(world.actor("helper"), "catalog.edit", province_wide), (
        "hz_admin handed out catalog.edit over a region it does not hold"
    )


# 3. revoke_role removes grants the revoker could never have given ----------------------


def test_a_department_admin_cannot_revoke_a_platform_admin_grant(world: World) -> None:
    """grant_role refuses to hand out a role whose actions the grantor lacks; revoke_role
    has no such check, so a department admin strips a platform administrator's grant."""
    add_user(world, "ops", department="zj_dsj", role="platform_admin", grant_department="zj_gat")
    with pytest.raises((PermissionDenied, NotFound)), world.database.transaction() as session:
        orgs.revoke_role(
            session,
            actor=world.actors["gat_admin"],
            username="ops",
            data=GrantCreate(role="platform_admin", department="zj_gat"),
        )
    assert [g.role for g in world.actor("ops").grants] == ["platform_admin"]


# 4. department PATCH moves a department under one the caller has no grant on ----------


def test_moving_a_department_needs_a_grant_on_its_new_parent(world: World) -> None:
    """create_department checks the parent; update_department does not. Moving hz_gaj under
    zj_wjw changes zj_wjw's subtree (its admins now read hz_gaj's drafts)."""
    mover = add_user(
        world, "hz_ops", department="hz_gaj", role="platform_admin", grant_department="hz_gaj"
    )
    with world.database.session() as session:
        wjw = orgs_queries.department(session, "zj_wjw")
        assert not allowed(mover, "orgs.manage_departments", orgs_queries.department_scope(wjw))
    with pytest.raises(PermissionDenied), world.database.transaction() as session:
        orgs.update_department(
            session, actor=mover, code="hz_gaj", data=DepartmentUpdate(parent="zj_wjw")
        )
    with world.database.session() as session:
        assert orgs_queries.department(session, "hz_gaj").parent.code == "zj_gat"


def test_creating_a_department_checks_its_own_region(world: World) -> None:
    """With a parent, only the parent's scope is checked: an operator scoped to Hangzhou
    creates a department in Ningbo (330200)."""
    hz_ops = add_user(
        world, "hz_ops", department="hz_gaj", role="platform_admin", grant_region="330100"
    )
    assert not allowed(hz_ops, "orgs.manage_departments", Scope(region_code="330200"))
    with pytest.raises(PermissionDenied), world.database.transaction() as session:
        orgs.create_department(
            session,
            actor=hz_ops,
            data=DepartmentCreate(
                code="nb_gaj", name="宁波市公安局", region="330200", parent="hz_gaj"
            ),
        )


# 5. information leaks -------------------------------------------------------------------


def test_grant_endpoints_do_not_tell_who_exists(client: TestClient, sqlite_world: World) -> None:
    """GET /users/{name} hides users the caller does not manage; the grant endpoints tell a
    viewer 403 for an existing user and 404 'unknown user' for a missing one."""
    viewer = bearer(sqlite_world, "viewer")
    for method in ("POST", "DELETE"):
        existing = client.request(
            method, "/api/v1/users/admin/grants", json={"role": "viewer"}, headers=viewer
        )
        missing = client.request(
            method, "/api/v1/users/no_such_user/grants", json={"role": "viewer"}, headers=viewer
        )
        assert existing.status_code == missing.status_code, (
            method,
            existing.json()["detail"],
            missing.json()["detail"],
        )


def test_revoking_another_users_token_id_does_not_name_its_owner(
    client: TestClient, sqlite_world: World
) -> None:
    """Token ids are small integers; probing them names every user that holds a token."""
    admin_token = token_ids(sqlite_world, "admin")[0]
    response = client.delete(
        f"/api/v1/tokens/{admin_token}", headers=bearer(sqlite_world, "viewer")
    )
    assert response.status_code == 404, response.json()
    assert "admin" not in response.json()["detail"]


def test_cli_users_list_with_a_token_lists_only_users_it_manages(sqlite_world: World) -> None:
    """The API lists only users the caller manages; the CLI with SHUZHI_TOKEN ignores the
    token and prints every user with their grants."""
    proc = run_cli("users", "list", "--json", SHUZHI_TOKEN=sqlite_world.tokens["viewer"])
    listed = proc.stdout if proc.returncode == 0 else ""
    assert '"admin"' not in listed and "platform_admin" not in listed, listed[:300]


def test_the_login_lockout_does_not_tell_real_users_from_unknown_ones(
    client: TestClient,
) -> None:
    """(Uncommitted lockout work.) Five wrong passwords lock a real login and say so; an
    unknown name never locks, so the message tells which usernames exist."""
    pages = {}
    for username in ("viewer", "nobody_here"):
        for _ in range(6):
            page = client.post("/login", data={"username": username, "password": "Wrong-pass-1"})
        pages[username] = page
    assert pages["viewer"].status_code == pages["nobody_here"].status_code
    assert ("UTC" in pages["viewer"].text) == ("UTC" in pages["nobody_here"].text)


def test_the_login_page_does_not_show_text_from_the_link(client: TestClient) -> None:
    """base.html prints ?error= from the URL as a red alert on every page, the login page
    included: a mailed link puts any official-looking message on the real site."""
    bait = "系统已迁移，请到 http://evil.example 重新登录"
    assert bait not in client.get("/login", params={"error": bait}).text


# 6. bad input gives a 500 or a traceback --------------------------------------------------


@pytest.mark.parametrize(
    ("user", "path"),
    [
        ("viewer", "/api/v1/catalog/resources?offset=99999999999999999999"),
        ("auditor", "/api/v1/changes?offset=99999999999999999999"),
    ],
)
def test_a_huge_offset_is_not_a_500(
    client: TestClient, sqlite_world: World, user: str, path: str
) -> None:
    assert_clean_error(client.get(path, headers=bearer(sqlite_world, user)))


def test_a_huge_token_id_is_not_a_500(client: TestClient, sqlite_world: World) -> None:
    response = client.delete(
        "/api/v1/tokens/99999999999999999999", headers=bearer(sqlite_world, "viewer")
    )
    assert_clean_error(response)


@pytest.mark.parametrize("page", ["abc", "99999999999999999999"])
def test_a_bad_catalog_page_number_is_not_a_500(client: TestClient, page: str) -> None:
    login(client, "viewer")
    for path in ("/catalog", "/catalog/results"):
        assert_clean_error(client.get(path, params={"page": page}))


def test_a_huge_change_log_page_number_is_not_a_500(client: TestClient) -> None:
    login(client, "admin")
    assert_clean_error(client.get("/changes", params={"page": "99999999999999999999"}))


@pytest.mark.parametrize("days", ["²", "99999999"])
def test_an_odd_token_lifetime_in_the_cockpit_is_not_a_500(client: TestClient, days: str) -> None:
    login(client, "viewer")
    csrf = csrf_of(client.get("/account").text)
    response = client.post("/account/tokens", data={"csrf": csrf, "name": "x", "days": days})
    assert_clean_error(response)


def test_a_huge_token_id_in_the_cockpit_is_not_a_500(client: TestClient) -> None:
    login(client, "viewer")
    csrf = csrf_of(client.get("/account").text)
    response = client.post("/account/tokens/99999999999999999999/revoke", data={"csrf": csrf})
    assert_clean_error(response)


def test_a_token_name_longer_than_its_column_is_refused(
    any_client: TestClient, world: World
) -> None:
    """The API caps token names at 80 (TokenCreate); the cockpit form does not: PostgreSQL
    answers 500, SQLite stores the over-long name."""
    login(any_client, "viewer")
    csrf = csrf_of(any_client.get("/account").text)
    response = any_client.post("/account/tokens", data={"csrf": csrf, "name": "n" * 300})
    assert_clean_error(response)
    with world.database.session() as session:
        names = session.scalars(select(ApiToken.name).where(ApiToken.kind == "api"))
        assert all(len(name) <= 80 for name in names)


def test_a_nul_character_in_a_search_is_not_a_500(any_client: TestClient, world: World) -> None:
    """PostgreSQL refuses NUL in text; every string parameter reaches it unchecked."""
    response = any_client.get(
        "/api/v1/catalog/resources", params={"q": "a\x00b"}, headers=bearer(world, "viewer")
    )
    assert_clean_error(response)


def test_a_nul_character_in_a_login_name_is_not_a_500(any_client: TestClient) -> None:
    response = any_client.post("/login", data={"username": "a\x00b", "password": "x"})
    assert_clean_error(response)


def test_a_deeply_nested_yaml_document_is_not_a_500(
    client: TestClient, sqlite_world: World
) -> None:
    document = "resources: " + "[" * 5000 + "]" * 5000
    response = client.post(
        "/api/v1/catalog/apply",
        content=document.encode(),
        headers={**bearer(sqlite_world, "gat_officer"), "Content-Type": "application/yaml"},
    )
    assert_clean_error(response)
    assert response.status_code == 422


def test_a_deeply_nested_yaml_upload_in_the_cockpit_is_not_a_500(client: TestClient) -> None:
    login(client, "gat_officer")
    csrf = csrf_of(client.get("/catalog").text)
    document = "resources: " + "[" * 5000 + "]" * 5000
    response = client.post(
        "/catalog/apply",
        data={"csrf": csrf},
        files={"file": ("c.yaml", document.encode(), "application/yaml")},
        follow_redirects=False,
    )
    assert_clean_error(response)


def test_a_region_name_longer_than_its_column_is_refused(world: World) -> None:
    """region.name is VARCHAR(60): PostgreSQL raises DataError (a CLI traceback), SQLite
    keeps the over-long name."""
    text = f"code,name,level,parent\n330100,{'杭' * 70},city,330000\n"
    with pytest.raises(ShuzhiError), world.database.transaction() as session:
        regions.load_csv(session, actor=SYSTEM, text=text, source="long.csv")
    with world.database.session() as session:
        assert len(session.get(Region, "330100").name) <= 60


def test_a_region_csv_with_a_huge_field_is_a_clean_error(db: Database) -> None:
    text = 'code,name,level,parent\n330100,"' + "x" * 200_000 + '",city,330000\n'
    with pytest.raises(ShuzhiError), db.transaction() as session:
        regions.load_csv(session, actor=SYSTEM, text=text, source="huge.csv")


@pytest.mark.parametrize(
    "args",
    [
        ("departments", "create", "--code", "BAD", "--name", "x", "--region", "330000"),
        ("users", "create", "BAD", "--name", "x"),
        ("users", "token-create", "viewer", "--name", "t", "--days", "99999999"),
        ("users", "token-revoke", "99999999999999999999"),
    ],
    ids=["department-schema", "user-schema", "token-days", "token-id"],
)
def test_cli_bad_input_is_one_line_not_a_traceback(
    sqlite_world: World, args: tuple[str, ...]
) -> None:
    assert_one_line_error(run_cli(*args, SHUZHI_PASSWORD=PASSWORD))


def test_a_token_cannot_be_created_already_expired(world: World) -> None:
    """The API bounds days to 1..3650; the service (and so the CLI's --days) does not:
    --days -3 issues, audits and prints a token that never works."""
    with pytest.raises(ShuzhiError), world.database.transaction() as session:
        orgs.create_token(session, actor=SYSTEM, username="viewer", name="dead", days=-3)


def test_a_non_ascii_csrf_field_is_refused_not_a_500(client: TestClient) -> None:
    """hmac.compare_digest raises TypeError on non-ASCII str: every cockpit POST answers
    500 instead of refusing the form."""
    login(client, "viewer")
    for path in ("/account/tokens", "/logout"):
        response = client.post(path, data={"csrf": "é", "name": "x"}, follow_redirects=False)
        assert_clean_error(response)


def test_the_departments_page_title_holds_no_form(client: TestClient) -> None:
    """departments.html opens the 'New department' form inside {% block title %}: an
    operator's tab title is the form's markup, CSRF token included."""
    login(client, "admin")
    page = client.get("/departments").text
    title = page.split("<title>", 1)[1].split("</title>", 1)[0]
    assert "<form" not in title and "csrf" not in title, title[:200]


# 6b. correctness of reads and events ---------------------------------------------------


def test_department_and_region_search_terms_are_not_wildcards(
    client: TestClient, sqlite_world: World
) -> None:
    """The catalog escapes LIKE wildcards; departments and regions do not: q=% lists all."""
    viewer = bearer(sqlite_world, "viewer")
    assert client.get("/api/v1/departments", params={"q": "%"}, headers=viewer).json()["count"] == 0
    assert client.get("/api/v1/regions", params={"q": "%"}, headers=viewer).json()["count"] == 0


def test_the_region_list_counts_every_match(client: TestClient, sqlite_world: World) -> None:
    """regions.search stops at 500 rows and the API reports that as the count: a county
    with 501 towns lists 500 and says there are 500."""
    rows = "".join(f"330102{n:03d},镇{n},town,330102\n" for n in range(1, 502))
    with sqlite_world.database.transaction() as session:
        regions.load_csv(session, actor=SYSTEM, text="code,name,level,parent\n" + rows)
    listed = client.get(
        "/api/v1/regions", params={"parent": "330102"}, headers=bearer(sqlite_world, "viewer")
    ).json()
    assert listed["count"] == 501


def test_a_rolled_back_transition_announces_nothing(world: World) -> None:
    """Machine.fire emits 'workflow.transition' before the transaction commits; when it then
    rolls back (a later resource of the same apply fails, say) listeners were told of a
    move that never happened."""
    heard: list[dict[str, object]] = []

    def listener(_name: str, payload: dict[str, object]) -> None:
        heard.append(payload)

    events.subscribe("workflow.transition", listener)
    try:
        with world.database.transaction() as session:
            catalog.create(
                session, actor=world.actors["gat_officer"], data=ResourceCreate(**resource_doc())
            )
        with pytest.raises(RuntimeError), world.database.transaction() as session:
            catalog.transition(
                session, actor=world.actors["gat_officer"], code="gat_population", name="submit"
            )
            raise RuntimeError("a later step fails")
    finally:
        events.unsubscribe("workflow.transition", listener)
    assert heard == []


# 7. the state machine's direct-assignment guard ------------------------------------------


def test_a_bulk_update_cannot_assign_the_state(world: World) -> None:
    """The guard listens to attribute sets only; an ORM UPDATE statement publishes a draft
    with no transition, no history and no change log."""
    with world.database.transaction() as session:
        catalog.create(
            session, actor=world.actors["gat_officer"], data=ResourceCreate(**resource_doc())
        )
    try:
        with world.database.transaction() as session:
            session.execute(
                update(Resource).where(Resource.code == "gat_population").values(state="published")
            )
    except InvalidTransition:
        pass
    with world.database.session() as session:
        state = session.scalar(select(Resource.state).where(Resource.code == "gat_population"))
    assert state == "draft"


# 8. concurrent transitions on PostgreSQL ----------------------------------------------


def test_two_reviewers_cannot_both_move_the_same_submission(world: World) -> None:
    """A transition reads the state, then writes it with no row lock and no version check.
    On PostgreSQL, a reject that read 'pending_review' while an approve was in flight goes
    through once the approve commits: the history says approve (pending_review ->
    published) and then reject (pending_review -> rejected)."""
    if world.database.backend == "sqlite":
        pytest.skip("SQLite serialises writers in the process; the race needs PostgreSQL")
    admin, officer = world.actors["admin"], world.actors["gat_officer"]
    code = "gat_population"
    with world.database.transaction() as session:
        catalog.create(session, actor=officer, data=ResourceCreate(**resource_doc()))
        catalog.transition(session, actor=officer, code=code, name="submit")

    approve_flushed, approve_may_commit = threading.Event(), threading.Event()
    outcome: dict[str, object] = {}

    def approve() -> None:
        with world.database.transaction() as session:
            catalog.transition(session, actor=admin, code=code, name="approve")
            approve_flushed.set()  # the row is updated and locked, not yet committed
            approve_may_commit.wait(30)

    def reject() -> None:
        try:
            with world.database.transaction() as session:
                catalog.transition(session, actor=admin, code=code, name="reject", comment="x")
            outcome["reject"] = "done"
        except ShuzhiError as exc:
            outcome["reject"] = exc

    first = threading.Thread(target=approve)
    first.start()
    assert approve_flushed.wait(30)
    second = threading.Thread(target=reject)
    second.start()
    # wait until the reject is blocked on the approve's row lock
    with world.database.engine.connect() as probe:
        for _ in range(300):
            waiting = probe.exec_driver_sql(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE wait_event_type = 'Lock' AND datname = current_database()"
            ).scalar()
            if waiting or not second.is_alive():
                break
            threading.Event().wait(0.05)
    approve_may_commit.set()
    first.join(30)
    second.join(30)

    with world.database.session() as session:
        resource = catalog_queries.get(session, actor=admin, code=code)
        moves = [
            (h.transition, h.from_state, h.to_state)
            for h in catalog_queries.history(session, resource=resource)
        ]
    assert isinstance(outcome.get("reject"), ShuzhiError), f"both went through: {moves}"
    for before, after in itertools.pairwise(moves):
        assert before[2] == after[1], f"the history does not chain: {moves}"


# 9. unexpected errors ------------------------------------------------------------------


def test_an_unexpected_api_error_is_problem_json_with_a_request_id(
    client: TestClient, sqlite_world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Errors outside ShuzhiError escape the middleware: the answer is text/plain
    'Internal Server Error' without X-Request-ID, and the request is neither logged by the
    structured logger nor counted in /metrics."""

    def broken(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(catalog_queries, "stats", broken)
    response = client.get("/api/v1/catalog/stats", headers=bearer(sqlite_world, "viewer"))
    assert response.status_code == 500
    assert response.headers["content-type"].startswith(PROBLEM), response.text
    assert "X-Request-ID" in response.headers
    assert 'route="/api/v1/catalog/stats",status="500"' in client.get("/metrics").text
