"""The workflow engine, driven by the real catalog lifecycle on real resources."""

from __future__ import annotations

import itertools
import uuid

import pytest
from sqlalchemy import func, select, update

from shuzhi.catalog import service as catalog
from shuzhi.catalog.models import Resource
from shuzhi.catalog.rules import LIFECYCLE
from shuzhi.catalog.schemas import ResourceCreate
from shuzhi.core import events, workflow
from shuzhi.core.context import request_id_var
from shuzhi.core.db import Database
from shuzhi.core.errors import (
    InvalidTransition,
    NotFound,
    PermissionDenied,
    ShuzhiError,
    ValidationFailed,
)
from shuzhi.core.models import ChangeLog, WorkflowTransition
from shuzhi.core.workflow import Machine, State, Transition
from tests.conftest import World, resource_doc
from tests.support.race import race

CODE = "gat_population"


def create(world: World, **overrides: object) -> str:
    doc = resource_doc(**overrides)
    with world.database.transaction() as session:
        catalog.create(session, actor=world.actors["gat_officer"], data=ResourceCreate(**doc))
    return str(doc["code"])


def fire(
    world: World, who: str, name: str, *, code: str = CODE, comment: str | None = None
) -> WorkflowTransition:
    with world.database.transaction() as session:
        return catalog.transition(
            session, actor=world.actors[who], code=code, name=name, comment=comment
        )


def state_of(db: Database, code: str = CODE) -> str:
    with db.session() as session:
        return session.scalar(select(Resource.state).where(Resource.code == code))


def counts(db: Database, code: str = CODE) -> tuple[int, int]:
    """(workflow transitions, change log rows) recorded for the resource."""
    with db.session() as session:
        transitions = session.scalar(
            select(func.count())
            .select_from(WorkflowTransition)
            .where(WorkflowTransition.object_id == code)
        )
        changes = session.scalar(
            select(func.count()).select_from(ChangeLog).where(ChangeLog.object_id == code)
        )
    return transitions, changes


def refused(world: World, who: str, name: str, error: type[ShuzhiError], **kw: object) -> str:
    """Fire a transition that must fail; assert nothing moved and nothing was recorded."""
    code = str(kw.get("code", CODE))
    state, before = state_of(world.database, code), counts(world.database, code)
    with pytest.raises(error) as caught:
        fire(world, who, name, **kw)  # type: ignore[arg-type]
    assert state_of(world.database, code) == state
    assert counts(world.database, code) == before
    return caught.value.detail


def test_a_new_resource_starts_in_the_initial_state(world: World) -> None:
    create(world)

    assert state_of(world.database) == LIFECYCLE.initial == "draft"
    with world.database.session() as session:
        assert workflow.history(session, object_type="catalog_resource", object_id=CODE) == []


def test_illegal_transition_is_refused_and_changes_nothing(world: World) -> None:
    create(world)

    detail = refused(world, "admin", "approve", InvalidTransition)
    assert "it is draft" in detail and "pending_review" in detail

    refused(world, "gat_officer", "recall", InvalidTransition)
    refused(world, "gat_officer", "withdraw", InvalidTransition, comment="stale")


def test_unknown_transition_is_not_found(world: World) -> None:
    create(world)

    refused(world, "admin", "publish", NotFound)


def test_transition_without_the_permission_is_denied(world: World) -> None:
    create(world)
    fire(world, "gat_officer", "submit")

    # a data officer may submit but not review its own resource
    detail = refused(world, "gat_officer", "approve", PermissionDenied)
    assert "catalog.review" in detail
    refused(world, "gat_admin", "reject", PermissionDenied, comment="no")
    assert state_of(world.database) == "pending_review"


def test_permission_is_checked_before_the_state(world: World) -> None:
    create(world)
    fire(world, "gat_officer", "submit")
    fire(world, "admin", "approve")

    # the viewer sees the published resource but may not move it, whatever its state
    refused(world, "viewer", "withdraw", PermissionDenied, comment="why")
    refused(world, "viewer", "approve", PermissionDenied)


def test_officer_of_another_department_is_denied(world: World) -> None:
    create(world)
    fire(world, "gat_officer", "submit")
    fire(world, "admin", "approve")

    refused(world, "wjw_officer", "withdraw", PermissionDenied, comment="not mine")


