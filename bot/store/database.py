"""The bot's database: subscribers and their settings, the digest delivery log, broadcast locks, questions.

This module owns every table and every query, behind one small `Store` API, so the rest of the bot never
sees SQL. It uses SQLAlchemy 2 Core (async); the default is an SQLite file (aiosqlite driver, WAL mode,
created with its folder on first start), and a PostgreSQL URL could replace it without touching callers.
The schema is versioned: `MIGRATIONS` is a numbered list applied in order at start-up, each in its own
transaction together with the new version number in `schema_version`. Times are stored as ISO 8601 UTC
strings ("2025-01-01T07:00:00.000000Z"), which sort correctly and read well in a database browser.
It also provides the `unanswered` command (declined and low-confidence questions, grouped).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import datetime as dt
import functools
import json
import os
import re
import socket
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from bot.config import ConfigError, database_url

if TYPE_CHECKING:  # types only: the store does not need pydantic at run time
    from pydantic import JsonValue

# Delivery statuses. A chat's row for a year moves pending -> sending -> (pending for the next part ->
# sending ...) -> sent; or to failed (gave up after max_attempts; retried by the next run) or dropped (Telegram
# said the chat is gone: the subscriber was unsubscribed). "sending" is committed before each message and
# left behind only by a crash: such a message may or may not have arrived, so the next run sends it again.
PENDING, SENDING, SENT, FAILED, DROPPED = "pending", "sending", "sent", "failed", "dropped"
USER_UNSUBSCRIBED = "unsubscribed with /unsubscribe"

T = TypeVar("T")
P = ParamSpec("P")
metadata = sa.MetaData()

schema_version = sa.Table("schema_version", metadata, sa.Column("version", sa.Integer, nullable=False))

subscribers = sa.Table(
    "subscribers",
    metadata,
    sa.Column("chat_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("active", sa.Boolean, nullable=False),
    sa.Column("chat_type", sa.String(16)),
    sa.Column("settings", sa.Text, nullable=False, server_default="{}"),  # JSON object
    sa.Column("subscribed_at", sa.String(32), nullable=False),
    sa.Column("updated_at", sa.String(32), nullable=False),
    sa.Column("unsubscribed_reason", sa.Text),  # why active became false: the user, or Telegram's error
)

deliveries = sa.Table(
    "deliveries",
    metadata,
    sa.Column("chat_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("year", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("parts_sent", sa.Integer, nullable=False, server_default="0"),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("last_error", sa.Text),
    sa.Column("updated_at", sa.String(32), nullable=False),
    sa.Column("sent_at", sa.String(32)),
    sa.Index("ix_deliveries_year_status", "year", "status"),
)

# One row per digest year: who is broadcasting it right now (a lock with a heartbeat) and when it last finished.
broadcasts = sa.Table(
    "broadcasts",
    metadata,
    sa.Column("year", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("owner", sa.String(200)),
    sa.Column("heartbeat_at", sa.String(32)),
    sa.Column("started_at", sa.String(32)),
    sa.Column("finished_at", sa.String(32)),
)

# Scheduled digest moments whose broadcast ran to completion, so a restart within the grace period
# does not start it again.
scheduled_runs = sa.Table(
    "scheduled_runs",
    metadata,
    sa.Column("scheduled_for", sa.String(32), primary_key=True),
    sa.Column("year", sa.Integer),
    sa.Column("finished_at", sa.String(32), nullable=False),
)

questions = sa.Table(
    "questions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("asked_at", sa.String(32), nullable=False),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("normalised", sa.Text, nullable=False),
    sa.Column("answered", sa.Boolean, nullable=False),
    sa.Column("low_confidence", sa.Boolean, nullable=False),
    sa.Column("score", sa.Float, nullable=False),
    sa.Column("chat_id", sa.BigInteger),  # only when logging.record_user_ids is on
    sa.Index("ix_questions_normalised", "normalised"),
)


# Daily totals of every question asked (no text): what /stats reports as asked, answered and declined.
question_counts = sa.Table(
    "question_counts",
    metadata,
    sa.Column("day", sa.String(10), primary_key=True),  # UTC date, YYYY-MM-DD
    sa.Column("asked", sa.Integer, nullable=False, server_default="0"),
    sa.Column("answered", sa.Integer, nullable=False, server_default="0"),
    sa.Column("low_confidence", sa.Integer, nullable=False, server_default="0"),  # answered, not confidently
    sa.Column("declined", sa.Integer, nullable=False, server_default="0"),
)


def _create(*tables: sa.Table) -> Callable[[Connection], None]:
    # When a later migration alters one of these tables, freeze its earlier definition here instead.
    return lambda conn: metadata.create_all(conn, tables=list(tables))


# The schema history: migration N brings the database from version N-1 to N. Append, never edit.
MIGRATIONS: tuple[Callable[[Connection], None], ...] = (
    _create(subscribers, deliveries, broadcasts, scheduled_runs),  # 1
    _create(questions),  # 2
    _create(question_counts),  # 3
)


# --- value types -----------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Subscriber:
    chat_id: int
    active: bool
    chat_type: str | None
    settings: dict[str, JsonValue]
    subscribed_at: str
    unsubscribed_reason: str | None


@dataclasses.dataclass(frozen=True)
class Delivery:
    chat_id: int
    year: int
    status: str
    parts_sent: int
    attempts: int
    last_error: str | None


@dataclasses.dataclass(frozen=True)
class Mark:
    """One change to a chat's delivery row, written by `Store.apply_marks` (many per transaction)."""

    chat_id: int
    year: int
    status: str
    parts_sent: int
    attempt: bool = False  # this mark starts a send attempt (attempts += 1)
    error: str | None = None
    unsubscribe_reason: str | None = None  # also make the subscriber inactive, recording why


