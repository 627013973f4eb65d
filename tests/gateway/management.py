"""Helpers of the gateway management tests: the resources of each sharing kind, two
consumers of different departments, and short ways to apply, decide and read back.

No data is loaded into the lake: managing consumers, applications and grants reads the
catalog only."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from shuzhi.core import workflow
from shuzhi.core.db import Database
from shuzhi.core.models import ChangeLog, WorkflowTransition
from shuzhi.core.permissions import SYSTEM, Actor
from shuzhi.gateway import queries, service
from shuzhi.gateway.models import Application, Credential, Grant
from shuzhi.gateway.schemas import ApplicationCreate, ConsumerCreate, Decision
from shuzhi.orgs import service as orgs
from tests.conftest import World, add_user, resource_doc
from tests.gateway.data import CODE, NAMES, people_doc
from tests.lake.data import publish

# A Friday, so that five working days later is the next Friday.
FRIDAY = datetime(2024, 6, 7, 10, 0, tzinfo=UTC)
NEXT_FRIDAY = datetime(2024, 6, 14, 10, 0, tzinfo=UTC)

# the consumers: a provincial health system (zj_wjw, 330000) and a Hangzhou police
# system (hz_gaj, 330100, under zj_gat)
HEALTH = "zj_health_app"
POLICE = "hz_police_app"

# every kind of resource an application can meet; all are provided by zj_gat except
# WJW, which the health commission provides
CONDITIONAL = CODE  # 有条件共享, L3, with a region_code field
OPEN = "gat_people_open"  # 无条件共享, L3, with a region_code field
SECRET = "gat_people_secret"  # 不予共享
L4 = "gat_people_l4"  # 有条件共享, L4
NO_REGION = "gat_population"  # 有条件共享, L3, no field of format region_code
WJW = "wjw_births"  # 有条件共享, provided by zj_wjw

DOCS: dict[str, dict[str, Any]] = {
    CONDITIONAL: people_doc(),
    OPEN: people_doc(code=OPEN, name="浙江省人口基础信息（无条件）", sharing="unconditional"),
    SECRET: people_doc(code=SECRET, name="浙江省人口基础信息（不予共享）", sharing="none"),
    L4: people_doc(code=L4, name="浙江省人口基础信息（L4）", grade="L4"),
    NO_REGION: resource_doc(),
    WJW: people_doc(code=WJW, name="浙江省出生医学证明信息", provider="zj_wjw"),
}

APPLICATION: dict[str, Any] = {
    "purpose_code": "330000-QT-0001",
    "purpose": "办理社会救助资格认定",
    "legal_basis": "《社会救助暂行办法》第十一条",
}


def body(consumer: str = HEALTH, resource: str = CONDITIONAL, **overrides: Any) -> dict[str, Any]:
    """An application document: every field of the people resource, no clear field."""
    fields = NAMES if resource != NO_REGION else [f["name"] for f in DOCS[NO_REGION]["fields"]]
    return (
        {"consumer": consumer, "resource": resource, "fields": list(fields)}
        | APPLICATION
        | (overrides)
    )


@dataclass
class Management:
    """The world with the consumers made, and the resources published on demand."""

    world: World
    published: set[str] = field(default_factory=set)

    @property
    def db(self) -> Database:
        return self.world.database

    def actor(self, name: str) -> Actor:
        return SYSTEM if name == "system" else self.world.actors[name]

    def user(self, username: str, *, department: str, role: str) -> Actor:
        """A user with one role over its department, and an API token."""
        actor = add_user(
            self.world, username, department=department, role=role, grant_department=department
        )
        with self.db.transaction() as session:
            _token, plaintext = orgs.create_token(
                session, actor=SYSTEM, username=username, name="tests"
            )
        self.world.actors[username] = actor
        self.world.tokens[username] = plaintext
        return actor

    def publish(self, *codes: str) -> None:
        for code in codes:
            if code not in self.published:
                publish(self.db, DOCS[code])
                self.published.add(code)

    # -- writes, each in its own transaction, as a request would make them

    def consumer(self, code: str, department: str, actor: str = "system") -> str:
        with self.db.transaction() as session:
            service.create_consumer(
                session,
                actor=self.actor(actor),
                data=ConsumerCreate(code=code, name=f"{code} 应用系统", department=department),
            )
        return code

    def issue(self, consumer: str = HEALTH, actor: str = "system") -> tuple[str, str]:
        with self.db.transaction() as session:
            credential, secret = service.issue_credential(
                session, actor=self.actor(actor), consumer=consumer
            )
            return credential.access_key, secret

    def apply(
        self,
        consumer: str = HEALTH,
        resource: str = CONDITIONAL,
        actor: str = "wjw_officer",
        **overrides: Any,
    ) -> int:
        self.publish(resource)
        with self.db.transaction() as session:
            return service.apply(
                session,
                actor=self.actor(actor),
                data=ApplicationCreate(**body(consumer, resource, **overrides)),
            ).id

    def decide(
        self, application_id: int, actor: str = "gat_officer", approve: bool = True, **decision: Any
    ) -> Application:
        with self.db.transaction() as session:
            return service.decide(
                session,
                actor=self.actor(actor),
                application_id=application_id,
                approve=approve,
                decision=Decision(**decision),
            )

    def granted(self, application_id: int) -> Grant:
        found = self.grant_of(application_id)
        assert found is not None, f"application {application_id} made no grant"
        return found

    # -- reads, each in a fresh session so that they see what was committed

    def application(self, application_id: int) -> Application:
        with self.db.session() as session:
            found = session.get(Application, application_id)
            assert found is not None
            return found

    def grant(self, grant_id: int) -> Grant:
        with self.db.session() as session:
            found = session.get(Grant, grant_id)
            assert found is not None
            return found

    def grant_of(self, application_id: int) -> Grant | None:
        with self.db.session() as session:
            return queries.grant_of_application(session, application_id)

    def credential(self, access_key: str) -> Credential:
        with self.db.session() as session:
            found = session.scalar(select(Credential).where(Credential.access_key == access_key))
            assert found is not None
            return found

    def history(self, object_type: str, object_id: int) -> list[WorkflowTransition]:
        with self.db.session() as session:
            return workflow.history(session, object_type=object_type, object_id=str(object_id))

    def changes(self, action: str | None = None, object_id: object = None) -> list[ChangeLog]:
        stmt = select(ChangeLog).order_by(ChangeLog.id)
        if action is not None:
            stmt = stmt.where(ChangeLog.action == action)
        if object_id is not None:
            stmt = stmt.where(ChangeLog.object_id == str(object_id))
        with self.db.session() as session:
            return list(session.scalars(stmt))

    def change_log_text(self) -> str:
        """Every change log row as one text, to search for what must never be there."""
        return "\n".join(
            json.dumps(
                [row.object_id, row.object_repr, row.before, row.after],
                ensure_ascii=False,
                default=str,
            )
            for row in self.changes()
        )


def management(world: World) -> Management:
    """The two consumers, made by the platform operator; resources are published as used."""
    made = Management(world)
    made.consumer(HEALTH, "zj_wjw")
    made.consumer(POLICE, "hz_gaj")
    return made
