"""The digest broadcast end to end through the offline Bot API server, with a real `telegram.Bot`.

What a subscriber and an operator would see: every chat gets the digest exactly once and in order, chats
that blocked the bot or are gone are unsubscribed with Telegram's reason, 429 retry_after is waited out,
a second run sends nothing, a run killed in the middle (in-process cancel, and a real `kill -9` of the
`send-digest` command) is finished by the next run with duplicates only where a message was in flight,
and the token never shows up in the command's output.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import signal
import sys
from pathlib import Path

import pytest
from knowledge_fixtures import clean_env
from telegram.ext import ExtBot
from telegram.request import HTTPXRequest

from bot.config import BroadcastConfig
from bot.delivery import digest
from bot.delivery.broadcast import Summary, TokenBucket, broadcast
from bot.playground.botapi_server import BotApiServer
from bot.presentation.telegram_text import visible_text
from bot.store.database import DROPPED, SENDING, SENT, open_store
from bot.telegram.app import bot_defaults

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "123456:TEST"
FAST = BroadcastConfig(rate_per_second=200, per_chat_interval=0.2, concurrency=8, max_attempts=3)


@pytest.fixture
def server(botapi):
    """conftest's running BotApiServer, which fails the test on any request the spec rejects."""
    return botapi


@pytest.fixture
async def store(tmp_path):
    s = await open_store(tmp_path / "db" / "bot.sqlite3")
    yield s
    await s.close()


@pytest.fixture
async def bot(server, bot_config):
    """A Bot formatting messages as the bot's does (its Defaults)."""
    request = HTTPXRequest(connection_pool_size=16)
    b = ExtBot(TOKEN, base_url=server.base_url, request=request, defaults=bot_defaults(bot_config))
    async with b:
        yield b


@pytest.fixture(scope="module")
def parts(knowledge):
    """The real digest of the latest exchange that needs two messages, so part order is exercised."""
    for year in reversed(digest.exchange_years(knowledge)):
        rendered = digest.render_parts(digest.compose(knowledge, year))
        if len(rendered) > 1:
            return year, rendered
    pytest.skip("no digest long enough to need two messages")


def texts(server: BotApiServer, chat: int) -> list[str]:
    return [m["text"] for m in server.sent_messages(chat)]


def send_times(server: BotApiServer, chat: int) -> list[tuple[float, bool, int | None]]:
    """(time, ok, retry_after) of every sendMessage to the chat, in order."""
    return [
        (c.at, c.ok, c.retry_after) for c in server.calls if c.method == "sendMessage" and c.params["chat_id"] == chat
    ]


async def test_broadcast_to_60_chats_with_blocked_gone_throttled_and_failing_chats(server, store, bot, parts):
    year, messages = parts
    chats = list(range(1001, 1061))
    await store.add_subscribers(chats)
    blocked, deactivated, missing = chats[0:3], chats[3:5], chats[5:6]
    throttled, flaky = chats[10:14], chats[20:22]
    for c in blocked:
        server.block_chat(c)
    for c in deactivated:
        server.deactivate_chat(c)
    for c in missing:
        server.chat_not_found(c)
    for c in throttled:
        server.throttle_chat(c, retry_after=1)
    for c in flaky:
        server.fail_chat(c, status=500)

    summary = await broadcast(bot, store, year, messages, FAST)

    gone = blocked + deactivated + missing
    delivered = [c for c in chats if c not in gone]
    assert summary == Summary(
        year, sent=len(delivered), unsubscribed=len(gone), messages=len(delivered) * len(messages), throttled=4
    )
    expected = [visible_text(m) for m in messages]
    for c in delivered:
        assert texts(server, c) == expected, f"chat {c} did not get the digest once, in order"
    assert server.stats.per_chat == dict.fromkeys(delivered, len(messages))  # no duplicates, nobody else

    # Gone chats are unsubscribed, with Telegram's reason recorded.
    for chats_, words in ((blocked, "blocked"), (deactivated, "deactivated"), (missing, "chat not found")):
        for c in chats_:
            sub = await store.subscriber(c)
            assert not sub.active and words in sub.unsubscribed_reason.lower()
            assert (await store.delivery(c, year)).status == DROPPED
    assert sorted(await store.active_chat_ids()) == delivered

    # 429: the retry came no sooner than retry_after; the second message kept the per-chat interval.
    for c in throttled:
        calls = send_times(server, c)
        refused = next(c_ for c_ in calls if c_[2])
        retried = next(c_ for c_ in calls if c_[1])
        assert retried[0] - refused[0] >= refused[2] - 0.01
    for c in delivered:
        ok = [at for at, accepted, _ in send_times(server, c) if accepted]
        assert all(b - a >= FAST.per_chat_interval - 0.01 for a, b in itertools.pairwise(ok))
    # 500s were retried until they went through; the log shows the attempts and the last error.
    for c in flaky:
        row = await store.delivery(c, year)
        assert row.status == SENT and row.attempts == len(messages) + 1 and "Internal Server Error" in row.last_error
    assert server.stats.peak_per_second <= FAST.rate_per_second + 1

    # Idempotent: the same year's broadcast again sends nothing.
    before = len(server.calls)
    again = await broadcast(bot, store, year, messages, FAST)
    assert again == Summary(year, already=len(delivered))
    assert [c.method for c in server.calls[before:]] == []


