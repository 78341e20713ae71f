"""Configuration: `config.yaml` plus environment overrides, loaded once into frozen dataclasses.

This module owns the mapping from documented config keys to typed settings and the environment variable
that overrides each deployment setting. The bot token is deliberately not part of `Config`: it is read
from `TELEGRAM_BOT_TOKEN` by `bot_token()` only, so it can never be written to a config file or printed
with the settings.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG = PROJECT_ROOT / "config.yaml"
TOKEN_ENV = "TELEGRAM_BOT_TOKEN"
# Telegram tokens look like 123456789:AA...; tests use short secrets such as 123456:TEST.
TOKEN_RE = re.compile(r"^\d{1,20}:[A-Za-z0-9_-]{1,100}$")


class ConfigError(Exception):
    """A config file or environment value that cannot be used; the message says which and why."""


def env(name: str, *, secret: bool = False) -> dict[str, object]:
    """Field metadata: the overriding environment variable; secret ones may only come from it."""
    return {"env": name, "secret": secret}


@dataclasses.dataclass(frozen=True)
class WebhookConfig:
    listen: str = dataclasses.field(default="0.0.0.0", metadata=env("BOT_WEBHOOK_LISTEN"))
    port: int = dataclasses.field(default=8443, metadata=env("BOT_WEBHOOK_PORT"))
    url: str = dataclasses.field(default="", metadata=env("BOT_WEBHOOK_URL"))
    secret_token: str = dataclasses.field(default="", metadata=env("BOT_WEBHOOK_SECRET", secret=True))


@dataclasses.dataclass(frozen=True)
class TelegramConfig:
    api_base_url: str = dataclasses.field(default="https://api.telegram.org/bot", metadata=env("TELEGRAM_API_BASE_URL"))
    mode: str = dataclasses.field(default="polling", metadata=env("BOT_MODE"))
    poll_timeout: int = dataclasses.field(default=30, metadata=env("BOT_POLL_TIMEOUT"))
    webhook: WebhookConfig = dataclasses.field(default_factory=WebhookConfig)


@dataclasses.dataclass(frozen=True)
class DigestConfig:
    month: int = dataclasses.field(default=1, metadata=env("BOT_DIGEST_MONTH"))
    day: int = dataclasses.field(default=1, metadata=env("BOT_DIGEST_DAY"))
    time: str = dataclasses.field(default="10:00", metadata=env("BOT_DIGEST_TIME"))
    timezone: str = dataclasses.field(default="Europe/Moscow", metadata=env("BOT_DIGEST_TIMEZONE"))
    grace_days: float = dataclasses.field(default=7, metadata=env("BOT_DIGEST_GRACE_DAYS"))


@dataclasses.dataclass(frozen=True)
class BroadcastConfig:
    rate_per_second: float = dataclasses.field(default=30, metadata=env("BOT_BROADCAST_RATE"))
    per_chat_interval: float = dataclasses.field(default=1.0, metadata=env("BOT_BROADCAST_PER_CHAT_INTERVAL"))
    concurrency: int = dataclasses.field(default=16, metadata=env("BOT_BROADCAST_CONCURRENCY"))
    max_attempts: int = dataclasses.field(default=4, metadata=env("BOT_BROADCAST_MAX_ATTEMPTS"))


@dataclasses.dataclass(frozen=True)
class ReloadConfig:
    interval: float = dataclasses.field(default=2.0, metadata=env("BOT_RELOAD_INTERVAL"))


@dataclasses.dataclass(frozen=True)
class LoggingConfig:
    level: str = dataclasses.field(default="INFO", metadata=env("BOT_LOG_LEVEL"))
    log_message_text: bool = dataclasses.field(default=False, metadata=env("BOT_LOG_MESSAGE_TEXT"))
    record_user_ids: bool = dataclasses.field(default=False, metadata=env("BOT_RECORD_USER_IDS"))


@dataclasses.dataclass(frozen=True)
class PlaygroundConfig:
    host: str = dataclasses.field(default="127.0.0.1", metadata=env("BOT_PLAYGROUND_HOST"))
    port: int = dataclasses.field(default=8080, metadata=env("BOT_PLAYGROUND_PORT"))


@dataclasses.dataclass(frozen=True)
class Config:
    knowledge_dir: Path = dataclasses.field(default=PROJECT_ROOT / "knowledge", metadata=env("BOT_KNOWLEDGE_DIR"))
    corpus_dir: Path = dataclasses.field(default=PROJECT_ROOT / "corpus", metadata=env("BOT_CORPUS_DIR"))
    database: Path = dataclasses.field(default=PROJECT_ROOT / "data" / "bot.sqlite3", metadata=env("BOT_DATABASE"))
    admins: tuple[int, ...] = dataclasses.field(default=(), metadata=env("BOT_ADMINS"))
    telegram: TelegramConfig = dataclasses.field(default_factory=TelegramConfig)
    digest: DigestConfig = dataclasses.field(default_factory=DigestConfig)
    broadcast: BroadcastConfig = dataclasses.field(default_factory=BroadcastConfig)
    reload: ReloadConfig = dataclasses.field(default_factory=ReloadConfig)
    logging: LoggingConfig = dataclasses.field(default_factory=LoggingConfig)
    playground: PlaygroundConfig = dataclasses.field(default_factory=PlaygroundConfig)


def _coerce(value: Any, typ: Any, where: str, base: Path) -> Any:
    """Turn a YAML or environment value into the field's type, with a clear error."""
    try:
        if typ is bool or typ == "bool":
            if isinstance(value, str):
                low = value.strip().lower()
                if low not in {"1", "0", "true", "false", "yes", "no", "on", "off"}:
                    raise ValueError(f"expected true or false, got {value!r}")
                return low in {"1", "true", "yes", "on"}
            return bool(value)
        if typ in (int, "int"):
            if isinstance(value, bool):
                raise ValueError("expected a whole number")
            return int(value)
        if typ in (float, "float"):
            return float(value)
        if typ in (str, "str"):
            return "" if value is None else str(value)
        if typ in (Path, "Path"):
            path = Path(str(value)).expanduser()
            return path if path.is_absolute() else base / path
        if typ in ("tuple[int, ...]",):
            items = value.split(",") if isinstance(value, str) else (value or [])
            return tuple(int(str(i).strip()) for i in items if str(i).strip())
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: {exc}") from None
    raise ConfigError(f"{where}: unsupported type {typ}")  # pragma: no cover - programming error


