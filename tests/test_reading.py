"""Reading facts into the index in two processes (`bot.reading`): the same index as one process builds, and a
whole index when the worker process cannot start or fails."""

from __future__ import annotations

import dataclasses
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks import synthetic
from bot import matching, reading
from bot.matching import build_index


def contents(index: matching.Index) -> dict[str, object]:
    return {f.name: getattr(index, f.name) for f in dataclasses.fields(index) if f.name != "knowledge"}


@pytest.fixture(scope="module")
def invented():
    """A synthetic base: more aliases, years, holidays and figures than the shipped knowledge has."""
    return synthetic.to_knowledge(synthetic.generate(2000))


@pytest.mark.parametrize("base", ["shipped", "invented"])
def test_two_processes_build_the_same_index_as_one(base, knowledge, invented, caplog):
    chosen = knowledge if base == "shipped" else invented
    with caplog.at_level(logging.WARNING, logger="bot.reading"):
        two = build_index(chosen, processes=2)
    assert not caplog.records, f"the worker process did not do its share: {caplog.text}"
    one = build_index(chosen, processes=1)
    assert one.prepared is not None
    assert contents(two) == contents(one)


@pytest.mark.parametrize(
    "command, warning",
    [
        ((sys.executable, "-c", "import sys; sys.exit(3)"), "the worker process failed (exit 3)"),
        # Reads everything, answers garbage and exits as if all went well.
        (
            (sys.executable, "-c", "import sys; sys.stdin.buffer.read(); sys.stdout.buffer.write(b'garbage')"),
            "the worker process failed (exit 0)",
        ),
        # Well-formed pickles of the wrong shape, for the alias table and for the result.
        (
            (
                sys.executable,
                "-c",
                "import pickle, sys; sys.stdin.buffer.read(); pickle.dump((1, 2), sys.stdout.buffer);"
                " pickle.dump((1, 2), sys.stdout.buffer)",
            ),
            "the worker process failed (exit 0)",
        ),
        (("/nonexistent/python",), "could not start a worker process"),
    ],
    ids=["exits-with-an-error", "answers-garbage", "answers-wrong-shapes", "cannot-start"],
)
def test_a_failed_worker_leaves_the_index_whole(command, warning, knowledge, monkeypatch, caplog):
    monkeypatch.setattr(reading, "WORKER_COMMAND", command)
    with caplog.at_level(logging.WARNING, logger="bot.reading"):
        index = build_index(knowledge, processes=2)
    assert warning in caplog.text
    assert contents(index) == contents(build_index(knowledge, processes=1))


def test_big_knowledge_is_read_in_two_processes_on_two_cores(knowledge, monkeypatch, caplog):
    # A worker that fails says, in the log, that there was one.
    monkeypatch.setattr(reading, "WORKER_COMMAND", (sys.executable, "-c", "import sys; sys.exit(3)"))
    monkeypatch.setattr(matching, "PARALLEL_FACTS", len(knowledge.facts))
    with caplog.at_level(logging.WARNING, logger="bot.reading"):
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
    with caplog.at_level(logging.WARNING, logger="bot.reading"):
        build_index(knowledge, processes=2)
    assert not caplog.records, caplog.text


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
