"""The aiohttp backend (`bot.telegram.http.AiohttpRequest`) under a real `telegram.Bot`, via the offline Bot API server.

Bot methods work and text survives the JSON body intact; Telegram's errors still become PTB's exceptions;
files go up as multipart; read and pool timeouts raise `TimedOut` and leave the pool usable; a cancelled
request frees its slot; transport failures are `NetworkError`s whose messages never contain the token.
"""

from __future__ import annotations

import asyncio
import contextlib
import json

import pytest
import tornado.web
from telegram import Bot
from telegram.error import BadRequest, Forbidden, InvalidToken, NetworkError, RetryAfter, TimedOut
from telegram.request import RequestData

from bot.playground.botapi_server import BotApiServer
from bot.playground.botapi_validate import UploadedFile
from bot.telegram.http import AiohttpRequest

TOKEN = "123456:LEAN-secret-part"


class Echo(tornado.web.RequestHandler):
    """Answers like the Bot API, with what it received: the request's content type and JSON body."""

    def post(self, method: str) -> None:
        received = {"content_type": self.request.headers.get("Content-Type"), "method": method}
        received["body"] = json.loads(self.request.body)
        received["user_agent"] = self.request.headers.get("User-Agent")
        self.write({"ok": True, "result": received})


@pytest.fixture
async def server():
    srv = BotApiServer(accepted_token=TOKEN)
    srv.add_handlers([(r"/echo/bot[^/]*/([^/]*)", Echo)])
    await srv.start()
    yield srv
    await srv.stop()


@pytest.fixture
async def bot(server):
    b = Bot(TOKEN, base_url=server.base_url, request=AiohttpRequest(connection_pool_size=4))
    async with b:
        yield b


async def test_bot_methods_and_text_round_trip(server, bot):
    me = await bot.get_me()
    assert me.username == server.bot_username
    text = "<b>Новый год</b> 新年快乐 — “quotes” &amp; emoji 🎆"
    message = await bot.send_message(42, text, parse_mode="HTML")
    assert message.text == "Новый год 新年快乐 — “quotes” & emoji 🎆"
    assert message.entities[0].type == "bold"
    assert [m["text"] for m in server.sent_messages(42)] == [message.text]
    raw = await bot.do_api_request("sendmessage", api_kwargs={"chat_id": 42, "text": "raw", "parse_mode": "HTML"})
    assert raw["text"] == "raw" and raw["chat"]["id"] == 42  # the Bot API's JSON, not a telegram.Message
    assert server.invalid_calls == []


async def test_requests_go_as_one_json_object(server):
    echo = Bot(TOKEN, base_url=f"{server.url}/echo/bot", request=AiohttpRequest())
    async with echo.request:  # not the Bot: its initialize() calls getMe, and the echo is no user
        received = await echo.do_api_request(
            "sendmessage", api_kwargs={"chat_id": 7, "text": "Союз — 联盟", "reply_markup": {"a": [1, 2]}}
        )
    assert received["content_type"] == "application/json"
    assert received["body"] == {"chat_id": 7, "text": "Союз — 联盟", "reply_markup": {"a": [1, 2]}}
    assert received["user_agent"] == AiohttpRequest.USER_AGENT


async def test_telegram_errors_become_ptb_exceptions(server, bot):
    server.block_chat(1)
    server.chat_not_found(2)
    server.throttle_chat(3, retry_after=7)
    server.fail_chat(4, status=502)
    with pytest.raises(Forbidden, match="blocked"):
        await bot.send_message(1, "hi")
    with pytest.raises(BadRequest, match=r"(?i)chat not found"):
        await bot.send_message(2, "hi")
    with pytest.raises(RetryAfter) as throttled:
        await bot.send_message(3, "hi")
    assert throttled.value._retry_after.total_seconds() == 7
    with pytest.raises(NetworkError, match="Bad Gateway"):
        await bot.send_message(4, "hi")
    with pytest.raises(BadRequest, match=r"(?i)can't parse entities"):
        await bot.send_message(5, "<b>unclosed", parse_mode="HTML")
    server.invalid_calls.clear()  # the malformed HTML was deliberate


async def test_a_rejected_token_is_invalid_token(server):
    b = Bot("123456:WRONG", base_url=server.base_url, request=AiohttpRequest())
    with pytest.raises(InvalidToken):
        await b.initialize()  # getMe answered 401 Unauthorized
    await b.shutdown()


