"""`shuzhi inbox` and `shuzhi webhooks`, driven as an operator and a user drive them."""

from __future__ import annotations

from shuzhi.notify import service
from shuzhi.notify.rules import verify_signature
from tests.cli.test_cli import assert_one_line_error, cli, cli_json, run
from tests.conftest import World
from tests.notify.data import publish
from tests.notify.receiver import receiving


def _tell(world: World, user: str, key: str) -> None:
    with world.database.transaction() as session:
        service.notify(
            session,
            user_ids=[world.actors[user].id],
            key=key,
            kind="problem.assigned",
            title=f"问题 {key} 已交办",
            link="/problems/7",
        )


def test_a_user_reads_their_inbox(sqlite_world: World) -> None:
    for key in ("a", "b", "c"):
        _tell(sqlite_world, "viewer", key)
    _tell(sqlite_world, "auditor", "a")
    viewer = {"SHUZHI_TOKEN": sqlite_world.tokens["viewer"]}
    listed = cli_json("inbox", "list", env=viewer)
    assert (listed["count"], listed["unread"]) == (3, 3)
    first = listed["data"][0]["id"]
    assert cli_json("inbox", "read", str(first), env=viewer) == {"marked": 1, "unread": 2}
    assert cli_json("inbox", "read", str(first), env=viewer) == {"marked": 0, "unread": 2}
    unread = cli_json("inbox", "list", "--unread", env=viewer)
    assert first not in [item["id"] for item in unread["data"]] and unread["count"] == 2
    table = cli("inbox", "list", env=viewer).stdout
    assert "问题 a 已交办" in table and "3 of 3; 2 unread" in table
    assert cli("inbox", "read", "--all", env=viewer).stdout == "2 marked read; 0 unread\n"
    # the local operator reads a user's inbox by naming the user
    assert cli_json("inbox", "list", "--as", "auditor")["unread"] == 1
    assert cli_json("inbox", "read", "--all", "--as", "auditor") == {"marked": 1, "unread": 0}


def test_inbox_mistakes_are_one_line(sqlite_world: World) -> None:
    _tell(sqlite_world, "auditor", "a")
    viewer = sqlite_world.tokens["viewer"]
    assert_one_line_error(run("inbox", "list"), "no inbox", "--as")
    assert_one_line_error(
        run("inbox", "list", "--as", "auditor", SHUZHI_TOKEN=viewer), "only their own inbox"
    )
    assert_one_line_error(run("inbox", "read", "1", SHUZHI_TOKEN=viewer), "no message 1")
    assert_one_line_error(run("inbox", "read", "--as", "viewer"), "a message id or --all")


def test_an_operator_registers_tests_and_removes_a_webhook(sqlite_world: World) -> None:
    with receiving() as endpoint:
        issued = cli_json("webhooks", "add", "dudu", "--url", endpoint.url, "--events", "*")
        assert issued["name"] == "dudu" and len(issued["secret"]) >= 40
        listed = cli_json("webhooks", "list")
        assert [item["name"] for item in listed["data"]] == ["dudu"]
        assert "secret" not in listed["data"][0] and issued["secret"] not in str(listed)

        tested = cli_json("webhooks", "test", "dudu")
        assert (tested["state"], tested["event"], tested["last_status"]) == (
            "delivered",
            "notify.test",
            200,
        )
        (got,) = endpoint.received
        assert verify_signature(
            issued["secret"],
            got.headers["x-shuzhi-timestamp"],
            got.body,
            got.headers["x-shuzhi-signature"],
        )

        publish(sqlite_world.database)
        assert cli_json("webhooks", "deliver") == {
            "delivered": 1,
            "retrying": 0,
            "failed": 0,
            "handled": 1,
        }
        shown = cli_json("webhooks", "deliveries", "dudu")
        assert shown["count"] == 2
        assert [item["event"] for item in shown["data"]] == ["problem.assigned", "notify.test"]
        assert "problem.assigned" in cli("webhooks", "deliveries", str(issued["id"])).stdout

        rotated = cli_json("webhooks", "rotate", "dudu")
        assert rotated["secret"] != issued["secret"]
        assert rotated["old_secret_until"] is not None
        assert "The old secret signs beside it until" in cli("webhooks", "rotate", "dudu").stdout
        assert cli_json("webhooks", "disable", "dudu")["active"] is False
        assert cli_json("webhooks", "enable", "dudu")["active"] is True
        assert cli_json("webhooks", "remove", "dudu") == {
            "id": issued["id"],
            "name": "dudu",
            "removed": True,
        }
        assert cli_json("webhooks", "list")["count"] == 0


def test_webhook_mistakes_are_one_line(sqlite_world: World) -> None:
    assert_one_line_error(
        run("webhooks", "add", "dudu", "--url", "ftp://hooks.example.org/"), "http"
    )
    assert_one_line_error(
        run(
            "webhooks",
            "add",
            "dudu",
            "--url",
            "https://evil.example.org/",
            SHUZHI_LOOP__WEBHOOK_HOSTS='["hooks.example.org"]',
        ),
        "allow-list",
    )
    assert_one_line_error(
        run("webhooks", "list", SHUZHI_TOKEN=sqlite_world.tokens["gat_officer"]),
        "may not notify.webhooks",
    )
    assert_one_line_error(run("webhooks", "rotate", "nobody"), "no webhook 'nobody'")
