"""Subscriptions through the real bot: the Application from bot.telegram.app polls the offline Bot API server.

A user subscribes and unsubscribes (twice each: idempotent, with a clear confirmation), reads digests with
/digest; an admin sends a digest with /senddigest and reads /stats while everyone else is refused with
the same words and nothing happens. The start-up hook opens the store, schedules the yearly job with
deliberate misfire handling, and starts a run missed within the grace period (only once).
"""

from __future__ import annotations

import datetime as dt

import pytest
from telegram.ext import ApplicationBuilder

from bot.config import DigestConfig
from bot.delivery import digest
from bot.delivery.schedule import DigestTrigger, Schedule, missed_run
from bot.presentation.telegram_text import visible_text
from bot.store.database import open_store
from bot.telegram import handlers, subscriptions

ADMIN, USER, OTHER, GROUP = 9001, 4242, 4343, -100777


@pytest.fixture
def bot_config(bot_config):
    """The conftest config, with one admin."""
    return bot_config.model_copy(update={"admins": (ADMIN,)})


async def say(srv, chat_id: int, text: str, *, user_id: int | None = None, **kwargs) -> dict:
    before = len(srv.sent_messages(chat_id))
    srv.user_message(chat_id, text, user_id=user_id, **kwargs)
    return await srv.wait_for_message(chat_id, since=before)


async def replies(srv, chat_id: int, text: str, count: int, *, user_id: int | None = None) -> list[str]:
    before = len(srv.sent_messages(chat_id))
    srv.user_message(chat_id, text, user_id=user_id)
    await srv.wait_for_message(chat_id, since=before + count - 1)
    return [m["text"] for m in srv.sent_messages(chat_id)[before:]]


async def test_subscribe_and_unsubscribe_are_idempotent_with_clear_confirmations(botapi, bot_app):
    store = bot_app.bot_data["store"]
    first = await say(botapi, USER, "/subscribe")
    assert first["text"].startswith("Subscribed.") and "1 January at 10:00" in first["text"]
    assert await store.is_subscribed(USER)
    again = await say(botapi, USER, "/subscribe")
    assert "already subscribed" in again["text"]
    assert await store.active_chat_ids() == [USER]

    gone = await say(botapi, USER, "/unsubscribe")
    assert gone["text"].startswith("Unsubscribed")
    assert not await store.is_subscribed(USER)
    still = await say(botapi, USER, "/unsubscribe")
    assert "not subscribed" in still["text"]

    # A group subscribes as a whole.
    group = await say(botapi, GROUP, "/subscribe", user_id=OTHER, chat_type="group")
    assert group["text"].startswith("Subscribed.")
    assert (await store.subscriber(GROUP)).chat_type == "group"


async def test_digest_command_shows_a_years_digest(botapi, bot_app, knowledge):
    latest = digest.latest_year(knowledge)
    expected = [visible_text(p) for p in digest.render_parts(digest.compose(knowledge, latest))]
    assert await replies(botapi, USER, "/digest", len(expected)) == expected

    first = min(digest.exchange_years(knowledge))
    expected = [visible_text(p) for p in digest.render_parts(digest.compose(knowledge, first))]
    assert await replies(botapi, USER, f"/digest {first}", len(expected)) == expected

    none = await say(botapi, USER, "/digest 1999")
    assert "no New Year exchange dated 1999" in none["text"]
    usage = await say(botapi, USER, "/digest next-year")
    assert usage["text"].startswith("Usage: /digest")


@pytest.mark.parametrize("command", ["/senddigest", "/senddigest 2024", "/stats", "/stats everything"])
async def test_admin_commands_refuse_everyone_else_and_do_nothing(botapi, bot_app, command):
    store = bot_app.bot_data["store"]
    await store.subscribe(OTHER)
    reply = await say(botapi, USER, command, user_id=USER)
    assert reply["text"] == handlers.NOT_ALLOWED
    probe = await say(botapi, USER, "/subscribe")  # handled after the command: the command is finished
    assert probe["text"].startswith("Subscribed.")
    assert botapi.sent_messages(OTHER) == []  # no digest went out
    assert (await store.stats()).years == ()


