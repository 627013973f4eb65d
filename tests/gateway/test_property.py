"""Whatever a consumer is granted and asks for, no answer carries the clear value of a
personal field that the grant does not hold in clear."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.gateway.data import CODE, NAMES, PEOPLE, Gateway
from tests.gateway.test_signing import send

PERSONAL = ("id_card", "full_name", "mobile", "address")
CLEAR_VALUES = {name: [person[name] for person in PEOPLE] for name in PERSONAL}


@st.composite
def grants(draw: st.DrawFn) -> tuple[list[str], list[str]]:
    """Granted fields, and the personal ones among them approved in clear."""
    fields = draw(st.lists(st.sampled_from(NAMES), min_size=1, unique=True))
    personal = [name for name in fields if name in PERSONAL]
    clear = draw(st.lists(st.sampled_from(personal), unique=True)) if personal else []
    return fields, clear


requests = st.fixed_dictionaries(
    {
        "fields": st.one_of(st.none(), st.lists(st.sampled_from(NAMES), min_size=1, unique=True)),
        "format": st.sampled_from(["json", "csv"]),
        "limit": st.sampled_from([3, 25, 500]),
        "region": st.sampled_from([None, "330106", "330200"]),
    }
)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(grant=grants(), asks=st.lists(requests, min_size=1, max_size=3), region=st.booleans())
def test_no_answer_carries_a_value_not_granted_in_clear(
    gateway: Gateway,
    grant: tuple[list[str], list[str]],
    asks: list[dict[str, object]],
    region: bool,
) -> None:
    fields, clear = grant
    # each example supersedes the previous grant of the same consumer
    gateway.grant(
        "hz_police_app" if region else "zj_health_app",
        fields=fields,
        clear_fields=clear,
        rights=["read", "verify"],
        decision={"clear_fields": clear, "requests_per_second": 10_000},
    )
    consumer = "hz_police_app" if region else "zj_health_app"
    secret = [value for name in PERSONAL if name not in clear for value in CLEAR_VALUES[name]]
    granted_clear = {name for name in fields if name not in PERSONAL or name in clear}
    for ask in asks:
        params = [(name, value) for name, value in ask.items() if value is not None]
        params = [
            (name, ",".join(value) if isinstance(value, list) else str(value))
            for name, value in params
            if name != "region" or "region" in granted_clear
        ]
        answer = send(gateway, consumer, params=params)
        body = answer.content.decode()
        assert [value for value in secret if value in body] == []
        # without fields asked, the grant's fields come in the resource's order
        asked = ask["fields"] or [name for name in NAMES if name in fields]
        if answer.status_code == 200:
            assert set(asked) <= set(fields)
            if ask["format"] == "json":
                for row in answer.json()["data"]:
                    assert list(row) == list(asked)
                    for name in set(asked) & set(PERSONAL):
                        shown_clear = row[name] in CLEAR_VALUES[name]
                        assert shown_clear == (name in clear), (name, row[name])
        else:
            assert answer.status_code == 403, body
            assert not set(asked) <= set(fields)
    # a verification answers a yes or a no, and nothing else
    person = PEOPLE[0]
    attributes = {name: person[name] for name in fields[:3]}
    verdict = gateway.client(consumer).verify(CODE, attributes)
    assert verdict in (True, False)
