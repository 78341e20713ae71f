"""The command line as a shell user meets it: --help everywhere, quiet closed pipes, honest exit statuses."""

from __future__ import annotations

import subprocess
import sys

import pytest

try:
    from tests.knowledge_fixtures import PROJECT_ROOT, clean_env
except ImportError:  # run from tests/
    from knowledge_fixtures import PROJECT_ROOT, clean_env

from bot.cli import COMMANDS


def bot(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        input=stdin,
        capture_output=True,
        text=True,
        encoding="utf-8",
        cwd=PROJECT_ROOT,
        env=clean_env(),
        timeout=120,
    )


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_command_has_help(command: str) -> None:
    result = bot(command, "--help")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage:") and command in result.stdout


def test_a_closed_pipe_ends_quietly_with_success() -> None:
    # `python -m bot facts --json | head -c 100`: the reader stops early; no traceback, status 0.
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot", "facts", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=PROJECT_ROOT,
        env=clean_env(),
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.read(100)
    proc.stdout.close()
    status = proc.wait(timeout=120)
    error = proc.stderr.read().decode()
    assert status == 0, error
    assert "Traceback" not in error and "BrokenPipe" not in error


def test_a_digest_with_nothing_to_show_exits_1_with_its_message() -> None:
    result = bot("digest", "2022")
    assert result.returncode == 1
    assert "no New Year exchange dated 2022" in result.stderr
    assert result.stdout == ""
    found = bot("digest", "2023")
    assert found.returncode == 0 and "2023" in found.stdout
