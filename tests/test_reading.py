"""Reading facts into the index in two processes (`bot.matching.reading`): the same index as one process builds, and a
whole index when the worker process cannot start or fails; and loading with the index (`bot.matching.loading`), whose
worker starts on the facts as parsed: the same index again, and no worker left running after a bad edit."""

from __future__ import annotations

import dataclasses
import gc
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from knowledge_fixtures import PROJECT_ROOT, copy_shipped

from benchmarks import synthetic
from bot.knowledge.facts import check_knowledge
from bot.matching import loading, reading
from bot.matching import matcher as matching
from bot.matching.loading import load_indexed
from bot.matching.matcher import build_index, start_reading


def contents(index: matching.Index) -> dict[str, object]:
    return {f.name: getattr(index, f.name) for f in dataclasses.fields(index) if f.name != "knowledge"}


@pytest.fixture(scope="module")
def invented():
    """A synthetic base: more aliases, years, holidays and figures than the shipped knowledge has."""
    return synthetic.to_knowledge(synthetic.generate(2000))


@pytest.mark.parametrize("base", ["shipped", "invented"])
def test_two_processes_build_the_same_index_as_one(base, knowledge, invented, caplog):
    chosen = knowledge if base == "shipped" else invented
    with caplog.at_level(logging.WARNING, logger="bot.matching.reading"):
        two = build_index(chosen, processes=2)
    assert not caplog.records, f"the worker process did not do its share: {caplog.text}"
    one = build_index(chosen, processes=1)
    assert one.prepared is not None
    assert contents(two) == contents(one)


@pytest.mark.parametrize(
    "command, warning",
    [
        ((sys.executable, "-c", "import sys; sys.exit(3)"), "the worker process failed (exit 3)"),
        # Reads everything, answers garbage (the alias table on standard output, the result in the file whose
        # descriptor it is given) and exits as if all went well.
        (
            (
                sys.executable,
                "-c",
                "import os, sys; sys.stdin.buffer.read(); sys.stdout.buffer.write(b'garbage');"
                " os.write(int(sys.argv[1]), b'garbage')",
            ),
            "the worker process failed (exit 0)",
        ),
        # Well-formed pickles of the wrong shape, for the alias table and for the result.
        (
            (
                sys.executable,
                "-c",
                "import pickle, sys; sys.stdin.buffer.read(); pickle.dump((1, 2), sys.stdout.buffer);"
                " pickle.dump((1, 2), open(int(sys.argv[1]), 'wb'))",
            ),
            "the worker process failed (exit 0)",
        ),
        # Goes on writing to standard output after its alias table, more than a pipe holds: it must not wait for
        # a reader forever (nor the build for it).
        (
            (sys.executable, "-c", "import sys; sys.stdin.buffer.read(); sys.stdout.buffer.write(b'x' * (8 << 20))"),
            "the worker process failed (exit ",
        ),
        (("/nonexistent/python",), "could not start a worker process"),
    ],
    ids=["exits-with-an-error", "answers-garbage", "answers-wrong-shapes", "writes-too-much", "cannot-start"],
)
def test_a_failed_worker_leaves_the_index_whole(command, warning, knowledge, monkeypatch, caplog):
    monkeypatch.setattr(reading, "WORKER_COMMAND", command)
    with caplog.at_level(logging.WARNING, logger="bot.matching.reading"):
        index = build_index(knowledge, processes=2)
    assert warning in caplog.text
    assert contents(index) == contents(build_index(knowledge, processes=1))


def test_big_knowledge_is_read_in_two_processes_on_two_cores(knowledge, monkeypatch, caplog):
    # A worker that fails says, in the log, that there was one.
    monkeypatch.setattr(reading, "WORKER_COMMAND", (sys.executable, "-c", "import sys; sys.exit(3)"))
    monkeypatch.setattr(matching, "PARALLEL_FACTS", len(knowledge.facts))
    with caplog.at_level(logging.WARNING, logger="bot.matching.reading"):
        monkeypatch.setattr(matching, "_cores", lambda: 1)
        build_index(knowledge)
        assert not caplog.records, "one core: no worker"
        monkeypatch.setattr(matching, "_cores", lambda: 2)
        monkeypatch.setattr(matching, "PARALLEL_FACTS", len(knowledge.facts) + 1)
        build_index(knowledge)
        assert not caplog.records, "fewer facts than PARALLEL_FACTS: no worker"
        monkeypatch.setattr(matching, "PARALLEL_FACTS", len(knowledge.facts))
        build_index(knowledge)
    assert "the worker process failed" in caplog.text


