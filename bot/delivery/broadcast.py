"""Delivering a digest to every subscriber: resumable, idempotent, rate-limited.

This module owns the broadcast engine. Every chat's progress lives in the store's delivery log, written by
group commit: a message goes out only after its chat's "sending" mark is committed (claimed in batches a
few milliseconds ahead of the senders), and its outcome ("sent", or the next part) joins the next commit,
at most LOG_LINGER later. So running a year's broadcast again sends nothing to chats that have it, and a
run killed in the middle (kill -9 included) is finished by the next one with nobody missed and at most one
message per chat sent twice: the one that was in flight, or delivered in the last few milliseconds before
the kill without its outcome committed (at 900 messages/s, a handful of chats). Only chats whose row says
"sending" can get a duplicate. Telegram's limits are kept by a token bucket for the overall rate, a pause
of `per_chat_interval` between two messages to one chat, and a fixed number of concurrent senders (the
bot's own rate limiter lets these messages pass, told so by `rate_limit_args`). 429
waits the given retry_after (and holds the whole broadcast that long); 403 and 400 "chat not found"
unsubscribe the chat with Telegram's reason; other errors are retried with exponential backoff up to
`max_attempts`, then recorded as failed (the next run tries again). A lock row per year keeps two
broadcasts of the same year (bot and CLI, say) from running at once. The engine takes any `telegram.Bot`
(sending with `do_api_request`), so the bot, the `send-digest` command (wired in `bot.telegram.app`) and
tests all use it; messages are formatted by the bot's `telegram.ext.Defaults` (parse mode, link previews),
as everything else the bot sends.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import itertools
import logging
import math
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from telegram import Bot, TelegramObject
from telegram.error import BadRequest, ChatMigrated, Forbidden, InvalidToken, NetworkError, RetryAfter, TelegramError

from bot.config import BroadcastConfig
from bot.store.database import DROPPED, FAILED, PENDING, SENDING, SENT, Mark, Plan, Store, process_owner

log = logging.getLogger(__name__)

LOCK_LEASE = dt.timedelta(seconds=60)  # a lock holder that has not beaten for this long is presumed dead
MAX_THROTTLES = 20  # 429s tolerated for one chat in one run before it is recorded as failed
BACKOFF_BASE, BACKOFF_CAP = 1.0, 60.0  # seconds; doubled per attempt, with jitter
CLAIM_AHEAD = 0.02  # seconds of sends whose "sending" marks are committed ahead of the senders
LOG_LINGER = 0.005  # seconds a delivered message's mark may wait to share a commit with others
# Sent with Bot.do_api_request: the answer is not built into a telegram.Message (a digest message has ~34
# entities; building it cost more CPU than the whole HTTP exchange), and PTB still raises RetryAfter, Forbidden,
# BadRequest ... from error answers. Lower case because Bot API method names are case-insensitive and PTB warns
# on every do_api_request call naming a method it has its own function for.
SEND_MESSAGE = "sendmessage"
GONE_BAD_REQUESTS = ("chat not found", "user not found", "peer_id_invalid", "group chat was deactivated")


@dataclasses.dataclass(frozen=True)
class Summary:
    year: int
    sent: int = 0  # chats that received the digest in this run
    already: int = 0  # chats that had it before this run
    unsubscribed: int = 0  # chats Telegram reported gone (blocked, deactivated, not found): now unsubscribed
    failed: int = 0  # chats still without it after max_attempts (the next run tries again)
    messages: int = 0  # messages sent (a long digest is several per chat)
    throttled: int = 0  # 429 answers received
    busy: str | None = None  # another broadcast of this year was running (its owner): nothing was done

    def text(self) -> str:
        if self.busy:
            return f"Digest {self.year}: another broadcast of this year is running ({self.busy}); nothing sent."
        return (
            f"Digest {self.year}: sent {self.sent}, already had it {self.already}, "
            f"unsubscribed {self.unsubscribed}, failed {self.failed}."
        )


class TokenBucket:
    """At most `rate` acquisitions per second on average, bursts of at most `burst` (GCRA form of a token bucket).

    Each caller reserves the next free slot and sleeps until it; `pause` pushes every later slot back.
    """

    def __init__(
        self,
        rate: float,
        burst: int = 1,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Any] = asyncio.sleep,
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.interval = 1.0 / rate
        self.tolerance = self.interval * max(0, burst - 1)
        self._clock, self._sleep = clock, sleep
        self._tat = clock()  # theoretical arrival time of the next acquisition

    async def acquire(self) -> None:
        now = self._clock()
        tat = max(self._tat, now)
        start = tat - self.tolerance
        self._tat = tat + self.interval
        if start > now:
            await self._sleep(start - now)

    def pause(self, seconds: float) -> None:
        """Nothing new starts for `seconds` (Telegram asked us to wait)."""
        self._tat = max(self._tat, self._clock() + seconds + self.tolerance)


@dataclasses.dataclass(frozen=True)
class _Job:
    chat_id: int
    part: int  # index of the next part to send
    attempts: int = 0  # failed attempts (other than 429) in this run
    throttles: int = 0


class _DeliveryLog:
    """Group commit of delivery marks: one transaction for everything queued since the previous one.

    `write` waits for its commit: a "sending" mark must be durable before its message goes out, and errors are
    rare. `note` does not wait: a delivered message's outcome lost to a crash leaves the row "sending", so the
    next run sends that message again (a duplicate, never a miss). Outcomes alone linger `linger` seconds for
    company, so a broadcast commits at most about 1/linger times a second, whatever its rate. Marks are written
    in the order they were queued. A failed commit nobody waits for is passed to `on_error`.
    """

    def __init__(
        self,
        apply: Callable[[Sequence[Mark]], Awaitable[None]],
        on_error: Callable[[BaseException], None],
        linger: float = LOG_LINGER,
    ) -> None:
        self._apply, self._on_error, self._linger = apply, on_error, linger
        self._marks: list[Mark] = []
        self._waiters: list[asyncio.Future[None]] = []
        self._wake = asyncio.Event()
        self._closing = False
        self._task = asyncio.create_task(self._run(), name="delivery-log-writer")

    async def write(self, marks: Sequence[Mark]) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._marks.extend(marks)
        self._waiters.append(future)
        self._wake.set()
        await future

    def note(self, mark: Mark) -> None:
        self._marks.append(mark)
        self._wake.set()

    async def _run(self) -> None:
        while not (self._closing and not self._marks and not self._waiters):
            await self._wake.wait()
            if not self._waiters and not self._closing:
                await asyncio.sleep(self._linger)
            self._wake.clear()
            marks, waiters = self._marks, self._waiters
            self._marks, self._waiters = [], []
            try:
                await self._apply(marks)
            except Exception as exc:
                for future in waiters:
                    if not future.done():
                        future.set_exception(exc)
                if not waiters:
                    self._on_error(exc)
            else:
                for future in waiters:
                    if not future.done():
                        future.set_result(None)

    async def close(self) -> None:
        """Commit what is queued, then stop; shielded, so a cancelled broadcast still records its outcomes."""
        self._closing = True
        self._wake.set()
        await asyncio.shield(self._task)


def message_format(bot: Bot) -> dict[str, Any]:
    """The bot's `telegram.ext.Defaults` for a message (parse mode, link preview options) as raw sendMessage fields.

    PTB fills Defaults into its own methods' arguments, not into `do_api_request`'s api_kwargs, so the engine
    copies them. A bot without Defaults (a plain `telegram.Bot`) sends the text as it is.
    """
    defaults = getattr(bot, "defaults", None)  # telegram.ext.ExtBot's
    if defaults is None:
        return {}
    fields = {"parse_mode": defaults.parse_mode, "link_preview_options": defaults.link_preview_options}
    return {
        name: value.to_dict() if isinstance(value, TelegramObject) else value
        for name, value in fields.items()
        if value is not None
    }


def retry_after_seconds(exc: RetryAfter) -> float:
    """The wait Telegram asked for, in seconds."""
    value = getattr(exc, "_retry_after", None)  # a timedelta; reading the public attribute warns about its type
    if not isinstance(value, dt.timedelta):
        value = dt.timedelta(seconds=float(exc.retry_after))  # type: ignore[arg-type]
    return max(0.0, value.total_seconds())


def backoff(attempt: int, rng: random.Random | None = None) -> float:
    """Seconds to wait before retry number `attempt` (1-based): 1, 2, 4 ... capped, plus up to 25% jitter."""
    delay = min(BACKOFF_CAP, BACKOFF_BASE * 2.0 ** (attempt - 1))
    jitter = rng.random() if rng is not None else random.random()
    return delay * (1 + jitter * 0.25)


async def broadcast(
    bot: Bot,
    store: Store,
    year: int,
    parts: Sequence[str],
    settings: BroadcastConfig,
    *,
    owner: str | None = None,
    rate_limit_args: object = None,
) -> Summary:
    """Send `parts` (the messages of one digest, in order) to every active subscriber who lacks `year`'s digest.

    `rate_limit_args`, when given, goes with every send (`telegram.ext.ExtBot`): how the bot's own rate limiter
    is to treat messages this broadcast has rate-limited already (bot.telegram.app.PRELIMITED: let them pass).
    """
    if not parts:
        raise ValueError("nothing to send")
    owner = owner or process_owner()
    busy = await store.claim_broadcast(year, owner, LOCK_LEASE)
    if busy is not None:
        log.warning("digest %s: not sending, another broadcast of this year holds the lock (%s)", year, busy)
        return Summary(year, busy=busy)
    finished = False
    heart = asyncio.create_task(_heartbeat(store, year, owner))
    try:
        summary = await _deliver(bot, store, year, list(parts), settings, rate_limit_args)
        finished = True
        return summary
    finally:
        heart.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await heart
        # Shielded: a cancelled broadcast must still release its lock.
        with contextlib.suppress(Exception):
            await asyncio.shield(store.release_broadcast(year, owner, finished))


async def _heartbeat(store: Store, year: int, owner: str) -> None:
    while True:
        await asyncio.sleep(LOCK_LEASE.total_seconds() / 4)
        try:
            await store.heartbeat(year, owner)
        except Exception:  # a missed beat is not fatal; the lease is four beats long
            log.warning("digest %s: heartbeat failed", year, exc_info=True)


async def _deliver(
    bot: Bot, store: Store, year: int, parts: list[str], settings: BroadcastConfig, rate_limit_args: object
) -> Summary:
    plan = await store.plan(year)
    log.info("digest %s: %d to send, %d already have it", year, len(plan.todo), plan.already)
    if not plan.todo:
        return Summary(year, already=plan.already)
    async with store.delivery_log() as apply_marks:
        return await _send_all(bot, apply_marks, store, year, parts, settings, plan, rate_limit_args)


async def _send_all(
    bot: Bot,
    apply_marks: Callable[[Sequence[Mark]], Awaitable[None]],
    store: Store,
    year: int,
    parts: list[str],
    settings: BroadcastConfig,
    plan: Plan,
    rate_limit_args: object,
) -> Summary:
    loop = asyncio.get_running_loop()
    counts = {"sent": 0, "unsubscribed": 0, "failed": 0, "messages": 0, "throttled": 0}
    concurrency = max(1, settings.concurrency)
    # Due continuations (a chat's next part, retries) go before chats not started yet, so a long digest's parts
    # arrive a per-chat interval apart instead of a whole broadcast apart.
    queue: asyncio.PriorityQueue[tuple[int, int, _Job]] = asyncio.PriorityQueue()
    # Jobs whose "sending" mark is committed, waiting for a sender: claiming about CLAIM_AHEAD seconds of sends
    # in one commit keeps the commit's latency out of the sending path without making a due continuation wait
    # long behind claimed jobs. Rows "sending" but not sent yet: at most 2 x ahead + concurrency.
    ahead = max(1, min(concurrency, math.ceil(settings.rate_per_second * CLAIM_AHEAD)))
    ready: asyncio.Queue[_Job] = asyncio.Queue(maxsize=ahead)
    order = itertools.count()
    outstanding = len(plan.todo)
    done = asyncio.Event()
    fatal: list[BaseException] = []
    limiter = TokenBucket(settings.rate_per_second)
    last = len(parts) - 1
    common = message_format(bot)
    options: dict[str, Any] = {} if rate_limit_args is None else {"rate_limit_args": rate_limit_args}

    def stop(exc: BaseException) -> None:
        fatal.append(exc)
        done.set()

    journal = _DeliveryLog(apply_marks, on_error=stop)

    for row in plan.todo:
        # A row left "sending" by a crash resends its in-flight part; a finished part is never resent.
        queue.put_nowait((1, next(order), _Job(row.chat_id, min(row.parts_sent, last))))

    def later(delay: float, job: _Job) -> None:
        loop.call_later(max(0.0, delay), queue.put_nowait, (0, next(order), job))

    def finish(outcome: str) -> None:
        nonlocal outstanding
        counts[outcome] += 1
        outstanding -= 1
        if outstanding == 0:
            done.set()

    async def handle(job: _Job) -> None:
        chat, part = job.chat_id, job.part
        await limiter.acquire()
        try:
            await bot.do_api_request(
                SEND_MESSAGE, api_kwargs={"chat_id": chat, "text": parts[part], **common}, **options
            )
        except RetryAfter as exc:
            wait = retry_after_seconds(exc)
            counts["throttled"] += 1
            limiter.pause(wait)
            if job.throttles + 1 >= MAX_THROTTLES:
                await journal.write([Mark(chat, year, FAILED, part, error=f"rate limited {MAX_THROTTLES} times")])
                finish("failed")
                return
            await journal.write([Mark(chat, year, PENDING, part, error=str(exc))])
            later(max(wait, settings.per_chat_interval), dataclasses.replace(job, throttles=job.throttles + 1))
        except Forbidden as exc:  # blocked by the user, user deactivated, kicked from the group
            await _drop(journal, chat, year, part, exc)
            finish("unsubscribed")
        except ChatMigrated as exc:  # a group became a supergroup: follow it and resend there
            reason = f"group moved to {exc.new_chat_id}"
            await journal.write([Mark(chat, year, PENDING, part, error=reason)])
            if await store.move_chat(chat, exc.new_chat_id):
                later(0, dataclasses.replace(job, chat_id=exc.new_chat_id))
            else:  # the new chat is a subscriber of its own, delivered in its own right
                await journal.write([Mark(chat, year, DROPPED, part, error=reason)])
                finish("unsubscribed")
        except BadRequest as exc:  # a 400: either the chat is gone, or the message itself is wrong (no retry)
            if any(gone in str(exc).lower() for gone in GONE_BAD_REQUESTS):
                await _drop(journal, chat, year, part, exc)
                finish("unsubscribed")
            else:
                log.error("digest %s: Telegram rejected the message for chat %s: %s", year, chat, exc)
                await journal.write([Mark(chat, year, FAILED, part, error=f"{type(exc).__name__}: {exc}")])
                finish("failed")
        except InvalidToken as exc:  # nothing can be sent with this token: stop the broadcast
            stop(exc)
        except (NetworkError, TelegramError) as exc:  # 5xx, timeouts, connection errors: retry with backoff
            attempts = job.attempts + 1
            error = f"{type(exc).__name__}: {exc}"
            if attempts >= settings.max_attempts:
                log.warning("digest %s: giving up on chat %s after %d attempts: %s", year, chat, attempts, error)
                await journal.write([Mark(chat, year, FAILED, part, error=error)])
                finish("failed")
            else:
                await journal.write([Mark(chat, year, PENDING, part, error=error)])
                later(max(backoff(attempts), settings.per_chat_interval), dataclasses.replace(job, attempts=attempts))
        else:  # delivered: recorded with the next group commit, not waited for
            counts["messages"] += 1
            if part == last:
                journal.note(Mark(chat, year, SENT, part + 1))
                finish("sent")
            else:
                journal.note(Mark(chat, year, PENDING, part + 1))
                later(settings.per_chat_interval, dataclasses.replace(job, part=part + 1, attempts=0))

    async def claim() -> None:
        while True:
            jobs = [(await queue.get())[2]]
            while len(jobs) < ahead and not queue.empty():
                jobs.append(queue.get_nowait()[2])
            await journal.write([Mark(job.chat_id, year, SENDING, job.part, attempt=True) for job in jobs])
            for job in jobs:
                await ready.put(job)

    async def guarded(step: Callable[[], Awaitable[None]]) -> None:
        while True:
            try:
                await step()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a bug or a database error: stop rather than spin
                stop(exc)
                return

    async def send_next() -> None:
        await handle(await ready.get())

    tasks = [asyncio.create_task(guarded(claim))]
    tasks += [asyncio.create_task(guarded(send_next)) for _ in range(concurrency)]
    try:
        await done.wait()
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await journal.close()
    if fatal:
        raise fatal[0]
    summary = Summary(
        year,
        sent=counts["sent"],
        already=plan.already,
        unsubscribed=counts["unsubscribed"],
        failed=counts["failed"],
        messages=counts["messages"],
        throttled=counts["throttled"],
    )
    log.info("%s", summary.text())
    return summary


async def _drop(journal: _DeliveryLog, chat: int, year: int, part: int, exc: TelegramError) -> None:
    reason = f"Telegram: {exc}"
    log.info("digest %s: chat %s is gone (%s); unsubscribed", year, chat, exc)
    await journal.write([Mark(chat, year, DROPPED, part, error=reason, unsubscribe_reason=reason)])


async def send_digest(
    bot: Bot, store: Store, knowledge: Any, year: int, settings: BroadcastConfig, *, rate_limit_args: object = None
) -> Summary:
    """Compose `year`'s digest from the current facts and broadcast it. ValueError if the year has no exchange."""
    from bot.delivery import digest

    composed = digest.compose(knowledge, year)
    if not composed.found:
        raise ValueError(digest.render_plain(composed))
    return await broadcast(bot, store, year, digest.render_parts(composed), settings, rate_limit_args=rate_limit_args)
