"""The database: created on first start, migrated in order, idempotent subscriptions, the delivery log, locks.

Each test opens a fresh SQLite file in a temporary folder (a folder that does not exist yet, as on a first
start) and checks what the bot relies on, through the Store API and, where it matters, the file itself.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import re
import sqlite3

import pytest

from bot.config import ConfigError, load_config
from bot.store.database import (
    DROPPED,
    MIGRATIONS,
    PENDING,
    SENDING,
    SENT,
    USER_UNSUBSCRIBED,
    Mark,
    main_unanswered,
    open_store,
)


@pytest.fixture
def db_path(tmp_path):
    return tmp_path / "not" / "yet" / "bot.sqlite3"


@pytest.fixture
async def store(db_path):
    s = await open_store(db_path)
    yield s
    await s.close()


async def test_first_start_creates_the_folder_and_a_wal_database_at_the_latest_version(db_path):
    assert not db_path.parent.exists()
    s = await open_store(db_path)
    try:
        assert await s.version() == len(MIGRATIONS)
    finally:
        await s.close()
    with sqlite3.connect(db_path) as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        tables = {r[0] for r in raw.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert raw.execute("SELECT version FROM schema_version").fetchall() == [(len(MIGRATIONS),)]
    assert {"subscribers", "deliveries", "broadcasts", "scheduled_runs", "questions"} <= tables


async def test_a_database_url_opens_the_same_file_and_creates_its_folder(db_path):
    s = await open_store(f"sqlite+aiosqlite:///{db_path}")
    try:
        await s.subscribe(42)
    finally:
        await s.close()
    s = await open_store(str(db_path))  # the plain path of the same file
    try:
        assert await s.is_subscribed(42)
    finally:
        await s.close()


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        (
            "postgresql+nosuch://bot:hunter2@db.example.org/bot",
            "database postgresql+nosuch://bot:***@db.example.org/bot",
        ),
        ("sqlite:///bot.sqlite3", "not async"),  # the synchronous driver
        ("post gres://bot:hunter2@db/bot", "not an SQLAlchemy URL"),
    ],
)
async def test_an_unusable_database_url_is_a_config_error_without_the_password(url, fragment):
    with pytest.raises(ConfigError, match=re.escape(fragment)) as info:
        await open_store(url)
    assert "hunter2" not in str(info.value)


async def test_migrations_apply_in_order_and_keep_the_data(db_path):
    old = await open_store(db_path, migrations=MIGRATIONS[:1])  # a database made by an older bot
    assert await old.version() == 1
    await old.subscribe(42)
    await old.close()
    with sqlite3.connect(db_path) as raw:
        assert "questions" not in {r[0] for r in raw.execute("SELECT name FROM sqlite_master")}

    new = await open_store(db_path)
    try:
        assert await new.version() == len(MIGRATIONS)
        assert await new.is_subscribed(42)
        await new.record_question("anything?", answered=False, low_confidence=False, score=1)
    finally:
        await new.close()
    again = await open_store(db_path)  # reopening migrates nothing
    try:
        assert await again.version() == len(MIGRATIONS)
    finally:
        await again.close()


async def test_a_failing_migration_leaves_the_previous_version_intact(db_path):
    def broken(conn):
        conn.exec_driver_sql("CREATE TABLE half_done (x INTEGER)")
        raise RuntimeError("migration bug")

    with pytest.raises(RuntimeError, match="migration bug"):
        await open_store(db_path, migrations=(*MIGRATIONS, broken))
    s = await open_store(db_path)
    try:
        assert await s.version() == len(MIGRATIONS)
    finally:
        await s.close()
    with sqlite3.connect(db_path) as raw:  # the migration's transaction was rolled back, DDL included
        assert "half_done" not in {r[0] for r in raw.execute("SELECT name FROM sqlite_master")}


async def test_a_database_newer_than_the_bot_is_refused(db_path):
    await (await open_store(db_path)).close()
    with sqlite3.connect(db_path) as raw:
        raw.execute("UPDATE schema_version SET version = 99")
    with pytest.raises(RuntimeError, match="newer than this bot"):
        await open_store(db_path)


async def test_subscribe_and_unsubscribe_are_idempotent(store):
    assert await store.subscribe(7, "private") is True
    assert await store.subscribe(7, "private") is False
    assert await store.active_chat_ids() == [7]
    assert await store.unsubscribe(7) is True
    assert await store.unsubscribe(7) is False
    sub = await store.subscriber(7)
    assert not sub.active and sub.unsubscribed_reason == USER_UNSUBSCRIBED
    assert await store.subscribe(7) is True  # coming back clears the reason
    assert (await store.subscriber(7)).unsubscribed_reason is None
    assert await store.unsubscribe(8) is False  # never subscribed


async def test_settings_are_kept_per_chat(store):
    await store.subscribe(1)
    assert await store.update_settings(1, format="plain") == {"format": "plain"}
    assert await store.update_settings(1, lang="ru") == {"format": "plain", "lang": "ru"}
    assert (await store.subscriber(1)).settings == {"format": "plain", "lang": "ru"}
    with pytest.raises(KeyError):
        await store.update_settings(2, lang="en")


async def test_the_delivery_plan_skips_chats_that_have_the_digest(store):
    await store.add_subscribers([1, 2, 3, 4])
    plan = await store.plan(2024)
    assert [d.chat_id for d in plan.todo] == [1, 2, 3, 4] and plan.already == 0
    assert {d.status for d in plan.todo} == {PENDING}
    await store.apply_marks([Mark(1, 2024, SENDING, 0, attempt=True), Mark(2, 2024, SENDING, 0, attempt=True)])
    gone = Mark(3, 2024, DROPPED, 0, error="Forbidden: bot was blocked", unsubscribe_reason="Telegram: bot was blocked")
    await store.apply_marks([Mark(1, 2024, SENT, 1), gone])
    await store.unsubscribe(4)
    plan = await store.plan(2024)
    # 1 has it, 3 is gone, 4 left; 2 was interrupted while sending and is sent again.
    assert [(d.chat_id, d.status, d.attempts) for d in plan.todo] == [(2, SENDING, 1)] and plan.already == 1
    assert (await store.subscriber(3)).unsubscribed_reason == "Telegram: bot was blocked"
    assert (await store.delivery(1, 2024)).attempts == 1
    # Another year is a separate delivery; a chat that subscribes again is planned again.
    await store.subscribe(3)
    assert [d.chat_id for d in (await store.plan(2025)).todo] == [1, 2, 3]
    assert [d.chat_id for d in (await store.plan(2024)).todo] == [2, 3]


async def test_stats_count_subscribers_and_deliveries(store):
    await store.add_subscribers([1, 2, 3, 4, 5])
    await store.unsubscribe(5)
    await store.plan(2025)
    await store.apply_marks(
        [
            Mark(1, 2025, SENT, 1),
            Mark(2, 2025, "failed", 0, error="Bad Gateway"),
            Mark(3, 2025, DROPPED, 0, unsubscribe_reason="Telegram: user is deactivated"),
        ]
    )
    stats = await store.stats()
    assert (stats.subscribers, stats.unsubscribed, stats.dropped) == (3, 1, 1)
    (year,) = stats.years
    assert (year.year, year.sent, year.failed, year.pending, year.dropped) == (2025, 1, 1, 1, 1)


async def test_broadcast_lock_is_exclusive_until_released_or_its_holder_is_dead(store):
    lease = dt.timedelta(seconds=60)
    assert await store.claim_broadcast(2025, "hostA:1:a", lease) is None
    assert await store.claim_broadcast(2025, "hostB:2:b", lease) == "hostA:1:a"  # alive elsewhere: busy
    assert await store.claim_broadcast(2024, "hostB:2:b", lease) is None  # another year is independent
    # A holder known to be dead (e.g. killed with -9 on this host) is replaced at once ...
    assert await store.claim_broadcast(2025, "hostC:3:c", lease, alive=lambda owner: False) is None
    # ... and one that stopped beating is replaced after the lease.
    assert await store.claim_broadcast(2025, "hostD:4:d", dt.timedelta(0)) is None
    await store.release_broadcast(2025, "hostD:4:d", finished=True)
    assert await store.claim_broadcast(2025, "hostE:5:e", lease) is None


async def test_scheduled_runs_are_remembered(store):
    moment = dt.datetime(2026, 1, 1, 7, tzinfo=dt.UTC)
    assert not await store.run_finished(moment)
    await store.finish_run(moment, 2025)
    await store.finish_run(moment, 2025)  # twice is fine
    assert await store.run_finished(moment)
    assert await store.run_finished(moment.astimezone(dt.timezone(dt.timedelta(hours=3))))  # same instant


async def test_unanswered_questions_are_grouped_most_frequent_first(store):
    for text, answered, low in [
        ("Who won the 2022 World Cup?", False, False),
        ("who won the 2022 world cup", False, False),
        ("What about the Arctic?", True, True),
        ("What did Xi say?", True, False),  # answered well: not listed
        ("WHO WON THE 2022 WORLD CUP!!", False, False),
    ]:
        await store.record_question(text, answered=answered, low_confidence=low, score=10)
    groups = await store.unanswered_groups()
    assert [(g.text, g.count, g.answered_low_confidence) for g in groups] == [
        ("WHO WON THE 2022 WORLD CUP!!", 3, 0),
        ("What about the Arctic?", 1, 1),
    ]


async def test_unanswered_command_reads_the_configured_database(db_path, monkeypatch, capsys):
    monkeypatch.setenv("BOT_DATABASE", str(db_path))
    assert load_config().database == str(db_path)  # the environment overrides config.yaml
    s = await open_store(db_path)
    await s.record_question("Is the moon Chinese?", answered=False, low_confidence=False, score=5)
    await s.record_question("is the moon chinese", answered=False, low_confidence=False, score=5)
    await s.close()
    # main_unanswered runs its own event loop, so run it outside this test's loop.
    code = await asyncio.to_thread(main_unanswered, argparse.Namespace(config=None, limit=10))
    out = capsys.readouterr().out
    assert code == 0
    assert "is the moon chinese" in out and "    2" in out


async def test_a_migrated_group_keeps_its_subscription_and_delivery_log(store):
    await store.add_subscribers([-5, -7, -1007], chat_type="group")
    await store.plan(2025)
    assert await store.move_chat(-5, -1005) is True
    assert (await store.delivery(-1005, 2025)).status == PENDING and await store.delivery(-5, 2025) is None
    assert await store.move_chat(-7, -1007) is False  # the new id already subscribes on its own
    assert (await store.subscriber(-7)).unsubscribed_reason == "group moved to -1007"
    assert await store.active_chat_ids() == [-1007, -1005]