def test_the_worker_gets_no_secrets_and_finds_this_package():
    environ = {
        "TELEGRAM_BOT_TOKEN": "123456:SECRET",
        "BOT_WEBHOOK_SECRET": "s3cret",
        "HOME": "/root",
        "PATH": "/usr/bin",
        "PYTHONPATH": "/srv/lib",
        "PYTHONHASHSEED": "0",
        "LC_ALL": "C.UTF-8",
    }
    root = str(Path(reading.__file__).resolve().parent.parent)
    assert reading.worker_env(environ) == {
        "PATH": "/usr/bin",
        "PYTHONPATH": os.pathsep.join([root, "/srv/lib"]),
        "PYTHONHASHSEED": "0",
        "LC_ALL": "C.UTF-8",
    }
    assert reading.worker_env({})["PYTHONPATH"] == root


def test_the_worker_runs_from_anywhere(knowledge, tmp_path, monkeypatch, caplog):
    monkeypatch.chdir(tmp_path)
    with caplog.at_level(logging.WARNING, logger="bot.matching.reading"):
        build_index(knowledge, processes=2)
    assert not caplog.records, caplog.text


def test_the_worker_runs_this_package_even_beside_another_bot(knowledge, tmp_path, monkeypatch, caplog):
    # `python -m bot.matching.reading` looks in the working directory first: a checkout of something else named `bot`
    # there must not be what runs.
    other = tmp_path / "bot"
    other.mkdir()
    (other / "__init__.py").write_text("", encoding="utf-8")
    (other / "reading.py").write_text("raise SystemExit(7)\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    with caplog.at_level(logging.WARNING, logger="bot.matching.reading"):
        two = build_index(knowledge, processes=2)
    assert not caplog.records, caplog.text
    assert contents(two) == contents(build_index(knowledge, processes=1))


def test_a_build_that_fails_stops_its_worker(knowledge, monkeypatch):
    started = []

    class Popen(subprocess.Popen):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            started.append(self)

    def broken(*args, **kwargs):
        raise RuntimeError("broken knowledge")

    monkeypatch.setattr(reading.subprocess, "Popen", Popen)
    monkeypatch.setattr(matching, "_people", broken)
    with pytest.raises(RuntimeError, match="broken knowledge"):
        build_index(knowledge, processes=2)
    assert len(started) == 1
    assert started[0].returncode is not None, "the worker process is still running"


# --- loading: the worker starts on the facts as parsed ----------------------------------------------------------


def spawned_workers(monkeypatch) -> list[subprocess.Popen]:
    started = []

    class Popen(subprocess.Popen):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            started.append(self)

    monkeypatch.setattr(reading.subprocess, "Popen", Popen)
    return started


def early_readings(monkeypatch) -> list[reading.Reading | None]:
    """What `bot.matching.loading` gets from each start_reading call."""
    found = []

    def spy(*args, **kwargs):
        found.append(start_reading(*args, **kwargs))
        return found[-1]

    monkeypatch.setattr(loading, "start_reading", spy)
    return found


def parsed(knowledge):
    """The facts and entities of `knowledge` as a YAML file would give them."""
    return [f.model_dump() for f in knowledge.facts], [e.model_dump() for e in knowledge.entities.values()]


@pytest.mark.parametrize("base", ["shipped", "invented"])
def test_facts_as_parsed_have_the_fields_of_the_facts_validated(base, knowledge, invented):
    if base == "shipped":
        found = []
        check_knowledge(PROJECT_ROOT / "knowledge", PROJECT_ROOT / "corpus", lambda *items: found.append(items))
        assert len(found) == 1, "on_parsed is called once"
        facts = found[0][0]
        validated = knowledge
    else:
        generated = synthetic.generate(500)  # dicts that leave optional fields out, as YAML files may
        facts, validated = generated.facts, synthetic.to_knowledge(generated)
    assert [reading.parsed_fields(f) for f in facts] == reading.fields_of(validated.facts)


def test_loading_starts_the_index_on_the_facts_as_parsed(knowledge, monkeypatch, caplog):
    early = early_readings(monkeypatch)
    with caplog.at_level(logging.INFO, logger="bot"):
        loaded, problems, index = load_indexed(PROJECT_ROOT / "knowledge", PROJECT_ROOT / "corpus", processes=2)
    assert problems == []
    assert loaded is not None and loaded.facts == knowledge.facts
    assert len(early) == 1 and early[0] is not None and early[0].worker is not None
    assert early[0].worker.returncode == 0, "the early worker's share was not used"
    assert not caplog.records, caplog.text
    assert contents(index) == contents(build_index(knowledge, processes=1))


@pytest.mark.parametrize("edit", [None, "bad-date"])
def test_loading_pauses_the_garbage_collector_once_and_restores_it(edit, tmp_path):
    # Loading makes objects that all survive: a collection in the middle of it walks them for nothing, and one
    # between validation and indexing walked every fact (bot.knowledge.collector).
    knowledge_dir, corpus_dir = copy_shipped(tmp_path)
    if edit:
        path = knowledge_dir / "exchanges.yaml"
        path.write_text(path.read_text(encoding="utf-8").replace('date: "2023-12-31"', 'date: "2023-02-30"', 1))
    collections = []

    def seen(phase, info):
        if phase == "start":
            collections.append(info["generation"])

    assert gc.isenabled()
    gc.collect()
    gc.callbacks.append(seen)
    try:
        loaded, problems, _ = load_indexed(knowledge_dir, corpus_dir, processes=2)
    finally:
        gc.callbacks.remove(seen)
    assert (loaded is None) == bool(edit), problems
    # The one pass the pause puts off may start before load_indexed returns.
    assert len(collections) <= 1, f"the garbage collector walked the new objects {len(collections)} times"
    assert gc.isenabled(), "loading left the garbage collector off"
    gc.disable()
    try:
        load_indexed(knowledge_dir, corpus_dir)
        assert not gc.isenabled(), "loading turned on a garbage collector its caller had turned off"
    finally:
        gc.enable()


def test_a_bad_edit_gets_no_index_and_stops_the_early_worker(tmp_path, monkeypatch):
    knowledge_dir, corpus_dir = copy_shipped(tmp_path)
    path = knowledge_dir / "exchanges.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace('date: "2023-12-31"', 'date: "2023-02-30"', 1))
    early = early_readings(monkeypatch)
    loaded, problems, index = load_indexed(knowledge_dir, corpus_dir, processes=2)
    assert loaded is None and index is None
    assert any("2023-02-30" in str(p) for p in problems), problems
    assert len(early) == 1 and early[0] is not None and early[0].worker is not None
    assert early[0].worker.returncode is not None, "the worker process is still running"


def test_a_file_that_is_not_yaml_starts_no_worker(tmp_path, monkeypatch):
    knowledge_dir, corpus_dir = copy_shipped(tmp_path)
    (knowledge_dir / "trade.yaml").write_text("facts: [\n", encoding="utf-8")
    spawned = spawned_workers(monkeypatch)
    loaded, problems, index = load_indexed(knowledge_dir, corpus_dir, processes=2)
    assert loaded is None and index is None and problems
    assert spawned == []


def test_facts_that_validation_changed_are_read_afresh(knowledge, caplog):
    facts, entities = parsed(knowledge)
    facts[-1]["text"] = "Read before validation, then changed by it."
    started = start_reading(entities, facts, processes=2)
    assert started is not None
    with caplog.at_level(logging.INFO, logger="bot.matching.matcher"):
        index = build_index(knowledge, processes=2, started=started)
    assert "reading them afresh" in caplog.text
    assert started.worker is not None and started.worker.returncode is not None, "the early worker is still running"
    assert contents(index) == contents(build_index(knowledge, processes=1))


@pytest.mark.parametrize(
    "edit",
    [
        lambda facts, entities: facts.append("a string"),
        lambda facts, entities: facts[0].pop("title"),
        lambda facts, entities: facts[-1].update(questions=5),  # the worker's: fails once it has started
        lambda facts, entities: entities[0].update(aliases=None),
    ],
    ids=["not-a-mapping", "no-title", "questions-not-a-list", "aliases-empty"],
)
def test_items_not_shaped_like_facts_start_no_worker(edit, knowledge, monkeypatch):
    facts, entities = parsed(knowledge)
    edit(facts, entities)
    spawned = spawned_workers(monkeypatch)
    assert start_reading(entities, facts, processes=2) is None
    assert all(worker.returncode is not None for worker in spawned), "a worker process is still running"


def test_small_knowledge_starts_no_early_worker(knowledge, monkeypatch):
    spawned = spawned_workers(monkeypatch)
    assert start_reading(*reversed(parsed(knowledge))) is None
    assert spawned == []