@dataclasses.dataclass(frozen=True)
class Plan:
    """What a broadcast of `year` has to do: deliveries not yet sent to active subscribers, and how many have it."""

    year: int
    todo: tuple[Delivery, ...]
    already: int


@dataclasses.dataclass(frozen=True)
class YearStats:
    year: int
    sent: int
    failed: int
    pending: int  # pending or interrupted while sending
    dropped: int


@dataclasses.dataclass(frozen=True)
class Stats:
    subscribers: int  # active
    unsubscribed: int  # by the user
    dropped: int  # unsubscribed because Telegram said the chat is gone (blocked, deleted, not found)
    years: tuple[YearStats, ...]  # newest first
    questions: QuestionCounts = dataclasses.field(default_factory=lambda: QuestionCounts(0, 0, 0, 0))


@dataclasses.dataclass(frozen=True)
class QuestionCounts:
    asked: int
    answered: int
    low_confidence: int  # included in answered
    declined: int


@dataclasses.dataclass(frozen=True)
class QuestionGroup:
    text: str  # the most recent wording
    count: int
    last_asked: str
    answered_low_confidence: int  # how many of them got a low-confidence answer (the rest were declined)


# --- helpers ---------------------------------------------------------------------------------------------------


def now_iso(now: dt.datetime | None = None) -> str:
    now = now or dt.datetime.now(dt.UTC)
    return now.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_iso(value: str) -> dt.datetime:
    return dt.datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=dt.UTC)


_PUNCT = re.compile(r"[^\w\s]+", re.UNICODE)


def normalise_question(text: str) -> str:
    """Lower case, punctuation dropped, whitespace collapsed: 'What about trade?!' and 'what about trade' group."""
    return " ".join(_PUNCT.sub(" ", text.casefold()).split())


def process_owner() -> str:
    """Identifies this process as a broadcast lock holder: host, pid and a random part."""
    return f"{socket.gethostname()}:{os.getpid()}:{os.urandom(4).hex()}"


