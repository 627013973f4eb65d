"""The change log: actor, request id, the keys that changed, and never a secret."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from shuzhi.core import audit
from shuzhi.core.context import request_id_var
from shuzhi.core.db import Database
from shuzhi.core.errors import PermissionDenied, Unauthenticated
from shuzhi.core.models import ChangeLog
from shuzhi.core.permissions import ANONYMOUS, SYSTEM
from shuzhi.orgs import service as orgs
from shuzhi.orgs.models import ApiToken, User
from shuzhi.orgs.schemas import DepartmentUpdate, UserCreate
from tests.conftest import PASSWORD, World


def rows(db: Database, **where: str) -> list[ChangeLog]:
    with db.session() as session:
        stmt = select(ChangeLog).order_by(ChangeLog.id)
        for key, value in where.items():
            stmt = stmt.where(getattr(ChangeLog, key) == value)
        return list(session.scalars(stmt))


def test_a_change_records_actor_request_and_only_the_changed_keys(world: World) -> None:
    admin = world.actors["admin"]
    request_id = uuid.uuid4().hex
    token = request_id_var.set(request_id)
    try:
        with world.database.transaction() as session:
            orgs.update_department(
                session,
                actor=admin,
                code="zj_wjw",
                data=DepartmentUpdate(name="浙江省卫生健康委"),
            )
    finally:
        request_id_var.reset(token)

    (row,) = rows(world.database, action="department.update")
    assert (row.actor_id, row.actor_name, row.request_id) == (admin.id, "admin", request_id)
    assert (row.object_type, row.object_id, row.object_repr) == (
        "department",
        "zj_wjw",
        "浙江省卫生健康委",
    )
    assert row.before == {"name": "浙江省卫生健康委员会"}
    assert row.after == {"name": "浙江省卫生健康委"}


def test_outside_a_request_the_request_id_is_empty(world: World) -> None:
    assert request_id_var.get() is None
    with world.database.transaction() as session:
        orgs.set_active(session, actor=world.actors["admin"], username="viewer", active=False)

    (row,) = rows(world.database, action="user.deactivate")
    assert row.request_id is None
    assert (row.before, row.after) == ({"active": True}, {"active": False})


def test_record_keeps_only_changed_keys_and_makes_values_plain(db: Database) -> None:
    when = datetime(2024, 5, 1, 8, 30, tzinfo=UTC)
    with db.transaction() as session:
        audit.record(
            session,
            actor=SYSTEM,
            action="thing.update",
            object_type="thing",
            object_id=7,
            before={"same": 1, "gone": "x", "at": None, "tags": ["a"]},
            after={"same": 1, "new": "y", "at": when, "tags": ("a", "b")},
        )

    (row,) = rows(db, action="thing.update")
    assert row.object_id == "7"
    assert row.before == {"at": None, "gone": "x", "new": None, "tags": ["a"]}
    assert row.after == {"at": when.isoformat(), "gone": None, "new": "y", "tags": ["a", "b"]}
    assert row.actor_id is None and row.actor_name == "system"


def test_record_with_only_one_side_keeps_it_whole(db: Database) -> None:
    with db.transaction() as session:
        audit.record(
            session,
            actor=SYSTEM,
            action="thing.create",
            object_type="thing",
            object_id="1",
            after={"a": 1, "b": None},
        )
        audit.record(
            session,
            actor=SYSTEM,
            action="thing.delete",
            object_type="thing",
            object_id="1",
            before={"a": 1},
        )

    (created,) = rows(db, action="thing.create")
    (deleted,) = rows(db, action="thing.delete")
    assert (created.before, created.after) == (None, {"a": 1, "b": None})
    assert (deleted.before, deleted.after) == ({"a": 1}, None)


def test_secret_columns_never_reach_the_change_log(world: World) -> None:
    admin = world.actors["admin"]
    with world.database.transaction() as session:
        orgs.create_user(
            session,
            actor=admin,
            data=UserCreate(
                username="newcomer", display_name="新人", password=PASSWORD, department="zj_gat"
            ),
        )
        orgs.set_password(session, actor=admin, username="newcomer", password="Another-Secret-77")
        _token, plaintext = orgs.create_token(
            session, actor=admin, username="newcomer", name="script"
        )
        orgs.revoke_token(session, actor=admin, token_id=_token.id)
    with world.database.session() as session:
        hashes = list(session.scalars(select(User.password_hash)))
        hashes += list(session.scalars(select(ApiToken.token_hash)))
        snapshot = audit.snapshot(session.scalar(select(User).where(User.username == "newcomer")))

    assert "password_hash" not in snapshot and "username" in snapshot
    everything = rows(world.database)
    assert {r.action for r in everything} >= {
        "user.create",
        "user.set_password",
        "token.create",
        "token.revoke",
    }
    text = json.dumps([[r.before, r.after, r.object_repr] for r in everything], ensure_ascii=False)
    for secret in (
        "password_hash",
        "token_hash",
        PASSWORD,
        "Another-Secret-77",
        plaintext,
        *world.tokens.values(),
        *hashes,
    ):
        assert secret not in text
    (created,) = rows(world.database, action="user.create", object_id="newcomer")
    assert created.after["username"] == "newcomer"
    assert created.after["department_id"] is not None


def test_auditor_reads_the_change_log_newest_first(world: World) -> None:
    with world.database.transaction() as session:
        for name in ("一", "二", "三"):
            orgs.update_department(
                session,
                actor=world.actors["admin"],
                code="zj_wjw",
                data=DepartmentUpdate(name=f"卫健委{name}"),
            )

    with world.database.session() as session:
        found, total = audit.changes(
            session,
            actor=world.actors["auditor"],
            object_type="department",
            object_id="zj_wjw",
            action="department.update",
        )
        everything, all_total = audit.changes(session, actor=world.actors["auditor"], limit=1000)
        page, _ = audit.changes(
            session, actor=world.actors["auditor"], limit=2, offset=1, action="department.update"
        )
        by_admin, _ = audit.changes(session, actor=world.actors["auditor"], actor_name="admin")

    assert total == 3
    assert [row.after["name"] for row in found] == ["卫健委三", "卫健委二", "卫健委一"]
    assert [row.after["name"] for row in page] == ["卫健委二", "卫健委一"]
    assert all_total == len(everything) == len(rows(world.database))
    assert [row.id for row in everything] == sorted((row.id for row in everything), reverse=True)
    assert by_admin and {row.actor_name for row in by_admin} == {"admin"}


@pytest.mark.parametrize("who", ["gat_admin", "gat_officer", "viewer"])
def test_the_change_log_needs_unrestricted_audit_read(world: World, who: str) -> None:
    # gat_admin holds audit.read, but only over its own departments
    with world.database.session() as session, pytest.raises(PermissionDenied):
        audit.changes(session, actor=world.actors[who])


def test_anonymous_cannot_read_the_change_log(world: World) -> None:
    with world.database.session() as session, pytest.raises(Unauthenticated):
        audit.changes(session, actor=ANONYMOUS)


def test_a_failed_change_leaves_no_change_log(world: World) -> None:
    with world.database.session() as session:
        before = session.scalar(select(func.count()).select_from(ChangeLog))

    with pytest.raises(RuntimeError), world.database.transaction() as session:
        orgs.update_department(
            session,
            actor=world.actors["admin"],
            code="zj_wjw",
            data=DepartmentUpdate(name="不会保存"),
        )
        raise RuntimeError("the request failed later")

    with world.database.session() as session:
        assert session.scalar(select(func.count()).select_from(ChangeLog)) == before
