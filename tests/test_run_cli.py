"""Acceptance: `python -m bot run` as a real process against the local Bot API server, as an operator starts it.

The bot process gets its token and API address only from the environment, registers its commands, answers a
private question with the figure and its source, stops cleanly on SIGTERM, and never prints the token — not
even at DEBUG level or when the server rejects the token. In webhook mode it registers the webhook with a
secret and refuses updates that do not carry it. A missing or malformed token is one clear line and exit 2.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import logging
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from knowledge_fixtures import clean_env

from bot.playground.botapi_server import BotApiServer
from bot.presentation.render import format_date

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "123456:TEST"
USER = 31337
STARTUP_TIMEOUT = 40  # seconds: a cold start on a busy 2-core machine imports PTB and indexes the facts


def bot_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return clean_env(BOT_DATABASE=str(tmp_path / "bot.sqlite3"), BOT_POLL_TIMEOUT="1", PYTHONUNBUFFERED="1", **extra)


async def start_bot(env: dict[str, str]) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "run",
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def stop_bot(process: asyncio.subprocess.Process) -> tuple[int, str]:
    """SIGTERM, then the exit status and everything the process printed."""
    if process.returncode is None:
        process.send_signal(signal.SIGTERM)
    try:
        out, err = await asyncio.wait_for(process.communicate(), timeout=20)
    except TimeoutError:
        process.kill()
        out, err = await process.communicate()
    return process.returncode, out.decode() + err.decode()


def assert_no_token(output: str) -> None:
    assert TOKEN not in output
    assert TOKEN.replace(":", "%3A") not in output
    assert "TEST" not in output.replace("[REDACTED]", "")


@pytest.fixture
def server(botapi):
    """conftest's running BotApiServer, which fails the test on any request the spec rejects."""
    return botapi


def expected_trade_fact() -> tuple[str, str]:
    """The 2023 trade figure and its source line, from the knowledge base."""
    from bot.knowledge.facts import load_knowledge

    knowledge = load_knowledge(ROOT / "knowledge", ROOT / "corpus")
    (fact,) = [f for f in knowledge.facts if f.kind == "trade" and f.year == 2023 and "$" in f.text][:1]
    figure = re.search(r"\$\d[\d.,]* (?:billion|trillion)", fact.text)
    assert figure, fact.text
    article = knowledge.article(fact)
    return figure.group(0), f"Source: {article.outlet}, {format_date(article.published) or 'undated'}"


async def test_run_registers_commands_answers_and_never_prints_the_token(server, tmp_path):
    env = bot_env(tmp_path, TELEGRAM_BOT_TOKEN=TOKEN, TELEGRAM_API_BASE_URL=server.base_url, BOT_LOG_LEVEL="DEBUG")
    process = await start_bot(env)
    try:
        commands = await server.wait_for_call("setMyCommands", timeout=STARTUP_TIMEOUT)
        names = {c["command"] for c in commands.params["commands"]}
        assert {"start", "help", "ask", "year", "timeline", "quote", "sources", "about"} <= names
        await server.wait_for_poller(timeout=STARTUP_TIMEOUT)
        server.user_message(USER, "how much was trade in 2023")
        reply = await server.wait_for_message(USER, timeout=15)
    finally:
        status, output = await stop_bot(process)
    figure, source = expected_trade_fact()
    assert figure in reply["text"]
    assert source in reply["text"]
    assert status == 0, output[-2000:]
    assert "ready" in output  # it did log, at DEBUG level, and still no token
    assert_no_token(output)


async def test_a_token_the_server_rejects_is_reported_without_the_token(tmp_path):
    srv = BotApiServer(accepted_token="654321:OTHER")
    await srv.start()
    try:
        env = bot_env(tmp_path, TELEGRAM_BOT_TOKEN=TOKEN, TELEGRAM_API_BASE_URL=srv.base_url)
        process = await start_bot(env)
        status, output = await stop_bot(await _wait_exit(process))
    finally:
        await srv.stop()
    assert status == 1
    assert "error:" in output
    assert_no_token(output)


