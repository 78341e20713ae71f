"""Answer quality on the question sets: `tests/questions.yaml` and the batches in `tests/questions/`.

This module owns the accuracy measurement: it runs every question of the set through the real matcher
(`bot.matching.matcher.answer`) over the real knowledge base and checks that in-scope questions get the expected
fact first and out-of-scope questions are declined. The question set was written independently of the
facts' `questions:`/`keywords:` phrasings, so it measures how the bot copes with what people actually type.
On failure the assertion message lists every miss (question, expected ids, what the bot gave, score).

The batches in `tests/questions/` (scored by `benchmarks.accuracy`) hold floors per part, tuning and check:
a change may not lower either part below `tests/questions/floors.yaml`. Their failures are printed for the
tuning part only; the check part is read as figures, never as failures.
"""

from __future__ import annotations

import datetime
import subprocess
import sys
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest
import yaml
from knowledge_fixtures import clean_env

from bot.knowledge.facts import Knowledge, load_knowledge
from bot.matching.matcher import Answer, answer, build_index

ROOT = Path(__file__).resolve().parent.parent
QUESTIONS_FILE = Path(__file__).resolve().parent / "questions.yaml"
# A fixed "today" so results do not depend on the clock (the set has no relative years anyway).
TODAY = datetime.date(2026, 6, 1)
MIN_IN_SCOPE_ACCURACY = 0.95
MIN_OUT_OF_SCOPE_DECLINED = 0.95


@dataclass(frozen=True)
class InScope:
    q: str
    expect: tuple[str, ...]


@dataclass(frozen=True)
class Result:
    q: str
    expect: tuple[str, ...]
    answer: Answer

    @property
    def first(self) -> str | None:
        return self.answer.facts[0].id if self.answer.answered and self.answer.facts else None

    def describe(self) -> str:
        got = self.first if self.answer.answered else "declined"
        if not self.answer.answered and self.answer.suggestions:
            got += f" (suggested {', '.join(f.id for f in self.answer.suggestions[:3])})"
        expected = ", ".join(self.expect) if self.expect else "a decline"
        return f"  {self.q!r}\n      expected {expected}; got {got}; score {self.answer.score:.1f}"


@cache
def question_set() -> tuple[tuple[InScope, ...], tuple[str, ...]]:
    data = yaml.safe_load(QUESTIONS_FILE.read_text(encoding="utf-8"))
    # A misspelt key ("expects", "question") would silently drop an entry's meaning: reject it.
    for section, allowed in (("in_scope", {"q", "expect", "note"}), ("out_of_scope", {"q", "note"})):
        for item in data[section]:
            unknown = set(item) - allowed
            assert not unknown, f"tests/questions.yaml {section}: unknown keys {sorted(unknown)} in {item}"
    in_scope = tuple(InScope(str(item["q"]), tuple(item["expect"])) for item in data["in_scope"])
    out_of_scope = tuple(str(item["q"]) for item in data["out_of_scope"])
    return in_scope, out_of_scope


@cache
def knowledge() -> Knowledge:
    return load_knowledge(ROOT / "knowledge", ROOT / "corpus")


@cache
def results() -> tuple[tuple[Result, ...], tuple[Result, ...]]:
    """Every question answered once (the index is built once), shared by the tests below."""
    index = build_index(knowledge())
    in_scope, out_of_scope = question_set()
    return (
        tuple(Result(item.q, item.expect, answer(index, item.q, today=TODAY)) for item in in_scope),
        tuple(Result(q, (), answer(index, q, today=TODAY)) for q in out_of_scope),
    )


def test_question_set_is_well_formed() -> None:
    in_scope, out_of_scope = question_set()
    assert len(in_scope) >= 170, f"only {len(in_scope)} in-scope questions; the set should keep at least 170"
    assert len(out_of_scope) >= 60, f"only {len(out_of_scope)} out-of-scope questions; keep at least 60"
    assert all(item.q.strip() and item.expect for item in in_scope), "every in-scope entry needs a q and an expect"
    seen: set[str] = set()
    duplicates = []
    for q in [item.q for item in in_scope] + list(out_of_scope):
        key = " ".join(q.casefold().split())
        if key in seen:
            duplicates.append(q)
        seen.add(key)
    assert not duplicates, f"questions listed twice in tests/questions.yaml: {duplicates}"


def test_every_expected_fact_exists() -> None:
    by_id = knowledge().by_id
    unknown = sorted({(item.q, fid) for item in question_set()[0] for fid in item.expect if fid not in by_id})
    assert not unknown, (
        "tests/questions.yaml expects fact ids that are not in knowledge/ (a fact was renamed or removed): fix the "
        "`expect` list in tests/questions.yaml, or restore the fact id:\n"
        + "\n".join(f"  {fid!r} (for {q!r})" for q, fid in unknown)
    )


def test_every_new_year_exchange_is_asked_about() -> None:
    # A new exchange added to knowledge/ should come with development questions about it.
    expected = {fid for item in question_set()[0] for fid in item.expect}
    missing = [f.id for f in knowledge().exchange_facts() if f.id not in expected]
    assert not missing, f"no question in tests/questions.yaml expects these exchange facts: {missing}"


