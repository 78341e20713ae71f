"""Configuration: config.yaml + environment overrides, the token rules, and docs that match the code."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.config import PROJECT_ROOT, ConfigError, bot_token, database_url, env_overrides, load_config


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_shipped_config_loads_with_documented_defaults() -> None:
    config = load_config(PROJECT_ROOT / "config.yaml", environ={})
    assert config.telegram.api_base_url == "https://api.telegram.org/bot"
    assert config.telegram.mode == "polling"
    assert (config.digest.month, config.digest.day, config.digest.time) == (1, 1, "10:00")
    assert config.digest.timezone == "Europe/Moscow"
    assert config.digest.grace_days == 7
    assert config.database == str(PROJECT_ROOT / "data" / "bot.sqlite3")
    assert database_url(config.database) == f"sqlite+aiosqlite:///{PROJECT_ROOT / 'data' / 'bot.sqlite3'}"


def test_environment_overrides_file(tmp_path: Path) -> None:
    path = write(tmp_path, "database: a.db\nadmins: [1]\ntelegram:\n  api_base_url: http://x/bot\n")
    environ = {
        "BOT_DATABASE": "/tmp/other.db",
        "BOT_ADMINS": "5, 7",
        "TELEGRAM_API_BASE_URL": "http://127.0.0.1:9/bot",
        "BOT_LOG_MESSAGE_TEXT": "yes",
        "BOT_BROADCAST_RATE": "900",
    }
    config = load_config(path, environ=environ)
    assert config.database == "/tmp/other.db"
    assert config.admins == (5, 7)
    assert config.telegram.api_base_url == "http://127.0.0.1:9/bot"
    assert config.logging.log_message_text is True
    assert config.broadcast.rate_per_second == 900


def test_relative_paths_are_relative_to_the_config_file(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, "database: data/x.db\nknowledge_dir: k\n"), environ={})
    assert config.database == str(tmp_path / "data" / "x.db")
    assert config.knowledge_dir == tmp_path / "k"
    # So are relative paths from the environment; a URL is kept as given.
    config = load_config(write(tmp_path, ""), environ={"BOT_DATABASE": "x.db", "BOT_CORPUS_DIR": "c"})
    assert (config.database, config.corpus_dir) == (str(tmp_path / "x.db"), tmp_path / "c")
    assert database_url(config.database) == f"sqlite+aiosqlite:///{tmp_path / 'x.db'}"


@pytest.mark.parametrize(
    "url",
    ["sqlite+aiosqlite:///relative/to/the/working/dir.db", "postgresql+asyncpg://bot:pw@db.example.org:5432/bot"],
)
def test_database_url_is_kept_as_given(tmp_path: Path, url: str) -> None:
    assert load_config(write(tmp_path, f"database: '{url}'\n"), environ={}).database == url
    config = load_config(write(tmp_path, ""), environ={"BOT_DATABASE": url})
    assert config.database == url
    assert database_url(config.database) == url


@pytest.mark.parametrize(
    ("text", "environ", "fragment"),
    [
        ("database: ''\n", {}, "config key database: expected the path of the SQLite file or a database URL"),
        ("", {"BOT_DATABASE": "postgres ql://bot:hunter2@db/bot"}, "environment variable BOT_DATABASE: expected"),
    ],
)
def test_bad_database_gets_a_clear_message_without_the_value(
    tmp_path: Path, text: str, environ: dict[str, str], fragment: str
) -> None:
    with pytest.raises(ConfigError, match=fragment) as info:
        load_config(write(tmp_path, text), environ=environ)
    assert "hunter2" not in str(info.value)


@pytest.mark.parametrize(
    ("text", "environ", "fragment"),
    [
        ("unknwon_key: 1\n", {}, "unknown config key unknwon_key"),
        ("telegram:\n  mode: carrier-pigeon\n", {}, "telegram.mode must be polling or webhook"),
        ("digest:\n  month: january\n", {}, "config key digest.month"),
        ("", {"BOT_ADMINS": "alice"}, "environment variable BOT_ADMINS"),
        (
            "telegram:\n  webhook:\n    secret_token: s3cret\n",
            {},
            "set it in the environment variable BOT_WEBHOOK_SECRET",
        ),
        ("telegram:\n  mode: webhook\n  webhook:\n    url: https://example.org/hook\n", {}, "needs BOT_WEBHOOK_SECRET"),
        ("digest:\n  time: '10am'\n", {}, "digest.time must be HH:MM"),
    ],
)
def test_bad_config_gets_a_clear_message(tmp_path: Path, text: str, environ: dict[str, str], fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment.replace(".", r"\.")):
        load_config(write(tmp_path, text), environ=environ)


def test_token_comes_from_environment_and_errors_never_echo_it() -> None:
    assert bot_token({"TELEGRAM_BOT_TOKEN": "123456:TEST"}) == "123456:TEST"
    with pytest.raises(ConfigError, match="TELEGRAM_BOT_TOKEN is not set"):
        bot_token({})
    secret = "not a token but secret-ish value"
    with pytest.raises(ConfigError) as info:
        bot_token({"TELEGRAM_BOT_TOKEN": secret})
    assert "malformed" in str(info.value)
    assert secret not in str(info.value)


def test_readme_table_documents_every_environment_variable() -> None:
    readme = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")
    for var, key in env_overrides():
        assert f"| `{key}` | `{var}` |" in readme, f"README.md: add a configuration table row for {key} ({var})"


def test_config_yaml_documents_every_environment_variable() -> None:
    text = (PROJECT_ROOT / "config.yaml").read_text(encoding="utf-8")
    for var, key in env_overrides():
        assert f"[{var}]" in text, f"config.yaml: document {key} and its override [{var}] in a comment"


def test_readme_opens_with_the_two_commands() -> None:
    head = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8").split("\n\n", 1)[0]
    commands = [line.split("#")[0].strip() for line in head.splitlines() if line.startswith("make")]
    assert commands == ["make run", "make test"]
