"""One settings object of nested groups.

Environment variables follow the path: ``SHUZHI_DATABASE__URL`` sets ``database.url``;
top-level fields are ``SHUZHI_DATA_DIR`` and ``SHUZHI_ENVIRONMENT``. An optional TOML
file named by ``SHUZHI_CONFIG`` sits below the environment in precedence.
"""

from __future__ import annotations

import os
import secrets
import tomllib
from datetime import date
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, SecretStr, ValidationError
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from shuzhi.core.calendar import NATIONAL_HOLIDAYS, NATIONAL_WORKDAYS
from shuzhi.core.errors import ConfigurationError

CONFIG_ENV = "SHUZHI_CONFIG"


class Environment(StrEnum):
    development = "development"
    production = "production"


class Group(BaseModel):
    """A settings group; a misspelt key is an error, not silently ignored."""

    model_config = ConfigDict(extra="forbid")


class DatabaseSettings(Group):
    url: str | None = Field(
        None,
        description="SQLAlchemy URL of the metadata store. Empty: SQLite at DATA_DIR/shuzhi.db. "
        "PostgreSQL: postgresql+psycopg://user:password@host/db.",
    )
    echo: bool = Field(False, description="Log every SQL statement (debugging only).")
    busy_timeout_ms: int = Field(
        10_000, ge=0, description="SQLite: how long a writer waits for the lock before failing."
    )
    pool_size: int = Field(5, ge=1, description="PostgreSQL: connections kept in the pool.")
    checkpoint_seconds: float = Field(
        0.5,
        ge=0,
        description="SQLite, in the server: how often a background thread copies the "
        "write-ahead log into the database, so that no request's commit does it. "
        "0: commits do it, as SQLite does by default.",
    )


class ServerSettings(Group):
    host: str = Field("127.0.0.1", description="Address `shuzhi serve` binds to.")
    port: int = Field(8000, ge=1, le=65535, description="Port `shuzhi serve` listens on.")


class SecuritySettings(Group):
    secret_key: SecretStr | None = Field(
        None,
        description="Key that signs cockpit sessions and form tokens. Required in production; "
        "in development one is generated once and kept in DATA_DIR/secret_key.",
    )
    session_hours: int = Field(12, ge=1, description="Cockpit session lifetime.")
    token_days: int = Field(90, ge=1, description="Default lifetime of a new API token.")
    password_min_length: int = Field(10, ge=8, description="Shortest password accepted.")
    argon2_time_cost: int = Field(3, ge=1, description="argon2id iterations.")
    argon2_memory_kib: int = Field(65_536, ge=8, description="argon2id memory per hash, KiB.")
    argon2_parallelism: int = Field(4, ge=1, description="argon2id lanes.")
    login_max_failures: int = Field(
        5, ge=1, description="Wrong passwords in a row that lock a login."
    )
    login_lockout_minutes: int = Field(15, ge=1, description="How long a locked login waits.")
    secure_cookies: bool = Field(
        False,
        description="Mark cookies Secure (served over HTTPS); always on in production.",
    )


class WebSettings(Group):
    default_locale: Literal["zh-CN", "en"] = Field(
        "zh-CN", description="Cockpit language when the user has not chosen one."
    )


def _time_zone(name: str) -> str:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"{name!r} is not a time zone (such as Asia/Shanghai)") from None
    return name


class LakeSettings(Group):
    snapshots_kept: int = Field(
        5, ge=1, description="Snapshots kept per resource; older ones are deleted after a batch."
    )
    upload_max_mb: int = Field(
        512, ge=1, description="Largest file the API and the cockpit accept for ingestion, MiB."
    )
    memory_limit: str = Field(
        "4GB",
        description="DuckDB memory limit for ingestion and queries; beyond it DuckDB "
        "spills to DATA_DIR/lake/.tmp.",
    )
    threads: int | None = Field(None, ge=1, description="DuckDB threads; empty: one per core.")
    query_row_limit: int = Field(
        10_000, ge=1, description="Most rows `shuzhi lake query` and the API return at once."
    )
    source_roots: list[Path] = Field(
        default_factory=list,
        description="Directories a registered file source may read from (besides "
        "DATA_DIR/inbox); a path elsewhere is refused.",
    )
    schedule_timezone: Annotated[str, AfterValidator(_time_zone)] = Field(
        "Asia/Shanghai", description="Time zone of source schedules (cron expressions)."
    )
    pull_retries: int = Field(
        5, ge=0, description="Retries of a failed pull before it waits for its next time."
    )
    batch_timeout_hours: int = Field(
        24,
        ge=1,
        description="A batch marked running on another host for longer than this "
        "is taken for dead by recovery (on the same host, the lock tells).",
    )
    pull_lease_minutes: int = Field(
        120,
        ge=1,
        description="How long a worker's claim on a pull lasts before another "
        "worker may take it over (its process having died).",
    )


MaskMode = Literal["clear", "masked", "token", "hidden"]


def _never_clear(modes: dict[str, dict[str, MaskMode]]) -> dict[str, dict[str, MaskMode]]:
    for grade, kinds in modes.items():
        for kind, mode in kinds.items():
            if mode == "clear":
                raise ValueError(
                    f"{grade}.{kind} cannot be clear by default: a personal field is sent in "
                    "clear only where its provider approved it"
                )
    return modes