def owner_alive(owner: str) -> bool:
    """False only when the owner is a process on this host that no longer exists (e.g. killed with -9)."""
    host, _, rest = owner.partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return True  # another machine: only its heartbeat can tell
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _sqlite_setup(engine: AsyncEngine) -> None:
    """WAL, a busy timeout, and transactions that really begin (the sqlite3 module's legacy mode does not)."""

    @event.listens_for(engine.sync_engine, "connect")
    def _connect(dbapi_connection: Any, _record: object) -> None:  # the driver's own (untyped) DBAPI connection
        dbapi_connection.isolation_level = None  # SQLAlchemy emits BEGIN itself, below
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        # NORMAL is durable against process crashes (kill -9); a power cut may lose the last commits.
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _begin(conn: Connection) -> None:
        # IMMEDIATE takes the write lock up front, so read-then-write transactions cannot deadlock.
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def _atomic(method: Callable[P, Coroutine[Any, Any, T]]) -> Callable[P, Coroutine[Any, Any, T]]:
    """Let a cancelled caller's database call finish first (commit or roll back), then raise CancelledError.

    Cancelling an SQLAlchemy/aiosqlite call midway can leave its connection inside a transaction holding
    SQLite's write lock, and every later call then waits and fails with "database is locked". A crash
    drill (a broadcast cancelled mid-send) must not break the database for whoever runs next.
    """

    @functools.wraps(method)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        task = asyncio.ensure_future(method(*args, **kwargs))
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            with contextlib.suppress(BaseException):
                await asyncio.wait([task])
            raise

    return wrapper


def _sqlite_file(engine: AsyncEngine) -> str | None:
    """The database file of an SQLite engine; None for other databases, in-memory ones and URLs with options."""
    url = engine.url
    if url.get_backend_name() != "sqlite" or url.query or url.database in (None, "", ":memory:"):
        return None
    return url.database


# apply_marks's two statements, in SQLite's SQL.
_MARK_SQL = (
    "UPDATE deliveries SET status = ?, parts_sent = ?, attempts = attempts + ?, last_error = coalesce(?, last_error),"
    " updated_at = ?, sent_at = coalesce(?, sent_at) WHERE chat_id = ? AND year = ?"
)
_DROP_SQL = "UPDATE subscribers SET active = 0, unsubscribed_reason = ?, updated_at = ? WHERE chat_id = ?"