def _build(cls: type, data: Mapping[str, Any], environ: Mapping[str, str], base: Path, prefix: str) -> Any:
    if not isinstance(data, Mapping):
        raise ConfigError(f"{prefix or 'config'}: expected a mapping of keys, got {type(data).__name__}")
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(f"unknown config key {prefix}{unknown[0]} (known: {', '.join(sorted(known))})")
    kwargs: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        key = f"{prefix}{f.name}"
        if dataclasses.is_dataclass(f.default_factory if f.default_factory is not dataclasses.MISSING else None):
            kwargs[f.name] = _build(f.default_factory, data.get(f.name) or {}, environ, base, key + ".")  # type: ignore[arg-type]
            continue
        var = f.metadata.get("env")
        if var and environ.get(var, "") != "":
            kwargs[f.name] = _coerce(environ[var], f.type, f"environment variable {var}", base)
        elif f.name in data and f.metadata.get("secret"):
            raise ConfigError(f"config key {key} is a secret: set it in the environment variable {var}, not in a file")
        elif f.name in data:
            kwargs[f.name] = _coerce(data[f.name], f.type, f"config key {key}", base)
    return cls(**kwargs)


def load_config(path: Path | None = None, environ: Mapping[str, str] | None = None) -> Config:
    """Read config.yaml (or `path`, or $BOT_CONFIG) and apply environment overrides."""
    environ = os.environ if environ is None else environ
    path = Path(path or environ.get("BOT_CONFIG") or DEFAULT_CONFIG)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) if path.exists() else {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    config: Config = _build(Config, raw or {}, environ, path.resolve().parent, "")
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


def env_overrides() -> list[tuple[str, str]]:
    """(environment variable, config key) for every overridable setting, for docs and tests."""
    out: list[tuple[str, str]] = []

    def walk(cls: type, prefix: str) -> None:
        for f in dataclasses.fields(cls):
            if f.default_factory is not dataclasses.MISSING and dataclasses.is_dataclass(f.default_factory):
                walk(f.default_factory, f"{prefix}{f.name}.")  # type: ignore[arg-type]
            elif "env" in f.metadata:
                out.append((f.metadata["env"], prefix + f.name))

    walk(Config, "")
    return out


def bot_token(environ: Mapping[str, str] | None = None) -> str:
    """The bot token from TELEGRAM_BOT_TOKEN; ConfigError (without the value) if missing or malformed."""
    environ = os.environ if environ is None else environ
    token = environ.get(TOKEN_ENV, "").strip()
    if not token:
        raise ConfigError(f"{TOKEN_ENV} is not set: export the token BotFather gave you")
    if not TOKEN_RE.fullmatch(token):
        raise ConfigError(f"{TOKEN_ENV} is malformed: expected digits, a colon and the secret (like 123456:ABC-def)")
    return token
