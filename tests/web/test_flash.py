"""Messages across a redirect: shown once from a signed cookie, never from the URL."""

from __future__ import annotations

from fastapi.testclient import TestClient

from shuzhi.web import flash
from shuzhi.web.flash import COOKIE, Flash
from shuzhi.web.session import COOKIE as COOKIE_SESSION
from tests.conftest import World
from tests.web.support import csrf_of, flashed, login

SECRET = b"a test key of some length"


def saved_department(client: TestClient) -> None:
    """Something that redirects with a flash: a platform admin creates a department."""
    csrf = csrf_of(client.get("/departments").text)
    response = client.post(
        "/departments",
        data={"csrf": csrf, "code": "zj_tyj", "name": "浙江省体育局", "region": "330000"},
        follow_redirects=False,
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/departments"
    assert COOKIE in response.cookies


def test_a_flash_is_shown_once(client: TestClient) -> None:
    login(client, "admin")
    saved_department(client)

    assert flashed(client.get("/departments").text) == "已保存。"
    assert COOKIE not in client.cookies
    assert flashed(client.get("/departments").text) is None  # a reload does not repeat it


def test_a_flash_cookie_is_http_only_same_site_and_short_lived(client: TestClient) -> None:
    login(client, "admin")
    csrf = csrf_of(client.get("/departments").text)
    response = client.post(
        "/departments", data={"csrf": csrf, "code": "Bad Code"}, follow_redirects=False
    )
    header = next(h for h in response.headers.get_list("set-cookie") if h.startswith(COOKIE))
    attributes = {part.strip().split("=")[0].lower(): part for part in header.split(";")}
    assert {"httponly", "samesite", "max-age"} <= set(attributes)
    assert int(attributes["max-age"].split("=")[1]) <= 60
    assert "Bad Code" not in header  # signed and encoded, not the text as such


def test_the_url_puts_no_message_on_a_page(client: TestClient) -> None:
    bait = "系统已迁移，请到 http://evil.example 重新登录"
    for path in ("/login", "/catalog", "/users"):
        if path != "/login":
            login(client, "admin")
        page = client.get(path, params={"error": bait, "flash": bait, "applied": "1/2/3"}).text
        assert bait not in page
        assert flashed(page) is None
        assert "导入完成" not in page


def test_an_unsigned_or_tampered_flash_cookie_shows_nothing(client: TestClient) -> None:
    login(client, "viewer")
    secret = client.app.state.settings.secret()  # type: ignore[attr-defined]
    genuine = flash.encode(secret, Flash("err", "真的消息"))
    payload, signature = genuine.split(".")
    forged = flash.encode(b"not the site's key", Flash("err", "请到 evil.example 登录"))
    other_payload = forged.split(".")[0]

    for value in (forged, f"{other_payload}.{signature}", payload, "err:go to evil.example"):
        client.cookies.set(COOKIE, value, domain="testserver.local")
        page = client.get("/catalog").text
        assert flashed(page) is None, value
        assert "evil.example" not in page
        assert COOKIE not in client.cookies  # a forged cookie is thrown away too

    session = f"{COOKIE_SESSION}={client.cookies.get(COOKIE_SESSION)}"
    raw = f"{session}; {COOKIE}=请到 evil.example.{signature}".encode()
    page = client.get("/catalog", headers={"Cookie": raw}).text
    assert 'action="/logout"' in page  # signed in: the page itself, not the login form
    assert "evil.example" not in page

    client.cookies.set(COOKIE, genuine, domain="testserver.local")
    assert flashed(client.get("/catalog").text) == "真的消息"


def test_a_flash_expires_and_survives_only_its_own_key() -> None:
    value = flash.encode(SECRET, Flash("ok", "已保存。"), now=1_000_000)
    assert flash.decode(SECRET, value, now=1_000_000) == Flash("ok", "已保存。")
    assert flash.decode(SECRET, value, now=1_000_000 + flash.LIFETIME_S) is not None
    assert flash.decode(SECRET, value, now=1_000_001 + flash.LIFETIME_S) is None
    assert flash.decode(b"another key", value, now=1_000_000) is None


def test_a_long_message_is_cut_to_fit_a_cookie() -> None:
    value = flash.encode(SECRET, Flash("err", "错" * 5000))
    assert len(value) < 4000
    shown = flash.decode(SECRET, value)
    assert shown is not None
    assert len(shown.text) == flash.MAX_TEXT and shown.text.endswith("…")


def test_an_htmx_fragment_leaves_the_flash_for_the_page(client: TestClient) -> None:
    login(client, "admin")
    saved_department(client)
    assert 'data-testid="flash"' not in client.get("/catalog/results").text
    assert flashed(client.get("/departments").text) == "已保存。"


def test_a_refusal_is_flashed_as_an_alert(client: TestClient, sqlite_world: World) -> None:
    login(client, "gat_officer")
    csrf = csrf_of(client.get("/catalog").text)
    page = client.post("/catalog/apply", data={"csrf": csrf}, files={"file": ("", b"")})
    assert page.status_code == 200
    assert 'class="flash err" role="alert"' in page.text
    assert flashed(page.text) == "请选择 YAML 文件。"