@pytest.mark.parametrize("comment", [None, "", "   \n"])
def test_reject_needs_a_comment(world: World, comment: str | None) -> None:
    create(world)
    fire(world, "gat_officer", "submit")

    detail = refused(world, "admin", "reject", ValidationFailed, comment=comment)
    assert "comment" in detail

    row = fire(world, "admin", "reject", comment="  字段说明不全  ")
    assert row.comment == "字段说明不全"
    assert state_of(world.database) == "rejected"
    with world.database.session() as session:
        log = session.scalar(select(ChangeLog).where(ChangeLog.action == "catalog_resource.reject"))
    assert log.after == {"state": "rejected", "comment": "字段说明不全"}


def test_submit_guard_needs_fields(world: World) -> None:
    create(world, fields=[])

    detail = refused(world, "gat_officer", "submit", InvalidTransition)
    assert "no fields" in detail


def test_submit_guard_needs_a_primary_key(world: World) -> None:
    create(world, fields=[{"name": "full_name", "type": "string"}])

    detail = refused(world, "gat_officer", "submit", InvalidTransition)
    assert "primary key" in detail


def test_available_lists_only_what_the_actor_may_fire_now(world: World) -> None:
    create(world)
    no_key = create(world, code="gat_no_key", fields=[{"name": "a"}])
    with world.database.session() as session:
        resource = session.scalar(select(Resource).where(Resource.code == CODE))
        keyless = session.scalar(select(Resource).where(Resource.code == no_key))
        scope = catalog.queries.scope_of(resource)

        def names(obj: Resource, who: str) -> set[str]:
            return {t.name for t in LIFECYCLE.available(obj, world.actors[who], scope)}

        assert names(resource, "gat_officer") == {"submit"}
        assert names(keyless, "gat_officer") == set(), "a failing guard hides the transition"
        assert names(resource, "viewer") == set()


def test_assigning_the_state_of_a_stored_resource_is_refused(world: World) -> None:
    create(world)

    with (
        pytest.raises(InvalidTransition, match="only through a transition"),
        world.database.transaction() as session,
    ):
        resource = session.scalar(select(Resource).where(Resource.code == CODE))
        resource.state = "published"
    assert state_of(world.database) == "draft"
    assert counts(world.database)[0] == 0


def test_a_bulk_update_cannot_assign_the_state(world: World) -> None:
    """An ORM UPDATE statement is held to the same rule as setting the attribute: it cannot
    publish a draft without a transition, its history and its change log."""
    create(world)
    try:
        with world.database.transaction() as session:
            session.execute(update(Resource).where(Resource.code == CODE).values(state="published"))
    except InvalidTransition:
        pass
    assert state_of(world.database) == "draft"


def test_a_new_object_may_take_only_the_initial_state() -> None:
    fresh = Resource(code="fresh_resource", state="draft")
    assert fresh.state == "draft"

    with pytest.raises(InvalidTransition):
        Resource(code="sneaky_resource", state="published")


def test_a_transition_writes_history_and_change_log_with_the_request(world: World) -> None:
    create(world)
    request_id = uuid.uuid4().hex
    token = request_id_var.set(request_id)
    try:
        fire(world, "gat_officer", "submit")
    finally:
        request_id_var.reset(token)

    with world.database.session() as session:
        (row,) = workflow.history(session, object_type="catalog_resource", object_id=CODE)
        (log,) = session.scalars(
            select(ChangeLog).where(ChangeLog.object_id == CODE, ChangeLog.action.like("%.submit"))
        )
    gat_officer = world.actors["gat_officer"]
    assert (row.machine, row.transition, row.from_state, row.to_state) == (
        LIFECYCLE.name,
        "submit",
        "draft",
        "pending_review",
    )
    assert (row.actor_id, row.actor_name, row.request_id) == (
        gat_officer.id,
        "gat_officer",
        request_id,
    )
    assert log.action == "catalog_resource.submit"
    assert (log.actor_id, log.actor_name, log.request_id) == (
        gat_officer.id,
        "gat_officer",
        request_id,
    )
    assert log.before == {"state": "draft"}
    assert log.after == {"state": "pending_review"}, "a comment that is absent is no change"


def test_history_and_change_log_roll_back_with_the_transition(world: World) -> None:
    create(world)
    before = counts(world.database)

    with (
        pytest.raises(RuntimeError, match="after the transition"),
        world.database.transaction() as session,
    ):
        catalog.transition(session, actor=world.actors["gat_officer"], code=CODE, name="submit")
        assert (
            session.scalar(
                select(func.count())
                .select_from(WorkflowTransition)
                .where(WorkflowTransition.object_id == CODE)
            )
            == 1
        )
        raise RuntimeError("something failed after the transition")

    assert state_of(world.database) == "draft"
    assert counts(world.database) == before