async def test_file_uploads_go_as_multipart(server, bot):
    certificate = b"-----BEGIN CERTIFICATE-----\n" + bytes(range(256)) + b"\n-----END CERTIFICATE-----\n"
    assert await bot.set_webhook("https://example.org/hook", certificate=certificate, max_connections=7)
    assert server.webhook["url"] == "https://example.org/hook" and server.webhook["max_connections"] == 7
    uploaded = server.webhook["certificate"]
    assert isinstance(uploaded, UploadedFile) and uploaded.size == len(certificate)
    assert server.invalid_calls == []


def one_connection_bot(server: BotApiServer) -> Bot:
    """A Bot whose getUpdates and other calls share one AiohttpRequest with one connection."""
    request = AiohttpRequest(connection_pool_size=1)
    return Bot(TOKEN, base_url=server.base_url, request=request, get_updates_request=request)


def long_poll(bot: Bot, **timeouts: float) -> asyncio.Task:
    """A getUpdates the server holds for 5 s (no updates queued): a request that occupies a connection."""
    return asyncio.create_task(bot.do_api_request("getupdates", api_kwargs={"timeout": 5}, **timeouts))


async def test_read_and_pool_timeouts_then_the_pool_still_works(server):
    async with one_connection_bot(server) as bot:
        hanging = long_poll(bot, read_timeout=0.5)
        await server.wait_for_poller()
        with pytest.raises(TimedOut, match="Pool timeout"):  # the one connection is busy
            await bot.get_me(pool_timeout=0.1)
        with pytest.raises(TimedOut):  # the server would have answered [] after 5 s
            await hanging
        assert (await bot.get_me()).username == server.bot_username


async def test_a_cancelled_request_frees_its_slot_and_the_next_answer_is_its_own(server):
    async with one_connection_bot(server) as bot:
        polling = long_poll(bot)
        await server.wait_for_poller()
        polling.cancel()
        with pytest.raises(asyncio.CancelledError):
            await polling
        me = await bot.get_me(pool_timeout=0.5)  # not the abandoned getUpdates' answer ([])
        assert me.username == server.bot_username


@contextlib.asynccontextmanager
async def truncating_server():
    """A server that promises 100 bytes of body, sends 9 and hangs up; yields a URL holding the token."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\ncut short")
        await writer.drain()
        writer.close()

    srv = await asyncio.start_server(answer, "127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{srv.sockets[0].getsockname()[1]}/bot{TOKEN}/getMe"
    finally:
        srv.close()


async def test_network_errors_never_show_the_token(server):
    closed = f"{server.base_url}{TOKEN}/getMe"
    await server.stop()  # nothing listens on that port now
    errors = []
    async with AiohttpRequest() as request, truncating_server() as truncated:
        for url in (closed, truncated, f"http://127.0.0.1:99999/bot{TOKEN}/getMe", f"ftp://127.0.0.1/bot{TOKEN}/x"):
            with pytest.raises(NetworkError) as caught:
                await request.do_request(url, "POST", RequestData())
            errors.append(caught.value)
    assert not any(isinstance(error, TimedOut) for error in errors)
    for error in errors:
        assert str(error).startswith("aiohttp.")
        assert "secret" not in str(error) and "secret" not in repr(error)
        assert error.__cause__ is None or "secret" not in f"{error.__cause__} {error.__cause__!r}"


async def test_requests_need_initialize_and_it_can_follow_shutdown(server):
    request = AiohttpRequest()
    url = f"{server.base_url}{TOKEN}/getMe"
    with pytest.raises(RuntimeError, match="not initialized"):
        await request.do_request(url, "POST", RequestData())
    for _ in range(2):  # PTB may initialize a request again after shutting it down
        await request.initialize()
        status, body = await request.do_request(url, "POST", RequestData())
        assert status == 200 and json.loads(body)["result"]["username"] == server.bot_username
        await request.shutdown()
    with pytest.raises(RuntimeError, match="not initialized"):
        await request.do_request(url, "POST", RequestData())


def test_the_application_sends_every_request_over_aiohttp(bot_config):
    """Replies, broadcasts and getUpdates alike: httpx costs several times the CPU per message (benchmarks)."""
    from bot.telegram.app import build_application

    application = build_application(bot_config, TOKEN, base_url="http://127.0.0.1:9/bot", with_subscriptions=False)
    get_updates, other = application.bot._request  # PTB's (getUpdates request, every other request)
    assert isinstance(get_updates, AiohttpRequest) and isinstance(other, AiohttpRequest)
    assert application.bot.request is other
