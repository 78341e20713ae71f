"""Support for the playground and browser tests: headless Chromium, and `python -m bot playground` as a process.

This module owns where Chromium comes from (Debian's package, never a download by Playwright), the flags
that keep it off the internet, a fresh profile per launch, and starting/stopping the real playground command
on a free port with a temporary database. Installation runs `apt-get update && apt-get install -y chromium`
under a file lock, so parallel test runs install it once.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import fcntl
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from playwright.async_api import BrowserContext

CHROMIUM = Path("/usr/bin/chromium")
INSTALL_LOCK = Path(tempfile.gettempdir()) / "china-russia-bot-chromium-install.lock"
# Without the background-networking flags Chromium tries to reach Google's servers on start; the resolver
# rule makes any name other than localhost unresolvable, so the page can only talk to the loopback server.
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1",
)


def ensure_chromium() -> Path:
    """The Chromium binary, installing Debian's package first if it is missing (needs root and apt)."""
    if CHROMIUM.exists():
        return CHROMIUM
    INSTALL_LOCK.parent.mkdir(parents=True, exist_ok=True)
    with open(INSTALL_LOCK, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another run may be installing it right now: wait, then re-check
        try:
            if not CHROMIUM.exists():
                _apt_install("chromium")
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    if not CHROMIUM.exists():
        raise RuntimeError(f"apt-get installed chromium but {CHROMIUM} is still missing")
    return CHROMIUM


def _apt_install(package: str) -> None:
    if shutil.which("apt-get") is None:
        raise RuntimeError(f"{CHROMIUM} is missing and apt-get is not available: install Chromium by hand")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "update", "-q"], ["apt-get", "install", "-y", "-q", package]):
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1800, check=False)
        if done.returncode != 0:
            tail = "\n".join((done.stdout + done.stderr).splitlines()[-15:])
            raise RuntimeError(f"`{' '.join(cmd)}` failed with status {done.returncode}:\n{tail}")


@contextlib.asynccontextmanager
async def chromium_context(*, width: int = 420, height: int = 820) -> AsyncIterator[BrowserContext]:
    """A headless Chromium browser context with a fresh profile, removed afterwards."""
    from playwright.async_api import async_playwright  # imported here: the API tests need no browser

    executable = ensure_chromium()
    profile = tempfile.mkdtemp(prefix="chromium-profile-")
    try:
        async with async_playwright() as pw:
            context = await pw.chromium.launch_persistent_context(
                profile,
                executable_path=str(executable),
                headless=True,
                args=list(CHROMIUM_FLAGS),
                viewport={"width": width, "height": height},
                device_scale_factor=1,
                locale="en-GB",
                timezone_id="Europe/Moscow",
            )
            try:
                yield context
            finally:
                await context.close()
    finally:
        shutil.rmtree(profile, ignore_errors=True)


PROJECT_ROOT = Path(__file__).resolve().parent.parent
OUTPUT_DIR = PROJECT_ROOT / "test-output"
URL_LINE = re.compile(r"^Playground: (http://\S+)")


@dataclasses.dataclass
class PlaygroundProcess:
    """A running `python -m bot playground`: its page URL, the process, and every line it printed so far."""

    url: str
    process: asyncio.subprocess.Process
    lines: list[str]

    @property
    def output(self) -> str:
        return "\n".join(self.lines)


@contextlib.asynccontextmanager
async def running_playground(
    database: Path, extra_env: Mapping[str, str] | None = None, *, stop: bool = True
) -> AsyncIterator[PlaygroundProcess]:
    """`python -m bot playground` on a free port with `database`; stopped with SIGTERM on exit (if `stop`)."""
    # Without the caller's token, BOT_* settings or PYTHONUNBUFFERED: the command must flush its output itself.
    unwanted = {"TELEGRAM_BOT_TOKEN", "PYTHONUNBUFFERED"}
    env = {k: v for k, v in os.environ.items() if k not in unwanted and not k.startswith("BOT_")}
    env.update({"BOT_PLAYGROUND_PORT": "0", "BOT_DATABASE": str(database), **(extra_env or {})})
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "playground",
        cwd=PROJECT_ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    assert process.stdout is not None
    lines: list[str] = []

    async def read() -> None:
        assert process.stdout is not None
        while line := await process.stdout.readline():
            lines.append(line.decode("utf-8", "replace").rstrip("\n"))

    reader = asyncio.create_task(read())
    try:
        url = await _wait_for_url(lines, reader)
        yield PlaygroundProcess(url, process, lines)
    finally:
        if stop and process.returncode is None:
            process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), 30)
        except TimeoutError:
            process.kill()
            await process.wait()
            raise
        finally:
            await asyncio.wait_for(reader, 5)


async def _wait_for_url(lines: list[str], reader: asyncio.Task[None]) -> str:
    for _ in range(600):  # up to 30 s: the command only imports modules and binds a port before printing it
        for line in lines:
            if found := URL_LINE.match(line):
                return found.group(1)
        if reader.done():
            break
        await asyncio.sleep(0.05)
    raise AssertionError("`python -m bot playground` printed no Playground: URL line:\n" + "\n".join(lines))


# --- questions chosen by the project's own matcher (so the tests hard-code no answers) -------------------------


def _knowledge_and_index() -> tuple[Any, Any]:
    from bot.knowledge.facts import load_knowledge
    from bot.matching.matcher import build_index

    knowledge = load_knowledge(PROJECT_ROOT / "knowledge", PROJECT_ROOT / "corpus")
    return knowledge, build_index(knowledge)


def answerable_fact() -> tuple[str, Any]:
    """(question, fact): one of a fact's own listed questions that the matcher answers with that fact."""
    import datetime

    from bot.matching.matcher import answer

    knowledge, index = _knowledge_and_index()
    for fact in knowledge.facts:
        for question in fact.questions:
            result = answer(index, question, datetime.date.today())
            if result.answered and result.facts and result.facts[0].id == fact.id:
                return question, fact
    raise AssertionError("the matcher answers none of the facts' own questions with that fact")


def did_you_mean_question() -> tuple[str, tuple[Any, ...]]:
    """(question, suggestions): a question the matcher declines while offering "did you mean" facts.

    Candidates are fragments of fact titles (a prefix, the first or last two words): close to several facts
    and to none exactly, which is what a hesitant user types.
    """
    import datetime

    from bot.matching.matcher import answer

    knowledge, index = _knowledge_and_index()
    candidates: list[str] = []
    for fact in knowledge.facts:
        words = fact.title.split()
        candidates += [fact.title[:12], fact.title[:16], " ".join(words[:2]), " ".join(words[-2:])]
    for question in dict.fromkeys(candidates):
        result = answer(index, question, datetime.date.today())
        if not result.answered and result.suggestions:
            return question, result.suggestions
    raise AssertionError("no fragment of a fact title makes the matcher decline with 'did you mean' suggestions")
