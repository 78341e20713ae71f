"""The lean HTTP backend (`bot.http.LeanRequest`) under a real `telegram.Bot`, and at the HTTP level.

Through the offline Bot API server: Bot methods work, text survives the JSON body intact, Telegram's errors
still become PTB's exceptions, files go up as multipart. Against a bare asyncio server: keep-alive reuse,
chunked and close-delimited responses, a connection the server dropped while idle, read and pool timeouts,
a cancelled request, and error messages that never contain the token.
"""

from __future__ import annotations

import asyncio
import contextlib

import pytest
from telegram import Bot
from telegram.error import BadRequest, Forbidden, InvalidToken, NetworkError, RetryAfter, TimedOut
from telegram.request import RequestData

from bot.botapi_server import BotApiServer
from bot.botapi_validate import UploadedFile
from bot.http import LeanRequest

TOKEN = "123456:LEAN-secret-part"


@pytest.fixture
async def server():
    srv = BotApiServer(accepted_token=TOKEN)
    await srv.start()
    yield srv
    await srv.stop()


@pytest.fixture
async def bot(server):
    b = Bot(TOKEN, base_url=server.base_url, request=LeanRequest(connection_pool_size=4))
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
    b = Bot("123456:WRONG", base_url=server.base_url, request=LeanRequest())
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


# --- HTTP details, against a bare asyncio server ---------------------------------------------------------------


class RawServer:
    """Answers each request with the next scripted response (bytes), or never (None); counts connections."""

    def __init__(self, responses: list[bytes | None], close_after_each: bool = False) -> None:
        self.responses = list(responses)
        self.close_after_each = close_after_each
        self.connections = 0
        self.requests: list[bytes] = []
        self.tasks: set[asyncio.Task] = set()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.tasks.add(asyncio.current_task())
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(
                    (
                        int(line.split(b":")[1])
                        for line in head.split(b"\r\n")
                        if line.lower().startswith(b"content-length")
                    ),
                    0,
                )
                self.requests.append(head + await reader.readexactly(length))
                response = self.responses.pop(0)
                if response is None:
                    await asyncio.sleep(3600)
                writer.write(response)
                await writer.drain()
                if self.close_after_each or b"connection: close" in response.lower():
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


@contextlib.asynccontextmanager
async def raw_server(responses: list[bytes | None], close_after_each: bool = False):
    script = RawServer(responses, close_after_each)
    srv = await asyncio.start_server(script.handle, "127.0.0.1", 0)
    port = srv.sockets[0].getsockname()[1]
    try:
        yield script, f"http://127.0.0.1:{port}/bot{TOKEN}/getMe"
    finally:
        srv.close()
        for task in script.tasks:
            task.cancel()
        await asyncio.gather(*script.tasks, return_exceptions=True)


def ok(body: bytes = b'{"ok":true,"result":true}', extra: bytes = b"") -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n%s\r\n%s" % (len(body), extra, body)


async def test_keep_alive_chunked_and_close_delimited_responses():
    chunked = b'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\n{"ok"\r\n14\r\n:true,"result":"ch"}\r\n'
    chunked += b"0\r\nX-Trailer: yes\r\n\r\n"
    closing = b'HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n{"ok":true,"result":"eof"}'
    async with raw_server([ok(), chunked, closing, ok()]) as (script, url), LeanRequest() as request:
        replies = [await request.do_request(url, "POST", RequestData()) for _ in range(4)]
    assert replies == [
        (200, b'{"ok":true,"result":true}'),
        (200, b'{"ok":true,"result":"ch"}'),
        (200, b'{"ok":true,"result":"eof"}'),
        (200, b'{"ok":true,"result":true}'),
    ]
    assert script.connections == 2  # three answers on one kept-alive connection; the close-delimited one ends it
    first = script.requests[0]
    assert first.startswith(b"POST /bot" + TOKEN.encode() + b"/getMe HTTP/1.1\r\n")
    assert b"\r\nContent-Type: application/json\r\n" in first and first.endswith(b"\r\n\r\n{}")


async def test_a_connection_the_server_dropped_while_idle_is_not_reused():
    async with raw_server([ok(), ok()], close_after_each=True) as (script, url), LeanRequest() as request:
        assert (await request.do_request(url, "POST", RequestData()))[0] == 200
        await asyncio.sleep(0.05)  # the server's close arrives while the connection is idle in the pool
        assert (await request.do_request(url, "POST", RequestData()))[0] == 200
    assert script.connections == 2


async def test_read_and_pool_timeouts_then_the_pool_still_works():
    async with raw_server([None, ok()]) as (_, url), LeanRequest(connection_pool_size=1) as request:
        hanging = asyncio.create_task(request.do_request(url, "POST", RequestData(), read_timeout=0.5))
        await asyncio.sleep(0.1)
        with pytest.raises(TimedOut, match="Pool timeout"):  # the one connection is busy
            await request.do_request(url, "POST", RequestData(), pool_timeout=0.1)
        with pytest.raises(TimedOut):
            await hanging
        assert await request.do_request(url, "POST", RequestData()) == (200, b'{"ok":true,"result":true}')


async def test_a_cancelled_request_frees_its_slot_and_leaves_no_half_read_connection():
    async with raw_server([None, ok()]) as (script, url), LeanRequest(connection_pool_size=1) as request:
        task = asyncio.create_task(request.do_request(url, "POST", RequestData()))
        await asyncio.sleep(0.1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert await request.do_request(url, "POST", RequestData(), pool_timeout=0.5) == (
            200,
            b'{"ok":true,"result":true}',
        )
    assert script.connections == 2


async def test_network_errors_never_show_the_token():
    async with raw_server([]) as (_, url):
        pass  # the port is closed now
    async with LeanRequest() as request:
        with pytest.raises(NetworkError) as refused:
            await request.do_request(url, "POST", RequestData())
    async with (
        raw_server([b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\ncut short"], close_after_each=True) as (
            _,
            url,
        ),
        LeanRequest() as request,
    ):
        with pytest.raises(NetworkError) as truncated:
            await request.do_request(url, "POST", RequestData())
    for error in (refused.value, truncated.value):
        assert "secret" not in str(error) and "secret" not in repr(error)


async def test_requests_need_initialize():
    with pytest.raises(RuntimeError, match="not initialized"):
        await LeanRequest().do_request("http://127.0.0.1:9/bot1:x/getMe", "POST", RequestData())
