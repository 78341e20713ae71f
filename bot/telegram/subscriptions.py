"""The subscription layer of the bot: /subscribe, /unsubscribe, /digest, admin /senddigest and /stats, the yearly job.

This module owns the Telegram side of subscriptions and of the yearly digest. `register(application)` adds
the command handlers and two hooks (via `bot.telegram.app.add_hook`): at start-up the store is opened into
`bot_data["store"]` (unless one is there already), declined questions are recorded through
`bot_data["on_unanswered"]`, the yearly job is put on PTB's JobQueue with `bot.delivery.schedule.DigestTrigger`
(misfire_grace_time = the grace period, coalesce=True), and a run missed while the bot was down is started
if it is still within the grace period and has not completed; at shutdown the store is closed. Which
digest a run sends is `bot.delivery.digest.year_for_run`: on 1 January, the exchange of the previous 31 December.
Admin commands answer everyone else with the same refusal, whatever the arguments.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from telegram import Update
from telegram.error import TelegramError
from telegram.ext import Application, CommandHandler, ContextTypes

from bot.config import Config
from bot.delivery import digest
from bot.delivery.broadcast import Summary, send_digest
from bot.delivery.schedule import DigestTrigger, Schedule, last_run, missed_run, next_run
from bot.store.database import Stats, Store, open_store
from bot.telegram.app import prelimited
from bot.telegram.handlers import admin_only

log = logging.getLogger(__name__)

STORE = "store"  # bot_data key of the Store
OWNS_STORE = "subscriptions_owns_store"  # set when register's start-up hook opened it (and so closes it)
JOB_NAME = "yearly-digest"
MENU = (
    ("subscribe", "Get the New Year exchange digest every year"),
    ("unsubscribe", "Stop the yearly digest"),
    ("digest", "Read a New Year exchange digest now, e.g. /digest 2024"),
)
MIN_YEAR, MAX_YEAR = 1000, 9999


def register(application: Application) -> list[tuple[str, str]]:
    """Add the handlers and start-up/shutdown hooks; returns the public menu entries (admin commands hidden)."""
    from bot.telegram.app import SHUTDOWN_HOOKS, STARTUP_HOOKS, add_hook

    application.add_handler(CommandHandler("subscribe", subscribe))
    application.add_handler(CommandHandler("unsubscribe", unsubscribe))
    application.add_handler(CommandHandler("digest", show_digest))
    application.add_handler(CommandHandler("senddigest", send_digest_command))
    application.add_handler(CommandHandler("stats", stats_command))
    add_hook(application, STARTUP_HOOKS, start)
    add_hook(application, SHUTDOWN_HOOKS, stop)
    return list(MENU)


# --- start-up and shutdown -------------------------------------------------------------------------------------


async def start(application: Application, now: dt.datetime | None = None) -> None:
    """Open the store, plug in question recording, schedule the yearly digest, start a missed run if due."""
    data = application.bot_data
    config: Config = data["config"]
    if STORE not in data:
        data[STORE] = await open_store(config.database)
        data[OWNS_STORE] = True
    store: Store = data[STORE]
    data.setdefault("on_unanswered", _recorder(store, config))
    data.setdefault("on_question", _counter(store))
    schedule = Schedule.from_config(config.digest)
    job_queue = application.job_queue
    if job_queue is None:  # PTB installed without the job-queue extra
        log.error("no JobQueue: the yearly digest will not be sent automatically")
        return
    job_queue.run_custom(
        scheduled_digest,
        job_kwargs={
            "trigger": DigestTrigger(schedule),
            # APScheduler's default grace is one second: a loop stalled at the moment would skip the year.
            "misfire_grace_time": max(1, int(schedule.grace.total_seconds())),
            "coalesce": True,
            "max_instances": 1,
        },
        name=JOB_NAME,
    )
    now = now or dt.datetime.now(dt.UTC)
    log.info("next New Year digest: %s", next_run(now, schedule).isoformat())
    missed = missed_run(now, schedule)
    if missed is not None and not await store.run_finished(missed):
        log.info("the digest run of %s has not completed; starting it now", missed.isoformat())
        job_queue.run_once(scheduled_digest, when=0, data=missed, name=f"{JOB_NAME}-missed")


async def stop(application: Application) -> None:
    data = application.bot_data
    if data.pop(OWNS_STORE, False) and STORE in data:
        await data.pop(STORE).close()


def _counter(store: Store) -> Any:
    async def count(result: Any, chat_id: int | None) -> None:
        await store.count_question(
            answered=bool(result.answered), low_confidence=bool(getattr(result, "low_confidence", False))
        )

    return count


def _recorder(store: Store, config: Config) -> Any:
    async def record(result: Any, chat_id: int | None) -> None:
        await store.record_question(
            result.question,
            answered=bool(result.answered),
            low_confidence=bool(getattr(result, "low_confidence", False)),
            score=float(getattr(result, "score", 0.0)),
            chat_id=chat_id if config.logging.record_user_ids else None,
        )

    return record


# --- the yearly job --------------------------------------------------------------------------------------------


async def scheduled_digest(context: ContextTypes.DEFAULT_TYPE) -> None:
    """JobQueue callback: send the digest of the scheduled moment (job data, or the last moment at/before now)."""
    config: Config = context.application.bot_data["config"]
    moment = context.job.data if context.job and isinstance(context.job.data, dt.datetime) else None
    if moment is None:
        moment = last_run(dt.datetime.now(dt.UTC), Schedule.from_config(config.digest))
    await run_scheduled(context.application, moment)


async def run_scheduled(application: Application, moment: dt.datetime) -> Summary | None:
    """The broadcast for one scheduled moment, once: a completed moment is recorded and not run again."""
    data = application.bot_data
    store: Store = data[STORE]
    if await store.run_finished(moment):
        return None
    knowledge = data["knowledge"]
    year = digest.year_for_run(knowledge, moment, Schedule.from_config(data["config"].digest).tz)
    if year is None:
        log.warning("digest run of %s: no exchange in the base within the past year; nothing sent", moment)
        await store.finish_run(moment, None)
        return None
    bot = application.bot
    summary = await send_digest(bot, store, knowledge, year, data["config"].broadcast, rate_limit_args=prelimited(bot))
    if summary.busy is None:
        await store.finish_run(moment, year)
    await _tell_admins(application, f"Scheduled digest run of {moment:%Y-%m-%d %H:%M} UTC: {summary.text()}")
    return summary


async def _tell_admins(application: Application, text: str) -> None:
    for admin in application.bot_data["config"].admins:
        try:
            await application.bot.send_message(admin, text)
        except TelegramError as exc:  # an admin who never started the bot cannot be messaged
            log.info("could not notify admin %s: %s", admin, exc)


# --- user commands ---------------------------------------------------------------------------------------------


def _schedule_text(config: Config) -> str:
    return Schedule.from_config(config.digest).describe()


async def subscribe(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    message, chat = update.effective_message, update.effective_chat
    if message is None or chat is None:
        return
    config: Config = context.application.bot_data["config"]
    store: Store = context.application.bot_data[STORE]
    when = _schedule_text(config)
    if await store.subscribe(chat.id, chat.type):
        text = (
            f"Subscribed. Every year on {when} I will send this chat the digest of the New Year messages "
            "exchanged by the leaders of China and Russia. Read the latest one now with /digest; "
            "stop with /unsubscribe."
        )
    else:
        text = f"This chat is already subscribed; the next digest comes on {when}. Stop with /unsubscribe."
    await message.reply_text(text)


async def unsubscribe(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    message, chat = update.effective_message, update.effective_chat
    if message is None or chat is None:
        return
    store: Store = context.application.bot_data[STORE]
    if await store.unsubscribe(chat.id):
        text = "Unsubscribed: this chat will get no more yearly digests. /subscribe to start again."
    else:
        text = "This chat is not subscribed, so there is nothing to stop. /subscribe to get the yearly digest."
    await message.reply_text(text)


def _year_argument(args: list[str] | None) -> tuple[int | None, bool]:
    """(year, ok): no argument is (None, True); anything but a four-digit year is (None, False)."""
    if not args:
        return None, True
    if len(args) == 1 and args[0].isdigit() and MIN_YEAR <= int(args[0]) <= MAX_YEAR:
        return int(args[0]), True
    return None, False


async def show_digest(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/digest [year]: the digest of that year's exchange (default: the latest), in as many messages as needed."""
    message = update.effective_message
    if message is None:
        return
    knowledge = context.application.bot_data["knowledge"]
    year, ok = _year_argument(context.args)
    if not ok:
        years = ", ".join(str(y) for y in digest.exchange_years(knowledge))
        await message.reply_text(f"Usage: /digest [year], e.g. /digest 2024. Digests exist for: {years}.")
        return
    for part in digest.render_parts(digest.compose(knowledge, year)):
        await message.reply_text(part)


