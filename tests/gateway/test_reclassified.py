"""A grant is read under the catalog as it stands: a field the provider classifies as
personal after the grant, or a stricter default, masks it from the next call on; only a
new approval loosens a grant."""

from __future__ import annotations

from typing import Any

import pytest

from shuzhi.core.errors import ConfigurationError
from shuzhi.core.settings import get_settings, load_settings, reset_settings
from tests.gateway.data import CODE, FIELDS, PEOPLE, Gateway, people_doc
from tests.gateway.test_calls import BY_BORN, EVERY_ROW, refused
from tests.gateway.test_ledger import entries
from tests.lake.data import republish


def reclassified(**kinds: str) -> dict[str, Any]:
    fields = [{**item, "pii": kinds.get(item["name"], item.get("pii", "none"))} for item in FIELDS]
    return people_doc(fields=fields)


def test_a_field_classified_personal_after_the_grant_is_no_longer_clear(
    gateway: Gateway,
) -> None:
    gateway.grant("zj_health_app", clear_fields=["mobile"])
    client = gateway.client("zj_health_app")
    before = client.records(CODE, limit=EVERY_ROW)
    assert before["masking"]["age"] == "clear"
    assert before["masking"]["born"] == "clear"
    assert before["masking"]["mobile"] == "clear"  # approved in clear
    assert before["masking"]["address"] == "masked"

    # the provider finds that age and birth date are personal; the address is taken off
    republish(gateway.db, reclassified(age="phone", born="other", address="none"))

    page = client.records(CODE, limit=EVERY_ROW)
    # an "other" kind is withheld at grade L3, a phone masked, by the default masking
    assert "born" not in page["fields"] and "born" not in page["masking"]
    assert page["masking"]["age"] == "masked"
    assert page["masking"]["mobile"] == "clear"  # the approval in clear still stands
    assert page["masking"]["address"] == "masked"  # never loosened without an approval
    by_mobile = {person["mobile"]: person for person in PEOPLE}
    for row in page["data"]:
        assert "born" not in row
        person = by_mobile[row["mobile"]]
        assert row["age"] == "*" * len(person["age"])
        assert row["address"] != person["address"]
    # the log says what was applied, not what the grant once said
    assert entries(gateway)[-1]["masking"] == page["masking"]

    # a field no longer in clear can be neither asked for hidden nor filtered on
    refused(lambda: client.records(CODE, fields="born"), 403, "field-not-granted")
    problem = refused(lambda: client.records(CODE, age__gte="30"), 403, "field-not-granted")
    assert "masked" in problem.problem["detail"]


def test_a_stricter_default_applies_to_grants_already_made(
    gateway: Gateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    gateway.grant("zj_health_app")
    client = gateway.client("zj_health_app")
    assert client.records(CODE, limit=EVERY_ROW)["masking"]["mobile"] == "masked"

    monkeypatch.setenv("SHUZHI_GATEWAY__MASKING", '{"L3": {"phone": "token", "other": "hidden"}}')
    reset_settings()
    gateway.http.app.state.settings = get_settings()  # a server started with the new setting
    page = client.records(CODE, limit=EVERY_ROW)
    assert page["masking"]["mobile"] == "token"
    for row in page["data"]:
        person = BY_BORN[row["born"]]
        assert row["mobile"] != person["mobile"] and len(row["mobile"]) == 32


def test_no_default_sends_a_personal_field_in_clear(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHUZHI_GATEWAY__MASKING", '{"L2": {"phone": "clear"}}')
    with pytest.raises(ConfigurationError, match=r"L2\.phone cannot be clear by default"):
        load_settings()