async def test_errors_beyond_max_attempts_are_recorded_and_retried_by_the_next_run(server, store, bot, parts):
    year, messages = parts
    await store.add_subscribers([7, 8])
    server.fail_chat(8, status=502, times=FAST.max_attempts)
    settings = FAST.model_copy(update={"max_attempts": 2})
    first = await broadcast(bot, store, year, messages[:1], settings)
    assert (first.sent, first.failed) == (1, 1)
    row = await store.delivery(8, year)
    assert row.status == "failed" and row.attempts == 2 and "Bad Gateway" in row.last_error
    assert texts(server, 8) == []
    # One injected failure is left: the next run fails once more, then delivers.
    second = await broadcast(bot, store, year, messages[:1], settings)
    assert (second.sent, second.already, second.failed) == (1, 1, 0)
    assert len(texts(server, 8)) == 1 and len(texts(server, 7)) == 1


async def test_a_message_rejected_as_malformed_is_not_retried(server, store, bot):
    await store.add_subscribers([5])
    summary = await broadcast(bot, store, 2024, ["<b>unclosed"], FAST)
    assert (summary.sent, summary.failed) == (0, 1)
    row = await store.delivery(5, 2024)
    assert row.status == "failed" and row.attempts == 1 and "parse" in row.last_error.lower()
    server.invalid_calls.clear()  # the malformed HTML was deliberate


async def test_resume_after_a_crash_while_a_message_is_in_flight(server, store, bot, parts):
    """Cancel the broadcast inside the server while it handles a send: that chat's row stays 'sending'."""
    year, messages = parts
    chats = list(range(2001, 2031))
    await store.add_subscribers(chats)
    settings = FAST.model_copy(update={"per_chat_interval": 0.05})
    task = asyncio.create_task(broadcast(bot, store, year, messages, settings))
    crashed_in: list[int] = []

    def crash(event) -> None:
        if event.kind == "message" and not crashed_in and len(server.calls) >= 25:
            crashed_in.append(event.chat_id)  # delivered, but the bot will never see the answer
            task.cancel()

    server.add_listener(crash)
    with pytest.raises(asyncio.CancelledError):
        await task
    rows = {r.chat_id: r for r in await store.deliveries(year)}
    in_flight = {c for c, r in rows.items() if r.status == SENDING}
    assert crashed_in[0] in in_flight
    assert any(r.status != SENT for r in rows.values()), "the crash came too late to leave work undone"

    summary = await broadcast(bot, store, year, messages, settings)
    assert summary.sent + summary.already == len(chats)
    expected = [visible_text(m) for m in messages]
    for c in chats:
        got = texts(server, c)
        if c in in_flight:  # the in-flight message may arrive twice, nothing else
            assert len(got) in (len(expected), len(expected) + 1) and set(got) == set(expected)
        else:
            assert got == expected, f"chat {c}"
    assert len(texts(server, crashed_in[0])) == len(expected) + 1  # the in-flight one did arrive twice


