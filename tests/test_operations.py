"""Operations: the per-update log line, question statistics, the unanswered worklist, live knowledge edits,
and a shutdown in the middle of a broadcast."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import shutil
import signal
import sqlite3
import sys
from pathlib import Path

import pytest
from conftest import BOT_TOKEN, ROOT, running_app

from bot.store.database import QuestionGroup, open_store
from bot.store.unanswered import cluster_questions, format_clusters

ADMIN = 4242
TRADE_Q = "how much was trade in 2023"


async def ask(botapi, chat_id: int, text: str, *, user_id: int | None = None) -> dict:
    since = len(botapi.sent_messages(chat_id))
    botapi.user_message(chat_id, text, user_id=user_id or chat_id)
    return await botapi.wait_for_message(chat_id, timeout=10, since=since)


# --- one log line per update -------------------------------------------------------------------------------------


async def update_lines(caplog, count: int) -> list[str]:
    """The bot.updates lines, once `count` are there: each is written after the reply, when the update is done."""
    for _ in range(100):
        lines = [r.getMessage() for r in caplog.records if r.name == "bot.updates"]
        if len(lines) >= count:
            break
        await asyncio.sleep(0.05)
    return lines


async def test_every_update_gets_one_log_line_with_kind_outcome_and_latency_but_no_text(botapi, bot_app, caplog):
    with caplog.at_level(logging.INFO, logger="bot.updates"):
        await ask(botapi, 501, TRADE_Q)
        await ask(botapi, 501, "what is the recipe for borscht")
        await ask(botapi, 501, "/about")
        lines = await update_lines(caplog, 3)
    assert len(lines) == 3, lines
    assert re.search(r"kind=message outcome=answered latency_ms=\d+\.\d", lines[0])
    assert "facts=trade-200-billion-2023" in lines[0]
    assert "outcome=declined" in lines[1]
    assert "kind=command outcome=handled" in lines[2]
    assert all("trade in 2023" not in line and "borscht" not in line for line in lines), "question text was logged"
    assert all(BOT_TOKEN not in r.getMessage() for r in caplog.records)


async def test_a_failing_handler_is_logged_as_outcome_error(botapi, bot_app, monkeypatch, caplog):
    from bot.telegram import handlers

    def boom(*args, **kwargs):
        raise RuntimeError("kaput")

    monkeypatch.setattr(handlers, "answer", boom)
    with caplog.at_level(logging.INFO, logger="bot.updates"):
        await ask(botapi, 502, "trade 2023")
        lines = await update_lines(caplog, 1)
    assert any("outcome=error" in line and "error=RuntimeError" in line for line in lines), lines


# --- /stats: questions asked, answered, declined -----------------------------------------------------------------


async def test_stats_counts_questions_asked_answered_and_declined(botapi, bot_config, knowledge, index):
    config = bot_config.model_copy(update={"admins": (ADMIN,)})
    async with running_app(config, botapi.base_url, knowledge=knowledge, index=index):
        await ask(botapi, 601, TRADE_Q)
        await ask(botapi, 601, "when did mishustin visit beijing")
        await ask(botapi, 601, "weather in paris tomorrow")
        reply = await ask(botapi, ADMIN, "/stats")
        assert "Questions: asked 3, answered 2" in reply["text"]
        assert "declined 1" in reply["text"]
        refused = await ask(botapi, 601, "/stats")
        assert "Questions" not in refused["text"] and refused["text"].startswith("Not allowed")
    store = await open_store(config.database)
    try:
        groups = await store.unanswered_groups()
    finally:
        await store.close()
    assert [g.text for g in groups] == ["weather in paris tomorrow"]


# --- python -m bot unanswered ------------------------------------------------------------------------------------


def group(text: str, count: int, low: int = 0, last: str = "2026-01-02T10:00:00.000000Z") -> QuestionGroup:
    return QuestionGroup(text=text, count=count, last_asked=last, answered_low_confidence=low)


def test_similar_wordings_are_grouped_and_the_most_frequent_come_first() -> None:
    clusters = cluster_questions(
        [
            group("bitcoin price", 2),
            group("when did putin visit bejing", 1),
            group("When did Putin visit Beijing?", 3),
            group("putin visit beijing when", 1, low=1),
            group("Modi India trade", 1),
        ]
    )
    assert [(c.text, c.count) for c in clusters] == [
        ("When did Putin visit Beijing?", 5),
        ("bitcoin price", 2),
        ("Modi India trade", 1),
    ]
    assert set(clusters[0].variants) == {"when did putin visit bejing", "putin visit beijing when"}
    assert clusters[0].low_confidence == 1
    text = format_clusters(clusters)
    assert text.index("When did Putin visit Beijing?") < text.index("bitcoin price")
    assert "~ when did putin visit bejing" in text


def test_no_questions_gives_a_plain_message() -> None:
    assert format_clusters(cluster_questions([])) == "No declined or low-confidence questions recorded."


async def test_unanswered_command_lists_recorded_questions_grouped(tmp_path: Path) -> None:
    database = tmp_path / "bot.sqlite3"
    store = await open_store(database)
    for text, answered in [
        ("Who is the president of France?", False),
        ("who is the president of france", False),
        ("who is the presidnt of france", False),
        ("bitcoin price", False),
        ("how much oil in barrels", True),
    ]:
        await store.record_question(text, answered=answered, low_confidence=answered, score=40.0)
    await store.close()
    env = {**os.environ, "BOT_DATABASE": str(database)}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "unanswered", cwd=ROOT, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()
    rows = [line for line in out.decode().splitlines()[1:] if not line.strip().startswith("~")]
    assert len(rows) == 3, out.decode()
    assert re.match(r"\s*3\s.*president of france", rows[0], re.I)
    assert "answered with low confidence" in out.decode()


# --- live knowledge edits ----------------------------------------------------------------------------------------


@pytest.fixture
async def live_app(botapi, bot_config, tmp_path):
    """The bot on a private copy of knowledge/ with a fast reload poll, and an admin."""
    shutil.copytree(ROOT / "knowledge", tmp_path / "knowledge")
    config = bot_config.model_copy(
        update={
            "knowledge_dir": tmp_path / "knowledge",
            "admins": (ADMIN,),
            "reload": bot_config.reload.model_copy(update={"interval": 0.2}),
        }
    )
    async with running_app(config, botapi.base_url) as app:
        yield app, tmp_path / "knowledge"


async def answer_until(botapi, chat_id: int, question: str, predicate, timeout: float = 10.0) -> dict:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        reply = await ask(botapi, chat_id, question)
        if predicate(reply["text"]) or asyncio.get_running_loop().time() > deadline:
            return reply
        await asyncio.sleep(0.3)


async def test_a_valid_edit_changes_the_next_answer_without_restart(botapi, live_app):
    _, folder = live_app
    before = await ask(botapi, 701, TRADE_Q)
    assert "$200 billion" in before["text"]
    trade = folder / "trade.yaml"
    text = trade.read_text(encoding="utf-8")
    assert "ahead of schedule, Xi Jinping noted" in text
    trade.write_text(text.replace("ahead of schedule, Xi Jinping noted", "ahead of schedule (edited live), Xi noted"))
    after = await answer_until(botapi, 701, TRADE_Q, lambda t: "edited live" in t)
    assert "edited live" in after["text"]
    assert "$200 billion" in after["text"]


async def test_an_invalid_edit_keeps_answers_and_tells_admins_where_the_error_is(botapi, live_app):
    _, folder = live_app
    before = await ask(botapi, 702, TRADE_Q)
    trade = folder / "trade.yaml"
    lines = trade.read_text(encoding="utf-8").splitlines(keepends=True)
    number = next(i for i, line in enumerate(lines) if "id: trade-200-billion-2023" in line)
    date_line = next(i for i in range(number, len(lines)) if lines[i].strip().startswith("date:"))
    lines[date_line] = lines[date_line].replace('"2023"', '"2023-13"')
    trade.write_text("".join(lines), encoding="utf-8")

    alert = await botapi.wait_for_message(ADMIN, timeout=10)
    assert "Knowledge edit rejected" in alert["text"]
    assert f"trade.yaml:{date_line + 1}:" in alert["text"]
    assert "trade-200-billion-2023" in alert["text"]
    await asyncio.sleep(0.6)  # a few more polls: the broken file must not be reported again nor loaded
    assert len(botapi.sent_messages(ADMIN)) == 1
    after = await ask(botapi, 702, TRADE_Q)
    assert after["text"] == before["text"]


async def test_reload_command_is_for_admins_and_reports_the_result(botapi, live_app):
    _, folder = live_app
    refused = await ask(botapi, 703, "/reload")
    assert refused["text"].startswith("Not allowed")
    ok = await ask(botapi, ADMIN, "/reload")
    assert re.search(r"Knowledge reloaded: \d+ facts", ok["text"])
    (folder / "broken.yaml").write_text("facts:\n  - id: [unclosed\n", encoding="utf-8")
    rejected = await ask(botapi, ADMIN, "/reload")
    assert "Knowledge edit rejected" in rejected["text"] and "broken.yaml:" in rejected["text"]


# --- shutdown in the middle of a broadcast -----------------------------------------------------------------------


async def test_sigterm_during_a_broadcast_leaves_a_log_the_next_run_completes(botapi, tmp_path, knowledge):
    from bot.delivery import digest

    database = tmp_path / "bot.sqlite3"
    chats = list(range(8001, 8301))
    store = await open_store(database)
    await store.add_subscribers(chats)
    await store.close()
    env = {
        **os.environ,
        "TELEGRAM_BOT_TOKEN": BOT_TOKEN,
        "TELEGRAM_API_BASE_URL": botapi.base_url,
        "BOT_DATABASE": str(database),
        "BOT_ADMINS": str(ADMIN),
        "BOT_BROADCAST_RATE": "60",
        "BOT_POLL_TIMEOUT": "1",
        "BOT_RELOAD_INTERVAL": "0",
    }
    output = tmp_path / "bot.log"
    with output.open("wb") as sink:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "run", cwd=ROOT, env=env, stdout=sink, stderr=sink
        )
    try:
        await botapi.wait_for_call("setMyCommands", timeout=30)
        botapi.user_message(ADMIN, "/senddigest")
        while botapi.stats.sent < 60:
            await asyncio.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(proc.wait(), 60)
    finally:
        if proc.returncode is None:
            proc.kill()
    assert code == 0, output.read_text()
    assert BOT_TOKEN not in output.read_text()

    year = digest.latest_year(knowledge)
    with sqlite3.connect(database) as db:  # the log is readable and every row is in a known state
        statuses = dict(db.execute("SELECT status, COUNT(*) FROM deliveries WHERE year = ? GROUP BY status", (year,)))
    assert set(statuses) <= {"pending", "sending", "sent", "failed", "dropped"}, statuses

    rerun = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "send-digest", cwd=ROOT, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, err = await asyncio.wait_for(rerun.communicate(), 120)
    assert rerun.returncode == 0, err.decode()
    parts = len(digest.render_parts(digest.compose(knowledge, year)))
    counts = botapi.stats.per_chat
    assert all(counts.get(c, 0) >= parts for c in chats), "a subscriber was missed"
    assert sum(counts[c] - parts for c in chats) <= 16, "more repeats than messages that can be in flight"
