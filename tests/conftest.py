"""Shared pytest fixtures: the real knowledge, a running local Bot API server, and the real bot running against it.

- `knowledge`, `index`: the project's knowledge/ and corpus/, loaded and indexed once per session.
- `bot_config`: config.yaml without environment overrides, with a temporary database and no reload job.
- `botapi`: a started `BotApiServer`; the test fails if the bot made any request the spec rejects.
- `bot_app`: the Application from `bot.telegram.app.build_application`, initialised, post_init run, polling the server.
- `running_app(config, base_url, **kwargs)`: the same as an async context manager, for tests with their own config.
- `BOT_TOKEN`: the fake token the bot uses ("123456:TEST").
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BOT_TOKEN = "123456:TEST"


@pytest.fixture(scope="session")
def knowledge():
    from bot.knowledge.facts import load_knowledge

    return load_knowledge(ROOT / "knowledge", ROOT / "corpus")


@pytest.fixture(scope="session")
def index(knowledge):
    from bot.matching.matcher import build_index

    return build_index(knowledge)


@pytest.fixture
def bot_config(tmp_path):
    from bot.config import load_config

    config = load_config(ROOT / "config.yaml", environ={})
    return config.model_copy(
        update={
            "database": str(tmp_path / "bot.sqlite3"),
            "reload": config.reload.model_copy(update={"interval": 0}),
        }
    )


@pytest.fixture
async def botapi() -> AsyncIterator:
    from bot.playground.botapi_server import BotApiServer

    server = BotApiServer()
    await server.start()
    try:
        yield server
    finally:
        invalid = list(server.invalid_calls)
        await server.stop()
    if invalid:
        pytest.fail("the bot made requests the Bot API spec rejects:\n" + "\n".join(map(str, invalid)))


@contextlib.asynccontextmanager
async def running_app(config, base_url: str, **kwargs) -> AsyncIterator:
    """The real Application (bot.telegram.app.build_application) polling `base_url`, shut down cleanly on exit."""
    from bot.telegram.app import build_application

    application = build_application(config, BOT_TOKEN, base_url=base_url, **kwargs)
    await application.initialize()
    await application.post_init(application)
    await application.start()
    await application.updater.start_polling(poll_interval=0, timeout=1)
    try:
        yield application
    finally:
        await application.updater.stop()
        await application.stop()
        await application.post_shutdown(application)
        await application.shutdown()


@pytest.fixture
async def bot_app(botapi, bot_config, knowledge, index) -> AsyncIterator:
    async with running_app(bot_config, botapi.base_url, knowledge=knowledge, index=index) as application:
        yield application
