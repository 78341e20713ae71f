"""Configuration: `config.yaml` plus environment overrides, loaded once into frozen pydantic settings.

This module owns the mapping from documented config keys to typed settings and the environment variable
that overrides each deployment setting, declared on each field with `setting(...)`. pydantic-settings merges
two sources, the environment first: `_EnvSource` reads only the variables named on the fields (they follow
no prefix or nesting scheme), `_FileSource` reads the YAML file. Both make relative paths relative to the
config file's folder; pydantic converts the values, and `load_config` turns its errors into `ConfigError`
naming the config key or the environment variable. The bot token is deliberately not part of `Config`: it is
read from `TELEGRAM_BOT_TOKEN` by `bot_token()` only, so it can never be written to a config file or printed
with the settings.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic.fields import FieldInfo
from pydantic_core import ErrorDetails
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG = PROJECT_ROOT / "config.yaml"
TOKEN_ENV = "TELEGRAM_BOT_TOKEN"
# Telegram tokens look like 123456789:AA...; tests use short secrets such as 123456:TEST.
TOKEN_RE = re.compile(r"^\d{1,20}:[A-Za-z0-9_-]{1,100}$")
# A database URL starts with dialect[+driver]:// (SQLAlchemy's pattern); a setting without :// is a file path.
_URL_RE = re.compile(r"[\w+]+://")


class ConfigError(Exception):
    """A config file or environment value that cannot be used; the message says which and why."""


def setting(default: Any, env: str, *, secret: bool = False, path: bool = False) -> Any:
    """A field overridden by the environment variable `env`. A secret is read only from there (refused in the
    file, left out of repr and error messages); a relative `path` is relative to the config file's folder."""
    return Field(default, repr=not secret, json_schema_extra={"env": env, "secret": secret, "path": path})


def _meta(field: FieldInfo | None) -> dict[str, Any]:
    extra = field.json_schema_extra if field else None
    return extra if isinstance(extra, dict) else {}


def _comma_separated(value: Any) -> Any:
    """'5, 7' (how BOT_ADMINS holds a list) -> ['5', '7']; anything else is left to validation."""
    return [item.strip() for item in value.split(",") if item.strip()] if isinstance(value, str) else value


def _database(value: str) -> str:
    if not value.strip():
        raise ValueError("expected the path of the SQLite file or a database URL, got nothing")
    if "://" in value and not _URL_RE.match(value):
        raise ValueError(
            "expected the path of the SQLite file or a database URL starting with dialect+driver:// "
            "(like sqlite+aiosqlite:///data/bot.sqlite3 or postgresql+asyncpg://bot@db.example.org/bot)"
        )
    return value


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", coerce_numbers_to_str=True, validate_default=True)

    @field_validator("*", mode="before")
    @classmethod
    def _numbers_are_not_booleans(cls, value: Any, info: ValidationInfo) -> Any:
        if isinstance(value, bool) and cls.model_fields[info.field_name or ""].annotation in (int, float):
            raise ValueError("expected a number, not true or false")
        return value


class WebhookConfig(_Section):
    listen: str = setting("0.0.0.0", "BOT_WEBHOOK_LISTEN")
    port: int = setting(8443, "BOT_WEBHOOK_PORT")
    url: str = setting("", "BOT_WEBHOOK_URL")
    secret_token: str = setting("", "BOT_WEBHOOK_SECRET", secret=True)


class TelegramConfig(_Section):
    api_base_url: str = setting("https://api.telegram.org/bot", "TELEGRAM_API_BASE_URL")
    mode: str = setting("polling", "BOT_MODE")
    poll_timeout: int = setting(30, "BOT_POLL_TIMEOUT")
    webhook: WebhookConfig = Field(default_factory=WebhookConfig)


class DigestConfig(_Section):
    month: int = setting(1, "BOT_DIGEST_MONTH")
    day: int = setting(1, "BOT_DIGEST_DAY")
    time: str = setting("10:00", "BOT_DIGEST_TIME")
    timezone: str = setting("Europe/Moscow", "BOT_DIGEST_TIMEZONE")
    grace_days: float = setting(7, "BOT_DIGEST_GRACE_DAYS")


class BroadcastConfig(_Section):
    rate_per_second: float = setting(30, "BOT_BROADCAST_RATE")
    per_chat_interval: float = setting(1.0, "BOT_BROADCAST_PER_CHAT_INTERVAL")
    concurrency: int = setting(16, "BOT_BROADCAST_CONCURRENCY")
    max_attempts: int = setting(4, "BOT_BROADCAST_MAX_ATTEMPTS")


class ReloadConfig(_Section):
    interval: float = setting(2.0, "BOT_RELOAD_INTERVAL")


