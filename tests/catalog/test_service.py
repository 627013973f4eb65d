"""The catalog's use cases and reads, on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from pydantic import ValidationError
from sqlalchemy import func, select

from shuzhi.catalog import queries, service
from shuzhi.catalog.models import Resource
from shuzhi.catalog.queries import Filters
from shuzhi.catalog.schemas import ResourceCreate, ResourceUpdate
from shuzhi.core.errors import (
    Conflict,
    InvalidTransition,
    NotFound,
    PermissionDenied,
    ShuzhiError,
    ValidationFailed,
)
from shuzhi.core.models import ChangeLog
from tests.conftest import World, resource_doc
from tests.support.race import race

# helpers ------------------------------------------------------------------------------


CODE = "gat_population"


def create(world: World, user: str = "gat_officer", **overrides: Any) -> None:
    with world.database.transaction() as session:
        service.create(
            session, actor=world.actors[user], data=ResourceCreate(**resource_doc(**overrides))
        )


def update(world: World, code: str, user: str = "gat_officer", **overrides: Any) -> None:
    doc = resource_doc(code=code, **overrides)
    del doc["code"]
    with world.database.transaction() as session:
        service.update(session, actor=world.actors[user], code=code, data=ResourceUpdate(**doc))


def fire(world: World, code: str, name: str, user: str, comment: str | None = None) -> None:
    with world.database.transaction() as session:
        service.transition(session, actor=world.actors[user], code=code, name=name, comment=comment)


def publish(world: World, code: str = "gat_population", submitter: str = "gat_officer") -> None:
    fire(world, code, "submit", submitter)
    fire(world, code, "approve", "admin")


def row(world: World, code: str = "gat_population") -> Resource | None:
    with world.database.session() as session:
        return session.scalar(select(Resource).where(Resource.code == code))


def resource_count(world: World) -> int:
    with world.database.session() as session:
        return session.scalar(select(func.count()).select_from(Resource)) or 0


def change_count(world: World) -> int:
    with world.database.session() as session:
        return session.scalar(select(func.count()).select_from(ChangeLog)) or 0


def changes_of(world: World, code: str) -> list[ChangeLog]:
    with world.database.session() as session:
        return list(
            session.scalars(
                select(ChangeLog)
                .where(ChangeLog.object_type == "catalog_resource", ChangeLog.object_id == code)
                .order_by(ChangeLog.id)
            )
        )


def visible_codes(world: World, user: str, **filters: Any) -> list[str]:
    with world.database.session() as session:
        found, _total = queries.search(
            session, actor=world.actors[user], filters=Filters(**filters)
        )
        return [resource.code for resource in found]


# create -------------------------------------------------------------------------------


def test_create_makes_a_draft_at_version_1_with_fields_in_their_order(world: World) -> None:
    fields = [
        {"name": "zeta", "title": "最后", "type": "integer", "primary_key": True},
        {"name": "alpha", "title": "第一", "pii": "phone"},
        {"name": "mid", "title": "中间", "type": "date"},
    ]
    create(world, fields=fields, tags=["户籍", "人口", " 户籍 "])

    resource = row(world)
    assert resource is not None
    assert resource.state == "draft"
    assert resource.version == 1
    assert [field.name for field in resource.fields] == ["zeta", "alpha", "mid"]
    assert [field.type for field in resource.fields] == ["integer", "string", "date"]
    assert resource.fields[0].nullable is False  # a primary key is never null
    assert resource.fields[1].pii == "phone"
    assert resource.provider.code == "zj_gat"
    assert resource.region_code == "330000"
    assert sorted(resource.tags) == ["人口", "户籍"]
    [change] = changes_of(world, "gat_population")
    assert change.action == "catalog_resource.create"
    assert change.actor_name == "gat_officer"
    assert change.after is not None
    assert change.after["name"] == "浙江省常住人口基本信息"
    assert [field["name"] for field in change.after["fields"]] == ["zeta", "alpha", "mid"]


def test_a_second_resource_with_the_same_code_is_a_conflict(world: World) -> None:
    create(world)
    with pytest.raises(Conflict, match="gat_population"):
        create(world, name="另一个资源")
    assert resource_count(world) == 1
    resource = row(world)
    assert resource is not None
    assert resource.name == "浙江省常住人口基本信息"


def test_unknown_provider_is_not_found_and_named(world: World) -> None:
    with pytest.raises(NotFound, match="zj_nowhere"):
        create(world, provider="zj_nowhere")
    assert resource_count(world) == 0


def test_unknown_region_is_not_found_and_named(world: World) -> None:
    with pytest.raises(NotFound, match="339999"):
        create(world, region="339999")
    assert resource_count(world) == 0


def test_conditional_sharing_needs_its_conditions() -> None:
    with pytest.raises(ValidationError, match="sharing_conditions"):
        ResourceCreate(**resource_doc(sharing="conditional", sharing_conditions="   "))
    with pytest.raises(ValidationError, match="sharing_conditions"):
        ResourceCreate(**resource_doc(sharing="none", sharing_conditions=""))
    unconditional = ResourceCreate(**resource_doc(sharing="unconditional", sharing_conditions=""))
    assert unconditional.sharing == "unconditional"


@pytest.mark.parametrize("open_attribute", ["unconditional", "restricted"])
def test_an_l4_resource_cannot_be_opened(open_attribute: str) -> None:
    with pytest.raises(ValidationError, match="L4"):
        ResourceCreate(**resource_doc(grade="L4", open=open_attribute))
    assert ResourceCreate(**resource_doc(grade="L4", open="prohibited")).grade == "L4"
    assert ResourceCreate(**resource_doc(grade="L3", open=open_attribute)).grade == "L3"


def test_repeated_field_names_are_refused() -> None:
    fields = [{"name": "a", "primary_key": True}, {"name": "a"}]
    with pytest.raises(ValidationError, match="repeat: a"):
        ResourceCreate(**resource_doc(fields=fields))


# update -------------------------------------------------------------------------------


def test_updating_a_draft_bumps_its_version_and_logs_the_change(world: World) -> None:
    create(world)
    update(world, "gat_population", summary="新的摘要")

    resource = row(world)
    assert resource is not None
    assert resource.version == 2
    assert resource.summary == "新的摘要"
    last = changes_of(world, "gat_population")[-1]
    assert last.action == "catalog_resource.update"
    assert last.before is not None
    assert (last.before["summary"], last.before["version"]) == ("常住人口的身份与居住信息", 1)
    assert "name" not in last.before  # only what changed is logged
    assert last.after is not None
    assert last.after["summary"] == "新的摘要"
    assert last.after["version"] == 2


def test_reordering_fields_is_a_change(world: World) -> None:
    create(world)
    fields = list(reversed(resource_doc()["fields"]))
    update(world, "gat_population", fields=fields)

    resource = row(world)
    assert resource is not None
    assert resource.version == 2
    assert [field.name for field in resource.fields] == [
        "registered_on",
        "region_code",
        "full_name",
        "id_card",
    ]


def test_an_update_that_changes_nothing_keeps_the_version(world: World) -> None:
    create(world, tags=["户籍", "人口"])
    before = change_count(world)
    update(world, "gat_population", tags=["人口", "户籍", "人口"])

    resource = row(world)
    assert resource is not None
    assert resource.version == 1
    assert change_count(world) == before


def test_a_published_resource_cannot_be_edited(world: World) -> None:
    create(world)
    publish(world)
    with pytest.raises(InvalidTransition, match="published"):
        update(world, "gat_population", summary="改一改")

    resource = row(world)
    assert resource is not None
    assert (resource.state, resource.version) == ("published", 1)
    assert resource.summary == "常住人口的身份与居住信息"


def test_the_state_cannot_be_assigned_outside_a_transition(world: World) -> None:
    create(world)
    with pytest.raises(InvalidTransition), world.database.transaction() as session:
        resource = session.scalar(select(Resource).where(Resource.code == CODE))
        assert resource is not None
        resource.state = "published"
    resource = row(world)
    assert resource is not None
    assert resource.state == "draft"


# lifecycle ----------------------------------------------------------------------------


def history(world: World, code: str = "gat_population") -> list[tuple[str, str, str, str]]:
    with world.database.session() as session:
        resource = queries.get(session, actor=world.actors["admin"], code=code)
        return [
            (entry.transition, entry.from_state, entry.to_state, entry.actor)
            for entry in queries.history(session, resource=resource)
        ]


def state(world: World, code: str = "gat_population") -> str:
    resource = row(world, code)
    assert resource is not None
    return resource.state


def test_lifecycle_from_draft_to_published_to_withdrawn_and_back(world: World) -> None:
    create(world)
    fire(world, "gat_population", "submit", "gat_officer")
    assert state(world) == "pending_review"
    fire(world, "gat_population", "approve", "admin")
    assert state(world) == "published"
    with pytest.raises(ValidationFailed, match="comment"):
        fire(world, "gat_population", "withdraw", "gat_officer")
    assert state(world) == "published"
    fire(world, "gat_population", "withdraw", "gat_officer", comment="字段口径调整")
    assert state(world) == "withdrawn"
    with pytest.raises(InvalidTransition):
        update(world, "gat_population", summary="撤回后也不能直接改")
    fire(world, "gat_population", "revise", "gat_officer")
    assert state(world) == "draft"
    update(world, "gat_population", summary="重新编辑后可以改")

    assert history(world) == [
        ("submit", "draft", "pending_review", "gat_officer"),
        ("approve", "pending_review", "published", "admin"),
        ("withdraw", "published", "withdrawn", "gat_officer"),
        ("revise", "withdrawn", "draft", "gat_officer"),
    ]
    resource = row(world)
    assert resource is not None
    assert resource.version == 2


def test_a_rejected_resource_is_edited_and_resubmitted(world: World) -> None:
    create(world)
    fire(world, "gat_population", "submit", "gat_officer")
    with pytest.raises(ValidationFailed, match="comment"):
        fire(world, "gat_population", "reject", "admin", comment="  ")
    fire(world, "gat_population", "reject", "admin", comment="缺少字段说明")
    assert state(world) == "rejected"
    update(world, "gat_population", summary="补充了字段说明")
    fire(world, "gat_population", "submit", "gat_officer")
    fire(world, "gat_population", "approve", "admin")
    assert state(world) == "published"

    with world.database.session() as session:
        resource = queries.get(session, actor=world.actors["admin"], code="gat_population")
        entries = queries.history(session, resource=resource)
    assert [entry.transition for entry in entries] == ["submit", "reject", "submit", "approve"]
    assert entries[1].comment == "缺少字段说明"
    assert entries[1].actor == "admin"


@pytest.mark.parametrize(
    ("name", "setup"),
    [
        ("approve", []),  # a draft was never submitted
        ("withdraw", []),  # only a published resource can be withdrawn
        ("revise", ["submit"]),  # only a withdrawn resource can be revised
        ("submit", ["submit"]),  # already pending
    ],
)
def test_a_transition_from_the_wrong_state_is_refused(
    world: World, name: str, setup: list[str]
) -> None:
    create(world)
    for step in setup:
        fire(world, "gat_population", step, "gat_officer")
    expected = state(world)
    with pytest.raises(InvalidTransition, match=f"cannot {name}"):
        fire(world, "gat_population", name, "admin", comment="理由")
    assert state(world) == expected


def test_a_resource_without_a_primary_key_cannot_be_submitted(world: World) -> None:
    create(world, fields=[{"name": "note", "title": "备注"}])
    with pytest.raises(InvalidTransition, match="primary key"):
        fire(world, "gat_population", "submit", "gat_officer")
    assert state(world) == "draft"


@pytest.mark.parametrize("user", ["gat_officer", "gat_admin"])
def test_the_provider_cannot_approve_its_own_resource(world: World, user: str) -> None:
    create(world)
    fire(world, "gat_population", "submit", "gat_officer")
    with pytest.raises(PermissionDenied, match=r"catalog\.review"):
        fire(world, "gat_population", "approve", user)
    assert state(world) == "pending_review"


# visibility ---------------------------------------------------------------------------


def can_get(world: World, user: str, code: str = "gat_population") -> bool:
    with world.database.session() as session:
        try:
            queries.get(session, actor=world.actors[user], code=code)
        except NotFound:
            return False
        return True


@pytest.mark.parametrize("user", ["viewer", "wjw_officer"])
def test_a_draft_is_hidden_from_other_departments_until_published(world: World, user: str) -> None:
    create(world)
    assert not can_get(world, user)
    assert visible_codes(world, user) == []
    fire(world, "gat_population", "submit", "gat_officer")
    assert not can_get(world, user)
    fire(world, "gat_population", "approve", "admin")
    assert can_get(world, user)
    assert visible_codes(world, user) == ["gat_population"]


def test_hidden_and_missing_resources_look_the_same(world: World) -> None:
    create(world)
    with world.database.session() as session:
        with pytest.raises(NotFound) as hidden:
            queries.get(session, actor=world.actors["viewer"], code="gat_population")
        with pytest.raises(NotFound) as missing:
            queries.get(session, actor=world.actors["viewer"], code="gat_missing")
    assert str(hidden.value).replace("gat_population", "X") == str(missing.value).replace(
        "gat_missing", "X"
    )


@pytest.mark.parametrize("user", ["gat_officer", "gat_admin", "admin", "auditor"])
def test_a_draft_is_visible_to_its_department_and_the_platform(world: World, user: str) -> None:
    create(world)
    assert can_get(world, user)
    assert visible_codes(world, user) == ["gat_population"]


def test_a_department_grant_covers_the_departments_under_it(world: World) -> None:
    create(world, code="hz_traffic", provider="hz_gaj", region="330100")
    assert can_get(world, "gat_officer", "hz_traffic")
    assert not can_get(world, "wjw_officer", "hz_traffic")


# search -------------------------------------------------------------------------------


@pytest.fixture
def catalog(world: World) -> World:
    """Four resources over three providers and two regions; one of them published."""
    create(world, "admin")  # gat_population: name 常住人口, tag 户籍
    create(
        world,
        "admin",
        code="gat_household",
        name="家庭户基本信息",
        summary="以户为单位登记的人口信息",
        tags=["家庭"],
        grade="L2",
        fields=[
            {"name": "household_id", "title": "户号", "primary_key": True},
            {"name": "head_name", "title": "户主姓名", "pii": "name"},
        ],
    )
    create(
        world,
        "admin",
        code="hz_traffic_violation",
        name="杭州市交通违法记录",
        summary="道路交通违法行为",
        provider="hz_gaj",
        region="330100",
        system="digital_rule_of_law",
        sharing="unconditional",
        sharing_conditions="",
        grade="L2",
        tags=["交通"],
        fields=[
            {"name": "case_no", "title": "案件编号", "primary_key": True},
            {"name": "place", "title": "违法地点", "pii": "address"},
        ],
    )
    create(
        world,
        "admin",
        code="wjw_birth",
        name="出生医学证明信息",
        summary="新生儿出生登记",
        provider="zj_wjw",
        system="digital_society",
        grade="L3",
        tags=["卫生"],
        fields=[{"name": "cert_no", "title": "证明编号", "primary_key": True}],
    )
    publish(world, "wjw_birth", submitter="wjw_officer")
    return world


def test_search_matches_name_summary_field_titles_and_tags(catalog: World) -> None:
    assert visible_codes(catalog, "admin", q="违法地点") == ["hz_traffic_violation"]  # field
    assert visible_codes(catalog, "admin", q="户籍") == ["gat_population"]  # tag
    assert visible_codes(catalog, "admin", q="新生儿") == ["wjw_birth"]  # summary
    assert visible_codes(catalog, "admin", q="出生医学") == ["wjw_birth"]  # name
    assert visible_codes(catalog, "admin", q="POPULATION") == ["gat_population"]  # code
    assert visible_codes(catalog, "admin", q="不存在的词") == []


def test_search_requires_every_term(catalog: World) -> None:
    assert visible_codes(catalog, "admin", q="人口 户籍") == ["gat_population"]
    assert visible_codes(catalog, "admin", q="人口  户主") == ["gat_household"]
    assert visible_codes(catalog, "admin", q="户籍 户主") == []


def test_name_hits_rank_before_other_hits(catalog: World) -> None:
    # gat_household sorts first by code, but only its summary mentions 人口
    assert visible_codes(catalog, "admin", q="人口") == ["gat_population", "gat_household"]


def test_a_name_holding_every_term_ranks_first(catalog: World) -> None:
    # Chinese names have no spaces: the terms need not be adjacent in the name
    assert visible_codes(catalog, "admin", q="人口 信息") == ["gat_population", "gat_household"]
    assert visible_codes(catalog, "admin", q="信息 人口") == ["gat_population", "gat_household"]


def test_search_terms_are_not_wildcards(catalog: World) -> None:
    assert visible_codes(catalog, "admin", q="%") == []
    assert visible_codes(catalog, "admin", q="人_") == []  # 人口 would match a LIKE wildcard
    assert visible_codes(catalog, "admin", q="gat_h") == ["gat_household"]


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({"provider": "zj_wjw"}, ["wjw_birth"]),
        ({"provider": "hz_gaj"}, ["hz_traffic_violation"]),
        ({"system": "digital_rule_of_law"}, ["hz_traffic_violation"]),
        ({"grade": "L2"}, ["gat_household", "hz_traffic_violation"]),
        ({"sharing": "unconditional"}, ["hz_traffic_violation"]),
        ({"state": "published"}, ["wjw_birth"]),
        ({"state": "draft", "grade": "L3"}, ["gat_population"]),
        (
            {"region": "330000"},
            ["gat_household", "gat_population", "hz_traffic_violation", "wjw_birth"],
        ),
        ({"region": "330100"}, ["hz_traffic_violation"]),
        ({"region": "330200"}, []),
        (
            {"q": "信息", "system": "digital_society", "grade": "L3"},
            ["gat_population", "wjw_birth"],
        ),
    ],
)
def test_search_filters(catalog: World, filters: dict[str, str], expected: list[str]) -> None:
    assert sorted(visible_codes(catalog, "admin", **filters)) == expected


def test_search_by_an_unknown_region_or_provider_is_not_found(catalog: World) -> None:
    with pytest.raises(NotFound, match="339999"):
        visible_codes(catalog, "admin", region="339999")
    with pytest.raises(NotFound, match="zj_nowhere"):
        visible_codes(catalog, "admin", provider="zj_nowhere")


def test_search_pages_and_counts_the_total(catalog: World) -> None:
    pages = []
    with catalog.database.session() as session:
        for offset in (0, 2, 4):
            found, total = queries.search(
                session, actor=catalog.actors["admin"], filters=Filters(), limit=2, offset=offset
            )
            assert total == 4
            pages.append([resource.code for resource in found])
    assert pages == [
        ["gat_household", "gat_population"],
        ["hz_traffic_violation", "wjw_birth"],
        [],
    ]


def test_search_shows_only_what_the_actor_may_see(catalog: World) -> None:
    assert visible_codes(catalog, "viewer") == ["wjw_birth"]
    assert visible_codes(catalog, "wjw_officer") == ["wjw_birth"]
    assert sorted(visible_codes(catalog, "gat_officer")) == [
        "gat_household",
        "gat_population",
        "hz_traffic_violation",
        "wjw_birth",
    ]
    with catalog.database.session() as session:
        _found, total = queries.search(
            session, actor=catalog.actors["viewer"], filters=Filters(q="人口")
        )
    assert total == 0


# apply --------------------------------------------------------------------------------

SOURCE = "catalog/gat.yaml"


def apply_doc(resources: list[dict[str, Any]]) -> str:
    return yaml.safe_dump({"resources": resources}, allow_unicode=True, sort_keys=False)


def three_resources() -> list[dict[str, Any]]:
    return [
        resource_doc(tags=["户籍", "人口"]),
        resource_doc(code="gat_household", name="家庭户基本信息", tags=["家庭"]),
        resource_doc(
            code="hz_traffic_violation",
            name="杭州市交通违法记录",
            provider="hz_gaj",
            region="330100",
            sharing="unconditional",
            sharing_conditions="",
        ),
    ]


def apply(world: World, text: str, user: str = "gat_officer", source: str = SOURCE) -> Any:
    with world.database.transaction() as session:
        return service.apply(session, actor=world.actors[user], text=text, source=source)


def versions(world: World) -> dict[str, tuple[str, int]]:
    with world.database.session() as session:
        return {
            resource.code: (resource.name, resource.version)
            for resource in session.scalars(select(Resource))
        }


def test_apply_creates_then_is_idempotent_then_updates(world: World) -> None:
    codes = ["gat_population", "gat_household", "hz_traffic_violation"]
    first = apply(world, apply_doc(three_resources()))
    assert (first.created, first.updated, first.unchanged) == (codes, [], [])
    assert versions(world) == {
        "gat_population": ("浙江省常住人口基本信息", 1),
        "gat_household": ("家庭户基本信息", 1),
        "hz_traffic_violation": ("杭州市交通违法记录", 1),
    }
    assert {state(world, code) for code in codes} == {"draft"}

    logged = change_count(world)
    second = apply(world, apply_doc(three_resources()))
    assert (second.created, second.updated, second.unchanged) == ([], [], codes)
    assert {version for _name, version in versions(world).values()} == {1}
    assert change_count(world) == logged

    edited = three_resources()
    edited[1]["name"] = "家庭户信息（修订）"
    third = apply(world, apply_doc(edited))
    assert (third.created, third.updated, third.unchanged) == (
        [],
        ["gat_household"],
        ["gat_population", "hz_traffic_violation"],
    )
    assert versions(world)["gat_household"] == ("家庭户信息（修订）", 2)
    assert versions(world)["gat_population"] == ("浙江省常住人口基本信息", 1)
    assert change_count(world) == logged + 1


def with_second(**changes: Any) -> str:
    resources = three_resources()
    resources[1] = {**resources[1], **changes}
    return apply_doc(resources)


BAD_FILES = {
    "bad enum": (with_second(grade="L9"), ValidationFailed, ["gat_household", "grade"]),
    "unknown provider": (
        with_second(provider="zj_nowhere"),
        NotFound,
        ["gat_household", "zj_nowhere"],
    ),
    "duplicate code": (
        with_second(code="gat_population"),
        ValidationFailed,
        ["gat_population", "twice"],
    ),
    "malformed yaml": (
        "resources:\n  - code: gat_population\n    name: [unclosed\n",
        ValidationFailed,
        ["not valid YAML"],
    ),
    "no resources list": (
        yaml.safe_dump({"items": three_resources()}, allow_unicode=True),
        ValidationFailed,
        ["'resources'"],
    ),
    "nested too deeply": (
        "resources: " + "[" * 5000 + "]" * 5000,
        ValidationFailed,
        ["not valid YAML (nested too deeply)"],
    ),
    "not a resource": (
        apply_doc([*three_resources()[:1], "just a string"]),  # type: ignore[list-item]
        ValidationFailed,
        ["resource #2"],
    ),
}


@pytest.mark.parametrize("case", list(BAD_FILES), ids=list(BAD_FILES))
def test_a_file_with_one_bad_resource_is_rejected_whole(world: World, case: str) -> None:
    text, error, named = BAD_FILES[case]
    logged = change_count(world)
    with pytest.raises(error) as raised:
        apply(world, text)

    message = str(raised.value)
    assert message.startswith(SOURCE)
    for part in named:
        assert part in message
    assert resource_count(world) == 0
    assert change_count(world) == logged


@pytest.mark.parametrize("depth", [200, 5000])
def test_nesting_is_refused_in_one_line_however_deep(depth: int) -> None:
    text = "resources:\n  - code: " + "[" * depth + "]" * depth + "\n"
    with pytest.raises(ValidationFailed) as raised:
        service.parse_file(text, source="deep.yaml")

    message = raised.value.detail
    assert message.startswith("deep.yaml: ")
    assert "\n" not in message
    assert len(message) < 200


def test_a_rejected_file_leaves_existing_resources_as_they_were(world: World) -> None:
    apply(world, apply_doc(three_resources()))
    logged = change_count(world)
    resources = three_resources()
    resources[0]["summary"] = "这次修改不应保存"
    resources.append(resource_doc(code="gat_new", provider="zj_nowhere"))
    with pytest.raises(NotFound, match=f"{SOURCE}: resource gat_new"):
        apply(world, apply_doc(resources))

    resource = row(world)
    assert resource is not None
    assert (resource.summary, resource.version) == ("常住人口的身份与居住信息", 1)
    assert row(world, "gat_new") is None
    assert change_count(world) == logged


def test_a_file_that_edits_a_published_resource_is_rejected_naming_it(world: World) -> None:
    apply(world, apply_doc(three_resources()))
    publish(world, "gat_household")
    edited = three_resources()
    edited[1]["summary"] = "已发布资源不能直接改"
    with pytest.raises(InvalidTransition, match=f"{SOURCE}: resource gat_household"):
        apply(world, apply_doc(edited))
    resource = row(world, "gat_household")
    assert resource is not None
    assert (resource.summary, resource.version) == ("常住人口的身份与居住信息", 1)


# permissions --------------------------------------------------------------------------


def test_a_user_without_a_grant_cannot_create_for_another_department(world: World) -> None:
    with pytest.raises(PermissionDenied, match=r"catalog\.edit"):
        create(world, "wjw_officer")
    with pytest.raises(PermissionDenied):
        apply(world, apply_doc(three_resources()), user="wjw_officer")
    assert resource_count(world) == 0


def test_a_user_without_a_grant_cannot_touch_a_draft_it_cannot_see(world: World) -> None:
    create(world)
    logged = change_count(world)
    with pytest.raises(NotFound):
        update(world, "gat_population", "wjw_officer", summary="越权修改")
    with pytest.raises(NotFound):
        fire(world, "gat_population", "submit", "wjw_officer")
    resource = row(world)
    assert resource is not None
    assert (resource.state, resource.version) == ("draft", 1)
    assert resource.summary == "常住人口的身份与居住信息"
    assert change_count(world) == logged


def test_reading_drafts_does_not_allow_changing_them(world: World) -> None:
    create(world)
    logged = change_count(world)
    with pytest.raises(PermissionDenied, match=r"catalog\.edit"):
        update(world, "gat_population", "auditor", summary="越权修改")
    with pytest.raises(PermissionDenied, match=r"catalog\.submit"):
        fire(world, "gat_population", "submit", "auditor")
    resource = row(world)
    assert resource is not None
    assert (resource.state, resource.version) == ("draft", 1)
    assert change_count(world) == logged


def test_a_user_without_a_grant_cannot_change_a_published_resource(world: World) -> None:
    create(world)
    publish(world)
    logged = change_count(world)
    with pytest.raises(PermissionDenied, match=r"catalog\.edit"):
        update(world, "gat_population", "wjw_officer", summary="越权修改")
    with pytest.raises(PermissionDenied, match=r"catalog\.withdraw"):
        fire(world, "gat_population", "withdraw", "wjw_officer", comment="越权撤回")
    resource = row(world)
    assert resource is not None
    assert (resource.state, resource.version) == ("published", 1)
    assert change_count(world) == logged


def test_moving_a_resource_to_a_department_outside_the_grant_is_refused(world: World) -> None:
    create(world)
    with pytest.raises(PermissionDenied, match="zj_wjw"):
        update(world, "gat_population", provider="zj_wjw")
    resource = row(world)
    assert resource is not None
    assert resource.provider.code == "zj_gat"


def test_an_edit_from_a_stale_version_is_refused(world: World) -> None:
    create(world)
    update(world, "gat_population", name="常住人口信息（第二版）", version=1)  # 1 -> 2

    with pytest.raises(Conflict, match="version 2 now, not 1"):
        update(world, "gat_population", name="覆盖别人的修改", version=1)

    current = row(world)
    assert current is not None
    assert (current.version, current.name) == (2, "常住人口信息（第二版）")


def stale_edit(name: str, version: int | None) -> ResourceUpdate:
    doc = resource_doc(name=name)
    doc.pop("code")
    return ResourceUpdate.model_validate({**doc, "version": version})


@pytest.mark.postgres
def test_an_edit_racing_a_submit_does_not_change_a_submitted_resource(
    postgres_world: World,
) -> None:
    """``update`` reads the state without the row lock that ``Machine.fire`` now takes. An
    edit that read 'draft' while a submit was in flight writes its content once the submit
    commits: reviewers approve something other than what was submitted."""
    world = postgres_world
    officer = world.actors["gat_officer"]
    create(world)

    outcome = race(
        world.database,
        lambda s: service.transition(s, actor=officer, code=CODE, name="submit"),
        lambda s: service.update(
            s, actor=officer, code=CODE, data=stale_edit("提交后才改的名字", 1)
        ),
    )

    with world.database.session() as session:
        resource = session.scalar(select(Resource).where(Resource.code == CODE))
        assert resource is not None
        state, name = resource.state, resource.name
    assert state == "pending_review"
    assert name == resource_doc()["name"], "a resource under review was edited"
    assert isinstance(outcome, ShuzhiError), outcome


@pytest.mark.postgres
def test_two_edits_from_the_same_version_refuse_the_second_with_a_conflict(
    postgres_world: World,
) -> None:
    """The version check compares with a value read without a lock and writes without a
    ``WHERE version = ...``: on PostgreSQL two edits that both started from version 1 both
    pass it. The second must get the 409 the check promises, not overwrite the first (or
    fail with a database error)."""
    world = postgres_world
    officer = world.actors["gat_officer"]
    create(world)

    outcome = race(
        world.database,
        lambda s: service.update(s, actor=officer, code=CODE, data=stale_edit("甲改的名字", 1)),
        lambda s: service.update(s, actor=officer, code=CODE, data=stale_edit("乙改的名字", 1)),
    )

    with world.database.session() as session:
        name = session.scalar(select(Resource.name).where(Resource.code == CODE))
    assert name == "甲改的名字"
    assert isinstance(outcome, Conflict), repr(outcome)
