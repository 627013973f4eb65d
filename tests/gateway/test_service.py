"""Managing the gateway through its use cases, on SQLite and PostgreSQL: consumers and
their credentials, applications and the decisions that make grants, masking modes, the
background jobs, and who sees what."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import date, datetime, timedelta

import pytest
from pydantic import ValidationError
from sqlalchemy import select, text, update

from shuzhi.core import clock, plugins
from shuzhi.core.errors import (
    Conflict,
    InvalidTransition,
    NotFound,
    PermissionDenied,
    ShuzhiError,
    ValidationFailed,
)
from shuzhi.core.settings import get_settings, reset_settings
from shuzhi.gateway import queries, service
from shuzhi.gateway.models import Application, Consumer, Nonce, Usage
from shuzhi.gateway.rules import NotShared
from shuzhi.gateway.schemas import ApplicationCreate, ConsumerCreate, Decision
from shuzhi.notify.models import Notification
from shuzhi.orgs.models import User
from tests.conftest import World
from tests.gateway.data import people_doc
from tests.gateway.management import (
    CONDITIONAL,
    FRIDAY,
    HEALTH,
    L4,
    NEXT_FRIDAY,
    NO_REGION,
    OPEN,
    POLICE,
    SECRET,
    WJW,
    Management,
    body,
    management,
)
from tests.lake.data import create_draft

Pin = Callable[[datetime], None]


@pytest.fixture
def m(world: World) -> Management:
    return management(world)


@pytest.fixture
def pin() -> Iterator[Pin]:
    """Pin the clock to a moment; the system clock comes back after the test."""

    def to(moment: datetime) -> None:
        clock.set_clock(lambda: moment)

    yield to
    clock.set_clock(None)


def problem_of(error: ShuzhiError) -> tuple[int, str]:
    return error.status, error.slug


# -- consumers ---------------------------------------------------------------------------


def test_a_department_admin_registers_a_consumer_of_its_department(m: Management) -> None:
    m.consumer("gat_case_app", "zj_gat", actor="gat_admin")
    with m.db.session() as session:
        made = queries.consumer(session, actor=m.actor("gat_admin"), code="gat_case_app")
        assert made.department.code == "zj_gat"
        assert made.active is True
        assert made.created_by == "gat_admin"
    [row] = m.changes("gateway_consumer.create", "gat_case_app")
    assert row.actor_name == "gat_admin"
    assert row.after is not None and row.after["code"] == "gat_case_app"


def test_a_department_admin_cannot_register_a_consumer_of_another_department(
    m: Management,
) -> None:
    with pytest.raises(PermissionDenied) as refused:
        m.consumer("wjw_case_app", "zj_wjw", actor="gat_admin")
    assert problem_of(refused.value) == (403, "forbidden")
    with m.db.session() as session:
        assert session.scalar(select(Consumer).where(Consumer.code == "wjw_case_app")) is None
    assert m.changes("gateway_consumer.create", "wjw_case_app") == []


def test_a_data_officer_cannot_register_consumers(m: Management) -> None:
    # data officers apply and decide; registering systems is the admins' and app owners'
    with pytest.raises(PermissionDenied):
        m.consumer("gat_other_app", "zj_gat", actor="gat_officer")


def test_a_consumer_code_is_unique(m: Management) -> None:
    with pytest.raises(Conflict) as refused:
        m.consumer(HEALTH, "zj_gat", actor="gat_admin")
    assert problem_of(refused.value) == (409, "conflict")
    assert refused.value.field == "code"


@pytest.mark.parametrize(
    "code", ["Zj_app", "1app", "ab", "zj-app", "zj app", "应用系统", "a" * 65, ""]
)
def test_a_consumer_code_is_checked_by_its_schema(code: str) -> None:
    with pytest.raises(ValidationError) as refused:
        ConsumerCreate(code=code, name="应用", department="zj_gat")
    assert refused.value.errors()[0]["loc"] == ("code",)


def test_a_consumer_code_at_the_edges_of_the_pattern_is_accepted() -> None:
    for code in ("abc", "a" * 64, "z9_"):
        assert ConsumerCreate(code=code, name="应用", department="zj_gat").code == code


def test_a_disabled_consumer_cannot_apply_and_the_change_is_logged(m: Management) -> None:
    with m.db.transaction() as session:
        service.set_consumer_active(session, actor=m.actor("admin"), code=HEALTH, active=False)
    with pytest.raises(Conflict, match="disabled"):
        m.apply(HEALTH, OPEN)
    [row] = m.changes("gateway_consumer.disable", HEALTH)
    assert (row.before, row.after) == ({"active": True}, {"active": False})
    with m.db.transaction() as session:
        service.set_consumer_active(session, actor=m.actor("admin"), code=HEALTH, active=True)
    assert m.application(m.apply(HEALTH, OPEN)).state == "approved"


def test_a_consumer_is_disabled_only_by_those_who_manage_its_department(m: Management) -> None:
    with m.db.transaction() as session, pytest.raises(PermissionDenied):
        # wjw_officer sees its department's system but does not manage consumers
        service.set_consumer_active(
            session, actor=m.actor("wjw_officer"), code=HEALTH, active=False
        )
    with m.db.transaction() as session, pytest.raises(NotFound):
        # gat_admin manages zj_gat's systems only: the health system is not even visible
        service.set_consumer_active(session, actor=m.actor("gat_admin"), code=HEALTH, active=False)


# -- credentials -------------------------------------------------------------------------


def test_an_issued_secret_is_not_stored_and_is_derived_from_the_platform_key(
    m: Management,
) -> None:
    key, secret = m.issue(HEALTH)
    assert key.startswith("SZ") and len(secret) >= 40
    with m.db.session() as session:
        rows = session.execute(text("SELECT * FROM gateway_credential")).mappings().all()
    assert [row["access_key"] for row in rows] == [key]
    for column, value in rows[0].items():
        assert value != secret, column
        assert secret not in str(value), column
    salt = m.credential(key).salt
    derived = service.derive_secret(get_settings().secret(), access_key=key, salt=salt)
    assert derived == secret
    # another platform key gives another secret: changing the key retires every secret
    assert service.derive_secret(b"another platform key", access_key=key, salt=salt) != secret


def test_issuing_is_logged_without_the_secret_or_its_salt(m: Management) -> None:
    key, secret = m.issue(HEALTH)
    [row] = m.changes("gateway_credential.create", key)
    assert row.object_repr == HEALTH
    logged = m.change_log_text()
    assert secret not in logged
    assert m.credential(key).salt not in logged


def test_two_credentials_have_different_secrets(m: Management) -> None:
    first = m.issue(HEALTH)
    second = m.issue(HEALTH)
    assert first[0] != second[0]
    assert first[1] != second[1]


def test_credentials_are_issued_only_by_those_who_manage_the_consumer(m: Management) -> None:
    with pytest.raises(PermissionDenied):
        m.issue(HEALTH, actor="wjw_officer")
    with pytest.raises(NotFound):
        m.issue(HEALTH, actor="gat_admin")
    m.user("wjw_apps", department="zj_wjw", role="app_owner")
    key, _secret = m.issue(HEALTH, actor="wjw_apps")
    assert m.credential(key).created_by == "wjw_apps"


def test_rotation_lets_the_old_key_work_for_the_overlap_and_issues_a_new_one(
    m: Management, pin: Pin, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHUZHI_GATEWAY__CREDENTIAL_OVERLAP_HOURS", "6")
    reset_settings()
    assert get_settings().gateway.credential_overlap_hours == 6
    old_key, old_secret = m.issue(HEALTH)
    pin(FRIDAY)
    with m.db.transaction() as session:
        new, new_secret = service.rotate_credential(
            session, actor=m.actor("system"), access_key=old_key
        )
        new_key = new.access_key
    assert new_key != old_key and new_secret != old_secret
    old = m.credential(old_key)
    assert old.expires_at == FRIDAY + timedelta(hours=6)
    assert old.revoked_at is None
    assert queries.credential_state(old) == "rotating"
    assert queries.credential_state(m.credential(new_key)) == "active"
    assert m.credential(new_key).consumer_id == old.consumer_id
    [rotated] = m.changes("gateway_credential.rotate", old_key)
    assert rotated.after == {"expires_at": (FRIDAY + timedelta(hours=6)).isoformat()}
    assert len(m.changes("gateway_credential.create", new_key)) == 1
    assert new_secret not in m.change_log_text()
    # once the overlap is over, the old key is expired and cannot be rotated again
    pin(FRIDAY + timedelta(hours=6, seconds=1))
    assert queries.credential_state(m.credential(old_key)) == "expired"
    with m.db.transaction() as session, pytest.raises(Conflict) as refused:
        service.rotate_credential(session, actor=m.actor("system"), access_key=old_key)
    assert refused.value.detail == f"credential {old_key} is expired"
    assert refused.value.detail.values["state_label"] == "已过期"  # what a Chinese page says


def test_rotating_twice_does_not_lengthen_the_overlap(m: Management, pin: Pin) -> None:
    key, _secret = m.issue(HEALTH)
    hours = get_settings().gateway.credential_overlap_hours
    pin(FRIDAY)
    with m.db.transaction() as session:
        service.rotate_credential(session, actor=m.actor("system"), access_key=key)
    pin(FRIDAY + timedelta(hours=1))
    with m.db.transaction() as session:
        service.rotate_credential(session, actor=m.actor("system"), access_key=key)
    assert m.credential(key).expires_at == FRIDAY + timedelta(hours=hours)


def test_a_revoked_credential_is_revoked_once_and_cannot_be_rotated(
    m: Management, pin: Pin
) -> None:
    key, _secret = m.issue(HEALTH)
    pin(FRIDAY)
    with m.db.transaction() as session:
        service.revoke_credential(session, actor=m.actor("system"), access_key=key)
    revoked = m.credential(key)
    assert revoked.revoked_at == FRIDAY
    assert queries.credential_state(revoked) == "revoked"
    [row] = m.changes("gateway_credential.revoke", key)
    assert row.actor_name == "system"
    with m.db.transaction() as session, pytest.raises(Conflict) as refused:
        service.rotate_credential(session, actor=m.actor("system"), access_key=key)
    assert problem_of(refused.value) == (409, "conflict")
    with m.db.transaction() as session, pytest.raises(Conflict):
        service.revoke_credential(session, actor=m.actor("system"), access_key=key)
    # the failed rotation issued nothing
    with m.db.session() as session:
        assert len(queries.credentials(session, consumer=revoked.consumer)) == 1


def test_an_unknown_access_key_is_not_found(m: Management) -> None:
    with m.db.transaction() as session, pytest.raises(NotFound):
        service.revoke_credential(session, actor=m.actor("admin"), access_key="SZNOSUCHKEY")


# -- applications: what each kind of resource allows ------------------------------------


def test_an_unconditional_resource_is_granted_at_once_by_system(m: Management) -> None:
    application_id = m.apply(HEALTH, OPEN)
    application = m.application(application_id)
    assert application.state == "approved"
    assert application.decided_by == "system"
    grant = m.granted(application_id)
    assert grant.state == "active"
    assert set(grant.fields) == set(body()["fields"])
    [approved] = m.history("gateway_application", application_id)
    assert (approved.transition, approved.actor_name) == ("approve", "system")
    assert [row.actor_name for row in m.changes("gateway_grant.create", grant.id)] == ["system"]
    assert len(m.changes("gateway_application.create", application_id)) == 1
    assert len(m.changes("gateway_application.approve", application_id)) == 1


def test_an_unconditional_resource_waits_when_a_personal_field_is_asked_in_clear(
    m: Management,
) -> None:
    application_id = m.apply(HEALTH, OPEN, clear_fields=["mobile"])
    application = m.application(application_id)
    assert application.state == "pending"
    assert application.decided_by is None
    assert m.grant_of(application_id) is None


def test_a_field_that_is_not_personal_asked_in_clear_does_not_hold_a_grant_back(
    m: Management,
) -> None:
    application_id = m.apply(HEALTH, OPEN, clear_fields=["gender", "age"])
    assert m.application(application_id).state == "approved"
    assert m.application(application_id).clear_fields == []


def test_a_conditional_resource_waits_five_working_days(m: Management, pin: Pin) -> None:
    assert get_settings().gateway.decision_days == 5
    pin(FRIDAY)
    application_id = m.apply(HEALTH, CONDITIONAL)
    application = m.application(application_id)
    assert application.state == "pending"
    assert application.submitted_at == FRIDAY
    # the weekend does not count: not Wednesday (5 calendar days) but the next Friday
    assert application.due_at == NEXT_FRIDAY
    assert application.due_at.weekday() == 4
    assert application.valid_from == FRIDAY.date()
    assert m.grant_of(application_id) is None


def test_the_decision_deadline_follows_the_setting(
    m: Management, pin: Pin, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHUZHI_GATEWAY__DECISION_DAYS", "1")
    reset_settings()
    pin(FRIDAY)
    application_id = m.apply(HEALTH, CONDITIONAL)
    assert m.application(application_id).due_at == FRIDAY + timedelta(days=3)  # Monday


def test_a_resource_not_shared_cannot_be_applied_for(m: Management) -> None:
    with pytest.raises(NotShared) as refused:
        m.apply(HEALTH, SECRET)
    assert problem_of(refused.value) == (403, "not-shared")
    with m.db.session() as session:
        assert session.scalar(select(Application.id)) is None


def test_an_l4_resource_refuses_reads_but_accepts_a_verification(m: Management) -> None:
    with pytest.raises(NotShared, match="L4"):
        m.apply(HEALTH, L4)
    with pytest.raises(NotShared):
        m.apply(HEALTH, L4, rights=["verify", "read"])
    application_id = m.apply(HEALTH, L4, rights=["verify"])
    assert m.application(application_id).state == "pending"
    assert m.application(application_id).rights == ["verify"]
    m.decide(application_id)
    grant = m.granted(application_id)
    assert grant.rights == ["verify"]
    # an L4 value never leaves the platform, whatever is approved
    assert set(grant.fields.values()) == {"hidden"}


def test_a_draft_resource_cannot_be_applied_for(m: Management) -> None:
    create_draft(m.db, people_doc(code="gat_draft"))
    draft = body(resource="gat_draft")
    with m.db.transaction() as session, pytest.raises(NotFound):
        # a draft is invisible outside its provider
        service.apply(session, actor=m.actor("wjw_officer"), data=ApplicationCreate(**draft))
    with m.db.transaction() as session, pytest.raises(Conflict, match="not published"):
        service.apply(session, actor=m.actor("system"), data=ApplicationCreate(**draft))


# -- applications: what is checked ------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"fields": ["id_card", "no_such_field"]}, "fields"),
        ({"fields": ["id_card"], "clear_fields": ["no_such_field"]}, "fields"),
        ({"fields": ["id_card", "gender"], "clear_fields": ["full_name"]}, "clear_fields"),
        ({"valid_until": "2000-01-01"}, "valid_until"),
        ({"valid_from": "2099-06-01", "valid_until": "2099-05-01"}, "valid_until"),
    ],
)
def test_an_application_with_bad_fields_or_dates_is_invalid(
    m: Management, overrides: dict, field: str
) -> None:
    m.publish(CONDITIONAL)
    with m.db.transaction() as session, pytest.raises(ValidationFailed) as refused:
        service.apply(
            session, actor=m.actor("wjw_officer"), data=ApplicationCreate(**body(**overrides))
        )
    assert problem_of(refused.value) == (422, "validation")
    assert refused.value.field == field


def test_a_validity_starting_at_the_end_of_time_is_invalid(m: Management) -> None:
    # the default validity is valid_from + gateway.grant_days, past date.max here
    with pytest.raises(ValidationFailed) as refused:
        m.apply(HEALTH, CONDITIONAL, valid_from="9999-12-31")
    assert refused.value.field in ("valid_from", "valid_until")


def test_a_region_outside_the_consumer_departments_region_is_invalid(m: Management) -> None:
    # the Hangzhou police system (330100) asks for Ningbo, and for the whole province
    for region in ("330200", "330000"):
        with pytest.raises(ValidationFailed, match="outside") as refused:
            m.apply(POLICE, CONDITIONAL, actor="gat_officer", region=region)
        assert refused.value.field == "region"
    # its own city is fine, and the default
    assert m.application(m.apply(POLICE, CONDITIONAL, actor="gat_officer")).region_code == (
        "330100"
    )


def test_a_narrower_region_needs_a_region_field_on_the_resource(m: Management) -> None:
    with pytest.raises(ValidationFailed, match="region field") as refused:
        m.apply(HEALTH, NO_REGION, region="330100")
    assert refused.value.field == "region"
    # the whole resource is fine; so is a narrower region where rows can be scoped
    assert m.application(m.apply(HEALTH, NO_REGION)).region_code == "330000"
    assert m.application(m.apply(HEALTH, CONDITIONAL, region="330100")).region_code == "330100"


def test_a_second_pending_application_for_the_same_resource_conflicts(m: Management) -> None:
    first = m.apply(HEALTH, CONDITIONAL)
    with pytest.raises(Conflict, match=str(first)) as refused:
        m.apply(HEALTH, CONDITIONAL, purpose="再次申请以办理其他事项")
    assert problem_of(refused.value) == (409, "conflict")
    # another consumer, or another resource, is not held back
    m.apply(POLICE, CONDITIONAL, actor="gat_officer")
    m.apply(HEALTH, WJW)
    # once decided, a new application may be made
    m.decide(first, approve=False, comment="材料不全")
    m.apply(HEALTH, CONDITIONAL)


def test_applying_needs_the_consumers_side(m: Management) -> None:
    m.publish(CONDITIONAL)
    # gat_officer is on the provider's side: the health system is not visible to it
    with pytest.raises(NotFound):
        m.apply(HEALTH, CONDITIONAL, actor="gat_officer")
    # the auditor sees every consumer but may not apply
    with pytest.raises(PermissionDenied):
        m.apply(HEALTH, CONDITIONAL, actor="auditor")


# -- decisions ---------------------------------------------------------------------------


def test_the_providers_officer_approves_and_the_decision_is_logged(m: Management) -> None:
    application_id = m.apply(HEALTH, CONDITIONAL)
    m.decide(application_id, actor="gat_officer", comment="同意", rows_per_day=500)
    application = m.application(application_id)
    assert application.state == "approved"
    assert (application.decided_by, application.reason) == ("gat_officer", "同意")
    assert application.decided_at is not None
    grant = m.granted(application_id)
    assert grant.state == "active"
    assert grant.rows_per_day == 500
    assert grant.requests_per_second == get_settings().gateway.requests_per_second
    assert (grant.region_code, grant.purpose_code) == ("330000", "330000-QT-0001")
    [approved] = m.changes("gateway_application.approve", application_id)
    assert approved.actor_name == "gat_officer"
    assert approved.before is not None and approved.before["state"] == "pending"
    assert approved.after == {"state": "approved", "comment": "同意"}
    [created] = m.changes("gateway_grant.create", grant.id)
    assert created.actor_name == "gat_officer"


def test_another_departments_officer_cannot_approve(m: Management) -> None:
    application_id = m.apply(HEALTH, CONDITIONAL)
    # wjw_officer sees the application (its department applied) but does not provide it
    with pytest.raises(PermissionDenied) as refused:
        m.decide(application_id, actor="wjw_officer")
    assert problem_of(refused.value) == (403, "forbidden")
    assert m.application(application_id).state == "pending"
    assert m.grant_of(application_id) is None
    assert m.changes("gateway_application.approve") == []


def test_a_rejection_needs_a_comment(m: Management) -> None:
    application_id = m.apply(HEALTH, CONDITIONAL)
    for comment in (None, "", "   "):
        with pytest.raises(ValidationFailed) as refused:
            m.decide(application_id, approve=False, comment=comment)
        assert refused.value.field == "comment"
    assert m.application(application_id).state == "pending"
    m.decide(application_id, approve=False, comment="用途与事项不符")
    rejected = m.application(application_id)
    assert (rejected.state, rejected.reason, rejected.decided_by) == (
        "rejected",
        "用途与事项不符",
        "gat_officer",
    )
    assert m.grant_of(application_id) is None
    with pytest.raises(InvalidTransition):
        m.decide(application_id)


def test_only_clear_fields_that_were_asked_can_be_approved(m: Management) -> None:
    application_id = m.apply(HEALTH, CONDITIONAL, clear_fields=["mobile"])
    with pytest.raises(ValidationFailed) as refused:
        m.decide(application_id, clear_fields=["mobile", "id_card"])
    assert refused.value.field == "clear_fields"
    assert m.application(application_id).state == "pending"
    m.decide(application_id, clear_fields=["mobile"])
    assert m.granted(application_id).fields["mobile"] == "clear"


def test_a_new_grant_revokes_the_previous_one(m: Management) -> None:
    first = m.apply(HEALTH, CONDITIONAL)
    m.decide(first)
    old = m.granted(first)
    second = m.apply(HEALTH, CONDITIONAL, fields=["id_card", "gender"])
    m.decide(second)
    new = m.granted(second)
    assert new.id != old.id
    assert m.grant(old.id).state == "revoked"
    assert m.grant(new.id).state == "active"
    [revoked] = m.history("gateway_grant", old.id)
    assert (revoked.transition, revoked.actor_name) == ("revoke", "system")
    assert revoked.comment == f"superseded by grant {new.id}"
    with m.db.session() as session:
        live = queries.live_grant(session, consumer_id=new.consumer_id, resource_id=new.resource_id)
        assert live is not None and live.id == new.id


def test_a_grant_of_another_consumer_is_not_superseded(m: Management) -> None:
    health = m.granted(m.apply(HEALTH, OPEN))
    police = m.granted(m.apply(POLICE, OPEN, actor="gat_officer"))
    assert m.grant(health.id).state == "active"
    assert m.grant(police.id).state == "active"


def test_the_consumers_side_withdraws_and_the_provider_cannot(m: Management) -> None:
    application_id = m.apply(HEALTH, CONDITIONAL)
    with m.db.transaction() as session, pytest.raises(PermissionDenied):
        service.withdraw(session, actor=m.actor("gat_officer"), application_id=application_id)
    with m.db.transaction() as session:
        service.withdraw(session, actor=m.actor("wjw_officer"), application_id=application_id)
    assert m.application(application_id).state == "withdrawn"
    [withdrawn] = m.history("gateway_application", application_id)
    assert (withdrawn.transition, withdrawn.actor_name) == ("withdraw", "wjw_officer")
    with m.db.transaction() as session, pytest.raises(InvalidTransition):
        service.withdraw(session, actor=m.actor("wjw_officer"), application_id=application_id)
    with pytest.raises(InvalidTransition):
        m.decide(application_id)


def test_a_state_is_never_assigned_directly(m: Management) -> None:
    application_id = m.apply(HEALTH, CONDITIONAL)
    with m.db.transaction() as session, pytest.raises(InvalidTransition):
        application = session.get(Application, application_id)
        assert application is not None
        application.state = "approved"
        session.flush()
    with m.db.transaction() as session, pytest.raises(InvalidTransition):
        session.execute(
            update(Application).where(Application.id == application_id).values(state="approved")
        )
    assert m.application(application_id).state == "pending"
    assert m.grant_of(application_id) is None


def test_grants_are_suspended_resumed_and_revoked_by_the_provider(m: Management) -> None:
    grant = m.granted(m.apply(HEALTH, OPEN))

    def change(name: str, actor: str = "gat_officer", comment: str | None = None) -> None:
        with m.db.transaction() as session:
            service.change_grant(
                session, actor=m.actor(actor), grant_id=grant.id, name=name, comment=comment
            )

    with pytest.raises(ValidationFailed):
        change("suspend")
    with pytest.raises(PermissionDenied):
        change("suspend", actor="wjw_officer", comment="暂停")
    with pytest.raises(ValidationFailed):
        change("delete", comment="?")
    change("suspend", comment="核查使用情况")
    assert m.grant(grant.id).state == "suspended"
    change("resume")
    assert m.grant(grant.id).state == "active"
    with pytest.raises(ValidationFailed):
        change("revoke")
    change("revoke", comment="事项已办结")
    assert m.grant(grant.id).state == "revoked"
    with pytest.raises(InvalidTransition):
        change("resume")
    assert [row.transition for row in m.history("gateway_grant", grant.id)] == [
        "suspend",
        "resume",
        "revoke",
    ]
    assert len(m.changes("gateway_grant.revoke", grant.id)) == 1


# -- masking modes -----------------------------------------------------------------------


def test_a_grant_masks_each_field_by_its_kind_and_the_decision(m: Management) -> None:
    application_id = m.apply(HEALTH, CONDITIONAL, clear_fields=["mobile"])
    m.decide(application_id)
    assert m.granted(application_id).fields == {
        "id_card": "token",  # L3 citizen IDs are tokens by default
        "full_name": "masked",
        "mobile": "clear",  # approved in clear
        "address": "masked",
        "region": "clear",  # not personal
        "gender": "clear",
        "age": "clear",
        "born": "clear",
    }


def test_a_provider_may_approve_fewer_clear_fields_than_asked(m: Management) -> None:
    application_id = m.apply(HEALTH, CONDITIONAL, clear_fields=["mobile", "full_name"])
    m.decide(application_id, clear_fields=["full_name"])
    fields = m.granted(application_id).fields
    assert (fields["full_name"], fields["mobile"]) == ("clear", "masked")
    application_id = m.apply(HEALTH, WJW, clear_fields=["mobile"])
    m.decide(application_id, actor="wjw_officer", clear_fields=[])
    assert m.granted(application_id).fields["mobile"] == "masked"


def test_the_masking_setting_changes_the_mode(
    m: Management, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHUZHI_GATEWAY__MASKING", '{"L3": {"name": "hidden"}}')
    reset_settings()
    assert get_settings().gateway.masking["L3"]["name"] == "hidden"
    fields = m.granted(m.apply(HEALTH, OPEN)).fields
    assert fields["full_name"] == "hidden"
    assert fields["gender"] == "clear"


# -- background jobs ---------------------------------------------------------------------


def escalation_notices(m: Management) -> dict[str, list[tuple[str, str]]]:
    with m.db.session() as session:
        rows = session.execute(
            select(User.username, Notification.link, Notification.kind)
            .join(User, User.id == Notification.user_id)
            .order_by(Notification.id)
        ).all()
    found: dict[str, list[tuple[str, str]]] = {}
    for username, link, kind in rows:
        found.setdefault(username, []).append((link, kind))
    return found


def test_an_overdue_application_escalates(m: Management, pin: Pin) -> None:
    pin(FRIDAY)
    application_id = m.apply(HEALTH, CONDITIONAL)
    decided = m.apply(HEALTH, WJW)
    m.decide(decided, actor="wjw_officer", approve=False, comment="不符合条件")
    pin(NEXT_FRIDAY - timedelta(minutes=1))
    assert service.escalate_overdue(m.db) == 0
    assert m.application(application_id).state == "pending"
    pin(NEXT_FRIDAY + timedelta(minutes=1))
    assert service.escalate_overdue(m.db) == 1
    assert m.application(application_id).state == "escalated"
    assert m.application(decided).state == "rejected"
    [escalated] = m.history("gateway_application", application_id)
    assert (escalated.transition, escalated.actor_name) == ("escalate", "system")
    assert escalated.comment == "no decision by 2024-06-14 10:00 UTC"
    # the platform's operators are told, once; the departments' officers are not
    notices = escalation_notices(m)
    link = f"/gateway/applications/{application_id}"
    assert notices == {"admin": [(link, "application_escalated")]}
    # escalated once only; and the provider may still decide
    assert service.escalate_overdue(m.db) == 0
    assert escalation_notices(m) == notices
    m.decide(application_id, actor="gat_officer")
    assert m.application(application_id).state == "approved"


def test_a_grant_past_its_validity_expires(m: Management, pin: Pin) -> None:
    pin(FRIDAY)
    ends_today = m.granted(m.apply(HEALTH, OPEN, valid_until=FRIDAY.date().isoformat()))
    lasts = m.granted(m.apply(POLICE, OPEN, actor="gat_officer"))
    assert service.expire_grants(m.db) == 0
    assert m.grant(ends_today.id).state == "active"
    pin(FRIDAY + timedelta(days=1))
    assert service.expire_grants(m.db) == 1
    assert m.grant(ends_today.id).state == "expired"
    assert m.grant(lasts.id).state == "active"
    [expired] = m.history("gateway_grant", ends_today.id)
    assert (expired.transition, expired.actor_name) == ("expire", "system")
    assert service.expire_grants(m.db) == 0


def test_a_suspended_grant_expires_too(m: Management, pin: Pin) -> None:
    pin(FRIDAY)
    grant = m.granted(m.apply(HEALTH, OPEN, valid_until=FRIDAY.date().isoformat()))
    with m.db.transaction() as session:
        service.change_grant(
            session, actor=m.actor("gat_officer"), grant_id=grant.id, name="suspend", comment="查"
        )
    pin(FRIDAY + timedelta(days=2))
    assert service.expire_grants(m.db) == 1
    assert m.grant(grant.id).state == "expired"


def test_pruning_forgets_old_nonces_and_per_second_counters(m: Management, pin: Pin) -> None:
    grant = m.granted(m.apply(HEALTH, OPEN))
    skew = get_settings().gateway.clock_skew_seconds
    pin(FRIDAY)
    old_second = int((FRIDAY - timedelta(hours=2)).timestamp())
    new_second = int((FRIDAY - timedelta(minutes=5)).timestamp())
    with m.db.transaction() as session:
        session.add_all(
            [
                Nonce(access_key="SZA", nonce="old", seen_at=FRIDAY - timedelta(seconds=3 * skew)),
                Nonce(access_key="SZA", nonce="new", seen_at=FRIDAY - timedelta(seconds=skew)),
                Usage(grant_id=grant.id, window=f"s:{old_second:012d}", requests=3, rows=9),
                Usage(grant_id=grant.id, window=f"s:{new_second:012d}", requests=1, rows=1),
                Usage(grant_id=grant.id, window="d:2024-05-01", requests=7, rows=70),
            ]
        )
    assert service.prune_counters(m.db) == 2
    with m.db.session() as session:
        assert list(session.scalars(select(Nonce.nonce))) == ["new"]
        assert sorted(session.scalars(select(Usage.window))) == [
            "d:2024-05-01",
            f"s:{new_second:012d}",
        ]
    assert service.prune_counters(m.db) == 0


def test_the_jobs_are_registered_by_name() -> None:
    jobs = {job.name: job.run for job in plugins.jobs()}
    assert jobs["gateway.escalate"] is service.escalate_overdue
    assert jobs["gateway.expire"] is service.expire_grants
    assert jobs["gateway.prune"] is service.prune_counters


# -- who sees what ----------------------------------------------------------------------


def test_an_application_is_seen_by_both_sides_and_oversight_only(m: Management) -> None:
    application_id = m.apply(HEALTH, CONDITIONAL)
    m.user("dsj_officer", department="zj_dsj", role="data_officer")
    with m.db.session() as session:
        for name in ("wjw_officer", "gat_officer", "gat_admin", "auditor", "admin"):
            seen = queries.application(session, actor=m.actor(name), application_id=application_id)
            assert seen.id == application_id, name
        for name in ("dsj_officer", "viewer"):
            with pytest.raises(NotFound):
                queries.application(session, actor=m.actor(name), application_id=application_id)
            assert queries.applications(session, actor=m.actor(name)) == ([], 0)
    # an unrelated officer cannot decide either, and learns nothing of it
    with pytest.raises(NotFound):
        m.decide(application_id, actor="dsj_officer")


def test_a_grant_is_seen_by_both_sides_and_oversight_only(m: Management) -> None:
    grant = m.granted(m.apply(HEALTH, OPEN))
    m.user("dsj_officer", department="zj_dsj", role="data_officer")
    with m.db.session() as session:
        for name in ("wjw_officer", "gat_officer", "auditor"):
            assert queries.grant(session, actor=m.actor(name), grant_id=grant.id).id == grant.id
        with pytest.raises(NotFound):
            queries.grant(session, actor=m.actor("dsj_officer"), grant_id=grant.id)
        assert queries.grants(session, actor=m.actor("dsj_officer")) == ([], 0)


def test_the_inbox_lists_what_awaits_the_actors_decision(m: Management) -> None:
    to_gat = m.apply(HEALTH, CONDITIONAL)  # the health system asks the police
    to_wjw = m.apply(POLICE, WJW, actor="gat_officer")  # the police ask the health commission
    answered = m.apply(HEALTH, OPEN)  # granted at once: nothing to decide

    def inbox(name: str) -> list[int]:
        with m.db.session() as session:
            found, total = queries.applications(session, actor=m.actor(name), awaiting_me=True)
            assert total == len(found)
            return [item.id for item in found]

    def seen(name: str) -> set[int]:
        with m.db.session() as session:
            return {item.id for item in queries.applications(session, actor=m.actor(name))[0]}

    assert inbox("gat_officer") == [to_gat]
    assert inbox("wjw_officer") == [to_wjw]
    assert inbox("auditor") == []
    assert seen("gat_officer") == {to_gat, to_wjw, answered}
    assert seen("wjw_officer") == {to_gat, to_wjw, answered}
    assert seen("auditor") == {to_gat, to_wjw, answered}
    m.decide(to_gat, approve=False, comment="不符合条件")
    assert inbox("gat_officer") == []


def test_an_escalated_application_stays_in_the_providers_inbox(m: Management, pin: Pin) -> None:
    pin(FRIDAY)
    application_id = m.apply(HEALTH, CONDITIONAL)
    pin(NEXT_FRIDAY + timedelta(days=1))
    service.escalate_overdue(m.db)
    with m.db.session() as session:
        found, _total = queries.applications(
            session, actor=m.actor("gat_officer"), awaiting_me=True
        )
        assert [item.id for item in found] == [application_id]
        public = queries.application_public(session, found[0])
        assert public.overdue is True and public.state == "escalated"


def test_the_application_listing_filters_by_state_consumer_and_resource(m: Management) -> None:
    pending = m.apply(HEALTH, CONDITIONAL)
    granted = m.apply(HEALTH, OPEN)
    police = m.apply(POLICE, OPEN, actor="gat_officer")
    with m.db.session() as session:
        admin = m.actor("admin")

        def ids(**filters: str) -> list[int]:
            return [item.id for item in queries.applications(session, actor=admin, **filters)[0]]

        assert ids(state="pending") == [pending]
        assert ids(consumer=HEALTH) == [granted, pending]
        assert ids(resource=OPEN) == [police, granted]
        assert ids(consumer=POLICE, resource=CONDITIONAL) == []


def test_a_grant_keeps_the_validity_asked_for(m: Management) -> None:
    application_id = m.apply(HEALTH, CONDITIONAL, valid_from="2099-01-01", valid_until="2099-12-31")
    m.decide(application_id)
    grant = m.granted(application_id)
    assert (grant.valid_from, grant.valid_until) == (date(2099, 1, 1), date(2099, 12, 31))
    assert not queries.in_force(grant, date.today())
    assert queries.in_force(grant, date(2099, 6, 1))


def test_the_decision_schema_bounds_the_limits() -> None:
    for bad in ({"requests_per_second": 0}, {"rows_per_day": 0}, {"unknown": 1}):
        with pytest.raises(ValidationError):
            Decision(**bad)
