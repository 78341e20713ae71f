"""The `ask` command (`bot.ask`) as a person or a script uses it: plain replies, --json, batch mode and errors.

The commands run in a subprocess (`python -m bot --config ... ask`) against the small invented knowledge of
`tests/knowledge_fixtures.py`, so these tests check the command line itself, not the real facts.
"""

from __future__ import annotations

import datetime
import io
import json
import select
import subprocess
import sys
from pathlib import Path

import pytest

try:  # tests/ may or may not be a package
    from tests.knowledge_fixtures import PROJECT_ROOT, clean_env, edited, write_project
except ModuleNotFoundError:
    from knowledge_fixtures import PROJECT_ROOT, clean_env, edited, write_project

from bot.ask import answer_json, reply_text, run_questions
from bot.knowledge.facts import load_knowledge
from bot.matching.matcher import answer, build_index

JSON_KEYS = {"question", "answered", "text", "facts", "score", "suggestions"}


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A config file pointing at a fresh copy of the fixture knowledge and corpus."""
    write_project(tmp_path)
    config = tmp_path / "config.yaml"
    config.write_text("knowledge_dir: knowledge\ncorpus_dir: corpus\ndatabase: bot.sqlite3\n", encoding="utf-8")
    return config


def run_ask(config: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = clean_env()
    return subprocess.run(
        [sys.executable, "-m", "bot", "--config", str(config), "ask", *args],
        input=stdin,
        capture_output=True,
        text=True,
        encoding="utf-8",
        cwd=PROJECT_ROOT,
        env=env,
        timeout=120,
    )


def test_ask_prints_the_reply_as_a_person_reads_it(project):
    result = run_ask(project, "How much was trade in 2024?")
    assert result.returncode == 0, result.stderr
    assert "Record trade in 2024" in result.stdout
    assert "Trade between the two countries reached a record high" in result.stdout
    assert "<" not in result.stdout  # plain text, no HTML tags
    # Exactly the text the bot would send, in plain form.
    knowledge = load_knowledge(project.parent / "knowledge", project.parent / "corpus")
    reply = answer(build_index(knowledge), "How much was trade in 2024?", datetime.date.today())
    assert result.stdout == reply_text(reply, knowledge).rstrip("\n") + "\n"


def test_ask_json_and_a_declined_question_still_exits_zero(project):
    result = run_ask(project, "--json", "weather in Paris")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert set(data) == JSON_KEYS
    assert data["question"] == "weather in Paris"
    assert data["answered"] is False and data["facts"] == []
    assert 0 <= data["score"] < 50
    assert data["text"].strip() and "<" not in data["text"]


def test_batch_mode_answers_every_line_in_order_including_blank_ones(project):
    questions = ["How much was trade in 2024?", "", "What did Leader A say about the foundation?", "trade 2019"]
    result = run_ask(project, "--json", "-", stdin="\n".join(questions) + "\n")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == len(questions)
    objects = [json.loads(line) for line in lines]
    assert [o["question"] for o in objects] == questions
    assert all(set(o) == JSON_KEYS for o in objects)
    assert objects[0]["answered"] and objects[0]["facts"][0] == "record-trade-2024"
    assert objects[1]["answered"] is False and objects[1]["facts"] == []
    assert objects[2]["facts"][0] == "foundation-quote-2023"
    assert objects[3]["answered"] is False  # a year with no fact is declined, not answered with 2024


def test_batch_mode_writes_each_answer_as_soon_as_it_is_read(project):
    env = clean_env()
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot", "--config", str(project), "ask", "--json", "-"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        encoding="utf-8",
        cwd=PROJECT_ROOT,
        env=env,
    )
    try:
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write("How much was trade in 2024?\n")
        proc.stdin.flush()
        # stdin is still open: the reply must arrive without waiting for the end of input.
        ready, _, _ = select.select([proc.stdout], [], [], 60)
        assert ready, "no answer while standard input is still open (output not flushed per line)"
        assert json.loads(proc.stdout.readline())["facts"][0] == "record-trade-2024"
        proc.stdin.close()
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_invalid_knowledge_prints_the_problems_and_exits_1(tmp_path):
    write_project(tmp_path, edited("trade.yaml", "kind: trade", "kind: tradez"))
    config = tmp_path / "config.yaml"
    config.write_text("knowledge_dir: knowledge\ncorpus_dir: corpus\n", encoding="utf-8")
    result = run_ask(config, "trade 2024")
    assert result.returncode == 1
    assert "trade.yaml" in result.stderr and "tradez" in result.stderr
    assert result.stdout == ""


def test_a_4096_character_question_is_answered(project):
    question = ("How much was trade in 2024? " * 200)[:4096]
    result = run_ask(project, "--json", question)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["question"] == question
    assert data["facts"][:1] == ["record-trade-2024"]


def test_plain_batch_mode_separates_replies_and_json_matches_the_answer(project):
    knowledge = load_knowledge(project.parent / "knowledge", project.parent / "corpus")
    index = build_index(knowledge)
    out = io.StringIO()
    today = datetime.date(2025, 1, 1)
    assert run_questions(["trade 2024", "weather in Paris"], index, knowledge, out, as_json=False, today=today) == 2
    replies = [reply_text(answer(index, q, today), knowledge).rstrip("\n") for q in ("trade 2024", "weather in Paris")]
    assert "Record trade in 2024" in replies[0]
    assert out.getvalue() == replies[0] + "\n\n" + replies[1] + "\n"

    result = answer(index, "trade 2024", today)
    data = answer_json(result, knowledge)
    assert data["facts"] == [f.id for f in result.facts] and data["score"] == result.score
    assert data["suggestions"] == [{"id": f.id, "title": f.title} for f in result.suggestions]