async def test_admin_sends_a_digest_and_reads_stats(botapi, bot_app, knowledge):
    store = bot_app.bot_data["store"]
    for chat in (USER, OTHER):
        await say(botapi, chat, "/subscribe")
    botapi.block_chat(OTHER)
    year = min(digest.exchange_years(knowledge))
    parts = digest.render_parts(digest.compose(knowledge, year))

    texts = await replies(botapi, ADMIN, f"/senddigest {year}", 2, user_id=ADMIN)
    assert texts[0] == f"Sending the {year} digest to 2 subscribed chats…"
    assert texts[1] == f"Digest {year}: sent 1, already had it 0, unsubscribed 1, failed 0."
    assert [m["text"] for m in botapi.sent_messages(USER)][-len(parts) :] == [visible_text(p) for p in parts]
    assert not await store.is_subscribed(OTHER)

    again = await replies(botapi, ADMIN, f"/senddigest {year}", 2, user_id=ADMIN)
    assert again[1] == f"Digest {year}: sent 0, already had it 1, unsubscribed 0, failed 0."

    stats = await say(botapi, ADMIN, "/stats", user_id=ADMIN)
    assert "Subscribers: 1 (0 unsubscribed themselves, 1 removed" in stats["text"]
    assert f"Digest {year}: delivered 1, failed 0, pending 0, chats gone 1" in stats["text"]
    assert "Next scheduled digest:" in stats["text"]

    none = await say(botapi, ADMIN, "/senddigest 1999", user_id=ADMIN)
    assert "no New Year exchange dated 1999" in none["text"]


async def test_startup_schedules_the_yearly_job_with_deliberate_misfire_handling(bot_app, bot_config):
    assert bot_app.bot_data["store"] is not None
    (job,) = bot_app.job_queue.get_jobs_by_name(subscriptions.JOB_NAME)
    schedule = Schedule.from_config(bot_config.digest)
    assert isinstance(job.job.trigger, DigestTrigger) and job.job.trigger.schedule == schedule
    assert job.job.misfire_grace_time == int(schedule.grace.total_seconds())
    assert job.job.coalesce is True
    assert job.next_t is not None and job.next_t > dt.datetime.now(dt.UTC)


def minimal_application(config, knowledge, store):
    application = ApplicationBuilder().token("123456:TEST").build()
    application.bot_data.update(config=config, knowledge=knowledge, store=store)
    return application


async def test_a_run_missed_while_down_is_started_once_within_grace(bot_config, knowledge, tmp_path):
    now = dt.datetime(2026, 1, 4, 12, tzinfo=dt.UTC)  # three days after 1 January 10:00 Moscow
    store = await open_store(tmp_path / "db.sqlite3")
    try:
        app = minimal_application(bot_config, knowledge, store)
        await subscriptions.start(app, now=now)
        (missed,) = app.job_queue.get_jobs_by_name(f"{subscriptions.JOB_NAME}-missed")
        moment = missed_run(now, Schedule.from_config(bot_config.digest))
        assert missed.data == moment == dt.datetime(2026, 1, 1, 7, tzinfo=dt.UTC)

        # Too late: nothing is started.
        late = minimal_application(bot_config, knowledge, store)
        await subscriptions.start(late, now=now + dt.timedelta(days=7))
        assert late.job_queue.get_jobs_by_name(f"{subscriptions.JOB_NAME}-missed") == ()

        # Once the run has completed, a restart within grace does not start it again.
        await store.finish_run(moment, 2025)
        again = minimal_application(bot_config, knowledge, store)
        await subscriptions.start(again, now=now)
        assert again.job_queue.get_jobs_by_name(f"{subscriptions.JOB_NAME}-missed") == ()
    finally:
        await store.close()


async def test_a_scheduled_run_sends_the_previous_years_exchange_once(botapi, bot_app, knowledge, bot_config):
    store = bot_app.bot_data["store"]
    await say(botapi, USER, "/subscribe")
    latest = digest.latest_year(knowledge)
    schedule = Schedule.from_config(bot_config.digest)
    moment = missed_run(dt.datetime(latest + 1, 1, 1, 8, tzinfo=dt.UTC), schedule)
    assert moment is not None

    summary = await subscriptions.run_scheduled(bot_app, moment)
    assert (summary.year, summary.sent) == (latest, 1)
    parts = digest.render_parts(digest.compose(knowledge, latest))
    assert [m["text"] for m in botapi.sent_messages(USER)][-len(parts) :] == [visible_text(p) for p in parts]
    assert await store.run_finished(moment)
    assert await subscriptions.run_scheduled(bot_app, moment) is None  # the same moment never runs twice


async def test_a_run_with_no_recent_exchange_sends_nothing(botapi, bot_app, knowledge):
    await say(botapi, USER, "/subscribe")
    before = len(botapi.sent_messages(USER))
    far = dt.datetime(digest.latest_year(knowledge) + 3, 1, 1, 7, tzinfo=dt.UTC)
    assert await subscriptions.run_scheduled(bot_app, far) is None
    assert len(botapi.sent_messages(USER)) == before
    assert await bot_app.bot_data["store"].run_finished(far)


def test_schedule_description_follows_the_config():
    s = Schedule.from_config(DigestConfig(month=12, day=31, time="23:30", timezone="Asia/Shanghai"))
    assert s.describe() == "31 December at 23:30 (Asia/Shanghai time)"