class _SqliteDeliveryLog:
    """`Store.apply_marks` on one sqlite3 connection owned by one thread (see `Store.delivery_log`)."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="delivery-log")
        self._db: sqlite3.Connection | None = None  # opened in the thread, which alone uses it

    @_atomic  # a cancelled caller still waits for the commit (or rollback), so the outcome is known
    async def apply(self, marks: Sequence[Mark]) -> None:
        if marks:
            await asyncio.get_running_loop().run_in_executor(self._thread, self._apply, list(marks), now_iso())

    def _apply(self, marks: list[Mark], now: str) -> None:
        db = self._db or self._connect()
        db.execute("BEGIN IMMEDIATE")
        try:
            db.executemany(
                _MARK_SQL,
                [
                    (m.status, m.parts_sent, int(m.attempt), m.error, now, now if m.status == SENT else None,
                     m.chat_id, m.year)
                    for m in marks
                ],
            )  # fmt: skip
            dropped = [(m.unsubscribe_reason, now, m.chat_id) for m in marks if m.unsubscribe_reason]
            if dropped:
                db.executemany(_DROP_SQL, dropped)
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self._path, isolation_level=None)  # autocommit: BEGIN and COMMIT are ours
        # WAL + synchronous=NORMAL: a commit survives the process being killed (-9) without an fsync each time;
        # a power cut may lose the last commits, never the file's consistency, and a lost mark means a resend
        # (a duplicate), never a chat missed. The same pragmas as the engine's connections (_sqlite_setup).
        for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "busy_timeout=10000", "foreign_keys=ON"):
            db.execute(f"PRAGMA {pragma}")
        self._db = db
        return db

    async def close(self) -> None:
        def close_db() -> None:
            if self._db is not None:
                self._db.close()

        await asyncio.get_running_loop().run_in_executor(self._thread, close_db)  # after any pending commit
        self._thread.shutdown(wait=False)


# --- the store -------------------------------------------------------------------------------------------------


class Store:
    """Async access to the database. Create with `await open_store(...)`; close with `await store.close()`."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        # One transaction at a time in this process: SQLite has a single writer anyway, and queuing here is
        # cheaper than threads waiting on the file lock.
        self._lock = asyncio.Lock()

    async def close(self) -> None:
        await self.engine.dispose()

    @asynccontextmanager
    async def _tx(self) -> AsyncIterator[AsyncConnection]:
        async with self._lock, self.engine.begin() as conn:
            yield conn

    @_atomic
    async def version(self) -> int:
        async with self._tx() as conn:
            return await _version(conn)

    # subscribers

    @_atomic
    async def subscribe(self, chat_id: int, chat_type: str | None = None) -> bool:
        """Subscribe a chat; True if it was not subscribed before (so the reply can say 'already')."""
        now = now_iso()
        async with self._tx() as conn:
            row = (await conn.execute(sa.select(subscribers.c.active).where(subscribers.c.chat_id == chat_id))).first()
            if row is None:
                await conn.execute(
                    subscribers.insert().values(
                        chat_id=chat_id, active=True, chat_type=chat_type, subscribed_at=now, updated_at=now
                    )
                )
                return True
            if row.active:
                return False
            await conn.execute(
                subscribers.update()
                .where(subscribers.c.chat_id == chat_id)
                .values(active=True, subscribed_at=now, updated_at=now, unsubscribed_reason=None)
            )
            return True

    @_atomic
    async def unsubscribe(self, chat_id: int, reason: str = USER_UNSUBSCRIBED) -> bool:
        """Unsubscribe a chat, recording why; True if it was subscribed."""
        async with self._tx() as conn:
            result = await conn.execute(
                subscribers.update()
                .where(subscribers.c.chat_id == chat_id, subscribers.c.active.is_(True))
                .values(active=False, updated_at=now_iso(), unsubscribed_reason=reason)
            )
            return result.rowcount > 0

    @_atomic
    async def subscriber(self, chat_id: int) -> Subscriber | None:
        async with self._tx() as conn:
            row = (await conn.execute(sa.select(subscribers).where(subscribers.c.chat_id == chat_id))).first()
        if row is None:
            return None
        return Subscriber(
            row.chat_id, bool(row.active), row.chat_type, json.loads(row.settings or "{}"), row.subscribed_at,
            row.unsubscribed_reason,
        )  # fmt: skip

    async def is_subscribed(self, chat_id: int) -> bool:
        sub = await self.subscriber(chat_id)
        return bool(sub and sub.active)

    @_atomic
    async def update_settings(self, chat_id: int, **values: JsonValue) -> dict[str, JsonValue]:
        """Merge `values` into a known chat's settings (JSON); returns the new settings. KeyError if unknown."""
        async with self._tx() as conn:
            row = (
                await conn.execute(sa.select(subscribers.c.settings).where(subscribers.c.chat_id == chat_id))
            ).first()
            if row is None:
                raise KeyError(chat_id)
            settings: dict[str, JsonValue] = {**json.loads(row.settings or "{}"), **values}
            await conn.execute(
                subscribers.update()
                .where(subscribers.c.chat_id == chat_id)
                .values(settings=json.dumps(settings, ensure_ascii=False), updated_at=now_iso())
            )
            return settings

    @_atomic
    async def active_chat_ids(self) -> list[int]:
        async with self._tx() as conn:
            rows = await conn.execute(
                sa.select(subscribers.c.chat_id).where(subscribers.c.active.is_(True)).order_by(subscribers.c.chat_id)
            )
            return [r.chat_id for r in rows]

    @_atomic
    async def add_subscribers(self, chat_ids: Sequence[int], chat_type: str = "private") -> None:
        """Bulk subscribe (benchmarks, imports); existing chats are made active."""
        now = now_iso()
        async with self._tx() as conn:
            await conn.execute(subscribers.delete().where(subscribers.c.chat_id.in_(list(chat_ids))))
            await conn.execute(
                subscribers.insert(),
                [
                    {"chat_id": c, "active": True, "chat_type": chat_type, "subscribed_at": now, "updated_at": now}
                    for c in chat_ids
                ],
            )

    @_atomic
    async def move_chat(self, old_chat_id: int, new_chat_id: int) -> bool:
        """A group became a supergroup (Telegram's migrate_to_chat_id): the subscription and its delivery log
        follow it (True). If the new chat is already known, the old one is just made inactive (False)."""
        async with self._tx() as conn:
            exists = (
                await conn.execute(sa.select(subscribers.c.chat_id).where(subscribers.c.chat_id == new_chat_id))
            ).first()
            if exists is None:
                await conn.execute(
                    subscribers.update().where(subscribers.c.chat_id == old_chat_id).values(chat_id=new_chat_id)
                )
                await conn.execute(
                    deliveries.update().where(deliveries.c.chat_id == old_chat_id).values(chat_id=new_chat_id)
                )
                return True
            await conn.execute(
                subscribers.update()
                .where(subscribers.c.chat_id == old_chat_id)
                .values(active=False, unsubscribed_reason=f"group moved to {new_chat_id}", updated_at=now_iso())
            )
            return False

    # delivery log

    @_atomic
    async def plan(self, year: int) -> Plan:
        """Create pending rows for active subscribers that have none for `year`; return what is left to send.

        Left to send: every active subscriber whose row is not 'sent' (pending, interrupted while sending,
        failed in an earlier run, or dropped earlier and subscribed again since).
        """
        now = now_iso()
        async with self._tx() as conn:
            have = sa.select(deliveries.c.chat_id).where(deliveries.c.year == year)
            await conn.execute(
                deliveries.insert().from_select(
                    ["chat_id", "year", "status", "parts_sent", "attempts", "updated_at"],
                    sa.select(
                        subscribers.c.chat_id,
                        sa.literal(year),
                        sa.literal(PENDING),
                        sa.literal(0),
                        sa.literal(0),
                        sa.literal(now),
                    ).where(subscribers.c.active.is_(True), subscribers.c.chat_id.not_in(have)),
                )
            )
            rows = await conn.execute(
                sa.select(deliveries)
                .join(subscribers, subscribers.c.chat_id == deliveries.c.chat_id)
                .where(deliveries.c.year == year, subscribers.c.active.is_(True))
                .order_by(deliveries.c.chat_id)
            )
            todo, already = [], 0
            for r in rows:
                if r.status == SENT:
                    already += 1
                else:
                    todo.append(Delivery(r.chat_id, r.year, r.status, r.parts_sent, r.attempts, r.last_error))
        return Plan(year, tuple(todo), already)

    @_atomic
    async def apply_marks(self, marks: Sequence[Mark]) -> None:
        """Write delivery changes in one transaction (the broadcast batches concurrent sends' marks)."""
        if not marks:
            return
        now = now_iso()
        update = (
            deliveries.update()
            .where(deliveries.c.chat_id == sa.bindparam("b_chat"), deliveries.c.year == sa.bindparam("b_year"))
            .values(
                status=sa.bindparam("b_status"),
                parts_sent=sa.bindparam("b_parts"),
                attempts=deliveries.c.attempts + sa.bindparam("b_inc"),
                last_error=sa.func.coalesce(sa.bindparam("b_error", type_=sa.Text), deliveries.c.last_error),
                updated_at=now,
                sent_at=sa.case((sa.bindparam("b_status") == SENT, now), else_=deliveries.c.sent_at),
            )
        )
        params = [
            {
                "b_chat": m.chat_id, "b_year": m.year, "b_status": m.status, "b_parts": m.parts_sent,
                "b_inc": int(m.attempt), "b_error": m.error,
            }
            for m in marks
        ]  # fmt: skip
        dropped = [m for m in marks if m.unsubscribe_reason]
        async with self._tx() as conn:
            await conn.execute(update, params)
            if dropped:
                await conn.execute(
                    subscribers.update()
                    .where(subscribers.c.chat_id == sa.bindparam("b_chat"))
                    .values(active=False, unsubscribed_reason=sa.bindparam("b_reason"), updated_at=now),
                    [{"b_chat": m.chat_id, "b_reason": m.unsubscribe_reason} for m in dropped],
                )

    @asynccontextmanager
    async def delivery_log(self) -> AsyncIterator[Callable[[Sequence[Mark]], Awaitable[None]]]:
        """For one broadcast: a function committing a batch of marks, like `apply_marks` but cheap on SQLite.

        A broadcast commits a batch every few milliseconds. Through SQLAlchemy and aiosqlite one commit costs
        ~1.5-2 ms of CPU (statement building, eight thread hops); on a plain sqlite3 connection in a thread of
        its own ~0.2 ms. That connection gets the engine's pragmas, and SQLite's locking (BEGIN IMMEDIATE,
        busy_timeout) orders its transactions against the engine's. Other databases, and in-memory SQLite
        (a second connection would see another database), get `apply_marks`.
        """
        path = _sqlite_file(self.engine)
        if path is None:
            yield self.apply_marks
            return
        log = _SqliteDeliveryLog(path)
        try:
            yield log.apply
        finally:
            await log.close()

    async def delivery(self, chat_id: int, year: int) -> Delivery | None:
        rows = await self.deliveries(year, chat_id=chat_id)
        return rows[0] if rows else None

    @_atomic
    async def deliveries(self, year: int, chat_id: int | None = None) -> list[Delivery]:
        query = sa.select(deliveries).where(deliveries.c.year == year).order_by(deliveries.c.chat_id)
        if chat_id is not None:
            query = query.where(deliveries.c.chat_id == chat_id)
        async with self._tx() as conn:
            rows = await conn.execute(query)
            return [Delivery(r.chat_id, r.year, r.status, r.parts_sent, r.attempts, r.last_error) for r in rows]

    # broadcast lock and scheduled runs

    @_atomic
    async def claim_broadcast(
        self, year: int, owner: str, lease: dt.timedelta, alive: Callable[[str], bool] = owner_alive
    ) -> str | None:
        """Take the lock for broadcasting `year`; None on success, else the holder's owner string.

        A holder whose heartbeat is older than `lease`, or which is a dead process on this host, is replaced.
        """
        now = dt.datetime.now(dt.UTC)
        async with self._tx() as conn:
            row = (await conn.execute(sa.select(broadcasts).where(broadcasts.c.year == year))).first()
            if row is not None and row.owner and row.owner != owner:
                fresh = row.heartbeat_at and now - parse_iso(row.heartbeat_at) < lease
                if fresh and alive(row.owner):
                    return row.owner
            values = {"owner": owner, "heartbeat_at": now_iso(now), "started_at": now_iso(now), "finished_at": None}
            if row is None:
                await conn.execute(broadcasts.insert().values(year=year, **values))
            else:
                await conn.execute(broadcasts.update().where(broadcasts.c.year == year).values(**values))
        return None

    @_atomic
    async def heartbeat(self, year: int, owner: str) -> None:
        async with self._tx() as conn:
            await conn.execute(
                broadcasts.update()
                .where(broadcasts.c.year == year, broadcasts.c.owner == owner)
                .values(heartbeat_at=now_iso())
            )

    @_atomic
    async def release_broadcast(self, year: int, owner: str, finished: bool) -> None:
        values: dict[str, str | None] = {"owner": None, "heartbeat_at": None}
        if finished:
            values["finished_at"] = now_iso()
        async with self._tx() as conn:
            await conn.execute(
                broadcasts.update().where(broadcasts.c.year == year, broadcasts.c.owner == owner).values(**values)
            )

    @_atomic
    async def run_finished(self, scheduled_for: dt.datetime) -> bool:
        async with self._tx() as conn:
            row = await conn.execute(
                sa.select(scheduled_runs.c.scheduled_for).where(
                    scheduled_runs.c.scheduled_for == now_iso(scheduled_for)
                )
            )
            return row.first() is not None

    @_atomic
    async def finish_run(self, scheduled_for: dt.datetime, year: int | None) -> None:
        async with self._tx() as conn:
            key = now_iso(scheduled_for)
            if (await conn.execute(sa.select(scheduled_runs).where(scheduled_runs.c.scheduled_for == key))).first():
                return
            await conn.execute(scheduled_runs.insert().values(scheduled_for=key, year=year, finished_at=now_iso()))

    # statistics

    @_atomic
    async def stats(self) -> Stats:
        async with self._tx() as conn:
            subs = (
                await conn.execute(
                    sa.select(
                        subscribers.c.active,
                        subscribers.c.unsubscribed_reason == USER_UNSUBSCRIBED,
                        sa.func.count(),
                    ).group_by(subscribers.c.active, subscribers.c.unsubscribed_reason == USER_UNSUBSCRIBED)
                )
            ).all()
            rows = (
                await conn.execute(
                    sa.select(deliveries.c.year, deliveries.c.status, sa.func.count()).group_by(
                        deliveries.c.year, deliveries.c.status
                    )
                )
            ).all()
            totals = (
                await conn.execute(
                    sa.select(
                        *(
                            sa.func.coalesce(sa.func.sum(question_counts.c[name]), 0)
                            for name in ("asked", "answered", "low_confidence", "declined")
                        )
                    )
                )
            ).one()
        active = sum(n for is_active, _, n in subs if is_active)
        by_user = sum(n for is_active, user, n in subs if not is_active and user)
        dropped = sum(n for is_active, user, n in subs if not is_active and not user)
        per_year: dict[int, dict[str, int]] = {}
        for year, status, n in rows:
            per_year.setdefault(year, {})[status] = n
        years = tuple(
            YearStats(y, c.get(SENT, 0), c.get(FAILED, 0), c.get(PENDING, 0) + c.get(SENDING, 0), c.get(DROPPED, 0))
            for y, c in sorted(per_year.items(), reverse=True)
        )
        return Stats(active, by_user, dropped, years, QuestionCounts(*(int(n) for n in totals)))

    # questions (for maintainers: what users asked that the facts do not answer well)

    @_atomic
    async def count_question(self, *, answered: bool, low_confidence: bool, day: dt.date | None = None) -> None:
        """Add one question to today's totals (kept without its text, for /stats)."""
        key = (day or dt.datetime.now(dt.UTC).date()).isoformat()
        c = question_counts.c
        values = {
            "asked": c.asked + 1,
            "answered": c.answered + int(answered),
            "low_confidence": c.low_confidence + int(answered and low_confidence),
            "declined": c.declined + int(not answered),
        }
        async with self._tx() as conn:
            if (await conn.execute(question_counts.update().where(c.day == key).values(**values))).rowcount == 0:
                await conn.execute(
                    question_counts.insert().values(
                        day=key,
                        asked=1,
                        answered=int(answered),
                        low_confidence=int(answered and low_confidence),
                        declined=int(not answered),
                    )
                )

    @_atomic
    async def record_question(
        self, text: str, *, answered: bool, low_confidence: bool, score: float, chat_id: int | None = None
    ) -> None:
        async with self._tx() as conn:
            await conn.execute(
                questions.insert().values(
                    asked_at=now_iso(),
                    text=text[:1000],
                    normalised=normalise_question(text)[:1000],
                    answered=answered,
                    low_confidence=low_confidence,
                    score=float(score),
                    chat_id=chat_id,
                )
            )

    @_atomic
    async def unanswered_groups(self, limit: int = 50) -> list[QuestionGroup]:
        """Declined or low-confidence questions grouped by normalised wording, most frequent first."""
        wanted = sa.or_(questions.c.answered.is_(False), questions.c.low_confidence.is_(True))
        async with self._tx() as conn:
            groups = (
                await conn.execute(
                    sa.select(
                        questions.c.normalised,
                        sa.func.count().label("n"),
                        sa.func.max(questions.c.asked_at).label("last"),
                        sa.func.sum(sa.case((questions.c.answered.is_(True), 1), else_=0)).label("low"),
                        sa.func.max(questions.c.id).label("latest_id"),
                    )
                    .where(wanted)
                    .group_by(questions.c.normalised)
                    .order_by(sa.desc("n"), sa.desc("last"))
                    .limit(limit)
                )
            ).all()
            ids = [g.latest_id for g in groups]
            texts = dict(
                (await conn.execute(sa.select(questions.c.id, questions.c.text).where(questions.c.id.in_(ids)))).all()
            )
        return [QuestionGroup(texts[g.latest_id], g.n, g.last, int(g.low or 0)) for g in groups]


