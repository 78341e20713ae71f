"""What maintainers learn from use: declined and low-confidence questions grouped by similarity.

This module owns the grouping behind `python -m bot unanswered`. The store groups questions by identical
normalised wording; here those groups are merged when their wordings are close (typos, word order, a
word more or less), so "when did putin visit bejing" and "When did Putin visit Beijing?" count as one
worklist item. Pure: it takes the store's groups and returns clusters, most frequent first.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from rapidfuzz import fuzz, process, utils

from bot.store.database import QuestionGroup

# token_sort_ratio ignores word order; 80 merges typo'd and reworded variants but keeps different topics apart.
SIMILARITY = 80
MAX_VARIANTS = 3


@dataclasses.dataclass(frozen=True)
class QuestionCluster:
    text: str  # the most frequent wording
    count: int
    last_asked: str
    low_confidence: int  # how many got a low-confidence answer rather than a decline
    variants: tuple[str, ...]  # other wordings, most frequent first


def cluster_questions(groups: Sequence[QuestionGroup], similarity: float = SIMILARITY) -> list[QuestionCluster]:
    """Greedy clustering: each group joins the first (more frequent) cluster whose leader it resembles."""
    ordered = sorted(groups, key=lambda g: (-g.count, g.text))
    texts = [utils.default_process(g.text) for g in ordered]
    leaders: list[int] = []  # index in `ordered` of each cluster's leader
    leader_texts: list[str] = []
    members: dict[int, list[int]] = {}
    for i, text in enumerate(texts):
        best = process.extractOne(text, leader_texts, scorer=fuzz.token_sort_ratio, score_cutoff=similarity)
        if best is None:
            leaders.append(i)
            leader_texts.append(text)
            members[i] = [i]
        else:
            members[leaders[best[2]]].append(i)
    clusters = []
    for leader in leaders:
        group = [ordered[k] for k in members[leader]]
        clusters.append(
            QuestionCluster(
                text=group[0].text,
                count=sum(g.count for g in group),
                last_asked=max(g.last_asked for g in group),
                low_confidence=sum(g.answered_low_confidence for g in group),
                variants=tuple(g.text for g in group[1 : 1 + MAX_VARIANTS]),
            )
        )
    return sorted(clusters, key=lambda c: (-c.count, c.text))


def format_clusters(clusters: Sequence[QuestionCluster]) -> str:
    if not clusters:
        return "No declined or low-confidence questions recorded."
    lines = [f"{'times':>5}  {'last asked':<19}  question (and similar wordings)"]
    for c in clusters:
        note = f"  ({c.low_confidence} answered with low confidence)" if c.low_confidence else ""
        lines.append(f"{c.count:>5}  {c.last_asked[:19].replace('T', ' '):<19}  {c.text}{note}")
        lines += [f"{'':>5}  {'':<19}    ~ {v}" for v in c.variants]
    return "\n".join(lines)
