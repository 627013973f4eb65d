"""One state machine engine for every item that moves through states.

States and transitions are declared as data: FROM states -> TO state, the permission
action that may fire it, whether a comment is required, and guards. Nothing assigns a
state directly: a guarded model refuses any change of its state column made outside
``Machine.fire``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy import event, inspect, select
from sqlalchemy.orm import ORMExecuteState, Session

from shuzhi.core import audit, clock, events
from shuzhi.core.calendar import WorkCalendar
from shuzhi.core.context import current_request_id
from shuzhi.core.enums import Light
from shuzhi.core.errors import InvalidTransition, Message, NotFound, ValidationFailed
from shuzhi.core.models import WorkflowTransition
from shuzhi.core.permissions import Actor, Scope, allowed, require


@dataclass(frozen=True)
class Attempt:
    """Who is firing a transition and with what, for guards that depend on it."""

    actor: Actor
    comment: str | None = None
    attachments: tuple[int, ...] = ()


Guard = Callable[[Any, Attempt], str | None]
"""Returns why the transition may not happen now (the rule that forbids it), or None."""

_firing: ContextVar[bool] = ContextVar("shuzhi_workflow_firing", default=False)


@dataclass(frozen=True)
class State:
    code: str
    zh: str
    en: str
    final: bool = False

    def label(self, locale: str = "zh-CN") -> str:
        return self.zh if locale.startswith("zh") else self.en


@dataclass(frozen=True)
class Transition:
    name: str
    sources: frozenset[str]
    target: str
    action: str
    zh: str
    en: str
    needs_comment: bool = False
    guards: tuple[Guard, ...] = field(default=())

    def label(self, locale: str = "zh-CN") -> str:
        return self.zh if locale.startswith("zh") else self.en


class Machine:
    def __init__(
        self,
        name: str,
        *,
        states: Iterable[State],
        initial: str,
        transitions: Iterable[Transition],
        state_attr: str = "state",
    ) -> None:
        self.name = name
        self.states = {state.code: state for state in states}
        self.initial = initial
        self.transitions = {transition.name: transition for transition in transitions}
        self.state_attr = state_attr
        for transition in self.transitions.values():
            unknown = (transition.sources | {transition.target}) - set(self.states)
            if unknown:
                raise ValueError(f"{name}.{transition.name} names unknown states {unknown}")
        if initial not in self.states:
            raise ValueError(f"{name}: unknown initial state {initial}")

    def state_label(self, code: str) -> str:
        """A state's Chinese label (the code itself for a state this machine lacks), for a
        refusal that names it."""
        known = self.states.get(code)
        return known.zh if known else code

    def guard(self, model: type) -> type:
        """Refuse assignments to the model's state column that do not come from ``fire``."""
        attr = getattr(model, self.state_attr)

        @event.listens_for(attr, "set", propagate=True)
        def _check(target: Any, value: Any, oldvalue: Any, _initiator: Any) -> None:
            if _firing.get():
                return
            state = getattr(target, "_sa_instance_state", None)
            brand_new = state is None or (state.transient or state.pending)
            if brand_new and value == self.initial:
                return
            raise InvalidTransition(
                Message(
                    "{name}: state may change only through a transition, not by assignment",
                    name=self.name,
                )
            )

        mapper = inspect(model)
        state_attr = self.state_attr

        @event.listens_for(Session, "do_orm_execute")
        def _no_bulk_assignment(execution: ORMExecuteState) -> None:
            if not execution.is_update or _firing.get() or mapper not in execution.all_mappers:
                return
            # the SET clause binds a parameter named after the column; WHERE ones get suffixes
            if state_attr in execution.statement.compile().params:
                raise InvalidTransition(
                    Message(
                        "{name}: state may change only through a transition, not by "
                        "an UPDATE statement",
                        name=self.name,
                    )
                )

        return model

    def state_of(self, obj: Any) -> State:
        return self.states[getattr(obj, self.state_attr)]

    def available(self, obj: Any, actor: Actor, scope: Scope) -> list[Transition]:
        """The transitions this actor could fire on obj now (for buttons and hints)."""
        current = getattr(obj, self.state_attr)
        return [
            transition
            for transition in self.transitions.values()
            if current in transition.sources
            and allowed(actor, transition.action, scope)
            and not any(guard(obj, Attempt(actor)) for guard in transition.guards)
        ]

    def blocked(self, obj: Any, actor: Actor, scope: Scope) -> list[tuple[Transition, str]]:
        """The transitions this actor may fire from the current state that a guard forbids
        now, each with the rule (so a page can say why, not just hide the button)."""
        current = getattr(obj, self.state_attr)
        found = []
        for transition in self.transitions.values():
            if current not in transition.sources or not allowed(actor, transition.action, scope):
                continue
            reason = next(
                (text for guard in transition.guards if (text := guard(obj, Attempt(actor)))),
                None,
            )
            if reason:
                found.append((transition, reason))
        return found

    def fire(
        self,
        session: Session,
        obj: Any,
        name: str,
        *,
        actor: Actor,
        scope: Scope,
        object_id: str,
        comment: str | None = None,
        attachments: Iterable[int] = (),
    ) -> WorkflowTransition:
        transition = self.transitions.get(name)
        if transition is None:
            raise NotFound(
                Message("{name} has no transition {name2!r}", name=self.name, name2=name)
            )
        # Lock the row and read its state afresh: a concurrent transition either finished
        # (and this one sees its result) or waits for this one (PostgreSQL; SQLite has one
        # writer at a time anyway).
        session.refresh(obj, attribute_names=[self.state_attr], with_for_update=True)
        current = getattr(obj, self.state_attr)
        what = Message("{workflow} {object}", workflow=Message(self.name), object=object_id)
        require(actor, transition.action, scope, what=what)
        if current not in transition.sources:
            sources = sorted(transition.sources)
            raise InvalidTransition(
                Message(
                    "cannot {transition} {what}: it is {state}, and {transition} needs {sources}",
                    transition=name,
                    what=what,
                    state=current,
                    sources=" or ".join(sources),
                    # the labels a translation says them by
                    transition_label=transition.zh,
                    state_label=self.state_label(current),
                    sources_label="”或“".join(self.state_label(code) for code in sources),
                )
            )
        comment = (comment or "").strip() or None
        if transition.needs_comment and not comment:
            raise ValidationFailed(
                Message(
                    "{transition} needs a comment giving the reason",
                    transition=name,
                    transition_label=transition.zh,
                ),
                field="comment",
            )
        attempt = Attempt(actor, comment, tuple(attachments))
        for guard in transition.guards:
            reason = guard(obj, attempt)
            if reason:
                raise InvalidTransition(
                    Message(
                        "cannot {transition} {what}: {reason}",
                        transition=name,
                        what=what,
                        reason=reason,
                        transition_label=transition.zh,
                    )
                )
        token = _firing.set(True)
        try:
            setattr(obj, self.state_attr, transition.target)
        finally:
            _firing.reset(token)
        object_type = obj.__tablename__
        row = WorkflowTransition(
            machine=self.name,
            object_type=object_type,
            object_id=object_id,
            transition=name,
            from_state=current,
            to_state=transition.target,
            actor_id=actor.id,
            actor_name=actor.name,
            request_id=current_request_id(),
            comment=comment,
            attachments=list(attempt.attachments),
            at=clock.now(),
        )
        session.add(row)
        audit.record(
            session,
            actor=actor,
            action=f"{object_type}.{name}",
            object_type=object_type,
            object_id=object_id,
            before={self.state_attr: current},
            after={
                self.state_attr: transition.target,
                "comment": comment,
                **({"attachments": list(attempt.attachments)} if attempt.attachments else {}),
            },
        )
        session.flush()
        events.emit_after_commit(
            session,
            "workflow.transition",
            machine=self.name,
            object_id=object_id,
            transition=name,
            from_state=current,
            to_state=transition.target,
        )
        return row


def history(session: Session, *, object_type: str, object_id: str) -> list[WorkflowTransition]:
    return list(
        session.scalars(
            select(WorkflowTransition)
            .where(
                WorkflowTransition.object_type == object_type,
                WorkflowTransition.object_id == object_id,
            )
            .order_by(WorkflowTransition.id)
        )
    )


def deadline_light(
    deadline: date | None,
    today: date,
    *,
    done: bool,
    warn_days: int,
    calendar: WorkCalendar,
    open_light: Light = Light.green,
) -> Light:
    """The light of a time-bound item: 绿 when done, 红 when open past its deadline, 黄
    when open within ``warn_days`` working days of it, otherwise ``open_light`` (a
    problem list shows every open item 黄 until it is verified; a milestone on time is
    绿)."""
    if done:
        return Light.green
    if deadline is None:
        return open_light
    if today > deadline:
        return Light.red
    if calendar.between(today, deadline) <= warn_days:
        return Light.yellow
    return open_light
