"""Managing the gateway over HTTP (/api/v1/gateway): consumers, credentials, applications,
decisions and grants end to end, the access log for auditors, and problem+json for every
error. Most tests run on SQLite; those taking ``any_client`` run on PostgreSQL too."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from shuzhi.core import clock
from shuzhi.core.settings import get_settings, reset_settings
from shuzhi.gateway import service
from shuzhi.server import create_app
from tests.api.support import PROBLEM, assert_clean_error, assert_problem, auth
from tests.conftest import World
from tests.gateway.data import log_call
from tests.gateway.management import (
    CONDITIONAL,
    HEALTH,
    L4,
    NO_REGION,
    OPEN,
    POLICE,
    SECRET,
    WJW,
    Management,
    body,
    management,
)

API = "/api/v1/gateway"


@pytest.fixture
def m(sqlite_world: World) -> Management:
    made = management(sqlite_world)
    made.publish(CONDITIONAL, OPEN)
    return made


@pytest.fixture
def client(m: Management) -> Iterator[TestClient]:
    # a failure of the server is a 500 answer to assert on, not an exception in the test
    with TestClient(create_app(database=m.db), raise_server_exceptions=False) as client:
        yield client


class Caller:
    """Calls of the API as one user or another."""

    def __init__(self, client: TestClient, world: World) -> None:
        self.client = client
        self.world = world

    def __call__(self, user: str | None, method: str, path: str, **options: Any) -> Any:
        headers = (auth(self.world, user) if user else {}) | options.pop("headers", {})
        return self.client.request(method, f"{API}{path}", headers=headers, **options)

    def apply(self, user: str = "wjw_officer", **overrides: Any) -> dict[str, Any]:
        response = self(user, "POST", "/applications", json=body(**overrides))
        assert response.status_code == 201, response.text
        return response.json()


@pytest.fixture
def call(client: TestClient, m: Management) -> Caller:
    return Caller(client, m.world)


def one_change(m: Management, action: str, object_id: object, actor: str) -> None:
    rows = m.changes(action, object_id)
    assert [row.actor_name for row in rows] == [actor], (action, object_id)


# -- consumers ---------------------------------------------------------------------------


def test_consumers_are_registered_by_their_departments_admin(
    any_client: TestClient, world: World
) -> None:
    m = management(world)
    call = Caller(any_client, world)
    doc = {"code": "gat_case_app", "name": "案件管理系统", "department": "zj_gat"}
    made = call("gat_admin", "POST", "/consumers", json=doc)
    assert made.status_code == 201, made.text
    assert made.json() | {"created_at": None} == {
        "code": "gat_case_app",
        "name": "案件管理系统",
        "department": "zj_gat",
        "department_name": "浙江省公安厅",
        "description": "",
        "contact": "",
        "active": True,
        "created_by": "gat_admin",
        "created_at": None,
        "credentials": 0,
    }
    one_change(m, "gateway_consumer.create", "gat_case_app", "gat_admin")
    assert_problem(call("gat_admin", "POST", "/consumers", json=doc), 409, "conflict")
    other = doc | {"code": "wjw_case_app", "department": "zj_wjw"}
    assert_problem(call("gat_admin", "POST", "/consumers", json=other), 403, "forbidden")
    assert m.changes("gateway_consumer.create", "wjw_case_app") == []
    # the admin sees its department's systems, and those of the departments under it
    listed = call("gat_admin", "GET", "/consumers").json()
    assert [item["code"] for item in listed["data"]] == ["gat_case_app", POLICE]
    assert listed["count"] == 2
    assert_problem(call("gat_admin", "GET", f"/consumers/{HEALTH}"), 404, "not-found")
    assert call("auditor", "GET", f"/consumers/{HEALTH}").json()["department"] == "zj_wjw"


def test_a_bad_consumer_code_is_a_validation_problem(call: Caller) -> None:
    for code in ("Bad_Code", "ab", "1app", "zj-app", "应用", "a" * 65, ""):
        doc = {"code": code, "name": "应用系统", "department": "zj_gat"}
        problem = assert_problem(call("admin", "POST", "/consumers", json=doc), 422, "validation")
        assert problem["field"] == "code", code
    assert call("admin", "GET", "/consumers").json()["count"] == 2


def test_registering_needs_a_token(call: Caller) -> None:
    doc = {"code": "gat_case_app", "name": "案件管理系统", "department": "zj_gat"}
    response = call(None, "POST", "/consumers", json=doc)
    assert_problem(response, 401, "unauthenticated")
    assert response.headers["WWW-Authenticate"] == "Bearer"


def test_a_consumer_is_disabled_and_enabled(call: Caller, m: Management) -> None:
    disabled = call("admin", "POST", f"/consumers/{HEALTH}/disable")
    assert disabled.status_code == 200, disabled.text
    assert disabled.json()["active"] is False
    one_change(m, "gateway_consumer.disable", HEALTH, "admin")
    refused = call("wjw_officer", "POST", "/applications", json=body(resource=OPEN))
    assert_problem(refused, 409, "conflict")
    assert call("admin", "POST", f"/consumers/{HEALTH}/enable").json()["active"] is True
    unknown = call("admin", "POST", f"/consumers/{HEALTH}/explode")
    assert unknown.status_code == 404
    assert unknown.headers["content-type"].startswith(PROBLEM)
    assert_problem(call("wjw_officer", "POST", f"/consumers/{HEALTH}/disable"), 403, "forbidden")


# -- credentials -------------------------------------------------------------------------


def test_issuing_a_credential_answers_its_secret_once(call: Caller, m: Management) -> None:
    # a route /consumers/{code}/{action} declared first would swallow this one
    issued = call("admin", "POST", f"/consumers/{HEALTH}/credentials")
    assert issued.status_code == 201, issued.text
    made = issued.json()
    assert made["state"] == "active" and made["consumer"] == HEALTH
    salt = m.credential(made["access_key"]).salt
    derived = service.derive_secret(
        get_settings().secret(), access_key=made["access_key"], salt=salt
    )
    assert made["secret"] == derived
    one_change(m, "gateway_credential.create", made["access_key"], "admin")
    listed = call("admin", "GET", f"/consumers/{HEALTH}/credentials")
    assert made["secret"] not in listed.text


def test_the_credential_list_never_shows_a_secret(call: Caller, m: Management) -> None:
    keys = [m.issue(HEALTH), m.issue(HEALTH)]
    listed = call("wjw_officer", "GET", f"/consumers/{HEALTH}/credentials")
    assert listed.status_code == 200, listed.text
    data = listed.json()["data"]
    assert [item["access_key"] for item in data] == [key for key, _secret in keys]
    for item in data:
        assert set(item) == {
            "id",
            "consumer",
            "access_key",
            "state",
            "created_by",
            "created_at",
            "expires_at",
            "revoked_at",
            "last_used_at",
        }
    for key, secret in keys:
        assert secret not in listed.text
        assert m.credential(key).salt not in listed.text
    assert call("viewer", "GET", f"/consumers/{HEALTH}/credentials").status_code == 404


def test_a_credential_is_rotated_then_revoked(call: Caller, m: Management) -> None:
    old_key, old_secret = m.issue(HEALTH)
    rotated = call("admin", "POST", f"/credentials/{old_key}/rotate")
    assert rotated.status_code == 201, rotated.text
    new = rotated.json()
    assert new["access_key"] != old_key
    assert new["secret"] and new["secret"] != old_secret
    assert new["state"] == "active"
    salt = m.credential(new["access_key"]).salt
    assert new["secret"] == service.derive_secret(
        get_settings().secret(), access_key=new["access_key"], salt=salt
    )
    one_change(m, "gateway_credential.rotate", old_key, "admin")
    one_change(m, "gateway_credential.create", new["access_key"], "admin")
    states = {
        item["access_key"]: (item["state"], item["expires_at"])
        for item in call("admin", "GET", f"/consumers/{HEALTH}/credentials").json()["data"]
    }
    assert states[old_key][0] == "rotating" and states[old_key][1] is not None
    assert states[new["access_key"]] == ("active", None)

    revoked = call("admin", "POST", f"/credentials/{old_key}/revoke")
    assert revoked.status_code == 200, revoked.text
    assert revoked.json()["state"] == "revoked"
    assert "secret" not in revoked.json()
    one_change(m, "gateway_credential.revoke", old_key, "admin")
    assert_problem(call("admin", "POST", f"/credentials/{old_key}/revoke"), 409, "conflict")
    assert_problem(call("admin", "POST", f"/credentials/{old_key}/rotate"), 409, "conflict")
    assert new["secret"] not in m.change_log_text()


def test_credentials_are_managed_only_by_the_consumers_managers(
    call: Caller, m: Management
) -> None:
    key, _secret = m.issue(HEALTH)
    # wjw_officer sees its department's system but does not manage it
    assert_problem(call("wjw_officer", "POST", f"/credentials/{key}/rotate"), 403, "forbidden")
    # the police admin does not even see it
    assert_problem(call("gat_admin", "POST", f"/credentials/{key}/revoke"), 404, "not-found")
    assert_problem(call("admin", "POST", "/credentials/SZNOSUCHKEY/revoke"), 404, "not-found")
    assert m.credential(key).revoked_at is None


# -- applications and decisions ----------------------------------------------------------


def test_a_conditional_application_goes_through_the_inbox_to_a_grant(
    any_client: TestClient, world: World
) -> None:
    m = management(world)
    m.publish(CONDITIONAL)
    call = Caller(any_client, world)
    made = call.apply(clear_fields=["mobile"])
    assert (made["state"], made["grant_id"], made["overdue"]) == ("pending", None, False)
    assert made["provider"] == "zj_gat" and made["sharing"] == "conditional"
    assert made["consumer_department"] == "zj_wjw"
    one_change(m, "gateway_application.create", made["id"], "wjw_officer")

    inbox = call("gat_officer", "GET", "/applications", params={"inbox": "true"}).json()
    assert ([item["id"] for item in inbox["data"]], inbox["count"]) == ([made["id"]], 1)
    mine = call("wjw_officer", "GET", "/applications", params={"inbox": "true"}).json()
    assert mine == {"data": [], "count": 0}
    assert call("wjw_officer", "GET", "/applications").json()["count"] == 1

    path = f"/applications/{made['id']}/approve"
    assert_problem(call("wjw_officer", "POST", path, json={}), 403, "forbidden")
    beyond = call("gat_officer", "POST", path, json={"clear_fields": ["mobile", "full_name"]})
    assert_problem(beyond, 422, "validation")
    approved = call("gat_officer", "POST", path, json={"comment": "同意", "rows_per_day": 1000})
    assert approved.status_code == 200, approved.text
    decided = approved.json()
    assert (decided["state"], decided["decided_by"], decided["reason"]) == (
        "approved",
        "gat_officer",
        "同意",
    )
    assert decided["grant_id"] is not None
    one_change(m, "gateway_application.approve", made["id"], "gat_officer")
    one_change(m, "gateway_grant.create", decided["grant_id"], "gat_officer")

    history = call("wjw_officer", "GET", f"/applications/{made['id']}/history").json()
    assert [(h["transition"], h["from_state"], h["to_state"], h["actor"]) for h in history] == [
        ("approve", "pending", "approved", "gat_officer")
    ]
    assert history[0]["comment"] == "同意"
    assert call("gat_officer", "GET", "/applications", params={"inbox": "true"}).json() == {
        "data": [],
        "count": 0,
    }

    grants = call("wjw_officer", "GET", "/grants").json()
    assert grants["count"] == 1
    [grant] = grants["data"]
    assert grant["id"] == decided["grant_id"]
    assert grant["rows_per_day"] == 1000 and grant["state"] == "active"
    modes = {field["name"]: field["mode"] for field in grant["fields"]}
    assert modes["id_card"] == "token"
    assert modes["full_name"] == "masked"
    assert modes["mobile"] == "clear"
    assert modes["gender"] == "clear"


def test_an_unconditional_application_is_granted_at_once(call: Caller) -> None:
    made = call.apply(resource=OPEN)
    assert (made["state"], made["decided_by"]) == ("approved", "system")
    grant = call("wjw_officer", "GET", f"/grants/{made['grant_id']}")
    assert grant.status_code == 200 and grant.json()["state"] == "active"
    asked_clear = call.apply(resource=OPEN, clear_fields=["full_name"], purpose="另一事项")
    assert (asked_clear["state"], asked_clear["grant_id"]) == ("pending", None)


@pytest.mark.parametrize(
    ("resource", "overrides", "status", "slug"),
    [
        (SECRET, {}, 403, "not-shared"),
        (L4, {}, 403, "not-shared"),
        (L4, {"rights": ["read", "verify"]}, 403, "not-shared"),
        (CONDITIONAL, {"fields": ["id_card", "no_such_field"]}, 422, "validation"),
        (CONDITIONAL, {"fields": ["id_card"], "clear_fields": ["mobile"]}, 422, "validation"),
        (CONDITIONAL, {"region": "330200", "consumer": POLICE}, 422, "validation"),
        (NO_REGION, {"region": "330100"}, 422, "validation"),
        (CONDITIONAL, {"valid_until": "2001-01-01"}, 422, "validation"),
        (CONDITIONAL, {"consumer": "no_such_app"}, 404, "not-found"),
        ("no_such_resource", {}, 404, "not-found"),
    ],
)
def test_a_refused_application_is_a_problem(
    call: Caller,
    m: Management,
    resource: str,
    overrides: dict[str, Any],
    status: int,
    slug: str,
) -> None:
    if resource in (SECRET, L4, NO_REGION):
        m.publish(resource)
    user = "gat_officer" if overrides.get("consumer") == POLICE else "wjw_officer"
    doc = body(resource=resource) | overrides
    assert_problem(call(user, "POST", "/applications", json=doc), status, slug)
    assert call("admin", "GET", "/applications").json()["count"] == 0


def test_an_l4_resource_accepts_a_verification(call: Caller, m: Management) -> None:
    m.publish(L4)
    made = call.apply(resource=L4, rights=["verify"])
    assert (made["state"], made["rights"]) == ("pending", ["verify"])


def test_a_second_pending_application_conflicts(call: Caller) -> None:
    first = call.apply()
    problem = assert_problem(
        call("wjw_officer", "POST", "/applications", json=body()), 409, "conflict"
    )
    assert str(first["id"]) in problem["detail"]


def test_a_rejection_needs_a_comment(call: Caller, m: Management) -> None:
    made = call.apply()
    path = f"/applications/{made['id']}/reject"
    for decision in ({}, {"comment": "  "}):
        problem = assert_problem(
            call("gat_officer", "POST", path, json=decision), 422, "validation"
        )
        assert problem["field"] == "comment"
    rejected = call("gat_officer", "POST", path, json={"comment": "用途不明确"})
    assert rejected.status_code == 200, rejected.text
    assert (rejected.json()["state"], rejected.json()["reason"]) == ("rejected", "用途不明确")
    one_change(m, "gateway_application.reject", made["id"], "gat_officer")
    again = call("gat_officer", "POST", path, json={"comment": "再次驳回"})
    assert_problem(again, 409, "invalid-transition")


def test_the_consumers_side_withdraws(call: Caller, m: Management) -> None:
    made = call.apply()
    path = f"/applications/{made['id']}/withdraw"
    assert_problem(call("gat_officer", "POST", path), 403, "forbidden")
    withdrawn = call("wjw_officer", "POST", path)
    assert withdrawn.status_code == 200, withdrawn.text
    assert withdrawn.json()["state"] == "withdrawn"
    one_change(m, "gateway_application.withdraw", made["id"], "wjw_officer")
    assert_problem(call("wjw_officer", "POST", path), 409, "invalid-transition")
    approve = call("gat_officer", "POST", f"/applications/{made['id']}/approve", json={})
    assert_problem(approve, 409, "invalid-transition")


def test_a_new_grant_supersedes_the_previous_one(call: Caller) -> None:
    first = call.apply(resource=OPEN)
    second = call.apply(resource=OPEN, fields=["id_card", "gender"])
    old = call("gat_officer", "GET", f"/grants/{first['grant_id']}").json()
    assert old["state"] == "revoked"
    history = call("gat_officer", "GET", f"/grants/{first['grant_id']}/history").json()
    assert [(h["transition"], h["actor"], h["comment"]) for h in history] == [
        ("revoke", "system", f"superseded by grant {second['grant_id']}")
    ]
    active = call("wjw_officer", "GET", "/grants", params={"state": "active"}).json()
    assert [item["id"] for item in active["data"]] == [second["grant_id"]]


def test_applications_are_seen_by_both_sides_and_auditors_only(call: Caller, m: Management) -> None:
    made = call.apply()
    m.user("dsj_officer", department="zj_dsj", role="data_officer")
    path = f"/applications/{made['id']}"
    for user in ("wjw_officer", "gat_officer", "auditor", "admin"):
        assert call(user, "GET", path).status_code == 200, user
        assert call(user, "GET", f"{path}/history").status_code == 200, user
    for user in ("dsj_officer", "viewer"):
        assert_problem(call(user, "GET", path), 404, "not-found")
        assert_problem(call(user, "GET", f"{path}/history"), 404, "not-found")
        assert call(user, "GET", "/applications").json() == {"data": [], "count": 0}
    assert_problem(call("dsj_officer", "POST", f"{path}/approve", json={}), 404, "not-found")
    assert_problem(call("dsj_officer", "POST", f"{path}/withdraw"), 404, "not-found")


def test_the_application_list_filters_and_pages(call: Caller) -> None:
    pending = call.apply()
    granted = call.apply(resource=OPEN)
    listed = call("admin", "GET", "/applications", params={"state": "pending"}).json()
    assert [item["id"] for item in listed["data"]] == [pending["id"]]
    page = call("admin", "GET", "/applications", params={"limit": 1}).json()
    assert page["count"] == 2
    assert [item["id"] for item in page["data"]] == [granted["id"]]
    page = call("admin", "GET", "/applications", params={"limit": 1, "offset": 1}).json()
    assert [item["id"] for item in page["data"]] == [pending["id"]]
    by_resource = call("admin", "GET", "/applications", params={"resource": OPEN}).json()
    assert [item["id"] for item in by_resource["data"]] == [granted["id"]]


# -- grants ------------------------------------------------------------------------------


def test_a_grant_is_suspended_resumed_and_revoked(call: Caller, m: Management) -> None:
    grant_id = call.apply(resource=OPEN)["grant_id"]
    path = f"/grants/{grant_id}"
    problem = assert_problem(
        call("gat_officer", "POST", f"{path}/suspend", json={}), 422, "validation"
    )
    assert problem["field"] == "comment"
    assert_problem(
        call("wjw_officer", "POST", f"{path}/suspend", json={"comment": "暂停"}), 403, "forbidden"
    )
    suspended = call("gat_officer", "POST", f"{path}/suspend", json={"comment": "核查使用情况"})
    assert suspended.status_code == 200, suspended.text
    assert suspended.json()["state"] == "suspended"
    resumed = call("gat_officer", "POST", f"{path}/resume", json={})
    assert resumed.status_code == 200 and resumed.json()["state"] == "active"
    assert_problem(call("gat_officer", "POST", f"{path}/revoke", json={}), 422, "validation")
    revoked = call("gat_officer", "POST", f"{path}/revoke", json={"comment": "事项已办结"})
    assert revoked.status_code == 200 and revoked.json()["state"] == "revoked"
    one_change(m, "gateway_grant.revoke", grant_id, "gat_officer")
    again = call("gat_officer", "POST", f"{path}/suspend", json={"comment": "再暂停"})
    assert_problem(again, 409, "invalid-transition")
    assert_problem(call("gat_officer", "POST", f"{path}/explode", json={}), 422, "validation")
    history = call("wjw_officer", "GET", f"{path}/history").json()
    assert [h["transition"] for h in history] == ["suspend", "resume", "revoke"]
    m.user("dsj_officer", department="zj_dsj", role="data_officer")
    assert_problem(call("dsj_officer", "GET", path), 404, "not-found")
    assert_problem(
        call("dsj_officer", "POST", f"{path}/suspend", json={"comment": "x"}), 404, "not-found"
    )


def test_a_grant_resumes_without_a_body(call: Caller) -> None:
    grant_id = call.apply(resource=OPEN)["grant_id"]
    call("gat_officer", "POST", f"/grants/{grant_id}/suspend", json={"comment": "核查"})
    # resuming gives no reason, so a client sends no body (as for catalog transitions)
    resumed = call("gat_officer", "POST", f"/grants/{grant_id}/resume")
    assert resumed.status_code == 200, resumed.text
    assert resumed.json()["state"] == "active"


def test_an_application_is_approved_without_a_body(call: Caller) -> None:
    made = call.apply()
    # every field of a decision is optional, so is the body
    approved = call("gat_officer", "POST", f"/applications/{made['id']}/approve")
    assert approved.status_code == 200, approved.text
    assert approved.json()["state"] == "approved"


# -- the access log ----------------------------------------------------------------------


def test_the_access_log_is_for_auditors(call: Caller, client: TestClient) -> None:
    # an unsigned call to the gateway is refused, and logged
    assert client.get("/gateway/v1/grants").status_code == 401
    log = client.get("/api/v1/audit/access-log", headers=auth(call.world, "auditor"))
    assert log.status_code == 200, log.text
    [entry] = log.json()["data"]
    assert (entry["status"], entry["outcome"], entry["path"]) == (
        401,
        "unsigned",
        "/gateway/v1/grants",
    )
    assert log.json()["count"] == 1
    verified = client.get("/api/v1/audit/access-log/verify", headers=auth(call.world, "auditor"))
    assert verified.json() == {"intact": True, "entries": 1, "first_bad": None, "reason": None}
    for user in ("viewer", "gat_officer", "wjw_officer"):
        refused = client.get("/api/v1/audit/access-log", headers=auth(call.world, user))
        assert_problem(refused, 403, "forbidden")
        refused = client.get("/api/v1/audit/access-log/verify", headers=auth(call.world, user))
        assert_problem(refused, 403, "forbidden")
    assert_problem(client.get("/api/v1/audit/access-log"), 401, "unauthenticated")


# -- malformed input ---------------------------------------------------------------------

GOOD_CONSUMER = {"code": "gat_case_app", "name": "案件管理系统", "department": "zj_gat"}
MALFORMED: list[tuple[str, str, dict[str, Any]]] = [
    (
        "POST",
        "/consumers",
        {"content": b"{not json", "headers": {"content-type": "application/json"}},
    ),
    (
        "POST",
        "/consumers",
        {"content": b"\xff\xfe\x00", "headers": {"content-type": "application/json"}},
    ),
    ("POST", "/consumers", {"json": []}),
    ("POST", "/consumers", {"json": None}),
    ("POST", "/consumers", {"json": "gat_case_app"}),
    ("POST", "/consumers", {"json": GOOD_CONSUMER | {"code": 5}}),
    ("POST", "/consumers", {"json": GOOD_CONSUMER | {"name": "   "}}),
    ("POST", "/consumers", {"json": GOOD_CONSUMER | {"name": "名" * 201}}),
    ("POST", "/consumers", {"json": GOOD_CONSUMER | {"department": ["zj_gat"]}}),
    ("POST", "/consumers", {"json": GOOD_CONSUMER | {"department": "x" * 33}}),
    ("POST", "/consumers", {"json": GOOD_CONSUMER | {"department": "no_such_dept"}}),
    ("POST", "/consumers", {"json": GOOD_CONSUMER | {"code": "abc\x00def"}}),
    ("POST", "/consumers", {"json": GOOD_CONSUMER | {"active": False}}),
    ("POST", "/consumers", {"json": {"code": "gat_case_app"}}),
    ("POST", "/consumers/%00/disable", {}),
    ("POST", "/consumers/no_such_app/credentials", {}),
    ("POST", f"/credentials/{'K' * 5000}/rotate", {}),
    ("POST", "/credentials/%25%00/revoke", {}),
    ("POST", "/applications", {"json": {}}),
    ("POST", "/applications", {"json": []}),
    (
        "POST",
        "/applications",
        {"content": b"[1,2", "headers": {"content-type": "application/json"}},
    ),
    ("POST", "/applications", {"json": body(fields=[])}),
    ("POST", "/applications", {"json": body(fields="id_card")}),
    ("POST", "/applications", {"json": body(fields=[1, 2])}),
    ("POST", "/applications", {"json": body(fields=[None])}),
    ("POST", "/applications", {"json": body(fields=["id_card"] * 501)}),
    ("POST", "/applications", {"json": body(fields=["x" * 100_000])}),
    ("POST", "/applications", {"json": body(clear_fields={"mobile": True})}),
    ("POST", "/applications", {"json": body(rights=["delete"])}),
    ("POST", "/applications", {"json": body(rights=[])}),
    ("POST", "/applications", {"json": body(purpose_code="!!")}),
    ("POST", "/applications", {"json": body(purpose="x")}),
    ("POST", "/applications", {"json": body(legal_basis=None)}),
    ("POST", "/applications", {"json": body(region="3301001234567")}),
    ("POST", "/applications", {"json": body(region=330100)}),
    ("POST", "/applications", {"json": body(region="999999")}),
    ("POST", "/applications", {"json": body(valid_from="2024-02-30")}),
    ("POST", "/applications", {"json": body(valid_until="yesterday")}),
    ("POST", "/applications", {"json": body(valid_until="10000-01-01")}),
    ("POST", "/applications", {"json": body(consumer=None)}),
    ("POST", "/applications", {"json": body(resource="x" * 65)}),
    ("POST", "/applications", {"json": body(grant_id=1)}),
    ("POST", "/applications/0/approve", {"json": {}}),
    ("POST", "/applications/-1/approve", {"json": {}}),
    ("POST", "/applications/abc/approve", {"json": {}}),
    ("POST", "/applications/99999999999999999999/approve", {"json": {}}),
    ("POST", "/applications/999999/approve", {"json": {}}),
    ("POST", "/applications/999999/reject", {"json": {"comment": "x"}}),
    ("POST", "/applications/999999/withdraw", {}),
    ("POST", "/applications/1/approve", {"json": {"requests_per_second": 0}}),
    ("POST", "/applications/1/approve", {"json": {"rows_per_day": 10**12}}),
    ("POST", "/applications/1/approve", {"json": {"requests_per_second": "fast"}}),
    ("POST", "/applications/1/approve", {"json": {"clear_fields": "mobile"}}),
    ("POST", "/applications/1/approve", {"json": {"comment": "长" * 2001}}),
    ("POST", "/applications/1/approve", {"json": {"state": "approved"}}),
    ("POST", "/applications/1/approve", {"json": [1]}),
    ("POST", "/applications/1/reject", {"json": {"comment": 7}}),
    ("GET", "/applications/0", {}),
    ("GET", "/applications/2147483648000/history", {}),
    ("GET", "/applications", {"params": {"limit": 0}}),
    ("GET", "/applications", {"params": {"limit": 100_000}}),
    ("GET", "/applications", {"params": {"offset": -1}}),
    ("GET", "/applications", {"params": {"offset": 10**12}}),
    ("GET", "/applications", {"params": {"inbox": "maybe"}}),
    ("GET", "/grants", {"params": {"limit": "many"}}),
    ("GET", "/grants/0", {}),
    ("GET", "/grants/999999/history", {}),
    ("POST", "/grants/abc/suspend", {"json": {"comment": "x"}}),
    ("POST", "/grants/0/suspend", {"json": {"comment": "x"}}),
    ("POST", "/grants/999999/suspend", {"json": {"comment": "x"}}),
    ("POST", "/grants/1/suspend", {"json": {"comment": ["x"]}}),
    ("POST", "/grants/1/suspend", {"json": {"comment": "长" * 2001}}),
    (
        "POST",
        "/grants/1/suspend",
        {"content": b"comment=x", "headers": {"content-type": "application/x-www-form-urlencoded"}},
    ),
]


def test_malformed_input_is_a_problem_never_a_500(call: Caller) -> None:
    call.apply(resource=OPEN)  # application 1 (approved) and grant 1 exist
    unclean: list[tuple[str, str, int, str]] = []
    for method, path, options in MALFORMED:
        response = call("admin", method, path, **dict(options))
        problem = response.json() if response.headers["content-type"].startswith(PROBLEM) else {}
        if not (400 <= response.status_code < 500 and problem.get("detail")):
            unclean.append((method, path[:80], response.status_code, response.text[:200]))
        else:
            assert problem["type"].startswith("/problems/")
            assert problem["status"] == response.status_code
    assert unclean == []
    # none of them changed anything
    assert call("admin", "GET", "/applications").json()["count"] == 1
    assert call("admin", "GET", "/grants/1").json()["state"] == "active"
    assert call("admin", "GET", "/consumers").json()["count"] == 2


def test_a_validity_starting_at_the_end_of_time_is_a_problem(call: Caller) -> None:
    # the default validity is valid_from + gateway.grant_days, past date.max here
    response = call("wjw_officer", "POST", "/applications", json=body(valid_from="9999-12-31"))
    assert_clean_error(response)
    assert_problem(response, 422, "validation")


def test_wjw_provides_too(call: Caller, m: Management) -> None:
    # the police ask the health commission: the roles swap
    m.publish(WJW)
    made = call.apply(user="gat_officer", consumer=POLICE, resource=WJW)
    inbox = call("wjw_officer", "GET", "/applications", params={"inbox": "true"}).json()
    assert [item["id"] for item in inbox["data"]] == [made["id"]]
    assert call("gat_officer", "GET", "/applications", params={"inbox": "true"}).json() == {
        "data": [],
        "count": 0,
    }
    path = f"/applications/{made['id']}/approve"
    assert_problem(call("gat_officer", "POST", path, json={}), 403, "forbidden")
    assert call("wjw_officer", "POST", path, json={}).json()["state"] == "approved"


# -- usage, the auditor's flags, and services ---------------------------------------------


def logged(
    m: Management,
    consumer: str,
    target: str,
    count: int = 1,
    *,
    ago: timedelta = timedelta(0),
    **extra: Any,
) -> None:
    """``count`` calls of ``consumer`` on ``target`` in the access log, a minute apart, the
    last ``ago`` before now, as the gateway writes them."""
    last = clock.now() - ago
    with m.db.transaction() as session:
        for number in range(count):
            at = last - timedelta(minutes=count - 1 - number)
            log_call(session, at, consumer, target, **{"access_key": "SZTESTKEY", **extra})


def totals(report: dict[str, Any], key: str = "by_consumer") -> dict[str, tuple[int, int, int]]:
    return {item["key"]: (item["calls"], item["refused"], item["rows"]) for item in report[key]}


@pytest.fixture
def noon() -> Iterator[None]:
    """Today at noon in Beijing: calls a few minutes apart fall on one day of the usage."""
    today = clock.now().replace(hour=4, minute=0, second=0, microsecond=0)
    clock.set_clock(lambda: today)
    yield
    clock.set_clock(None)


def test_usage_counts_the_calls_each_user_may_see(call: Caller, m: Management, noon: None) -> None:
    logged(m, HEALTH, CONDITIONAL, 3, purpose="救助-001")
    logged(m, HEALTH, CONDITIONAL, 1, status=403, outcome="no-grant", rows=0)
    logged(m, POLICE, "other_resource", 2)
    logged(m, POLICE, "other_resource", ago=timedelta(days=10), rows=100)
    report = call("auditor", "GET", "/usage")
    assert report.status_code == 200, report.text
    assert totals(report.json()) == {HEALTH: (4, 1, 15), POLICE: (3, 0, 110)}
    assert totals(report.json(), "by_target") == {
        CONDITIONAL: (4, 1, 15),
        "other_resource": (3, 0, 110),
    }
    purposes = {(row["consumer"], row["purpose"]): row["calls"] for row in report.json()["rows"]}
    assert purposes[(HEALTH, "救助-001")] == 3
    week = call("auditor", "GET", "/usage", params={"days": 7}).json()
    assert totals(week) == {HEALTH: (4, 1, 15), POLICE: (2, 0, 10)}
    only = call("auditor", "GET", "/usage", params={"consumer": POLICE, "days": 7}).json()
    assert totals(only) == {POLICE: (2, 0, 10)}
    assert totals(call("auditor", "GET", "/usage", params={"resource": CONDITIONAL}).json()) == {
        HEALTH: (4, 1, 15)
    }
    # the health commission sees its own system's calls, not the police's
    assert totals(call("wjw_officer", "GET", "/usage").json()) == {HEALTH: (4, 1, 15)}
    assert call("viewer", "GET", "/usage").json()["rows"] == []

    assert_problem(call(None, "GET", "/usage"), 401, "unauthenticated")
    for days in (0, 367, "many"):
        problem = assert_problem(
            call("auditor", "GET", "/usage", params={"days": days}), 422, "validation"
        )
        assert "days" in problem["detail"]


def test_the_flags_explain_themselves_to_those_who_may_see_them(
    client: TestClient, m: Management, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHUZHI_GATEWAY__FLAG_DISTINCT_LOOKUPS", "2")
    reset_settings()
    for number in range(3):
        logged(m, HEALTH, CONDITIONAL, 1, lookup=f"{number:032x}")
    logged(m, POLICE, CONDITIONAL, 2, lookup="f" * 32)  # one record, looked up twice

    def flags(user: str | None, **params: Any) -> Any:
        headers = auth(m.world, user) if user else {}
        return client.get("/api/v1/audit/access-log/flags", headers=headers, params=params)

    answer = flags("auditor")
    assert answer.status_code == 200, answer.text
    [flag] = answer.json()["data"]
    assert (flag["kind"], flag["consumer"], flag["calls"]) == ("distinct_lookups", HEALTH, 3)
    assert flag["title"] and "3 distinct records looked up in 3 calls" in flag["explanation"]
    assert flags("wjw_officer").json()["data"] == [flag]  # its own system
    assert flags("viewer").json()["data"] == []
    assert_problem(flags(None), 401, "unauthenticated")
    for days in (0, 93):
        assert_problem(flags("auditor", days=days), 422, "validation")


SERVICE = {
    "resource": CONDITIONAL,
    "base_url": "http://127.0.0.1:8080/api/",
    "methods": ["get", "POST"],
    "paths": ["/licences/*", "/echo"],
    "timeout_seconds": 5,
}


def test_a_service_is_registered_by_its_provider_and_seen_by_others(
    call: Caller, m: Management, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHUZHI_GATEWAY__SERVICE_HOSTS", '["127.0.0.1"]')
    reset_settings()
    assert call("wjw_officer", "GET", "/services").json() == {"data": [], "count": 0}
    made = call("gat_officer", "PUT", "/services", json=SERVICE)
    assert made.status_code == 200, made.text
    registered = made.json()
    assert registered | {"registered_at": None} == {
        "code": CONDITIONAL,
        "name": "浙江省人口基础信息",
        "provider": "zj_gat",
        "base_url": "http://127.0.0.1:8080/api",
        "methods": ["GET", "POST"],
        "paths": ["/licences/*", "/echo"],
        "timeout_seconds": 5,
        "max_response_kb": 1024,
        "openapi": None,
        "registered_by": "gat_officer",
        "registered_at": None,
    }
    one_change(m, "gateway_service.register", CONDITIONAL, "gat_officer")
    # consumers' departments find it, to apply for the right to call it
    assert call("wjw_officer", "GET", "/services").json() == {"data": [registered], "count": 1}
    assert call("wjw_officer", "GET", f"/services/{CONDITIONAL}").json() == registered

    changed = call("gat_officer", "PUT", "/services", json=SERVICE | {"timeout_seconds": 30})
    assert changed.status_code == 200, changed.text
    assert changed.json()["timeout_seconds"] == 30
    listed = call("admin", "GET", "/services").json()
    assert listed["count"] == 1 and listed["data"][0]["timeout_seconds"] == 30
    assert len(m.changes("gateway_service.register", CONDITIONAL)) == 2

    before = call("admin", "GET", f"/services/{CONDITIONAL}").json()
    refusals = [
        ("wjw_officer", SERVICE, 403, "forbidden"),
        ("gat_officer", SERVICE | {"base_url": "http://169.254.169.254/latest"}, 422, "validation"),
        ("gat_officer", SERVICE | {"methods": ["BREW"]}, 422, "validation"),
        ("gat_officer", SERVICE | {"paths": ["/../admin"]}, 422, "validation"),
        ("gat_officer", SERVICE | {"resource": "no_such_resource"}, 404, "not-found"),
        ("gat_officer", SERVICE | {"state": "live"}, 422, "validation"),
        (None, SERVICE, 401, "unauthenticated"),
    ]
    for user, doc, status, slug in refusals:
        assert_problem(call(user, "PUT", "/services", json=doc), status, slug)
    problem = assert_problem(
        call("gat_officer", "PUT", "/services", json=SERVICE | {"base_url": "http://10.0.0.1"}),
        422,
        "validation",
    )
    assert problem["field"] == "base_url" and "10.0.0.1" in problem["detail"]
    assert call("admin", "GET", f"/services/{CONDITIONAL}").json() == before
    assert len(m.changes("gateway_service.register")) == 2
    assert_problem(call("wjw_officer", "GET", f"/services/{OPEN}"), 404, "not-found")
    assert_problem(call("wjw_officer", "GET", "/services/no_such_resource"), 404, "not-found")
    assert_problem(call(None, "GET", "/services"), 401, "unauthenticated")