async def _version(conn: AsyncConnection) -> int:
    await conn.run_sync(lambda c: schema_version.create(c, checkfirst=True))
    row = (await conn.execute(sa.select(schema_version.c.version))).first()
    return row.version if row else 0


async def migrate(engine: AsyncEngine, migrations: Sequence[Callable[[Connection], None]] = MIGRATIONS) -> int:
    """Apply the migrations the database lacks, each in its own transaction with its version; returns the version."""
    while True:
        async with engine.begin() as conn:
            version = await _version(conn)
            if version > len(migrations):
                raise RuntimeError(
                    f"the database is at schema version {version}, newer than this bot knows ({len(migrations)}); "
                    "upgrade the bot"
                )
            if version == len(migrations):
                return version
            await conn.run_sync(migrations[version])
            if version == 0:
                await conn.execute(schema_version.insert().values(version=1))
            else:
                await conn.execute(schema_version.update().values(version=version + 1))


def shown_url(database: str | Path) -> str:
    """The database setting as an SQLAlchemy URL fit to print: the password, if any, masked."""
    try:
        return sa.make_url(database_url(database)).render_as_string(hide_password=True)
    except (sa.exc.ArgumentError, ValueError):
        return "(not an SQLAlchemy URL)"  # the text itself may hold a password