async def test_a_delivery_log_failure_stops_the_broadcast_and_the_next_run_finishes_it(server, store, bot):
    """The database failing mid-broadcast (disk full, say) is an error, not a success with outcomes unrecorded."""
    chats = list(range(4001, 4101))
    await store.add_subscribers(chats)
    real_log = store.delivery_log
    commits = itertools.count()

    @contextlib.asynccontextmanager
    async def failing_log():
        async with real_log() as apply:

            async def apply_then_fail(marks):
                if next(commits) == 6:
                    raise OSError("disk I/O error")
                await apply(marks)

            yield apply_then_fail

    store.delivery_log = failing_log
    with pytest.raises(OSError, match="disk I/O error"):
        await broadcast(bot, store, 2025, ["hello"], FAST)
    assert 0 < server.stats.sent < len(chats)
    in_flight = {r.chat_id for r in await store.deliveries(2025) if r.status == SENDING}

    del store.delivery_log  # the real one again
    summary = await broadcast(bot, store, 2025, ["hello"], FAST)
    assert summary.failed == 0 and summary.sent + summary.already == len(chats)
    counts = server.stats.per_chat
    assert all(counts.get(c) in (1, 2) for c in chats), "a subscriber was missed or got more than one duplicate"
    assert {c for c in chats if counts[c] == 2} <= in_flight  # only where the log said "sending"


async def test_two_broadcasts_of_the_same_year_do_not_run_at_once(server, store, bot):
    await store.add_subscribers(list(range(1, 21)))
    slow = FAST.model_copy(update={"rate_per_second": 20})
    first = asyncio.create_task(broadcast(bot, store, 2024, ["hello"], slow))
    await asyncio.sleep(0.2)
    second = await broadcast(bot, store, 2024, ["hello"], slow)
    assert second.busy and second.sent == 0
    assert (await first).sent == 20
    assert server.stats.duplicates == {}


async def test_a_group_upgraded_to_a_supergroup_gets_the_digest_at_its_new_id(store):
    """Telegram answers 400 with migrate_to_chat_id (the offline server cannot): the subscription moves."""
    from telegram.error import ChatMigrated

    delivered: list[tuple[int, str]] = []

    class UpgradedGroupBot:  # stands in for telegram.Bot: the engine only calls do_api_request("sendmessage")
        async def do_api_request(self, endpoint, api_kwargs=None, **kwargs):
            assert endpoint.lower() == "sendmessage"
            if api_kwargs["chat_id"] == -5:
                raise ChatMigrated(-1005)
            delivered.append((api_kwargs["chat_id"], api_kwargs["text"]))

    await store.add_subscribers([-5, 6], chat_type="group")
    summary = await broadcast(UpgradedGroupBot(), store, 2025, ["digest"], FAST)
    assert summary.sent == 2 and sorted(delivered) == [(-1005, "digest"), (6, "digest")]
    assert await store.active_chat_ids() == [-1005, 6]
    assert (await store.delivery(-1005, 2025)).status == SENT


async def test_token_bucket_keeps_the_rate_and_honours_pauses():
    clock = [0.0]
    starts: list[float] = []

    async def sleep(seconds: float) -> None:
        clock[0] += seconds

    bucket = TokenBucket(10, clock=lambda: clock[0], sleep=sleep)
    for _ in range(21):
        await bucket.acquire()
        starts.append(clock[0])
    assert starts[-1] == pytest.approx(2.0)  # 21 acquisitions at 10/s span 2 seconds
    bucket.pause(5)
    await bucket.acquire()
    assert clock[0] >= starts[-1] + 5


async def test_in_the_bot_a_broadcast_keeps_its_configured_rate_and_is_not_limited_twice(
    server, store, bot_app, monkeypatch
):
    """The Application's AIORateLimiter (30 messages/s) limits replies; the broadcast's sends pass it by
    (rate_limit_args), so its own token bucket alone keeps it to broadcast.rate_per_second."""
    from telegram.ext import AIORateLimiter

    from bot.telegram.app import prelimited

    through_limiter: list[str] = []
    process_request = AIORateLimiter.process_request

    async def counting(self, callback, args, kwargs, endpoint, data, rate_limit_args):
        through_limiter.append(endpoint.lower())
        return await process_request(self, callback, args, kwargs, endpoint, data, rate_limit_args)

    monkeypatch.setattr(AIORateLimiter, "process_request", counting)
    chats = list(range(5001, 5181))
    await store.add_subscribers(chats)
    settings = BroadcastConfig(rate_per_second=90, per_chat_interval=0.2, concurrency=8, max_attempts=3)
    bot = bot_app.bot
    started = asyncio.get_running_loop().time()
    summary = await broadcast(bot, store, 2025, ["hello"], settings, rate_limit_args=prelimited(bot))
    elapsed = asyncio.get_running_loop().time() - started
    assert summary.sent == len(chats) and server.stats.per_chat == dict.fromkeys(chats, 1)
    # The configured rate, kept (within 10%: the server shares this event loop, so a stall on a busy machine
    # hands it a few sends at once).
    assert server.stats.peak_per_second <= settings.rate_per_second * 1.1
    assert "sendmessage" not in through_limiter  # not limited a second time ...
    assert elapsed < len(chats) / 30  # ... nor held to the replies' 30 messages/s
    await bot.send_message(chats[0], "a reply")
    assert through_limiter == ["sendmessage"]  # replies still go through the AIORateLimiter


