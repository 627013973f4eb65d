"""What a catalog resource document may hold, before any service sees it."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from shuzhi.catalog.schemas import (
    FIELDS_MAX,
    TAG_MAX_LENGTH,
    TAGS_MAX,
    FieldRules,
    ResourceCreate,
    ResourceUpdate,
)
from tests.conftest import resource_doc


def field(n: int) -> dict[str, Any]:
    return {"name": f"f{n}", "primary_key": n == 0}


def problem(doc: dict[str, Any], model: type = ResourceCreate) -> dict[str, Any]:
    with pytest.raises(ValidationError) as raised:
        model(**doc)
    return raised.value.errors()[0]


@pytest.mark.parametrize("blank", ["  ", "\t\n", "\u3000\u3000"])
def test_a_name_of_spaces_is_no_name(blank: str) -> None:
    assert problem(resource_doc(name=blank))["loc"] == ("name",)
    update = resource_doc(name=blank)
    del update["code"]
    assert problem(update, ResourceUpdate)["loc"] == ("name",)


def test_text_is_kept_without_its_surrounding_spaces() -> None:
    doc = resource_doc(
        name="  浙江省常住人口基本信息 ",
        summary="常住人口\n",
        fields=[{"name": "id_card", "title": " 公民身份号码 ", "primary_key": True}],
    )
    resource = ResourceCreate(**doc)
    assert resource.name == "浙江省常住人口基本信息"
    assert resource.summary == "常住人口"
    assert resource.fields[0].title == "公民身份号码"


def test_a_field_name_of_spaces_is_refused() -> None:
    error = problem(resource_doc(fields=[{"name": "   "}]))
    assert error["loc"] == ("fields", 0, "name")


def test_as_many_fields_as_the_cap_are_accepted() -> None:
    resource = ResourceCreate(**resource_doc(fields=[field(n) for n in range(FIELDS_MAX)]))
    assert len(resource.fields) == FIELDS_MAX


def test_more_fields_than_the_cap_are_refused() -> None:
    error = problem(resource_doc(fields=[field(n) for n in range(FIELDS_MAX + 1)]))
    assert (error["loc"], error["type"]) == (("fields",), "too_long")


def test_tags_are_stripped_deduplicated_and_sorted() -> None:
    resource = ResourceCreate(**resource_doc(tags=[" 户籍", "人口 ", "户籍", "  "]))
    assert resource.tags == ["人口", "户籍"]


def test_more_tags_than_the_cap_are_refused() -> None:
    assert ResourceCreate(**resource_doc(tags=[f"t{n}" for n in range(TAGS_MAX)])).tags
    error = problem(resource_doc(tags=[f"t{n}" for n in range(TAGS_MAX + 1)]))
    assert (error["loc"], error["type"]) == (("tags",), "too_long")


def test_a_tag_longer_than_the_cap_is_refused() -> None:
    assert ResourceCreate(**resource_doc(tags=["签" * TAG_MAX_LENGTH])).tags
    error = problem(resource_doc(tags=["人口", "签" * (TAG_MAX_LENGTH + 1)]))
    assert error["loc"] == ("tags", 1)


@pytest.mark.parametrize("bound", ["inf", "-inf", "nan"])
def test_a_rule_bound_must_be_a_finite_number(bound: str) -> None:
    with pytest.raises(ValidationError):
        FieldRules(min=float(bound))
