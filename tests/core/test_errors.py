"""A refusal reworded with where it happened stays the same refusal."""

from __future__ import annotations

from shuzhi.core.errors import Message, RateLimited, ValidationFailed
from shuzhi.web.i18n import say


def test_a_reworded_refusal_keeps_its_kind_field_and_headers() -> None:
    inner = ValidationFailed(Message("give an SQL query"), field="sql")
    outer = inner.reworded(Message("{source}: {detail}", source="a.yaml", detail=inner.detail))
    assert type(outer) is ValidationFailed and outer.field == "sql"
    assert outer.detail == str(outer) == "a.yaml: give an SQL query"
    assert say(outer.detail, "zh-CN") == "a.yaml：请给出 SQL 查询"
    assert inner.detail == "give an SQL query"  # the original is left as it was

    limited = RateLimited("grant 3 allows 5 requests a second", retry_after=7)
    again = limited.reworded("b.yaml: " + limited.detail)
    assert type(again) is RateLimited and again.headers == {"Retry-After": "7"}
    assert again.detail == "b.yaml: grant 3 allows 5 requests a second"