_DEFAULT_MASKING: dict[str, dict[str, MaskMode]] = {
    "L1": {},
    "L2": {},
    "L3": {"id_card": "token", "bank_card": "hidden", "other": "hidden"},
}


class GatewaySettings(Group):
    clock_skew_seconds: int = Field(
        90,
        ge=1,
        le=3600,
        description="How far a signed call's X-Shuzhi-Date may be from the server's clock; "
        "a nonce is remembered for twice as long.",
    )
    threads: int = Field(
        4,
        ge=1,
        description="Gateway calls a server worker works on at once (a service call waiting "
        "for its upstream does not count); more wait their turn. The work is CPU-bound: "
        "more threads than cores only make each call wait longer for the interpreter and "
        "for the database writer.",
    )
    page_size_default: int = Field(50, ge=1, description="Rows in a page unless asked.")
    page_size_max: int = Field(500, ge=1, description="Most rows a page may ask for.")
    decision_days: int = Field(
        5,
        ge=1,
        description="Working days a provider has to decide a conditional application "
        "before it escalates to the platform operator.",
    )
    credential_overlap_hours: int = Field(
        24,
        ge=0,
        description="How long the old secret keeps working after a credential is rotated.",
    )
    requests_per_second: int = Field(
        20, ge=1, description="Default request rate of a new grant, per second."
    )
    rows_per_day: int = Field(
        100_000, ge=1, description="Default rows a new grant may read per day."
    )
    grant_days: int = Field(365, ge=1, description="Default validity of an application.")
    timezone: Annotated[str, AfterValidator(_time_zone)] = Field(
        "Asia/Shanghai", description="Time zone of working hours and of daily usage."
    )
    service_hosts: list[str] = Field(
        default_factory=list,
        description="Hosts (host or host:port) a department service may be registered on; "
        "the proxy calls nothing else. Empty: no service can be registered.",
    )
    working_hours: tuple[int, int] = Field(
        (8, 20),
        description="First and last hour of the working day; calls outside it, or on a "
        "weekend, count towards the off-hours flag.",
    )
    flag_distinct_lookups: int = Field(
        200,
        ge=1,
        description="Distinct records one consumer may look up (filters and verifications) "
        "in a day before the auditor's page flags it.",
    )
    flag_regular_calls: int = Field(
        24,
        ge=3,
        description="Calls in a day without a purpose, at near-constant intervals, that make "
        "the machine-regular flag.",
    )
    flag_off_hours_calls: int = Field(
        20, ge=1, description="Calls outside working hours in a day that make the flag."
    )
    masking: Annotated[dict[str, dict[str, MaskMode]], AfterValidator(_never_clear)] = Field(
        default_factory=lambda: {grade: dict(kinds) for grade, kinds in _DEFAULT_MASKING.items()},
        description="Mode of a personal field by resource grade and PII kind, as JSON "
        '({"L3": {"id_card": "token"}}); a kind not listed is masked. A provider may '
        "approve a field in clear; L4 resources never leave.",
    )


class BrainSettings(Group):
    engine: Literal["duckdb", "spark"] = Field(
        "duckdb", description="Engine that computes indicators unless a command names one."
    )
    spark_master: str = Field(
        "local[2]", description="Spark master URL (local[N] or a cluster's spark:// URL)."
    )
    spark_driver_memory: str = Field("2g", description="Memory of the Spark driver.")
    spark_shuffle_partitions: int = Field(
        4, ge=1, description="Partitions of a Spark shuffle; a few per core on one machine."
    )
    results_kept: int = Field(
        5, ge=1, description="Snapshots of the indicator results kept in the lake."
    )
    forecast_horizon: int = Field(
        12, ge=1, le=60, description="Periods ahead each indicator series is forecast."
    )
    forecast_jobs: int = Field(
        2, ge=1, description="Processes that share the forecasts; one per core is right."
    )


class CalendarSettings(Group):
    timezone: Annotated[str, AfterValidator(_time_zone)] = Field(
        "Asia/Shanghai", description="Time zone of dates: today, deadlines, working days."
    )
    holidays: list[date] = Field(
        default_factory=lambda: list(NATIONAL_HOLIDAYS),
        description="Public holidays that are not working days (ISO dates, as JSON); "
        "the national schedule of 2025 and 2026 ships as the default.",
    )
    workdays: list[date] = Field(
        default_factory=lambda: list(NATIONAL_WORKDAYS),
        description="Weekend days that are working days (调休上班), as JSON ISO dates.",
    )


