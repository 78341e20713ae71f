"""The `ask` command: answer a question from the command line exactly as the bot would.

This module owns `python -m bot ask "QUESTION"` (the reply as a person reads it), `--json` (one JSON object
per question: question, answered, text, facts, score, suggestions) and batch mode `-` (one question per
line on standard input, one reply or JSON line out per question, in order, flushed as it goes; the index
is built once). Exit status: 0 whether answered or declined, 1 for invalid knowledge (every problem is
printed), 2 for an unusable configuration.
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
from collections.abc import Iterable
from typing import TextIO, TypedDict

from bot.config import load_config
from bot.knowledge.facts import KnowledgeView
from bot.matching.loading import load_indexed_or_raise
from bot.matching.matcher import Answer, Index, answer
from bot.presentation.render import answer_html, to_plain


class SuggestionJson(TypedDict):
    id: str
    title: str


class AnswerJson(TypedDict):
    """The JSON object `ask --json` prints for one answer."""

    question: str
    answered: bool
    text: str
    facts: list[str]  # fact ids, best first
    score: float
    suggestions: list[SuggestionJson]


def reply_text(result: Answer, knowledge: KnowledgeView) -> str:
    """The reply as plain text, derived from the same HTML the bot sends."""
    return to_plain(answer_html(result, knowledge))


def answer_json(result: Answer, knowledge: KnowledgeView) -> AnswerJson:
    """The JSON object `ask --json` prints for one answer."""
    return {
        "question": result.question,
        "answered": result.answered,
        "text": reply_text(result, knowledge),
        "facts": [f.id for f in result.facts],
        "score": result.score,
        "suggestions": [{"id": f.id, "title": f.title} for f in result.suggestions],
    }


def run_questions(
    questions: Iterable[str],
    index: Index,
    knowledge: KnowledgeView,
    out: TextIO,
    as_json: bool,
    today: datetime.date | None = None,
) -> int:
    """Answer each question in order, writing and flushing one reply (or JSON line) per question."""
    count = 0
    for question in questions:
        result = answer(index, question, today or datetime.date.today())
        if as_json:
            out.write(json.dumps(answer_json(result, knowledge), ensure_ascii=False) + "\n")
        else:
            if count:
                out.write("\n")
            out.write(reply_text(result, knowledge).rstrip("\n") + "\n")
        out.flush()
        count += 1
    return count


def _stdin_questions(stream: TextIO) -> Iterable[str]:
    for line in stream:
        yield line.rstrip("\r\n")


def main_ask(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    knowledge, index = load_indexed_or_raise(config.knowledge_dir, config.corpus_dir)
    questions = _stdin_questions(sys.stdin) if args.question == "-" else [args.question]
    run_questions(questions, index, knowledge, sys.stdout, args.json)
    return 0