class LoggingConfig(_Section):
    level: str = setting("INFO", "BOT_LOG_LEVEL")
    log_message_text: bool = setting(False, "BOT_LOG_MESSAGE_TEXT")
    record_user_ids: bool = setting(False, "BOT_RECORD_USER_IDS")


class PlaygroundConfig(_Section):
    host: str = setting("127.0.0.1", "BOT_PLAYGROUND_HOST")
    port: int = setting(8080, "BOT_PLAYGROUND_PORT")


# The file and environment `load_config` is reading; outside it, Config(...) reads neither.
_LOADING: ContextVar[tuple[Path, Mapping[str, str]] | None] = ContextVar("bot_config_loading", default=None)


class Config(BaseSettings):
    model_config = SettingsConfigDict(frozen=True, extra="forbid", coerce_numbers_to_str=True)

    knowledge_dir: Path = setting(PROJECT_ROOT / "knowledge", "BOT_KNOWLEDGE_DIR", path=True)
    corpus_dir: Path = setting(PROJECT_ROOT / "corpus", "BOT_CORPUS_DIR", path=True)
    # The SQLite file's path (absolute once loaded) or an SQLAlchemy URL; `database_url` gives the URL to open.
    database: Annotated[str, AfterValidator(_database)] = setting(
        str(PROJECT_ROOT / "data" / "bot.sqlite3"), "BOT_DATABASE", path=True
    )
    admins: Annotated[tuple[int, ...], BeforeValidator(_comma_separated)] = setting((), "BOT_ADMINS")
    telegram: TelegramConfig = Field(default_factory=TelegramConfig)
    digest: DigestConfig = Field(default_factory=DigestConfig)
    broadcast: BroadcastConfig = Field(default_factory=BroadcastConfig)
    reload: ReloadConfig = Field(default_factory=ReloadConfig)
    logging: LoggingConfig = Field(default_factory=LoggingConfig)
    playground: PlaygroundConfig = Field(default_factory=PlaygroundConfig)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Keyword arguments, then the environment variables named on the fields, then the file; the last two
        only within `load_config`. pydantic-settings' own environment, .env and secrets sources are not used."""
        loading = _LOADING.get()
        if loading is None:
            return (init_settings,)
        path, environ = loading
        return init_settings, _EnvSource(settings_cls, path, environ), _FileSource(settings_cls, path)


def _section_model(field: FieldInfo) -> type[BaseModel] | None:
    typ = field.annotation
    return typ if isinstance(typ, type) and issubclass(typ, BaseModel) else None


def _settings(model: type[BaseModel], prefix: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], FieldInfo]]:
    """(key path, field) of every setting in declaration order, sections flattened."""
    for name, field in model.model_fields.items():
        section = _section_model(field)
        if section:
            yield from _settings(section, (*prefix, name))
        else:
            yield (*prefix, name), field


def _relative(value: Any, field: FieldInfo, base: Path) -> Any:
    """A path setting's relative path joined to `base`; a URL, and every other setting, as given."""
    if not _meta(field).get("path") or isinstance(value, bool) or not isinstance(value, str | int | float):
        return value
    text = str(value)
    return value if not text.strip() or "://" in text else str(base / Path(text).expanduser())


class _Source(PydanticBaseSettingsSource):
    """A source reading for `load_config`: relative paths in it are relative to the config file's folder."""

    def __init__(self, settings_cls: type[BaseSettings], path: Path) -> None:
        super().__init__(settings_cls)
        self.path, self.base = path, path.resolve().parent

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # unused: __call__ produces the whole nested mapping


class _EnvSource(_Source):
    """The environment variable named on each field, e.g. BOT_BROADCAST_RATE for broadcast.rate_per_second.
    An empty variable counts as unset."""

    def __init__(self, settings_cls: type[BaseSettings], path: Path, environ: Mapping[str, str]) -> None:
        super().__init__(settings_cls, path)
        self.environ = environ

    def __call__(self) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for keys, field in _settings(self.settings_cls):
            var = _meta(field).get("env")
            value = self.environ.get(var, "") if var else ""
            if value != "":
                node = values
                for key in keys[:-1]:
                    node = node.setdefault(key, {})
                node[keys[-1]] = _relative(value, field, self.base)
        return values


