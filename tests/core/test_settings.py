"""Settings: nested environment variables, the TOML file below them, and the secret key."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from shuzhi.core.errors import ConfigurationError
from shuzhi.core.settings import Environment, get_settings, load_settings, reset_settings


def write_config(tmp_path: Path, text: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "shuzhi.toml"
    path.write_text(text, encoding="utf-8")
    monkeypatch.setenv("SHUZHI_CONFIG", str(path))
    return path


def test_nested_environment_variables_reach_their_groups(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHUZHI_DATABASE__URL", "postgresql+psycopg://u:p@db.example/shuzhi")
    monkeypatch.setenv("SHUZHI_SERVER__PORT", "9123")
    monkeypatch.setenv("SHUZHI_DATA_DIR", str(tmp_path / "elsewhere"))

    settings = load_settings()

    assert settings.database.url == "postgresql+psycopg://u:p@db.example/shuzhi"
    assert settings.database_url == "postgresql+psycopg://u:p@db.example/shuzhi"
    assert settings.server.port == 9123
    assert settings.data_dir == tmp_path / "elsewhere"


def test_without_a_database_url_the_store_is_sqlite_in_the_data_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHUZHI_DATA_DIR", str(tmp_path / "d"))

    url = load_settings().database_url

    assert url == f"sqlite:///{(tmp_path / 'd' / 'shuzhi.db').resolve()}"


def test_cached_settings_follow_the_environment_after_a_reset(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SHUZHI_SERVER__PORT", "8100")
    reset_settings()
    assert get_settings().server.port == 8100

    monkeypatch.setenv("SHUZHI_SERVER__PORT", "8200")
    assert get_settings().server.port == 8100, "cached until reset"
    reset_settings()
    assert get_settings().server.port == 8200


def test_toml_file_is_read_and_the_environment_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_config(
        tmp_path,
        'environment = "development"\n'
        "[database]\n"
        'url = "sqlite:///from-file.db"\n'
        "[server]\n"
        'host = "0.0.0.0"\n'
        "port = 9000\n"
        "[security]\n"
        "token_days = 30\n",
        monkeypatch,
    )
    monkeypatch.setenv("SHUZHI_SERVER__PORT", "9100")

    settings = load_settings()

    assert settings.database.url == "sqlite:///from-file.db"
    assert settings.security.token_days == 30
    # the environment overrides one key of a group and leaves the file's other keys alone
    assert settings.server.port == 9100
    assert settings.server.host == "0.0.0.0"


def test_config_naming_a_missing_file_is_a_configuration_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = tmp_path / "nowhere.toml"
    monkeypatch.setenv("SHUZHI_CONFIG", str(missing))

    with pytest.raises(ConfigurationError, match="SHUZHI_CONFIG") as caught:
        load_settings()
    assert str(missing) in caught.value.detail


def test_config_file_that_is_not_toml_is_a_configuration_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_config(tmp_path, '[server]\nport = "unterminated\n', monkeypatch)

    with pytest.raises(ConfigurationError) as caught:
        load_settings()
    assert str(path) in caught.value.detail


def test_unknown_top_level_key_in_the_file_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_config(tmp_path, "dta_dir = '/tmp/x'\n", monkeypatch)

    with pytest.raises(ConfigurationError, match="dta_dir"):
        load_settings()


@pytest.mark.parametrize(
    ("variable", "value", "setting"),
    [
        ("SHUZHI_SERVER__PORT", "70000", "server.port"),
        ("SHUZHI_SERVER__PORT", "eighty", "server.port"),
        ("SHUZHI_ENVIRONMENT", "staging", "environment"),
        ("SHUZHI_LOG__LEVEL", "LOUD", "log.level"),
        ("SHUZHI_SECURITY__PASSWORD_MIN_LENGTH", "4", "security.password_min_length"),
    ],
)
def test_invalid_value_names_the_setting(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, setting: str
) -> None:
    monkeypatch.setenv(variable, value)

    with pytest.raises(ConfigurationError) as caught:
        load_settings()
    assert f"setting {setting}:" in caught.value.detail


def test_invalid_value_in_the_file_names_the_setting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_config(tmp_path, "[database]\npool_size = 0\n", monkeypatch)

    with pytest.raises(ConfigurationError, match=r"setting database\.pool_size:"):
        load_settings()


def test_production_without_a_secret_key_refuses(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHUZHI_ENVIRONMENT", "production")
    settings = load_settings()
    assert settings.environment is Environment.production

    with pytest.raises(ConfigurationError, match="SHUZHI_SECURITY__SECRET_KEY"):
        settings.secret()
    assert not (settings.data_dir / "secret_key").exists(), "no key is generated in production"


def test_production_uses_the_configured_secret_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHUZHI_ENVIRONMENT", "production")
    monkeypatch.setenv("SHUZHI_SECURITY__SECRET_KEY", "a-long-configured-secret")

    settings = load_settings()

    assert settings.secret() == b"a-long-configured-secret"
    assert "a-long-configured-secret" not in repr(settings), "the key is never printed"


def test_development_generates_a_private_secret_once(isolated_settings: Path) -> None:
    data_dir = isolated_settings
    assert not data_dir.exists()

    first = load_settings().secret()

    key_file = data_dir / "secret_key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert len(first) >= 32
    assert key_file.read_text().strip().encode() == first
    assert load_settings().secret() == first, "a new settings object reuses the stored key"


def test_development_secrets_differ_between_data_dirs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHUZHI_DATA_DIR", str(tmp_path / "one"))
    one = load_settings().secret()
    monkeypatch.setenv("SHUZHI_DATA_DIR", str(tmp_path / "two"))
    two = load_settings().secret()

    assert one != two


def test_an_unknown_schedule_time_zone_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHUZHI_LAKE__SCHEDULE_TIMEZONE", "Mars/Base")
    with pytest.raises(ConfigurationError, match=r"lake\.schedule_timezone.*not a time zone"):
        load_settings()
