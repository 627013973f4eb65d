"""Departments, users, logins, API tokens and grants, each audited."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import pytest
from argon2 import PasswordHasher
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from shuzhi.core import clock
from shuzhi.core.db import Database
from shuzhi.core.errors import (
    Conflict,
    NotFound,
    PermissionDenied,
    ShuzhiError,
    Unauthenticated,
    ValidationFailed,
)
from shuzhi.core.models import ChangeLog
from shuzhi.core.permissions import SYSTEM, Scope, allowed
from shuzhi.orgs import queries
from shuzhi.orgs import service as orgs
from shuzhi.orgs.models import ApiToken, Department, User
from shuzhi.orgs.schemas import DepartmentCreate, DepartmentUpdate, GrantCreate, UserCreate
from tests.conftest import PASSWORD, World, add_user

# 91350100M000100Y43 is a valid GB 32100 code (worked out in tests/core/test_standards.py)
CREDIT_CODE = "91350100M000100Y43"


def log_count(db: Database, action: str | None = None) -> int:
    with db.session() as session:
        stmt = select(func.count()).select_from(ChangeLog)
        if action:
            stmt = stmt.where(ChangeLog.action == action)
        return session.scalar(stmt) or 0


def department_id(db: Database, code: str) -> int:
    with db.session() as session:
        return queries.department(session, code).id


@contextmanager
def logged(db: Database, action: str, expected: int = 1) -> Iterator[None]:
    """Assert that the block adds ``expected`` change log rows, all with this action."""
    before, before_action = log_count(db), log_count(db, action)
    yield
    assert log_count(db, action) - before_action == expected
    assert log_count(db) - before == expected


def refused(db: Database, error: type[ShuzhiError], call: Callable[[Session], object]) -> str:
    """The call fails inside a transaction that then commits: it must have written nothing."""
    before = log_count(db)
    with db.transaction() as session, pytest.raises(error) as caught:
        call(session)
    assert log_count(db) == before
    return caught.value.detail


def new_user(
    session: Session,
    username: str = "newcomer",
    department: str = "zj_gat",
    password: str = PASSWORD,
) -> User:
    return orgs.create_user(
        session,
        actor=SYSTEM,
        data=UserCreate(
            username=username, display_name=username, password=password, department=department
        ),
    )


# departments ---------------------------------------------------------------------------


def test_create_department(world: World) -> None:
    with logged(world.database, "department.create"), world.database.transaction() as session:
        orgs.create_department(
            session,
            actor=world.actors["admin"],
            data=DepartmentCreate(
                code="wz_gaj",
                name="温州市公安局",
                region="330300",
                parent="zj_gat",
                systems=["digital_society"],
                credit_code=CREDIT_CODE.lower(),
            ),
        )

    with world.database.session() as session:
        dept = queries.department(session, "wz_gaj")
        public = queries.department_public(session, dept)
    assert (public.name, public.region, public.region_name, public.level, public.parent) == (
        "温州市公安局",
        "330300",
        "温州市",
        "city",
        "zj_gat",
    )
    assert public.systems == ["digital_society"]
    assert public.credit_code == CREDIT_CODE, "stored in the standard's upper case"


def test_duplicate_department_code_conflicts(world: World) -> None:
    detail = refused(
        world.database,
        Conflict,
        lambda session: orgs.create_department(
            session,
            actor=SYSTEM,
            data=DepartmentCreate(code="zj_gat", name="另一个公安厅", region="330000"),
        ),
    )

    assert "zj_gat" in detail
    with world.database.session() as session:
        assert queries.department(session, "zj_gat").name == "浙江省公安厅"


def test_duplicate_credit_code_conflicts(world: World) -> None:
    with world.database.transaction() as session:
        orgs.update_department(
            session, actor=SYSTEM, code="zj_gat", data=DepartmentUpdate(credit_code=CREDIT_CODE)
        )
    before = log_count(world.database)

    with pytest.raises(Conflict), world.database.transaction() as session:
        orgs.create_department(
            session,
            actor=SYSTEM,
            data=DepartmentCreate(
                code="zj_other", name="某某厅", region="330000", credit_code=CREDIT_CODE
            ),
        )

    assert log_count(world.database) == before
    with world.database.session() as session:
        assert session.scalar(select(Department).where(Department.code == "zj_other")) is None


def test_department_in_an_unknown_region_is_not_found(world: World) -> None:
    detail = refused(
        world.database,
        NotFound,
        lambda session: orgs.create_department(
            session,
            actor=SYSTEM,
            data=DepartmentCreate(code="xx_dept", name="某局", region="339999"),
        ),
    )

    assert "339999" in detail


def test_department_with_an_unknown_parent_is_not_found(world: World) -> None:
    detail = refused(
        world.database,
        NotFound,
        lambda session: orgs.create_department(
            session,
            actor=SYSTEM,
            data=DepartmentCreate(code="xx_dept", name="某局", region="330100", parent="no_such"),
        ),
    )

    assert "no_such" in detail


@pytest.mark.parametrize(
    "credit_code",
    [
        CREDIT_CODE[:17] + "4",  # wrong check character
        CREDIT_CODE[:17],  # too short
        "91350100I000100Y43",  # I is not in the alphabet
    ],
)
def test_department_with_a_bad_credit_code_is_refused(world: World, credit_code: str) -> None:
    refused(
        world.database,
        ValidationFailed,
        lambda session: orgs.create_department(
            session,
            actor=SYSTEM,
            data=DepartmentCreate(
                code="xx_dept", name="某局", region="330000", credit_code=credit_code
            ),
        ),
    )
    with world.database.session() as session:
        assert session.scalar(select(Department).where(Department.code == "xx_dept")) is None


@pytest.mark.parametrize("new_parent", ["hz_gaj", "zj_gat", "hz_xh"])
def test_a_department_cannot_sit_under_itself(world: World, new_parent: str) -> None:
    with world.database.transaction() as session:
        orgs.create_department(
            session,
            actor=SYSTEM,
            data=DepartmentCreate(
                code="hz_xh", name="西湖区公安分局", region="330106", parent="hz_gaj"
            ),
        )

    detail = refused(
        world.database,
        ValidationFailed,
        lambda session: orgs.update_department(
            session, actor=SYSTEM, code="zj_gat", data=DepartmentUpdate(parent=new_parent)
        ),
    )

    assert new_parent in detail
    with world.database.session() as session:
        assert queries.department(session, "zj_gat").parent_id is None


def test_department_update_logs_the_changes_only(world: World) -> None:
    with logged(world.database, "department.update"), world.database.transaction() as session:
        orgs.update_department(
            session, actor=SYSTEM, code="hz_gaj", data=DepartmentUpdate(parent=None)
        )
    with logged(world.database, "department.update", 0), world.database.transaction() as session:
        orgs.update_department(
            session, actor=SYSTEM, code="hz_gaj", data=DepartmentUpdate(name="杭州市公安局")
        )

    with world.database.session() as session:
        row = session.scalar(select(ChangeLog).where(ChangeLog.action == "department.update"))
    assert (row.before, row.after) == (
        {"parent_id": department_id(world.database, "zj_gat")},
        {"parent_id": None},
    )


def test_department_admin_may_not_create_departments(world: World) -> None:
    refused(
        world.database,
        PermissionDenied,
        lambda session: orgs.create_department(
            session,
            actor=world.actors["gat_admin"],
            data=DepartmentCreate(
                code="hz_xh", name="西湖区公安分局", region="330106", parent="hz_gaj"
            ),
        ),
    )


def test_moving_a_department_needs_a_grant_on_its_new_parent(world: World) -> None:
    """Moving hz_gaj under zj_wjw changes zj_wjw's subtree (its admins would read hz_gaj's
    drafts), so the mover must manage departments at the new parent too."""
    mover = add_user(
        world, "hz_ops", department="hz_gaj", role="platform_admin", grant_department="hz_gaj"
    )
    with world.database.session() as session:
        wjw = queries.department(session, "zj_wjw")
        assert not allowed(mover, "orgs.manage_departments", queries.department_scope(wjw))
    with pytest.raises(PermissionDenied), world.database.transaction() as session:
        orgs.update_department(
            session, actor=mover, code="hz_gaj", data=DepartmentUpdate(parent="zj_wjw")
        )
    with world.database.session() as session:
        assert queries.department(session, "hz_gaj").parent.code == "zj_gat"


def test_creating_a_department_checks_its_own_region(world: World) -> None:
    """A grant on the parent is not enough: an operator scoped to Hangzhou may not create a
    department in Ningbo (330200), even under a Hangzhou parent."""
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


# users and logins ----------------------------------------------------------------------


def test_password_is_stored_as_argon2id(world: World) -> None:
    with logged(world.database, "user.create"), world.database.transaction() as session:
        new_user(session)

    with world.database.session() as session:
        stored = queries.user(session, "newcomer").password_hash
    assert stored.startswith("$argon2id$")
    assert PASSWORD not in stored
    assert PasswordHasher().verify(stored, PASSWORD)


@pytest.mark.parametrize(
    "password",
    [
        "Sh0rt!",  # too short
        "Abcdef-12",  # one short of the default ten
        "onlylowercaseletters",  # one kind
        "lowercase1234567",  # two kinds
        "UPPER-CASE-ONLY!",  # two kinds
    ],
)
def test_weak_password_is_refused(world: World, password: str) -> None:
    refused(world.database, ValidationFailed, lambda session: new_user(session, password=password))

    with world.database.session() as session:
        assert session.scalar(select(User).where(User.username == "newcomer")) is None


def test_three_kinds_of_character_are_enough(world: World) -> None:
    with world.database.transaction() as session:
        new_user(session, password="lowercase-1234")

    with world.database.transaction() as session:
        assert orgs.authenticate(session, username="newcomer", password="lowercase-1234")


def test_duplicate_user_conflicts(world: World) -> None:
    detail = refused(
        world.database, Conflict, lambda session: new_user(session, username="gat_officer")
    )

    assert "gat_officer" in detail


def test_department_admin_creates_users_only_in_its_departments(world: World) -> None:
    gat_admin = world.actors["gat_admin"]
    with world.database.transaction() as session:
        orgs.create_user(
            session,
            actor=gat_admin,
            data=UserCreate(
                username="hz_clerk", display_name="clerk", password=PASSWORD, department="hz_gaj"
            ),
        )

    refused(
        world.database,
        PermissionDenied,
        lambda session: orgs.create_user(
            session,
            actor=gat_admin,
            data=UserCreate(
                username="wjw_clerk", display_name="clerk", password=PASSWORD, department="zj_wjw"
            ),
        ),
    )
    refused(
        world.database,
        PermissionDenied,
        lambda session: orgs.create_user(
            session,
            actor=gat_admin,
            data=UserCreate(username="nobody_s", display_name="clerk", password=PASSWORD),
        ),
    )


def test_authenticate_with_the_right_password(world: World) -> None:
    with world.database.transaction() as session:
        account = orgs.authenticate(session, username="gat_officer", password=PASSWORD)
        assert account.username == "gat_officer"

    with world.database.session() as session:
        assert queries.user(session, "gat_officer").last_login_at is not None


def test_failed_logins_all_say_the_same(world: World) -> None:
    with world.database.transaction() as session:
        orgs.set_active(session, actor=SYSTEM, username="viewer", active=False)

    messages = set()
    for username, password in (
        ("gat_officer", PASSWORD + "x"),
        ("gat_officer", ""),
        ("no_such_user", PASSWORD),
        ("viewer", PASSWORD),  # right password, deactivated account
    ):
        with (
            world.database.transaction() as session,
            pytest.raises(Unauthenticated) as caught,
        ):
            orgs.authenticate(session, username=username, password=password)
        messages.add(caught.value.detail)
    assert len(messages) == 1

    with world.database.session() as session:
        assert queries.user(session, "gat_officer").last_login_at is None


def test_deactivation_is_logged_once(world: World) -> None:
    with logged(world.database, "user.deactivate"), world.database.transaction() as session:
        orgs.set_active(session, actor=SYSTEM, username="viewer", active=False)
        orgs.set_active(session, actor=SYSTEM, username="viewer", active=False)
    with logged(world.database, "user.activate"), world.database.transaction() as session:
        orgs.set_active(session, actor=SYSTEM, username="viewer", active=True)


@pytest.mark.parametrize("operation", ["create_token", "set_password", "set_active"])
def test_a_department_admin_cannot_take_over_a_platform_admin_of_its_department(
    world: World, operation: str
) -> None:
    """gat_admin manages the users of zj_gat, but not a platform-wide administrator who sits
    in zj_gat: minting a token for them, setting their password or deactivating them would
    give gat_admin powers it may not grant."""
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


# tokens --------------------------------------------------------------------------------


def create_token(
    db: Database, username: str = "gat_officer", days: int | None = None
) -> tuple[int, str]:
    with db.transaction() as session:
        token, plaintext = orgs.create_token(
            session, actor=SYSTEM, username=username, name="script", days=days
        )
        return token.id, plaintext


def resolve(db: Database, plaintext: str, kind: str = "api") -> str:
    with db.session() as session:
        return orgs.resolve_token(session, plaintext=plaintext, kind=kind).username


def test_only_the_sha256_of_a_token_is_stored(world: World) -> None:
    with logged(world.database, "token.create"):
        token_id, plaintext = create_token(world.database)

    assert plaintext.startswith("shz_")
    assert len(plaintext) > 30
    with world.database.engine.connect() as connection:
        raw = [
            [str(value) for value in row]
            for row in connection.execute(text("SELECT * FROM api_token"))
        ]
    values = [value for row in raw for value in row]
    assert not any(plaintext in value for value in values)
    assert not any(plaintext[10:] in value for value in values), "nor the secret part"
    with world.database.session() as session:
        stored = session.get(ApiToken, token_id)
    assert stored.token_hash == hashlib.sha256(plaintext.encode()).hexdigest()
    assert plaintext.startswith(stored.prefix)


def test_tokens_resolve_to_their_users(world: World) -> None:
    for username, plaintext in world.tokens.items():
        assert resolve(world.database, plaintext) == username


@pytest.mark.parametrize("plaintext", ["shz_not-a-real-token", "not-even-prefixed", ""])
def test_unknown_tokens_are_refused(world: World, plaintext: str) -> None:
    with pytest.raises(Unauthenticated):
        resolve(world.database, plaintext)


def test_revoked_token_is_refused(world: World) -> None:
    token_id, plaintext = create_token(world.database)
    assert resolve(world.database, plaintext) == "gat_officer"

    with logged(world.database, "token.revoke"), world.database.transaction() as session:
        orgs.revoke_token(session, actor=world.actors["gat_officer"], token_id=token_id)

    with pytest.raises(Unauthenticated, match="revoked"):
        resolve(world.database, plaintext)
    assert resolve(world.database, world.tokens["gat_officer"]) == "gat_officer"


def test_others_may_not_revoke_a_token(world: World) -> None:
    token_id, plaintext = create_token(world.database)

    refused(
        world.database,
        NotFound,  # someone else's token is not theirs to see
        lambda session: orgs.revoke_token(
            session, actor=world.actors["wjw_officer"], token_id=token_id
        ),
    )
    assert resolve(world.database, plaintext) == "gat_officer"


def test_expired_token_is_refused(world: World) -> None:
    _id, plaintext = create_token(world.database, days=1)
    start = datetime.now(UTC)
    try:
        clock.set_clock(lambda: start + timedelta(hours=23))
        assert resolve(world.database, plaintext) == "gat_officer"
        clock.set_clock(lambda: start + timedelta(days=1, minutes=1))
        with pytest.raises(Unauthenticated, match="expired"):
            resolve(world.database, plaintext)
    finally:
        clock.set_clock(None)


def test_a_token_cannot_be_created_already_expired(world: World) -> None:
    """A lifetime must be positive whoever asks: a token of -3 days would be issued,
    audited and shown, yet never work."""
    with pytest.raises(ShuzhiError):
        create_token(world.database, "viewer", days=-3)


def test_default_token_lifetime_comes_from_settings(world: World) -> None:
    start = datetime.now(UTC)
    try:
        clock.set_clock(lambda: start + timedelta(days=89))
        assert resolve(world.database, world.tokens["admin"]) == "admin"
        clock.set_clock(lambda: start + timedelta(days=91))
        with pytest.raises(Unauthenticated):
            resolve(world.database, world.tokens["admin"])
    finally:
        clock.set_clock(None)


def test_a_deactivated_users_tokens_are_refused(world: World) -> None:
    with world.database.transaction() as session:
        orgs.set_active(session, actor=SYSTEM, username="viewer", active=False)

    with pytest.raises(Unauthenticated):
        resolve(world.database, world.tokens["viewer"])


def test_a_session_token_is_not_an_api_token(world: World) -> None:
    with world.database.transaction() as session:
        plaintext = orgs.start_session(session, account=queries.user(session, "viewer"))

    assert resolve(world.database, plaintext, kind="session") == "viewer"
    with pytest.raises(Unauthenticated):
        resolve(world.database, plaintext)
    with pytest.raises(Unauthenticated):
        resolve(world.database, world.tokens["viewer"], kind="session")


# grants and actors ---------------------------------------------------------------------


def grant(
    world: World,
    who: str,
    username: str,
    role: str,
    department: str | None = None,
    region: str | None = None,
) -> None:
    with world.database.transaction() as session:
        orgs.grant_role(
            session,
            actor=world.actors[who],
            username=username,
            data=GrantCreate(role=role, department=department, region=region),
        )


def test_department_admin_grants_within_its_departments(world: World) -> None:
    with world.database.transaction() as session:
        new_user(session)

    with logged(world.database, "user.grant", 2):
        grant(world, "gat_admin", "newcomer", "data_officer", "zj_gat")
        grant(world, "gat_admin", "newcomer", "data_officer", "hz_gaj")

    with world.database.session() as session:
        held = {
            (g.role, g.department)
            for g in queries.user_public(session, queries.user(session, "newcomer")).grants
        }
    assert held == {("data_officer", "zj_gat"), ("data_officer", "hz_gaj")}


def test_granting_the_same_twice_is_one_grant(world: World) -> None:
    with world.database.transaction() as session:
        new_user(session)

    with logged(world.database, "user.grant", 1):
        grant(world, "gat_admin", "newcomer", "data_officer", "zj_gat")
        grant(world, "gat_admin", "newcomer", "data_officer", "zj_gat")


def test_department_admin_cannot_grant_for_another_department(world: World) -> None:
    with world.database.transaction() as session:
        new_user(session)

    refused(
        world.database,
        PermissionDenied,
        lambda session: orgs.grant_role(
            session,
            actor=world.actors["gat_admin"],
            username="newcomer",
            data=GrantCreate(role="data_officer", department="zj_wjw"),
        ),
    )
    refused(
        world.database,
        PermissionDenied,
        lambda session: orgs.grant_role(
            session,
            actor=world.actors["gat_admin"],
            username="newcomer",
            data=GrantCreate(role="data_officer"),
        ),
    )


def test_department_admin_cannot_grant_more_than_it_holds(world: World) -> None:
    with world.database.transaction() as session:
        new_user(session)

    detail = refused(
        world.database,
        PermissionDenied,
        lambda session: orgs.grant_role(
            session,
            actor=world.actors["gat_admin"],
            username="newcomer",
            data=GrantCreate(role="platform_admin", department="zj_gat"),
        ),
    )

    assert "cannot grant" in detail
    with world.database.session() as session:
        assert queries.grants_of(session, queries.user(session, "newcomer").id) == []


def test_a_data_officer_cannot_grant_at_all(world: World) -> None:
    refused(
        world.database,
        NotFound,  # a user one does not manage is not there to grant to
        lambda session: orgs.grant_role(
            session,
            actor=world.actors["gat_officer"],
            username="viewer",
            data=GrantCreate(role="data_officer", department="zj_gat"),
        ),
    )


def test_unknown_role_user_or_department_is_not_found(world: World) -> None:
    for data, username in (
        (GrantCreate(role="emperor"), "viewer"),
        (GrantCreate(role="viewer"), "no_such_user"),
        (GrantCreate(role="viewer", department="no_such"), "viewer"),
        (GrantCreate(role="viewer", region="339999"), "viewer"),
    ):
        refused(
            world.database,
            NotFound,
            lambda session, data=data, username=username: orgs.grant_role(
                session, actor=SYSTEM, username=username, data=data
            ),
        )


def test_a_department_grant_covers_the_departments_under_it(world: World) -> None:
    with world.database.transaction() as session:
        orgs.create_department(
            session,
            actor=SYSTEM,
            data=DepartmentCreate(
                code="hz_xh", name="西湖区公安分局", region="330106", parent="hz_gaj"
            ),
        )
    ids = {
        code: department_id(world.database, code)
        for code in ("zj_gat", "hz_gaj", "hz_xh", "zj_wjw", "zj_dsj")
    }

    officer = world.actor("gat_officer")

    (officer_grant,) = officer.grants
    assert officer_grant.departments == {ids["zj_gat"], ids["hz_gaj"], ids["hz_xh"]}
    assert officer_grant.regions is None
    assert allowed(officer, "catalog.edit", Scope(department_id=ids["hz_xh"], region_code="330106"))
    assert not allowed(
        officer, "catalog.edit", Scope(department_id=ids["zj_wjw"], region_code="330000")
    )
    (wjw_grant,) = world.actor("wjw_officer").grants
    assert wjw_grant.departments == {ids["zj_wjw"]}


def test_a_region_grant_covers_the_region_subtree(world: World) -> None:
    with world.database.transaction() as session:
        new_user(session, department="zj_dsj")
    grant(world, "admin", "newcomer", "data_officer", region="330300")

    (region_grant,) = world.actor("newcomer").grants
    assert region_grant.departments is None
    # 温州市 and its 12 county-level divisions, 龙港市 among them
    assert len(region_grant.regions) == 13
    assert {"330300", "330383", "330302"} <= region_grant.regions
    assert "330102" not in region_grant.regions and "330000" not in region_grant.regions
    actor = world.actor("newcomer")
    assert allowed(actor, "catalog.edit", Scope(department_id=1, region_code="330383"))
    assert not allowed(actor, "catalog.edit", Scope(department_id=1, region_code="330102"))


def test_a_revoked_grant_no_longer_counts(world: World) -> None:
    gat = department_id(world.database, "zj_gat")
    assert allowed(world.actor("gat_officer"), "catalog.edit", Scope(department_id=gat))

    with logged(world.database, "user.revoke"), world.database.transaction() as session:
        orgs.revoke_role(
            session,
            actor=world.actors["gat_admin"],
            username="gat_officer",
            data=GrantCreate(role="data_officer", department="zj_gat"),
        )

    assert world.actor("gat_officer").grants == ()
    assert not allowed(world.actor("gat_officer"), "catalog.edit", Scope(department_id=gat))
    refused(
        world.database,
        NotFound,
        lambda session: orgs.revoke_role(
            session,
            actor=SYSTEM,
            username="gat_officer",
            data=GrantCreate(role="data_officer", department="zj_gat"),
        ),
    )


def test_revoking_outside_ones_departments_is_denied(world: World) -> None:
    refused(
        world.database,
        NotFound,
        lambda session: orgs.revoke_role(
            session,
            actor=world.actors["gat_admin"],
            username="wjw_officer",
            data=GrantCreate(role="data_officer", department="zj_wjw"),
        ),
    )
    assert world.actor("wjw_officer").grants != ()


def test_a_department_admin_cannot_revoke_a_platform_admin_grant(world: World) -> None:
    """Revoking reaches no further than granting: a department admin may not take away a
    role whose actions it does not hold."""
    add_user(world, "ops", department="zj_dsj", role="platform_admin", grant_department="zj_gat")
    with pytest.raises((PermissionDenied, NotFound)), world.database.transaction() as session:
        orgs.revoke_role(
            session,
            actor=world.actors["gat_admin"],
            username="ops",
            data=GrantCreate(role="platform_admin", department="zj_gat"),
        )
    assert [g.role for g in world.actor("ops").grants] == ["platform_admin"]


def test_a_grant_cannot_reach_beyond_the_grantors_region(world: World) -> None:
    """hz_admin administers hz_gaj only within the Hangzhou region subtree (330100). A grant
    for hz_gaj with no region would give the grantee hz_gaj's resources in every region,
    which hz_admin itself may not touch."""
    hz_admin = add_user(
        world,
        "hz_admin",
        department="hz_gaj",
        role="department_admin",
        grant_department="hz_gaj",
        grant_region="330100",
    )
    add_user(world, "helper", department="hz_gaj", role="viewer")
    hz_gaj = department_id(world.database, "hz_gaj")
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


def test_password_change_is_logged_without_the_password(world: World) -> None:
    with logged(world.database, "user.set_password"), world.database.transaction() as session:
        orgs.set_password(
            session, actor=world.actors["viewer"], username="viewer", password="Brand-New-Pass-9"
        )

    with world.database.transaction() as session:
        orgs.authenticate(session, username="viewer", password="Brand-New-Pass-9")
        with pytest.raises(Unauthenticated):
            orgs.authenticate(session, username="viewer", password=PASSWORD)
    refused(
        world.database,
        NotFound,
        lambda session: orgs.set_password(
            session,
            actor=world.actors["gat_officer"],
            username="viewer",
            password="Brand-New-Pass-10",
        ),
    )


def test_the_last_platform_admin_cannot_revoke_its_own_grant(world: World) -> None:
    """``set_active`` refuses to let a user deactivate itself; revoking one's own (last)
    platform_admin grant has the same effect, leaving the API and the cockpit with nobody
    who can manage users, and it goes through."""
    admin = world.actors["admin"]
    with pytest.raises(ShuzhiError), world.database.transaction() as session:
        orgs.revoke_role(
            session, actor=admin, username="admin", data=GrantCreate(role="platform_admin")
        )
    with world.database.session() as session:
        grants = queries.grants_of(session, queries.user(session, "admin").id)
        assert [g.role_code for g in grants] == ["platform_admin"]