class LoopSettings(Group):
    problem_days: int = Field(
        20,
        ge=1,
        description="Working days a problem is given when it is assigned without "
        "a deadline (a warning's problem, an import row without one).",
    )
    warn_days: int = Field(
        3,
        ge=0,
        description="Working days before a deadline from which an open item's light turns "
        "黄 and its people are reminded.",
    )
    escalate_days: int = Field(
        5,
        ge=1,
        description="Working days overdue after which an item escalates one level up "
        "(the responsible department's parent), and again after as many more.",
    )
    evidence_max_mb: int = Field(20, ge=1, description="Largest evidence file accepted.")
    webhook_attempts: int = Field(
        6, ge=1, description="Deliveries of a webhook event tried before it is given up."
    )
    webhook_backoff_seconds: int = Field(
        30, ge=1, description="Wait before the second delivery; doubled after each failure."
    )
    webhook_timeout_seconds: float = Field(
        5.0, gt=0, description="How long one webhook delivery may take."
    )
    webhook_overlap_hours: int = Field(
        24,
        ge=0,
        description="How long a rotated webhook secret keeps signing deliveries beside the "
        "new one (each delivery then carries both signatures).",
    )
    webhook_hosts: list[str] = Field(
        default_factory=list,
        description="Hosts (host or host:port) webhooks may be registered for; empty: any.",
    )


class LogSettings(Group):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO", description="Log level.")
    format: Literal["auto", "json", "console"] = Field(
        "auto", description="auto: JSON lines unless stderr is a terminal."
    )


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="SHUZHI_", env_nested_delimiter="__", extra="forbid"
    )

    environment: Environment = Field(
        Environment.development,
        description="development or production; production refuses to start without secrets.",
    )
    data_dir: Path = Field(
        Path("var"), description="Where the embedded database, the lake and files live."
    )
    database: DatabaseSettings = DatabaseSettings()
    server: ServerSettings = ServerSettings()
    security: SecuritySettings = SecuritySettings()
    web: WebSettings = WebSettings()
    lake: LakeSettings = LakeSettings()
    gateway: GatewaySettings = GatewaySettings()
    brain: BrainSettings = BrainSettings()
    calendar: CalendarSettings = CalendarSettings()
    loop: LoopSettings = LoopSettings()
    log: LogSettings = LogSettings()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources = [init_settings, env_settings]
        config_file = os.environ.get(CONFIG_ENV)
        if config_file:
            if not Path(config_file).is_file():
                raise ConfigurationError(f"{CONFIG_ENV} names {config_file}, which is not a file")
            try:
                sources.append(TomlConfigSettingsSource(settings_cls, toml_file=config_file))
            except tomllib.TOMLDecodeError as exc:
                raise ConfigurationError(
                    f"{CONFIG_ENV} names {config_file}, which is not valid TOML: {exc}"
                ) from None
        return tuple(sources)

    @property
    def database_url(self) -> str:
        if self.database.url:
            return self.database.url
        return f"sqlite:///{(self.data_dir / 'shuzhi.db').resolve()}"

    @property
    def lake_dir(self) -> Path:
        return (self.data_dir / "lake").resolve()

    @property
    def inbox_dir(self) -> Path:
        return (self.data_dir / "inbox").resolve()

    def secret(self) -> bytes:
        """The signing key; generated and kept in the data directory in development only."""
        if self.security.secret_key is not None:
            return self.security.secret_key.get_secret_value().encode()
        if self.environment is Environment.production:
            raise ConfigurationError(
                "SHUZHI_SECURITY__SECRET_KEY must be set when SHUZHI_ENVIRONMENT=production"
            )
        return _development_secret((self.data_dir / "secret_key").resolve())


@lru_cache(maxsize=8)
def _development_secret(path: Path) -> bytes:
    """Read once per process: every page render and form check asks for the key."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # another process made it first; read theirs
        else:
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_urlsafe(48))
    return path.read_text().strip().encode()


def load_settings(**overrides: object) -> Settings:
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise ConfigurationError(f"setting {where}: {first['msg']}") from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return load_settings()


def reset_settings() -> None:
    """Forget the cached settings, so the next call reads the environment again."""
    get_settings.cache_clear()


def _env_name(path: list[str]) -> str:
    head, *rest = path
    return "SHUZHI_" + head.upper() + "".join("__" + part.upper() for part in rest)


def reference_markdown() -> str:
    """The settings reference in docs/, generated from the settings classes themselves."""
    lines = [
        "# Settings reference",
        "",
        "<!-- generated by `shuzhi docs generate`; a test fails when it drifts -->",
        "",
        "Every setting is read from the environment variable shown, or from the TOML file",
        f"named by `{CONFIG_ENV}` (group tables such as `[database]`). The environment wins.",
        "",
    ]

    def walk(model: type[BaseModel], path: list[str], title: str) -> None:
        rows = []
        nested = []
        for name, field in model.model_fields.items():
            annotation = field.annotation
            if isinstance(annotation, type) and issubclass(annotation, BaseModel):
                nested.append((name, annotation))
                continue
            default = field.get_default(call_default_factory=True)
            shown = "(none)" if default is None else f"`{getattr(default, 'value', default)}`"
            rows.append(f"| `{_env_name([*path, name])}` | {shown} | {field.description or ''} |")
        if rows:
            lines.extend(
                [f"## {title}", "", "| variable | default | meaning |", "|---|---|---|", *rows, ""]
            )
        for name, sub in nested:
            walk(sub, [*path, name], f"`{name}`")

    walk(Settings, [], "Top level")
    return "\n".join(lines)
