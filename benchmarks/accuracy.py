"""Answer quality on every question set, by part (tuning / check) and style: `python -m benchmarks.accuracy`.

This module owns loading and scoring the question sets; `tests/test_accuracy.py` asserts on its figures.
- `tests/questions.yaml`: the first 415 questions, each with the fact ids that answer it. They were tuned on,
  so they all belong to the tuning part.
- `tests/questions/batch-NN.yaml`: batches written from the articles alone by writers who never saw the facts
  or the code (`python -m benchmarks.accuracy --help` for the format). Each was split once, at random, into a
  tuning part (70%) and a check part (30%) before the bot was run on it; an item's `part` records it.
  An in-scope item is right when the bot answers and its reply text holds every key group (any alternative
  of a group, case-insensitive); an out-of-scope item is right when the bot declines.
Changes are looked for in the tuning part's failures only (`--failures` prints them); the check part is a
thermometer: read its figures, never its failures.
"""

from __future__ import annotations

import argparse
import datetime
import sys
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import yaml

from bot.ask import reply_text
from bot.knowledge.facts import Knowledge
from bot.matching.loading import load_indexed_or_raise
from bot.matching.matcher import Answer, Index, answer

ROOT = Path(__file__).resolve().parent.parent
LEGACY_FILE = ROOT / "tests" / "questions.yaml"
BATCH_DIR = ROOT / "tests" / "questions"
# A fixed "today" so results do not depend on the clock.
TODAY = datetime.date(2026, 6, 1)
PARTS = ("tune", "check")


@dataclass(frozen=True)
class Question:
    q: str
    in_scope: bool
    part: str  # "tune" or "check"
    style: str  # short, full, typo, russian, translit, list; near_miss, unrelated; legacy
    source: str  # the file it comes from
    expect: tuple[str, ...] = ()  # legacy set: acceptable first fact ids
    keys: tuple[tuple[str, ...], ...] = ()  # batches: every group must appear in the reply


@dataclass(frozen=True)
class Scored:
    question: Question
    answer: Answer
    text: str

    @property
    def right(self) -> bool:
        q, a = self.question, self.answer
        if not q.in_scope:
            return not a.answered
        if not a.answered or not a.facts:
            return False
        if q.expect:
            return a.facts[0].id in q.expect
        folded = self.text.casefold()
        return all(any(alt.casefold() in folded for alt in group) for group in q.keys)

    def describe(self) -> str:
        a = self.answer
        got = ", ".join(f.id for f in a.facts[:3]) if a.answered else "declined"
        if not a.answered and a.suggestions:
            got += f" (suggested {', '.join(f.id for f in a.suggestions[:3])})"
        want = (
            ", ".join(self.question.expect)
            if self.question.expect
            else (" & ".join("|".join(g) for g in self.question.keys) if self.question.in_scope else "a decline")
        )
        return f"  [{self.question.style}] {self.question.q!r}\n      want {want}; got {got}; score {a.score:.1f}"


LEGACY_KEYS = {"in_scope": {"q", "expect", "note"}, "out_of_scope": {"q", "note"}}


def _legacy() -> list[Question]:
    data = yaml.safe_load(LEGACY_FILE.read_text(encoding="utf-8"))
    # A misspelt key ("expects", "question") would silently drop an entry's meaning: reject it.
    for section, allowed in LEGACY_KEYS.items():
        for item in data[section]:
            unknown = set(item) - allowed
            if unknown:
                raise ValueError(f"{LEGACY_FILE.name} {section}: unknown keys {sorted(unknown)} in {item}")
    out = [
        Question(str(i["q"]), True, "tune", "legacy", LEGACY_FILE.name, expect=tuple(i["expect"]))
        for i in data["in_scope"]
    ]
    out += [Question(str(i["q"]), False, "tune", "legacy", LEGACY_FILE.name) for i in data["out_of_scope"]]
    return out


IN_SCOPE_KEYS = {"q", "style", "articles", "keys", "part", "note"}
OUT_OF_SCOPE_KEYS = {"q", "style", "kind", "why", "part", "note"}


def _batch(path: Path) -> list[Question]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    out: list[Question] = []
    for section, allowed in (("in_scope", IN_SCOPE_KEYS), ("out_of_scope", OUT_OF_SCOPE_KEYS)):
        for item in data[section]:
            unknown = set(item) - allowed
            if unknown:
                raise ValueError(f"{path.name}: unknown keys {sorted(unknown)} in {item}")
            if item["part"] not in PARTS:
                raise ValueError(f"{path.name}: part must be tune or check: {item}")
            keys = tuple(tuple(str(alt) for alt in group) for group in item.get("keys", ()))
            if section == "in_scope" and not keys:
                raise ValueError(f"{path.name}: an in-scope item needs keys: {item}")
            out.append(
                Question(str(item["q"]), section == "in_scope", item["part"], item["style"], path.name, keys=keys)
            )
    return out


@cache
def questions() -> tuple[Question, ...]:
    out = _legacy()
    for path in sorted(BATCH_DIR.glob("batch-*.yaml")):
        out += _batch(path)
    return tuple(out)


@cache
def indexed() -> tuple[Knowledge, Index]:
    return load_indexed_or_raise(ROOT / "knowledge", ROOT / "corpus")


def score(items: Sequence[Question]) -> list[Scored]:
    knowledge, index = indexed()
    out = []
    for q in items:
        a = answer(index, q.q, TODAY)
        out.append(Scored(q, a, reply_text(a, knowledge) if a.answered else ""))
    return out


@dataclass(frozen=True)
class Figure:
    right: int
    total: int

    @property
    def rate(self) -> float:
        return self.right / self.total if self.total else 1.0

    def __str__(self) -> str:
        return f"{self.rate:.3f} ({self.right}/{self.total})"


def figures(scored: Sequence[Scored]) -> dict[tuple[str, bool, str], Figure]:
    """(part, in_scope, style or "all") -> figure; legacy questions count in "all" only once."""
    counts: dict[tuple[str, bool, str], list[int]] = defaultdict(lambda: [0, 0])
    for s in scored:
        for style in (s.question.style, "all"):
            c = counts[(s.question.part, s.question.in_scope, style)]
            c[0] += s.right
            c[1] += 1
    return {k: Figure(*v) for k, v in counts.items()}


def report(scored: Sequence[Scored]) -> str:
    figs = figures(scored)
    lines = []
    for part in PARTS:
        for in_scope in (True, False):
            label = "in scope answered right" if in_scope else "out of scope declined"
            total = figs.get((part, in_scope, "all"))
            if total is None:
                continue
            styles = sorted(k[2] for k in figs if k[0] == part and k[1] == in_scope and k[2] != "all")
            per_style = ", ".join(f"{st} {figs[(part, in_scope, st)]}" for st in styles)
            lines.append(f"{part:5}  {label:24} {total}   [{per_style}]")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.accuracy", description=__doc__.splitlines()[0])
    parser.add_argument("--failures", action="store_true", help="print the tuning part's failures (never the check's)")
    args = parser.parse_args(argv)
    scored = score(questions())
    print(report(scored))
    if args.failures:
        print("\nTuning-part failures:")
        print("\n".join(s.describe() for s in scored if s.question.part == "tune" and not s.right))
    return 0


if __name__ == "__main__":
    sys.exit(main())
