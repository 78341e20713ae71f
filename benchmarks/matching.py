"""Matching benchmark: `python -m benchmarks.matching` prints speed, memory and accuracy figures (no pass/fail).

This module owns the measurement of `bot.matching.matcher` against a naive baseline (rapidfuzz `process.extractOne`
with WRatio over each fact's text, declining below a fixed cutoff), for the shipped knowledge and for
synthetic bases of 10,000 and 100,000 facts (`benchmarks.synthetic`). For each base it prints: time to
load (validating the facts into `bot.knowledge.model` objects, a big base's index worker meanwhile starting on the facts
as parsed, as `bot.matching.loading` has it; for the shipped base, `load_knowledge` with YAML and corpus checks) and to
index, per-question latency p50/p99 (each question run several times, its median
kept), peak memory (tracemalloc peak of Python allocations, measured in a separate untimed pass; on the
100,000-fact base the growth of the peak resident set, ru_maxrss, as tracing would take minutes, and the peak
resident set of the worker process that reads part of a big base), the index's CPU time in all processes, and
accuracy on the development set `tests/questions.yaml` ("n/a" without it) or, for synthetic bases, on their
generated questions; then the baseline's figures and the ratios. Synthetic bases also get load + index
together (on big bases the median of BIG_BASE_BUILDS timed runs, each listed) and, for scale, the time of a
bare inverted index of the same words (split and hashed, nothing else): what touching every word costs on
the machine at hand. Runs are bounded (questions are sampled on big bases) so the whole benchmark takes a few
minutes at most.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime
import functools
import gc
import logging
import resource
import statistics
import sys
import time
import tracemalloc
from collections import defaultdict, deque
from collections.abc import Callable, Iterator, Sequence
from itertools import repeat
from pathlib import Path
from typing import Any

import yaml
from rapidfuzz import fuzz, process, utils

from benchmarks import synthetic
from bot.knowledge import collector
from bot.knowledge.facts import load_knowledge
from bot.matching.matcher import PARALLEL_FACTS, answer, build_index, start_reading
from bot.matching.reading import Reading

ROOT = Path(__file__).resolve().parent.parent
QUESTIONS_FILE = ROOT / "tests" / "questions.yaml"
TODAY = datetime.date(2026, 6, 1)  # fixed, like tests/test_accuracy.py, so runs compare
BASELINE_CUTOFF = 60.0  # WRatio below this: the baseline declines
MAX_QUESTIONS = 400  # latency sample per base (deterministic: evenly spaced)
BASELINE_QUESTIONS = {"shipped": 400, 10_000: 60, 100_000: 15}
BIG_BASE_QUESTIONS = 1000  # bases with this many questions (about 50,000 facts) are measured more cheaply
BIG_BASE_BUILDS = 5  # timed load + index runs of a big base: a median of five stands a disturbed run or two


@dataclasses.dataclass(frozen=True)
class Question:
    q: str
    expect: tuple[str, ...]  # () = should be declined


@dataclasses.dataclass
class Figures:
    load_s: float = 0.0
    index_s: float = 0.0
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    questions_timed: int = 0
    index_cpu_s: float = 0.0  # CPU time of indexing, in every process (a worker reads part of a big base)
    load_mb: float = 0.0
    index_mb: float = 0.0
    worker_mb: float = 0.0  # peak resident set of the index's worker process, if it had one
    runs: list[float] = dataclasses.field(default_factory=list)  # load + index of each timed run (big bases)
    collector_s: float | None = None  # the garbage collector's first pass after load + index (big bases)
    in_scope: str = "n/a"
    out_of_scope: str = "n/a"
    memory: str = "tracemalloc peak"


# --- question sets -------------------------------------------------------------------------------------------


def dev_questions() -> list[Question] | None:
    if not QUESTIONS_FILE.exists():
        return None
    data = yaml.safe_load(QUESTIONS_FILE.read_text(encoding="utf-8")) or {}
    return [Question(str(i["q"]), tuple(i["expect"])) for i in data.get("in_scope", [])] + [
        Question(str(i["q"]), ()) for i in data.get("out_of_scope", [])
    ]


def sample(items: Sequence[Any], limit: int) -> list[Any]:
    if len(items) <= limit:
        return list(items)
    step = len(items) / limit
    return [items[int(i * step)] for i in range(limit)]


# --- measuring -----------------------------------------------------------------------------------------------


def median_time(func: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(repeats):
        gc.collect()
        start = time.perf_counter()
        result = func()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


@contextlib.contextmanager
def worker_peaks() -> Iterator[list[float]]:
    """The peak memory (MB) of each index worker process that finished meanwhile, as `bot.matching.reading` logs it."""
    peaks: list[float] = []

    class Handler(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            peak = getattr(record, "worker_peak_mb", None)
            if peak is not None:
                peaks.append(peak)

    logger, handler = logging.getLogger("bot.matching.reading"), Handler(logging.DEBUG)
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        yield peaks
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def cpu_seconds() -> tuple[float, float]:
    """CPU time of this process, and of its finished child processes (the index's workers), so far."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime, children.ru_utime + children.ru_stime


def peak_mb(func: Callable[[], Any]) -> tuple[float, Any]:
    gc.collect()
    tracemalloc.start()
    try:
        result = func()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak / 2**20, result


def rss_growth(func: Callable[[], Any]) -> tuple[float, Any]:
    """(MB the peak resident set grew by while running func, its result)."""
    gc.collect()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    result = func()
    return (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024, result  # Linux: KiB


def latencies(ask: Callable[[str], Any], questions: Sequence[Question], repeats: int) -> tuple[float, float]:
    per_question = []
    for question in questions:
        runs = []
        for _ in range(repeats):
            start = time.perf_counter()
            ask(question.q)
            runs.append(time.perf_counter() - start)
        per_question.append(statistics.median(runs))
    per_question.sort()
    p99 = per_question[min(len(per_question) - 1, round(0.99 * (len(per_question) - 1)))]
    return statistics.median(per_question) * 1000, p99 * 1000


def accuracy(first_of: Callable[[str], str | None], questions: Sequence[Question]) -> tuple[str, str]:
    """(in-scope: expected fact first, out-of-scope: declined) as 'hits/total (percent)'."""
    first_of = functools.cache(first_of)  # each question answered once, however often it is looked at
    inside = [q for q in questions if q.expect]
    outside = [q for q in questions if not q.expect]
    hits = sum(first_of(q.q) in q.expect for q in inside)
    declined = sum(first_of(q.q) is None for q in outside)

    def fmt(n: int, total: int) -> str:
        return f"{n}/{total} ({n / total:.1%})" if total else "n/a"

    return fmt(hits, len(inside)), fmt(declined, len(outside))


# --- the two matchers ----------------------------------------------------------------------------------------


def measure_matcher(
    load: Callable[[], Any],
    questions: list[Question],
    repeats: int,
    scored: bool,
    start: Callable[[], Reading | None] = lambda: None,
) -> Figures:
    """`start` begins the index's reading of the facts as parsed, before `load` validates them (as
    `bot.matching.loading` does on big bases): its time counts as load time, and the index is built with it."""
    fig = Figures()
    index_cpu = []

    def load_started() -> tuple[Any, Reading | None]:
        started = start()
        try:
            return load(), started
        except BaseException:
            if started is not None:
                started.close()
            raise

    def build(knowledge: Any, started: Reading | None = None) -> Any:
        own, children = cpu_seconds()
        try:
            with worker_peaks() as peaks:
                index = build_index(knowledge, started=started)
        finally:
            if started is not None:
                started.close()
        own_after, children_after = cpu_seconds()
        index_cpu.append(own_after - own + children_after - children)
        fig.worker_mb = max([fig.worker_mb, *peaks])
        return index

    if len(questions) < BIG_BASE_QUESTIONS:
        fig.load_s, knowledge = median_time(load, repeats)
        fig.index_s, index = median_time(lambda: build(knowledge), repeats)
        del knowledge
        fig.load_mb, knowledge = peak_mb(load)
        fig.index_mb, _ = peak_mb(lambda: build_index(knowledge))
    else:
        # Big bases: memory as growth of the process's peak resident set during the first load and index
        # (tracing every allocation of a 100,000-fact build would take minutes), and the peak resident set of
        # the index's worker process; then timed runs of load and index together, each starting from a freed heap
        # as the bot's start does (a second knowledge and index alive alongside would measure the allocator, not
        # the build).
        fig.memory = "ru_maxrss growth"
        with collector.paused():
            fig.load_mb, (knowledge, started) = rss_growth(load_started)
            fig.index_mb, index = rss_growth(lambda: build(knowledge, started))
        load_times, index_times, collector_times = [], [], []
        for _ in range(max(BIG_BASE_BUILDS, repeats)):
            del knowledge, started, index
            gc.collect()
            with collector.paused():  # one pause for load and index, as bot.matching.loading has it
                begin = time.perf_counter()
                knowledge, started = load_started()
                loaded = time.perf_counter()
                index = build(knowledge, started)
                built = time.perf_counter()
            gc.collect(0)  # the pass the pause put off, over everything load and index made
            load_times.append(loaded - begin)
            index_times.append(built - loaded)
            collector_times.append(time.perf_counter() - built)
        fig.load_s, fig.index_s = statistics.median(load_times), statistics.median(index_times)
        fig.collector_s = statistics.median(collector_times)
        fig.runs = [a + b for a, b in zip(load_times, index_times, strict=True)]
    fig.index_cpu_s = statistics.median(index_cpu)

    def ask(q: str) -> Any:
        return answer(index, q, TODAY)

    timed = sample(questions, MAX_QUESTIONS)
    fig.questions_timed = len(timed)
    fig.p50_ms, fig.p99_ms = latencies(ask, timed, repeats)
    if scored:

        def first_of(q: str) -> str | None:
            result = ask(q)
            return result.facts[0].id if result.answered and result.facts else None

        fig.in_scope, fig.out_of_scope = accuracy(first_of, questions)
    return fig


def measure_baseline(
    load: Callable[[], Any], questions: list[Question], limit: int, repeats: int, scored: bool
) -> Figures:
    """rapidfuzz process.extractOne(question, texts, scorer=WRatio, processor=default_process)."""
    fig = Figures()
    knowledge = load()
    facts = knowledge.facts
    fig.index_s, texts = median_time(lambda: [f.text for f in facts], repeats)
    fig.index_mb, _ = peak_mb(lambda: [f.text for f in facts])

    answers: dict[str, str | None] = {}  # the accuracy pass reuses the timed answers (100,000 facts: ~1 s each)

    def ask(q: str) -> str | None:
        best = process.extractOne(q, texts, scorer=fuzz.WRatio, processor=utils.default_process)
        answers[q] = facts[best[2]].id if best and best[1] >= BASELINE_CUTOFF else None
        return answers[q]

    def first_of(q: str) -> str | None:
        return answers[q] if q in answers else ask(q)

    timed = sample(questions, limit)
    fig.questions_timed = len(timed)
    fig.p50_ms, fig.p99_ms = latencies(ask, timed, repeats if len(facts) < 50_000 else 1)
    if not scored:
        return fig
    if len(timed) == len(questions):
        fig.in_scope, fig.out_of_scope = accuracy(first_of, questions)
    else:
        fig.in_scope, fig.out_of_scope = accuracy(first_of, timed)
        fig.in_scope += " (sample)"
        fig.out_of_scope += " (sample)"
    return fig


def bare_index(knowledge: Any) -> dict[str, list[int]]:
    """The cheapest inverted index over the same facts: word -> facts, each fact's title, questions, keywords
    and text case-folded and split on whitespace; no stemming, aliases, years or figures. What merely
    touching every word costs on this machine: a floor under any index of these facts built in Python."""
    postings: defaultdict[str, list[int]] = defaultdict(list)
    for position, fact in enumerate(knowledge.facts):
        words = set(" ".join([fact.title, *fact.questions, *fact.keywords, fact.text]).casefold().split())
        deque(map(list.append, map(postings.__getitem__, words), repeat(position)), maxlen=0)
    return postings


def bare_index_time(load: Callable[[], Any], repeats: int) -> float:
    knowledge = load()
    with collector.paused():  # as build_index has it
        return median_time(lambda: bare_index(knowledge), repeats)[0]


# --- report --------------------------------------------------------------------------------------------------


def ratio(a: float, b: float) -> str:
    return f"{a / b:.3g}x" if b else "-"


def report(name: str, facts: int, accuracy_label: str, mine: Figures, base: Figures) -> str:
    rows = [
        ("load (s)", f"{mine.load_s:.3f}", "(same load)", ""),
        ("index (s)", f"{mine.index_s:.3f}", f"{base.index_s:.3f}", ratio(mine.index_s, base.index_s)),
        ("index CPU time, all processes (s)", f"{mine.index_cpu_s:.3f}", "", ""),
        ("latency p50 (ms)", f"{mine.p50_ms:.3f}", f"{base.p50_ms:.3f}", ratio(mine.p50_ms, base.p50_ms)),
        ("latency p99 (ms)", f"{mine.p99_ms:.3f}", f"{base.p99_ms:.3f}", ratio(mine.p99_ms, base.p99_ms)),
        ("questions timed", str(mine.questions_timed), str(base.questions_timed), ""),
        (f"memory, load (MB, {mine.memory})", f"{mine.load_mb:.1f}", "(same load)", ""),
        (f"memory, index (MB, {mine.memory})", f"{mine.index_mb:.1f}", f"{base.index_mb:.1f}", ""),
        ("memory, index worker process (MB, peak RSS)", f"{mine.worker_mb:.0f}" if mine.worker_mb else "none", "", ""),
        ("in scope: expected fact first", mine.in_scope, base.in_scope, ""),
        ("out of scope: declined", mine.out_of_scope, base.out_of_scope, ""),
    ]
    width = max(len(r[0]) for r in rows)
    lines = [
        f"\n== {name}: {facts:,} facts (accuracy on {accuracy_label}) ==",
        f"{'':{width}}  {'matcher':>24}  {'baseline':>24}  matcher/baseline",
    ]
    lines += [f"{label:{width}}  {a:>24}  {b:>24}  {r}" for label, a, b, r in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.matching", description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="10000,100000", help="synthetic base sizes (default 10000,100000)")
    parser.add_argument("--repeats", type=int, default=3, help="runs per measurement; medians are reported")
    args = parser.parse_args(argv)
    print(
        "Memory: the tracemalloc peak of Python allocations during load / index (a separate, untimed pass); on\n"
        "the 100,000-fact base the growth of the process's peak resident set (ru_maxrss) instead.\n"
        f"Latency: each question run {args.repeats} times, its median kept; p50/p99 over the questions.\n"
        f"Baseline: process.extractOne(question, fact texts, scorer=WRatio, processor=default_process), "
        f"declining below {BASELINE_CUTOFF:g}.\nSynthetic load = validating fact dicts into bot.knowledge.model "
        "objects "
        "(what load_knowledge does after parsing YAML); shipped load = load_knowledge (YAML, checks, corpus).\n"
        f"Index: from {PARALLEL_FACTS:,} facts on, a worker process reads part of them (bot.matching.reading), "
        "starting on the facts as parsed while they are validated (bot.matching.loading); its start counts as load "
        "time. Index time is "
        "wall-clock; its CPU time adds both processes. The garbage collector is paused over load and index "
        "together, as bot.matching.loading has it (bot.knowledge.collector).\n"
        "Targets on a 2-core machine: p99 <= 2 ms on the shipped knowledge, <= 30 ms at 100,000 facts; "
        "load and index of 100,000 facts <= 5 s."
    )
    sys.stdout.flush()

    dev = dev_questions()
    shipped = load_knowledge(ROOT / "knowledge", ROOT / "corpus")
    questions = dev or [Question(q, (f.id,)) for f in shipped.facts for q in f.questions]

    def load_shipped() -> Any:
        return load_knowledge(ROOT / "knowledge", ROOT / "corpus")

    label = "tests/questions.yaml" if dev else "n/a: no tests/questions.yaml (timed on the facts' own phrasings)"
    # Questions on the small base are cheap: more runs each keep p99 clear of the odd scheduling hiccup.
    mine = measure_matcher(load_shipped, questions, max(args.repeats, 5), scored=dev is not None)
    base = measure_baseline(load_shipped, questions, BASELINE_QUESTIONS["shipped"], args.repeats, dev is not None)
    print(report("shipped knowledge", len(shipped.facts), label, mine, base))
    sys.stdout.flush()

    for size in (int(s) for s in args.sizes.split(",") if s.strip()):
        start = time.perf_counter()
        generated = synthetic.generate(size)
        synthetic_questions = [Question(q.q, q.expect) for q in synthetic.expected_answers(generated)]

        def load_synthetic(generated: synthetic.SyntheticBase = generated) -> Any:
            return synthetic.to_knowledge(generated)

        def start_synthetic(generated: synthetic.SyntheticBase = generated) -> Reading | None:
            return start_reading(generated.entities, generated.facts)

        mine = measure_matcher(load_synthetic, synthetic_questions, args.repeats, True, start_synthetic)
        limit = BASELINE_QUESTIONS.get(size, 30)
        base = measure_baseline(load_synthetic, synthetic_questions, limit, args.repeats, scored=True)
        bare = bare_index_time(load_synthetic, args.repeats)
        label = "its generated questions; the dev set is n/a"
        print(report(f"synthetic base (measured in {time.perf_counter() - start:.0f} s)", size, label, mine, base))
        print(
            f"load + index: {statistics.median(mine.runs) if mine.runs else mine.load_s + mine.index_s:.3f} s"
            f"{' (median of the runs below)' if mine.runs else ''}. Reference: a bare inverted index of the same words "
            f"(split and hashed; no stemming, aliases or years; one process) takes {bare:.3f} s; "
            f"index/bare = {ratio(mine.index_s, bare)}, index CPU time/bare = {ratio(mine.index_cpu_s, bare)}"
            + (f". Load + index of each timed run (s): {', '.join(f'{t:.2f}' for t in mine.runs)}" if mine.runs else "")
            + (
                f". Then the garbage collector's first pass over what they made (put off by "
                f"bot.knowledge.collector's pause; "
                f"not counted above): {mine.collector_s:.3f} s"
                if mine.collector_s is not None
                else ""
            )
        )
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
