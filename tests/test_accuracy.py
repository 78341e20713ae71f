"""Answer quality on the question sets: `tests/questions.yaml` and the batches in `tests/questions/`.

This module owns the assertions; `benchmarks.accuracy` loads and scores every set (one index, shared): each
question goes through the real matcher (`bot.matching.matcher.answer`) over the real knowledge base, and
in-scope questions must get the expected fact first, out-of-scope ones a decline. The question set was written
independently of the facts' `questions:`/`keywords:` phrasings, so it measures how the bot copes with what
people actually type.
On failure the assertion message lists every miss (question, expected ids, what the bot gave, score).

The batches in `tests/questions/` hold floors per part, tuning and check, in `tests/questions/floors.yaml`
(the check part's are never lowered). Their failures are printed for the
tuning part only; the check part is read as figures, never as failures.
"""

from __future__ import annotations

import subprocess
import sys
from functools import cache

import pytest
import yaml
from knowledge_fixtures import clean_env

from benchmarks.accuracy import (
    BATCH_DIR,
    LEGACY_FILE,
    ROOT,
    Figure,
    Question,
    Scored,
    figures,
    indexed,
    questions,
    score,
)

MIN_IN_SCOPE_ACCURACY = 0.95
MIN_OUT_OF_SCOPE_DECLINED = 0.95


def legacy(in_scope: bool) -> list[Question]:
    """tests/questions.yaml's in-scope or out-of-scope questions (its loader rejects misspelt keys)."""
    return [q for q in questions() if q.source == LEGACY_FILE.name and q.in_scope == in_scope]


@cache
def legacy_results(in_scope: bool) -> tuple[Scored, ...]:
    """Every question answered once (the index is built once, shared with the batches), for the tests below."""
    return tuple(score(legacy(in_scope)))


def test_question_set_is_well_formed() -> None:
    in_scope, out_of_scope = legacy(True), legacy(False)
    assert len(in_scope) >= 170, f"only {len(in_scope)} in-scope questions; the set should keep at least 170"
    assert len(out_of_scope) >= 60, f"only {len(out_of_scope)} out-of-scope questions; keep at least 60"
    assert all(item.q.strip() and item.expect for item in in_scope), "every in-scope entry needs a q and an expect"


def test_every_expected_fact_exists() -> None:
    by_id = indexed()[0].by_id
    unknown = sorted({(item.q, fid) for item in legacy(True) for fid in item.expect if fid not in by_id})
    assert not unknown, (
        "tests/questions.yaml expects fact ids that are not in knowledge/ (a fact was renamed or removed): fix the "
        "`expect` list in tests/questions.yaml, or restore the fact id:\n"
        + "\n".join(f"  {fid!r} (for {q!r})" for q, fid in unknown)
    )


def test_every_new_year_exchange_is_asked_about() -> None:
    # A new exchange added to knowledge/ should come with development questions about it.
    expected = {fid for item in legacy(True) for fid in item.expect}
    missing = [f.id for f in indexed()[0].exchange_facts() if f.id not in expected]
    assert not missing, f"no question in tests/questions.yaml expects these exchange facts: {missing}"


def test_in_scope_questions_get_the_expected_fact_first() -> None:
    in_scope = legacy_results(True)
    misses = [r for r in in_scope if not r.right]
    accuracy = 1 - len(misses) / len(in_scope)
    print(f"\nin-scope accuracy: {accuracy:.1%} ({len(in_scope) - len(misses)}/{len(in_scope)})")
    print("\n".join(r.describe() for r in misses))
    assert accuracy >= MIN_IN_SCOPE_ACCURACY, (
        f"in-scope accuracy {accuracy:.1%} is below {MIN_IN_SCOPE_ACCURACY:.0%}; {len(misses)} misses:\n"
        + "\n".join(r.describe() for r in misses)
    )


def test_out_of_scope_questions_are_declined() -> None:
    out_of_scope = legacy_results(False)
    misses = [r for r in out_of_scope if not r.right]
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
    text = "\n".join(q.q for q in legacy(True) + legacy(False)) + "\n"
    outputs = []
    for seed in ("0", "6"):  # two seeds under which the old summation ordered one tie differently
        result = subprocess.run(
            [sys.executable, "-m", "bot", "ask", "--json", "-"],
            input=text,
            capture_output=True,
            text=True,
            encoding="utf-8",
            cwd=ROOT,
            env=clean_env(PYTHONHASHSEED=seed),
            timeout=300,
        )
        assert result.returncode == 0, result.stderr
        outputs.append(result.stdout.splitlines())
    assert len(outputs[0]) == text.count("\n")
    differing = [(a, b) for a, b in zip(*outputs, strict=True) if a != b]
    assert not differing, "answers changed with PYTHONHASHSEED:\n" + "\n".join(f"  {a}\n  {b}" for a, b in differing)


# --- the batches written from the articles alone (tests/questions/), split into tuning and check parts ---------


def test_batches_are_well_formed_and_split_once() -> None:
    items = [q for q in questions() if q.source != LEGACY_FILE.name]
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
def batch_figures() -> dict[tuple[str, bool, str], Figure]:
    return figures(score([q for q in questions() if q.source != LEGACY_FILE.name]))


@pytest.mark.parametrize("part", ["tune", "check"])
@pytest.mark.parametrize("in_scope", [True, False], ids=["in_scope", "out_of_scope"])
def test_batch_part_holds_its_floor(part: str, in_scope: bool) -> None:
    floors = yaml.safe_load((BATCH_DIR / "floors.yaml").read_text(encoding="utf-8"))
    floor = float(floors[part]["in_scope" if in_scope else "out_of_scope"])
    figure = batch_figures()[(part, in_scope, "all")]
    print(f"\n{part} {'in scope' if in_scope else 'out of scope'}: {figure} (floor {floor:.3f})")
    assert figure.rate >= floor, (
        f"{part} part, {'in scope' if in_scope else 'out of scope'}: {figure} is below its floor {floor:.3f} in "
        "tests/questions/floors.yaml. Run `python -m benchmarks.accuracy --failures` and look at the tuning part's "
        "failures (never the check part's) for what the change broke."
    )