class _FileSource(_Source):
    """The YAML config file, if it exists: documented keys only, no secrets; a key without a value keeps its default."""

    def __call__(self) -> dict[str, Any]:
        if not self.path.exists():
            return {}
        try:
            raw = yaml.safe_load(self.path.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            raise ConfigError(f"{self.path}: not valid YAML: {exc}") from None
        return self._section(self.settings_cls, raw or {}, "")

    def _section(self, model: type[BaseModel], data: Any, prefix: str) -> dict[str, Any]:
        if not isinstance(data, Mapping):
            where = f"config key {prefix[:-1]}" if prefix else str(self.path)
            raise ConfigError(f"{where}: expected a mapping of keys, got {type(data).__name__}")
        values: dict[str, Any] = {}
        for name, value in data.items():
            field = model.model_fields.get(name)
            if field is None:
                known = ", ".join(model.model_fields)
                raise ConfigError(f"unknown config key {prefix}{name} (known: {known})")
            section = _section_model(field)
            if not section and _meta(field).get("secret"):
                var = _meta(field).get("env")
                raise ConfigError(
                    f"config key {prefix}{name} is a secret: set it in the environment variable {var}, not in a file"
                )
            if value is not None:
                values[name] = (
                    self._section(section, value, f"{prefix}{name}.") if section else _relative(value, field, self.base)
                )
        return values


def _problem(error: ErrorDetails, environ: Mapping[str, str]) -> str:
    """One pydantic error as '<config key or environment variable>: <what is wrong>'."""
    keys: list[str] = []
    model: type[BaseModel] | None = Config
    field: FieldInfo | None = None
    for part in error["loc"]:
        if model is None or not isinstance(part, str) or part not in model.model_fields:
            break
        keys.append(part)
        field = model.model_fields[part]
        model = _section_model(field)
    var = _meta(field).get("env")
    where = f"environment variable {var}" if var and environ.get(var, "") != "" else f"config key {'.'.join(keys)}"
    message = error["msg"].removeprefix("Value error, ")
    # The input is echoed except for secrets and the database (a URL may hold a password).
    if field is not None and model is None and not _meta(field).get("secret") and keys != ["database"]:
        message += f" (got {error['input']!r})"
    return f"{where}: {message}"


def load_config(path: Path | None = None, environ: Mapping[str, str] | None = None) -> Config:
    """Read config.yaml (or `path`, or $BOT_CONFIG) and apply environment overrides."""
    environ = os.environ if environ is None else environ
    path = Path(path or environ.get("BOT_CONFIG") or DEFAULT_CONFIG)
    loading = _LOADING.set((path, environ))
    try:
        config = Config()
    except ValidationError as exc:
        raise ConfigError(_problem(exc.errors()[0], environ)) from None
    finally:
        _LOADING.reset(loading)
    _check(config)
    return config


def _check(config: Config) -> None:
    tg = config.telegram
    if tg.mode not in {"polling", "webhook"}:
        raise ConfigError(f"telegram.mode must be polling or webhook, not {tg.mode!r}")
    if tg.mode == "webhook":
        if not tg.webhook.url.startswith("https://") and not tg.webhook.url.startswith("http://127.0.0.1"):
            raise ConfigError("telegram.webhook.url must be the public https:// URL of the webhook (BOT_WEBHOOK_URL)")
        if not re.fullmatch(r"[A-Za-z0-9_-]{1,256}", tg.webhook.secret_token):
            raise ConfigError("webhook mode needs BOT_WEBHOOK_SECRET: 1-256 characters of A-Z, a-z, 0-9, _ and -")
    if not re.fullmatch(r"\d{1,2}:\d{2}", config.digest.time):
        raise ConfigError(f"digest.time must be HH:MM, not {config.digest.time!r}")


def database_url(database: str | os.PathLike[str]) -> str:
    """The SQLAlchemy URL of a `database` setting: a URL as given; a file path -> sqlite+aiosqlite:///<absolute path>.

    A plain string on purpose: this module stays free of SQLAlchemy (the store parses the URL)."""
    text = os.fspath(database)
    if "://" in text:
        return text
    return f"sqlite+aiosqlite:///{Path(text).expanduser().resolve()}"


def env_overrides() -> list[tuple[str, str]]:
    """(environment variable, config key) for every overridable setting, for docs and tests."""
    return [(var, ".".join(keys)) for keys, field in _settings(Config) if (var := _meta(field).get("env"))]


def bot_token(environ: Mapping[str, str] | None = None) -> str:
    """The bot token from TELEGRAM_BOT_TOKEN; ConfigError (without the value) if missing or malformed."""
    environ = os.environ if environ is None else environ
    token = environ.get(TOKEN_ENV, "").strip()
    if not token:
        raise ConfigError(f"{TOKEN_ENV} is not set: export the token BotFather gave you")
    if not TOKEN_RE.fullmatch(token):
        raise ConfigError(f"{TOKEN_ENV} is malformed: expected digits, a colon and the secret (like 123456:ABC-def)")
    return token