async def _wait_exit(process: asyncio.subprocess.Process) -> asyncio.subprocess.Process:
    with contextlib.suppress(TimeoutError):  # stop_bot terminates it and the status check fails
        await asyncio.wait_for(process.wait(), timeout=STARTUP_TIMEOUT)
    return process


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def test_webhook_mode_checks_the_secret_on_every_request(server, tmp_path):
    # Telegram posts to the public https URL; a reverse proxy forwards it to the plain-HTTP listener
    port, secret = free_port(), "s3cret-Webhook_value"
    url = f"https://127.0.0.1:{port}/telegram-hook"
    local = f"http://127.0.0.1:{port}/telegram-hook"
    env = bot_env(
        tmp_path,
        TELEGRAM_BOT_TOKEN=TOKEN,
        TELEGRAM_API_BASE_URL=server.base_url,
        BOT_MODE="webhook",
        BOT_WEBHOOK_LISTEN="127.0.0.1",
        BOT_WEBHOOK_PORT=str(port),
        BOT_WEBHOOK_URL=url,
        BOT_WEBHOOK_SECRET=secret,
    )
    process = await start_bot(env)
    try:
        registered = await server.wait_for_call("setWebhook", timeout=STARTUP_TIMEOUT)
        assert registered.params["url"] == url and registered.params["secret_token"] == secret
        await server.wait_for_call("setMyCommands", timeout=STARTUP_TIMEOUT, since=0)
        update = server.user_message(USER, "When did Putin visit Beijing?")
        body = json.dumps(update)
        headers = {"Content-Type": "application/json"}
        async with httpx.AsyncClient(timeout=10) as client:
            for _ in range(50):  # the listener starts just after setWebhook
                try:
                    missing = await client.post(local, content=body, headers=headers)
                    break
                except httpx.ConnectError:
                    await asyncio.sleep(0.1)
            wrong = await client.post(local, content=body, headers={**headers, "X-Telegram-Bot-Api-Secret-Token": "x"})
            assert (missing.status_code, wrong.status_code) == (403, 403)
            right = await client.post(
                local, content=body, headers={**headers, "X-Telegram-Bot-Api-Secret-Token": secret}
            )
            assert right.status_code == 200
        reply = await server.wait_for_message(USER, timeout=15)
        assert "Putin" in reply["text"] and "Source: " in reply["text"]
        assert len(server.sent_messages(USER)) == 1  # the refused requests were not answered
    finally:
        status, output = await stop_bot(process)
    assert status == 0, output[-2000:]
    assert_no_token(output)
    assert secret not in output


@pytest.mark.parametrize(
    ("token", "expected"),
    [
        (None, "TELEGRAM_BOT_TOKEN is not set"),
        ("", "TELEGRAM_BOT_TOKEN is not set"),
        ("not-a-token-SECRETVALUE", "TELEGRAM_BOT_TOKEN is malformed"),
        ("123:abc def", "TELEGRAM_BOT_TOKEN is malformed"),
    ],
)
def test_missing_or_malformed_token_is_one_clear_line_and_exit_2(tmp_path, token, expected):
    env = bot_env(tmp_path, TELEGRAM_API_BASE_URL="http://127.0.0.1:9/bot")
    if token is not None:
        env["TELEGRAM_BOT_TOKEN"] = token
    result = subprocess.run(
        [sys.executable, "-m", "bot", "run"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"config error: {expected}")
    if token:
        assert token not in result.stderr


def test_the_log_filter_redacts_the_token_from_messages_arguments_and_tracebacks():
    from bot.telegram.app import RedactSecrets

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactSecrets(TOKEN))
    logger = logging.getLogger("test.redaction")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("GET https://api.telegram.org/bot%s/getMe", TOKEN)
        logger.warning(f"encoded {TOKEN.replace(':', '%3A')} in a URL")
        try:
            raise RuntimeError(f"The token `{TOKEN}` was rejected by the server.")
        except RuntimeError:
            logger.exception("start-up failed")
    finally:
        logger.removeHandler(handler)
    output = stream.getvalue()
    assert output.count("[REDACTED]") == 3
    assert "bot[REDACTED]/getMe" in output and "RuntimeError: The token `[REDACTED]` was rejected" in output
    assert_no_token(output)
