"""Loading the knowledge together with its matching index, as the bot and `python -m bot ask` do.

This module owns the order of that work: the knowledge files are parsed, the index starts reading the facts
as parsed (`bot.matching.matcher.start_reading`: on a big base, in a worker process), the facts are validated and
checked meanwhile (`bot.knowledge.facts.check_knowledge`), and the index is finished from the validated facts, which it
uses only if they are the ones read. A knowledge with problems gets no index, and the worker is stopped.
"""

from __future__ import annotations

from pathlib import Path

from bot.knowledge import collector
from bot.knowledge.facts import Knowledge, KnowledgeError, Problem, YamlValue, check_knowledge
from bot.matching import reading as rd
from bot.matching.matcher import Index, build_index, start_reading


def load_indexed(
    knowledge_dir: Path, corpus_dir: Path, processes: int | None = None
) -> tuple[Knowledge | None, list[Problem], Index | None]:
    """(knowledge, problems, index): the knowledge and its index, or None for both and every problem."""
    started: list[rd.Reading] = []

    def on_parsed(facts: list[YamlValue], entities: list[YamlValue]) -> None:
        reading = start_reading(entities, facts, processes)
        if reading is not None:
            started.append(reading)

    try:
        with collector.paused():  # one pause for parsing, validation and indexing (see bot.knowledge.collector)
            knowledge, problems = check_knowledge(knowledge_dir, corpus_dir, on_parsed)
            if knowledge is None:
                return None, problems, None
            return knowledge, problems, build_index(knowledge, processes, started[0] if started else None)
    finally:
        for reading in started:
            reading.close()  # nothing to stop once the index has its result


def load_indexed_or_raise(knowledge_dir: Path, corpus_dir: Path) -> tuple[Knowledge, Index]:
    """The knowledge and its index; raises KnowledgeError listing every problem."""
    knowledge, problems, index = load_indexed(knowledge_dir, corpus_dir)
    if knowledge is None or index is None:
        raise KnowledgeError(problems)
    return knowledge, index