async def open_store(database: str | Path, migrations: Sequence[Callable[[Connection], None]] = MIGRATIONS) -> Store:
    """Open (creating the file and its folder if needed) and migrate the database.

    `database` is the `database` setting (a path or an SQLAlchemy URL, see `bot.config.database_url`). A URL
    SQLAlchemy cannot use (unparsable, unknown dialect, driver not installed or not async) is a ConfigError
    that shows the URL without its password."""
    try:
        url = sa.make_url(database_url(database))
        if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url)
    except (sa.exc.ArgumentError, sa.exc.InvalidRequestError, ImportError, ValueError) as exc:
        raise ConfigError(f"database {shown_url(database)} cannot be used: {exc}") from None
    if engine.dialect.name == "sqlite":
        _sqlite_setup(engine)
    try:
        await migrate(engine, migrations)
    except BaseException:
        await engine.dispose()
        raise
    return Store(engine)


# --- command line ----------------------------------------------------------------------------------------------


def main_unanswered(args: argparse.Namespace) -> int:
    """`python -m bot unanswered`: the questions the bot declined or answered with low confidence."""
    from bot.config import load_config

    config = load_config(getattr(args, "config", None))

    @_atomic
    async def run() -> list[QuestionGroup]:
        store = await open_store(config.database)
        try:
            return await store.unanswered_groups(limit=100_000)
        finally:
            await store.close()

    from bot.store.unanswered import cluster_questions, format_clusters

    # Every distinct wording is fetched so that similar ones can be merged before the limit applies.
    groups = asyncio.run(run())
    print(format_clusters(cluster_questions(groups)[: max(1, args.limit)]))
    return 0
