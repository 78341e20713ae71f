"""The playground's HTTP API and the `python -m bot playground` command.

The API tests run the Bot API server with the playground routes in-process and play the bot's side over
HTTP (getUpdates, sendMessage, editMessageText...), so they pin the page's contract without the matcher.
The command tests start the real command: the real bot subprocess answers, records /subscribe in the
database, and both processes stop on SIGTERM.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from browser_support import answerable_fact, running_playground

from bot.config import load_config
from bot.playground.botapi_server import BotApiServer
from bot.playground.runner import (
    PLAYGROUND_TOKEN,
    PLAYGROUND_USER_ID,
    bot_command,
    bot_environment,
    playground_routes,
    run_playground,
)

ROOT = Path(__file__).resolve().parent.parent
BOT = f"/bot{PLAYGROUND_TOKEN}"
CHAT = PLAYGROUND_USER_ID


@pytest.fixture
async def playground() -> AsyncIterator[tuple[BotApiServer, httpx.AsyncClient]]:
    srv = BotApiServer(accepted_token=PLAYGROUND_TOKEN)
    srv.add_handlers(playground_routes(srv))
    await srv.start("127.0.0.1", 0)
    try:
        async with httpx.AsyncClient(base_url=srv.url, timeout=30) as client:
            yield srv, client
    finally:
        invalid = list(srv.invalid_calls)
        await srv.stop()
    assert not invalid, f"the test made Bot API calls the spec rejects: {invalid}"


async def bot_call(client: httpx.AsyncClient, method: str, **params: object) -> object:
    """A Bot API call as the bot makes it; returns the result."""
    response = await client.post(f"{BOT}/{method}", json=params)
    body = response.json()
    assert body["ok"], body
    return body["result"]


async def updates(client: httpx.AsyncClient, since: int, timeout: float = 0) -> dict:
    response = await client.get("/playground/api/updates", params={"since": since, "timeout": timeout})
    assert response.status_code == 200, response.text
    return response.json()


async def send(client: httpx.AsyncClient, text: str) -> dict:
    response = await client.post("/playground/api/send", json={"text": text})
    assert response.status_code == 200, response.text
    return response.json()


# --- the page ---------------------------------------------------------------------------------------------------


async def test_page_and_its_static_files_are_served(playground):
    _, client = playground
    page = await client.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in page.headers["content-security-policy"]  # no inline scripts can run
    for asset, kind in (("playground.css", "text/css"), ("playground.js", "javascript")):
        assert f"/playground/static/{asset}" in page.text
        response = await client.get(f"/playground/static/{asset}")
        assert response.status_code == 200 and kind in response.headers["content-type"]
    assert (await client.get("/playground/static/../playground.py")).status_code in (403, 404)


# --- sending, receiving, pressing ----------------------------------------------------------------------------------


async def test_sent_text_reaches_the_bot_and_shows_in_the_feed(playground):
    _, client = playground
    sent = await send(client, "How much was trade in 2023?")
    assert sent["message"]["text"] == "How much was trade in 2023?" and sent["message"]["outgoing"] is True

    [update] = await bot_call(client, "getUpdates", timeout=0)
    assert update["message"]["text"] == "How much was trade in 2023?"
    assert update["message"]["chat"] == {"id": CHAT, "type": "private", "first_name": "You"}

    feed = await updates(client, 0)
    assert [(m["text"], m["outgoing"]) for m in feed["messages"]] == [("How much was trade in 2023?", True)]
    assert feed["rev"] > 0 and (await updates(client, feed["rev"]))["messages"] == []


async def test_a_waiting_long_poll_returns_the_bots_formatted_reply(playground):
    _, client = playground
    rev = (await updates(client, 0))["rev"]
    poll = asyncio.create_task(updates(client, rev, timeout=25))
    await asyncio.sleep(0.2)  # the poll is now waiting on the server
    keyboard = {"inline_keyboard": [[{"text": "Trade in 2023", "callback_data": "f:trade"}]]}
    html = '<b>Trade</b> and <i>more</i>\n<blockquote>"Quoted"</blockquote>\n<a href="https://example.org/a">Source</a>'
    await bot_call(client, "sendMessage", chat_id=CHAT, text=html, parse_mode="HTML", reply_markup=keyboard)

    feed = await asyncio.wait_for(poll, 10)  # woken by the message, long before its own 25 s timeout
    [message] = feed["messages"]
    assert message["outgoing"] is False
    assert message["text"] == 'Trade and more\n"Quoted"\nSource'
    kinds = {e["type"]: e for e in message["entities"]}
    assert {"bold", "italic", "blockquote", "text_link"} <= set(kinds)
    assert kinds["text_link"]["url"] == "https://example.org/a"
    assert message["reply_markup"] == keyboard


async def test_an_edit_comes_back_as_the_same_message_with_new_text(playground):
    _, client = playground
    sent = await bot_call(client, "sendMessage", chat_id=CHAT, text="Page 1 of 2")
    rev = (await updates(client, 0))["rev"]
    await bot_call(client, "editMessageText", chat_id=CHAT, message_id=sent["message_id"], text="Page 2 of 2")

    feed = await updates(client, rev, timeout=10)
    assert [(m["message_id"], m["text"]) for m in feed["messages"]] == [(sent["message_id"], "Page 2 of 2")]
    assert "edit_date" in feed["messages"][0]
    everything = await updates(client, 0)
    assert [m["text"] for m in everything["messages"]] == ["Page 2 of 2"]  # one message, not two


async def test_pressing_a_button_sends_the_bot_a_callback_query(playground):
    _, client = playground
    keyboard = {"inline_keyboard": [[{"text": "A fact", "callback_data": "fact:1"}]]}
    sent = await bot_call(client, "sendMessage", chat_id=CHAT, text="Did you mean:", reply_markup=keyboard)

    response = await client.post("/playground/api/press", json={"message_id": sent["message_id"], "data": "fact:1"})
    assert response.status_code == 200 and response.json()["ok"] is True
    [update] = await bot_call(client, "getUpdates", timeout=0)
    query = update["callback_query"]
    assert query["data"] == "fact:1" and query["message"]["message_id"] == sent["message_id"]
    assert query["from"]["id"] == PLAYGROUND_USER_ID

    rev = (await updates(client, 0))["rev"]
    await bot_call(client, "answerCallbackQuery", callback_query_id=query["id"], text="That button is old")
    assert (await updates(client, rev, timeout=10))["notices"] == ["That button is old"]


async def test_pressing_a_button_the_message_does_not_have_is_refused(playground):
    _, client = playground
    keyboard = {"inline_keyboard": [[{"text": "A fact", "callback_data": "fact:1"}]]}
    sent = await bot_call(client, "sendMessage", chat_id=CHAT, text="Did you mean:", reply_markup=keyboard)
    response = await client.post("/playground/api/press", json={"message_id": sent["message_id"], "data": "fact:2"})
    assert response.status_code == 400 and "fact:2" in response.json()["error"]
    assert await bot_call(client, "getUpdates", timeout=0) == []


async def test_deleted_messages_are_reported(playground):
    _, client = playground
    sent = await bot_call(client, "sendMessage", chat_id=CHAT, text="Soon gone")
    rev = (await updates(client, 0))["rev"]
    await bot_call(client, "deleteMessage", chat_id=CHAT, message_id=sent["message_id"])
    feed = await updates(client, rev, timeout=10)
    assert feed["deleted"] == [sent["message_id"]] and feed["messages"] == []


async def test_a_page_from_an_earlier_run_gets_the_whole_conversation_again(playground):
    _, client = playground
    await send(client, "hello")
    feed = await updates(client, 10_000)  # a revision this server never reached
    assert feed["reset"] is True and [m["text"] for m in feed["messages"]] == ["hello"]


async def test_commands_menu_lists_what_the_bot_registered(playground):
    _, client = playground
    assert (await client.get("/playground/api/commands")).json()["commands"] == []
    commands = [{"command": "subscribe", "description": "Get the digest"}, {"command": "help", "description": "Help"}]
    await bot_call(client, "setMyCommands", commands=commands)
    assert (await client.get("/playground/api/commands")).json()["commands"] == commands


@pytest.mark.parametrize(
    ("body", "headers", "status"),
    [
        ({"text": ""}, {}, 400),
        ({"text": "   "}, {}, 400),
        ({"text": "x" * 4097}, {}, 400),
        ({"text": 5}, {}, 400),
        (["not", "an", "object"], {}, 400),
        ({"text": "hi"}, {"Origin": "http://evil.example"}, 403),
    ],
)
async def test_send_refuses_bad_requests(playground, body, headers, status):
    _, client = playground
    response = await client.post("/playground/api/send", json=body, headers=headers)
    assert response.status_code == status and response.json()["ok"] is False
    assert await bot_call(client, "getUpdates", timeout=0) == []


async def test_send_refuses_form_posts_from_other_pages(playground):
    _, client = playground
    response = await client.post("/playground/api/send", data={"text": "/senddigest"})
    assert response.status_code == 400
    assert await bot_call(client, "getUpdates", timeout=0) == []


# --- the bot's environment ---------------------------------------------------------------------------------------


def test_bot_gets_the_fake_token_the_local_server_and_the_playground_user_as_admin(tmp_path):
    config = load_config(ROOT / "config.yaml", environ={"BOT_DATABASE": str(tmp_path / "x.db"), "BOT_ADMINS": "42"})
    real_env = {"TELEGRAM_BOT_TOKEN": "987654321:a-real-looking-secret", "PATH": "/usr/bin"}
    env = bot_environment(config, "http://127.0.0.1:9/bot", real_env)
    assert env["TELEGRAM_BOT_TOKEN"] == PLAYGROUND_TOKEN
    assert "a-real-looking-secret" not in " ".join(env.values())
    assert env["TELEGRAM_API_BASE_URL"] == "http://127.0.0.1:9/bot"
    assert env["BOT_DATABASE"] == str(tmp_path / "x.db")
    assert env["BOT_ADMINS"].split(",") == sorted(["42", str(PLAYGROUND_USER_ID)], key=int)
    assert env["BOT_MODE"] == "polling" and env["PATH"] == "/usr/bin"
    assert bot_command("my.yaml")[1:] == ["-m", "bot", "--config", "my.yaml", "run"]


async def test_a_port_in_use_is_reported_with_the_setting_to_change(tmp_path):
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    try:
        config = load_config(ROOT / "config.yaml", environ={"BOT_PLAYGROUND_PORT": str(taken.getsockname()[1])})
        lines: list[str] = []
        assert await run_playground(config, out=lines.append) == 2
    finally:
        taken.close()
    assert "is in use" in lines[0] and "BOT_PLAYGROUND_PORT" in lines[0]


async def test_the_playground_refuses_to_listen_beyond_this_computer():
    config = load_config(ROOT / "config.yaml", environ={"BOT_PLAYGROUND_HOST": "0.0.0.0", "BOT_PLAYGROUND_PORT": "0"})
    lines: list[str] = []
    assert await run_playground(config, out=lines.append) == 2
    assert "BOT_PLAYGROUND_HOST" in lines[0]


# --- the real command with the real bot -------------------------------------------------------------------------


async def next_bot_message(client: httpx.AsyncClient, since: int) -> tuple[dict, int]:
    """The first bot message added or changed after revision `since`, and the feed revision then."""
    for _ in range(20):
        feed = await updates(client, since, timeout=5)
        since = feed["rev"]
        for message in feed["messages"]:
            if not message["outgoing"]:
                return message, since
    raise AssertionError("the bot did not answer within 100 s")


async def test_the_command_runs_the_real_bot_which_answers_and_records_subscriptions(tmp_path):
    from bot.store.database import open_store
    from bot.telegram.handlers import NOT_ALLOWED

    question, fact = answerable_fact()
    database = tmp_path / "bot.sqlite3"
    async with running_playground(database) as run, httpx.AsyncClient(base_url=run.url, timeout=30) as client:
        assert run.url.startswith("http://127.0.0.1:")
        assert "text/html" in (await client.get("/")).headers["content-type"]

        rev = (await updates(client, 0))["rev"]
        await send(client, question)
        reply, rev = await next_bot_message(client, rev)
        assert fact.title in reply["text"]
        assert any(e["type"] == "bold" for e in reply["entities"])

        await send(client, "/subscribe")
        reply, rev = await next_bot_message(client, rev)
        commands = {c["command"] for c in (await client.get("/playground/api/commands")).json()["commands"]}
        assert {"subscribe", "help"} <= commands

        await send(client, "/stats")  # an admin command: the playground user is an admin
        stats, rev = await next_bot_message(client, rev)
        assert stats["text"] != NOT_ALLOWED
    assert run.process.returncode == 0, run.output
    assert "[bot]" in run.output  # the bot's log is forwarded

    store = await open_store(database)
    try:
        assert await store.is_subscribed(PLAYGROUND_USER_ID)
    finally:
        await store.close()


async def test_the_command_stops_the_bot_on_sigterm(tmp_path):
    async with running_playground(tmp_path / "bot.sqlite3", stop=False) as run:
        async with httpx.AsyncClient(base_url=run.url, timeout=30) as client:
            for _ in range(300):  # the bot registers its commands once it has started
                if (await client.get("/playground/api/commands")).json()["commands"]:
                    break
                await asyncio.sleep(0.1)
        children = _children(run.process.pid)
        assert len(children) == 1, run.output
        run.process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(run.process.wait(), 30) == 0
    assert not _alive(children[0]), "the bot process outlived the playground"


async def test_the_command_exits_with_an_error_when_the_bot_dies(tmp_path):
    broken = tmp_path / "knowledge"
    broken.mkdir()
    (broken / "facts.yaml").write_text("facts: [this is: not: valid\n", encoding="utf-8")
    async with running_playground(tmp_path / "bot.sqlite3", {"BOT_KNOWLEDGE_DIR": str(broken)}, stop=False) as run:
        assert await asyncio.wait_for(run.process.wait(), 60) == 1
    assert "the bot process exited with status" in run.output


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(c) for c in (task / "children").read_text().split()]
    return found


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is dead too: it only waits for its (gone) parent to be reaped by init
    return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