def test_in_scope_questions_get_the_expected_fact_first() -> None:
    in_scope, _ = results()
    misses = [r for r in in_scope if r.first not in r.expect]
    accuracy = 1 - len(misses) / len(in_scope)
    print(f"\nin-scope accuracy: {accuracy:.1%} ({len(in_scope) - len(misses)}/{len(in_scope)})")
    print("\n".join(r.describe() for r in misses))
    assert accuracy >= MIN_IN_SCOPE_ACCURACY, (
        f"in-scope accuracy {accuracy:.1%} is below {MIN_IN_SCOPE_ACCURACY:.0%}; {len(misses)} misses:\n"
        + "\n".join(r.describe() for r in misses)
    )


def test_out_of_scope_questions_are_declined() -> None:
    _, out_of_scope = results()
    misses = [r for r in out_of_scope if r.answer.answered]
    declined = 1 - len(misses) / len(out_of_scope)
    print(f"\nout-of-scope declined: {declined:.1%} ({len(out_of_scope) - len(misses)}/{len(out_of_scope)})")
    print("\n".join(r.describe() for r in misses))
    assert declined >= MIN_OUT_OF_SCOPE_DECLINED, (
        f"only {declined:.1%} of out-of-scope questions were declined (need {MIN_OUT_OF_SCOPE_DECLINED:.0%}); "
        f"{len(misses)} answered anyway:\n" + "\n".join(r.describe() for r in misses)
    )


def test_answers_do_not_depend_on_the_hash_seed() -> None:
    """Two runs of the batch command with different hash seeds give the same answers, scores and order.

    Scores once summed a set's weights in its (seed-dependent) iteration order, so two equally good facts
    could swap places from one start of the bot to the next.
    """
    questions = "\n".join([item.q for item in question_set()[0]] + list(question_set()[1])) + "\n"
    outputs = []
    for seed in ("0", "6"):  # two seeds under which the old summation ordered one tie differently
        result = subprocess.run(
            [sys.executable, "-m", "bot", "ask", "--json", "-"],
            input=questions,
            capture_output=True,
            text=True,
            encoding="utf-8",
            cwd=ROOT,
            env=clean_env(PYTHONHASHSEED=seed),
            timeout=300,
        )
        assert result.returncode == 0, result.stderr
        outputs.append(result.stdout.splitlines())
    assert len(outputs[0]) == questions.count("\n")
    differing = [(a, b) for a, b in zip(*outputs, strict=True) if a != b]
    assert not differing, "answers changed with PYTHONHASHSEED:\n" + "\n".join(f"  {a}\n  {b}" for a, b in differing)


# --- the batches written from the articles alone (tests/questions/), split into tuning and check parts ---------


def test_batches_are_well_formed_and_split_once() -> None:
    from benchmarks.accuracy import BATCH_DIR, questions

    items = [q for q in questions() if q.source != QUESTIONS_FILE.name]
    assert items, "no batches in tests/questions/"
    for path in sorted(BATCH_DIR.glob("batch-*.yaml")):
        head = path.read_text(encoding="utf-8").split("\nin_scope:", 1)[0]
        assert "Writer's instructions" in head, f"{path.name}: keep the writer's instructions in the header comment"
        assert "random.Random(" in head, f"{path.name}: record the seed of its one random split in the header"
        mine = [q for q in items if q.source == path.name]
        share = sum(q.part == "check" for q in mine) / len(mine)
        assert 0.25 <= share <= 0.35, f"{path.name}: {share:.0%} in the check part; the split is 70/30"
    seen: dict[str, str] = {}
    twice = []
    for q in questions():
        key = " ".join(q.q.casefold().split())
        if key in seen:
            twice.append(f"{q.q!r} ({seen[key]} and {q.source})")
        seen[key] = q.source
    assert not twice, "questions asked twice across the sets:\n" + "\n".join(twice)


@cache
def batch_figures() -> dict[tuple[str, bool, str], object]:
    from benchmarks.accuracy import figures, questions, score

    return figures(score([q for q in questions() if q.source != QUESTIONS_FILE.name]))  # type: ignore[return-value]


@pytest.mark.parametrize("part", ["tune", "check"])
@pytest.mark.parametrize("in_scope", [True, False], ids=["in_scope", "out_of_scope"])
def test_batch_part_holds_its_floor(part: str, in_scope: bool) -> None:
    floors = yaml.safe_load((QUESTIONS_FILE.parent / "questions" / "floors.yaml").read_text(encoding="utf-8"))
    floor = float(floors[part]["in_scope" if in_scope else "out_of_scope"])
    figure = batch_figures()[(part, in_scope, "all")]
    print(f"\n{part} {'in scope' if in_scope else 'out of scope'}: {figure} (floor {floor:.3f})")
    assert figure.rate >= floor, (  # type: ignore[attr-defined]
        f"{part} part, {'in scope' if in_scope else 'out of scope'}: {figure} is below its floor {floor:.3f} in "
        "tests/questions/floors.yaml. Run `python -m benchmarks.accuracy --failures` and look at the tuning part's "
        "failures (never the check part's) for what the change broke."
    )
