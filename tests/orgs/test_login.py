"""Password logins: failures are counted and a run of them locks the login for a while."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from shuzhi.core import clock
from shuzhi.core.errors import Unauthenticated
from shuzhi.core.models import ChangeLog
from shuzhi.orgs import queries
from shuzhi.orgs import service as orgs
from shuzhi.server import create_app
from tests.conftest import PASSWORD, World

START = datetime(2026, 11, 29, 9, 0, tzinfo=UTC)


@pytest.fixture
def at() -> Iterator[list[datetime]]:
    """A pinned clock: tests move it by replacing now[0]."""
    now = [START]
    clock.set_clock(lambda: now[0])
    try:
        yield now
    finally:
        clock.set_clock(None)


def attempt(world: World, password: str, username: str = "viewer") -> orgs.LoginOutcome:
    with world.database.transaction() as session:
        outcome = orgs.login(session, username=username, password=password)
        # read what the outcome says before the session closes
        return orgs.LoginOutcome(
            outcome.user.username if outcome.user else None,  # type: ignore[arg-type]
            outcome.locked_until,
        )


def test_five_wrong_passwords_lock_the_login(world: World, at: list[datetime]) -> None:
    for _ in range(4):
        assert attempt(world, "wrong-1A!").locked_until is None

    fifth = attempt(world, "wrong-1A!")
    assert fifth.user is None
    assert fifth.locked_until == START + timedelta(minutes=15)

    locked = attempt(world, PASSWORD)  # the right password does not help while locked
    assert locked.user is None
    # ...and the words are those of any failure, so a lock does not tell a real user apart
    assert locked.message == attempt(world, PASSWORD, username="nobody").message

    at[0] = START + timedelta(minutes=16)
    assert attempt(world, PASSWORD).user == "viewer"
    with world.database.session() as session:
        account = queries.user(session, "viewer")
        assert (account.failed_logins, account.locked_until) == (0, None)
        assert (
            session.query(ChangeLog).filter_by(action="user.lock", object_id="viewer").count() == 1
        )


def test_a_wrong_password_after_the_lock_ran_out_counts_afresh(
    world: World, at: list[datetime]
) -> None:
    for _ in range(5):
        attempt(world, "wrong-1A!")
    at[0] = START + timedelta(minutes=20)

    again = attempt(world, "wrong-1A!")

    assert (again.user, again.locked_until) == (None, None)


def test_a_success_resets_the_count(world: World, at: list[datetime]) -> None:
    for _ in range(4):
        attempt(world, "wrong-1A!")
    assert attempt(world, PASSWORD).user == "viewer"
    for _ in range(4):
        assert attempt(world, "wrong-1A!").locked_until is None


def test_authenticate_raises_with_the_reason(world: World) -> None:
    with (
        pytest.raises(Unauthenticated, match="wrong username or password"),
        world.database.transaction() as session,
    ):
        orgs.authenticate(session, username="nobody", password=PASSWORD)


def test_the_login_page_says_when_to_try_again(sqlite_world: World, at: list[datetime]) -> None:
    with TestClient(create_app(database=sqlite_world.database)) as client:
        for _ in range(5):
            page = client.post("/login", data={"username": "viewer", "password": "nope-1A!"})
            assert page.status_code == 401
        assert "用户名或密码错误。多次输错后账号将被暂时锁定。" in page.text
        right = client.post(
            "/login", data={"username": "viewer", "password": PASSWORD}, follow_redirects=False
        )
        assert right.status_code == 401


def test_the_login_page_reads_the_same_for_real_and_unknown_users(sqlite_world: World) -> None:
    """A run of wrong passwords locks a real login but never an unknown name; the page
    must not show the difference, or it tells which usernames exist."""
    with TestClient(create_app(database=sqlite_world.database)) as client:
        pages = {}
        for username in ("viewer", "nobody_here"):
            for _ in range(6):
                page = client.post(
                    "/login", data={"username": username, "password": "Wrong-pass-1"}
                )
            pages[username] = page
    assert pages["viewer"].status_code == pages["nobody_here"].status_code
    assert ("UTC" in pages["viewer"].text) == ("UTC" in pages["nobody_here"].text)


def test_a_new_password_ends_the_sessions_of_the_old_one(world: World) -> None:
    with world.database.transaction() as session:
        account = queries.user(session, "viewer")
        cookie = orgs.start_session(session, account=account)
    with world.database.transaction() as session:
        orgs.set_password(
            session, actor=world.actors["viewer"], username="viewer", password="Brand-New-Pass-9"
        )
    with (
        pytest.raises(Unauthenticated, match="revoked"),
        world.database.session() as session,
    ):
        orgs.resolve_token(session, plaintext=cookie, kind="session")


def test_nobody_deactivates_themselves(world: World) -> None:
    from shuzhi.core.errors import ValidationFailed

    with pytest.raises(ValidationFailed), world.database.transaction() as session:
        orgs.set_active(session, actor=world.actors["admin"], username="admin", active=False)