# --- admin commands --------------------------------------------------------------------------------------------


@admin_only
async def send_digest_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/senddigest [year] (admins): broadcast now, in the background; the summary follows when it is done."""
    message = update.effective_message
    assert message is not None  # admin_only checked
    data = context.application.bot_data
    config: Config = data["config"]
    knowledge = data["knowledge"]
    year, ok = _year_argument(context.args)
    if not ok:
        await message.reply_text("Usage: /senddigest [year], e.g. /senddigest 2024.")
        return
    composed = digest.compose(knowledge, year)
    if not composed.found:
        await message.reply_text(digest.no_exchange_text(year, composed.available_years))
        return
    store: Store = data[STORE]
    subscribers = len(await store.active_chat_ids())
    await message.reply_text(f"Sending the {composed.year} digest to {subscribers} subscribed chats…")

    year_found = composed.year
    assert year_found is not None  # a found digest has its year

    async def run() -> None:
        try:
            summary = await send_digest(
                context.bot, store, knowledge, year_found, config.broadcast, rate_limit_args=prelimited(context.bot)
            )
            text = summary.text()
        except Exception as exc:  # reported to the admin who asked; details in the log
            log.exception("manual digest broadcast failed")
            text = f"The {composed.year} digest broadcast stopped with an error: {type(exc).__name__}."
        await message.reply_text(text)

    context.application.create_task(run(), update=update, name=f"senddigest-{composed.year}")


def stats_text(stats: Stats, config: Config, now: dt.datetime | None = None) -> str:
    lines = [
        f"Subscribers: {stats.subscribers} "
        f"({stats.unsubscribed} unsubscribed themselves, {stats.dropped} removed because Telegram reported "
        "the chat blocked, deactivated or gone)"
    ]
    q = stats.questions
    lines.append(
        f"Questions: asked {q.asked}, answered {q.answered} ({q.low_confidence} with low confidence), "
        f"declined {q.declined}"
    )
    if not stats.years:
        lines.append("No digest has been sent yet.")
    for y in stats.years:
        lines.append(
            f"Digest {y.year}: delivered {y.sent}, failed {y.failed}, pending {y.pending}, chats gone {y.dropped}"
        )
    schedule = Schedule.from_config(config.digest)
    upcoming = next_run(now or dt.datetime.now(dt.UTC), schedule)
    lines.append(f"Next scheduled digest: {upcoming.astimezone(schedule.tz):%Y-%m-%d %H:%M} ({schedule.tz.key})")
    return "\n".join(lines)


@admin_only
async def stats_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/stats (admins): subscribers, deliveries per digest year, questions asked, answered and declined."""
    message = update.effective_message
    assert message is not None  # admin_only checked
    data = context.application.bot_data
    config: Config = data["config"]
    store: Store = data[STORE]
    await message.reply_text(stats_text(await store.stats(), config))