def test_a_rolled_back_transition_announces_nothing(world: World) -> None:
    """'workflow.transition' is announced once the transaction commits: listeners hear
    nothing of a move that a later failure (another resource of the same apply, say)
    rolls back."""
    heard: list[dict[str, object]] = []

    def listener(_name: str, payload: dict[str, object]) -> None:
        heard.append(payload)

    events.subscribe("workflow.transition", listener)
    try:
        create(world)
        with pytest.raises(RuntimeError), world.database.transaction() as session:
            catalog.transition(session, actor=world.actors["gat_officer"], code=CODE, name="submit")
            raise RuntimeError("a later step fails")
    finally:
        events.unsubscribe("workflow.transition", listener)
    assert heard == []


def test_history_follows_the_whole_lifecycle_in_order(world: World) -> None:
    create(world)
    other = create(world, code="gat_household")
    steps = [
        ("gat_officer", "submit", None),
        ("admin", "reject", "主键说明不清"),
        ("gat_officer", "submit", None),
        ("gat_officer", "recall", None),
        ("gat_officer", "submit", None),
        ("admin", "approve", None),
        ("gat_officer", "withdraw", "数据源停用"),
        ("gat_officer", "revise", None),
    ]
    for who, name, comment in steps:
        fire(world, who, name, comment=comment)
    fire(world, "gat_officer", "submit", code=other)

    with world.database.session() as session:
        history = workflow.history(session, object_type="catalog_resource", object_id=CODE)
        others = workflow.history(session, object_type="catalog_resource", object_id=other)

    assert [(h.actor_name, h.transition, h.comment) for h in history] == steps
    assert history[0].from_state == LIFECYCLE.initial
    for earlier, later in itertools.pairwise(history):
        assert later.from_state == earlier.to_state
        assert later.at >= earlier.at
    for entry in history:
        assert entry.to_state == LIFECYCLE.transitions[entry.transition].target
        assert entry.from_state in LIFECYCLE.transitions[entry.transition].sources
    assert history[-1].to_state == state_of(world.database) == "draft"
    assert [h.transition for h in others] == ["submit"]
    assert counts(world.database) == (len(steps), len(steps) + 1), "one create, one per step"


def test_a_withdrawn_resource_can_only_be_revised(world: World) -> None:
    create(world)
    for who, name, comment in (
        ("gat_officer", "submit", None),
        ("admin", "approve", None),
        ("admin", "withdraw", "过期"),
    ):
        fire(world, who, name, comment=comment)

    assert state_of(world.database) == "withdrawn"
    for name in ("submit", "approve", "reject", "recall", "withdraw"):
        refused(world, "admin", name, InvalidTransition, comment="x")
    fire(world, "admin", "revise")
    assert state_of(world.database) == "draft"


@pytest.mark.postgres
def test_two_reviewers_cannot_both_move_the_same_submission(postgres_world: World) -> None:
    """A transition holds the row it moves until it commits. On PostgreSQL, a reject that
    read 'pending_review' while an approve was in flight must fail once the approve
    commits, not record a second move out of 'pending_review'. (SQLite has one writer at a
    time, so the race cannot happen there.)"""
    world = postgres_world
    admin = world.actors["admin"]
    create(world)
    fire(world, "gat_officer", "submit")

    outcome = race(
        world.database,
        lambda s: catalog.transition(s, actor=admin, code=CODE, name="approve"),
        lambda s: catalog.transition(s, actor=admin, code=CODE, name="reject", comment="x"),
    )

    with world.database.session() as session:
        moves = [
            (h.transition, h.from_state, h.to_state)
            for h in workflow.history(session, object_type="catalog_resource", object_id=CODE)
        ]
    assert isinstance(outcome, ShuzhiError), f"both went through: {moves}"
    for before, after in itertools.pairwise(moves):
        assert before[2] == after[1], f"the history does not chain: {moves}"


def test_a_machine_naming_unknown_states_is_refused() -> None:
    states = [State("open", "开", "open"), State("closed", "关", "closed", final=True)]

    with pytest.raises(ValueError, match="unknown states"):
        Machine(
            "door",
            states=states,
            initial="open",
            transitions=[
                Transition("lock", frozenset({"closed"}), "locked", "door.lock", "锁", "lock")
            ],
        )
    with pytest.raises(ValueError, match="unknown initial state"):
        Machine("door", states=states, initial="ajar", transitions=[])