# --- the send-digest command, including a real kill -9 -------------------------------------------------------


def command_env(server: BotApiServer, database: Path, **extra: str) -> dict[str, str]:
    return clean_env(
        TELEGRAM_API_BASE_URL=server.base_url, TELEGRAM_BOT_TOKEN=TOKEN, BOT_DATABASE=str(database), **extra
    )


async def run_command(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "send-digest", *args, cwd=ROOT, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    return proc.returncode, out.decode(), err.decode()


async def test_send_digest_command_killed_midway_then_rerun_misses_nobody(server, tmp_path, knowledge):
    database = tmp_path / "bot.sqlite3"
    chats = list(range(3001, 3121))
    s = await open_store(database)
    await s.add_subscribers(chats)
    await s.close()
    year = digest.latest_year(knowledge)
    env = command_env(server, database, BOT_BROADCAST_RATE="40", BOT_LOG_LEVEL="DEBUG")

    log = tmp_path / "killed.log"
    with log.open("wb") as output:  # a file, not a pipe: nobody reads a pipe while we wait for the kill
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "send-digest", cwd=ROOT, env=env, stdout=output, stderr=output
        )

    def kill(event) -> None:
        if event.kind == "message" and server.stats.sent >= 80:
            os.kill(proc.pid, signal.SIGKILL)  # while the server handles a send: that message is in flight
            remove()

    remove = server.add_listener(kill)
    await asyncio.wait_for(proc.wait(), 60)
    assert proc.returncode == -signal.SIGKILL
    assert TOKEN.split(":")[1] not in log.read_text(), "the token was logged"
    s = await open_store(database)
    rows = {r.chat_id: r for r in await s.deliveries(year)}
    await s.close()
    in_flight = {c for c, r in rows.items() if r.status == SENDING}
    assert sum(r.status == SENT for r in rows.values()) > 0, "killed before anyone had the whole digest"
    assert sum(r.status != SENT for r in rows.values()) > 0, "killed after the end"

    code, out, err = await run_command(command_env(server, database, BOT_LOG_LEVEL="DEBUG"))
    assert code == 0, err
    assert "sent" in out and "already had it" in out and "failed 0" in out
    assert TOKEN not in out + err and TOKEN.split(":")[1] not in out + err
    parts = len(digest.render_parts(digest.compose(knowledge, year)))
    counts = server.stats.per_chat
    assert all(counts.get(c, 0) >= parts for c in chats), "a subscriber was missed"
    assert {c for c in chats if counts[c] > parts} <= in_flight, "only in-flight messages may be sent twice"
    assert all(counts[c] <= parts + 1 for c in chats)

    # And once more: nothing is sent.
    before = server.stats.sent
    code, out, _ = await run_command(command_env(server, database))
    assert code == 0 and f"sent 0, already had it {len(chats)}" in out
    assert server.stats.sent == before


@pytest.mark.parametrize("token", ["", "not-a-token"])
async def test_send_digest_command_without_a_valid_token_says_so_in_one_line(server, tmp_path, token):
    env = command_env(server, tmp_path / "bot.sqlite3")
    env["TELEGRAM_BOT_TOKEN"] = token
    code, out, err = await run_command(env)
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and "TELEGRAM_BOT_TOKEN" in err
    assert server.calls == []


async def test_send_digest_command_for_a_year_without_exchange(server, tmp_path, knowledge):
    code, _, err = await run_command(command_env(server, tmp_path / "bot.sqlite3"), "--year", "1999")
    assert code == 2
    assert "1999" in err and all(str(y) in err for y in digest.exchange_years(knowledge))
