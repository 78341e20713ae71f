"""Packaging: the bot as the deploy paths install it, into an empty virtual environment, with no dev tools.

The wheel is built from a copy of the repository's files (what `git ls-files` lists, plus new files git does not
ignore), so nothing is written into the checkout and the check sees what a clean clone ships. Into a fresh venv go
the locked runtime dependencies (`requirements.lock`, hash-checked) and then the wheel with `--no-deps`, exactly as
deploy/Dockerfile and the systemd steps do; `pip check` then proves the lock covers everything pyproject.toml asks
for (when it fails, run `make lock`). The `china-russia-bot` console script must answer a question, pass main's exit
status through, and pytest, ruff, mypy and playwright must not be importable there.

Needs PyPI or pip's cache for the dependencies and the build backend; takes about a minute.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from knowledge_fixtures import clean_env

ROOT = Path(__file__).resolve().parent.parent
PIP_TIMEOUT = 900  # seconds: a cold pip cache downloads some 30 wheels on a shared 2-core machine
DEV_TOOLS = ("pytest", "_pytest", "pytest_asyncio", "ruff", "mypy", "importlinter", "playwright")
# Imports behind python-telegram-bot's and SQLAlchemy's extras, which `pip check` does not look at.
EXTRAS_IMPORTS = ("tornado", "apscheduler", "aiolimiter", "greenlet", "aiosqlite")
# Files the package must carry besides its modules (pyproject.toml's [tool.setuptools.package-data]).
DATA_FOLDERS = ("bot/playground/static", "bot/playground/data")


def repository_files() -> list[str]:
    """Paths, relative to ROOT, of the files a clean clone would have (tracked, or new and not ignored)."""
    try:
        listed = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=ROOT,
            capture_output=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError) as exc:
        pytest.skip(f"not a git checkout ({exc}): cannot tell which files the repository ships")
    return [name for name in listed.decode("utf-8").split("\0") if name and (ROOT / name).is_file()]


def copy_repository(dest: Path) -> Path:
    for name in repository_files():
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, target)
    return dest


def run(
    args: list[str | Path], *, cwd: Path, env: dict[str, str], timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


def must(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, (
        f"{' '.join(result.args)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
    )
    return result.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A venv holding requirements.lock and the bot's wheel (--no-deps), and the wheel it was built from."""
    tmp = tmp_path_factory.mktemp("packaging")
    # The host's own Python and pip settings stay; anything pointing at this checkout or its venv goes.
    env = clean_env()
    for name in ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "VIRTUAL_ENV"):
        env.pop(name, None)
    src = copy_repository(tmp / "src")
    venv = tmp / "venv"
    must(run([sys.executable, "-m", "venv", venv], cwd=tmp, env=env))

    def pip(*args: str | Path) -> None:
        must(run([venv / "bin" / "python", "-m", "pip", *args], cwd=tmp, env=env, timeout=PIP_TIMEOUT))

    pip("wheel", "--no-deps", "--wheel-dir", tmp / "wheels", src)
    (wheel,) = (tmp / "wheels").glob("*.whl")
    pip("install", "--require-hashes", "-r", src / "requirements.lock")
    pip("install", "--no-deps", wheel)
    workdir = tmp / "work"  # an empty directory: nothing importable from the current directory
    workdir.mkdir()
    return {"venv": venv, "wheel": wheel, "src": src, "workdir": workdir}


def bot_env(tmp: Path, **extra: str) -> dict[str, str]:
    """What deploy/Dockerfile and the systemd unit set: the repository's settings and data, named explicitly."""
    env = clean_env(
        BOT_CONFIG=str(ROOT / "config.yaml"),
        BOT_KNOWLEDGE_DIR=str(ROOT / "knowledge"),
        BOT_CORPUS_DIR=str(ROOT / "corpus"),
        BOT_DATABASE=str(tmp / "bot.sqlite3"),
        **extra,
    )
    for name in ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "VIRTUAL_ENV"):
        env.pop(name, None)
    return env


def test_wheel_carries_the_type_marker_and_the_playground_files(installed: dict[str, Path]) -> None:
    names = set(zipfile.ZipFile(installed["wheel"]).namelist())
    assert "bot/py.typed" in names
    for folder in DATA_FOLDERS:
        shipped = sorted(p.relative_to(installed["src"]).as_posix() for p in (installed["src"] / folder).iterdir())
        assert shipped, f"{folder} is empty in the repository"
        missing = [name for name in shipped if name not in names]
        assert not missing, f"the wheel lacks {missing}: add their pattern to [tool.setuptools.package-data]"
    top_level = {name.split("/", 1)[0] for name in names if not name.split("/", 1)[0].endswith(".dist-info")}
    assert top_level == {"bot"}, f"the wheel ships more than the bot package: {sorted(top_level - {'bot'})}"


def test_lock_file_satisfies_the_package_requirements(installed: dict[str, Path]) -> None:
    python = installed["venv"] / "bin" / "python"
    result = run([python, "-m", "pip", "check"], cwd=installed["workdir"], env=bot_env(installed["workdir"]))
    assert result.returncode == 0, (
        f"requirements.lock is out of date with pyproject.toml, run `make lock`:\n{result.stdout}"
    )
    must(
        run(
            [python, "-c", "import " + ", ".join(EXTRAS_IMPORTS)],
            cwd=installed["workdir"],
            env=bot_env(installed["workdir"]),
        )
    )


def test_console_script_answers_from_the_installed_package(installed: dict[str, Path], tmp_path: Path) -> None:
    script = installed["venv"] / "bin" / "china-russia-bot"
    env = bot_env(tmp_path)
    out = must(run([script, "ask", "trade 2023"], cwd=installed["workdir"], env=env))
    assert "200 billion" in out

    python = installed["venv"] / "bin" / "python"
    where = must(run([python, "-c", "import bot; print(bot.__file__)"], cwd=installed["workdir"], env=env)).strip()
    assert Path(where).resolve().is_relative_to(installed["venv"].resolve()), (
        f"bot imported from {where}, not the wheel"
    )


def test_console_script_exits_with_mains_status(installed: dict[str, Path], tmp_path: Path) -> None:
    script = installed["venv"] / "bin" / "china-russia-bot"
    result = run([script, "ask", "trade 2023"], cwd=installed["workdir"], env=bot_env(tmp_path, BOT_MODE="bogus"))
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert "config error" in result.stderr


def test_no_dev_tools_in_the_installed_environment(installed: dict[str, Path]) -> None:
    python = installed["venv"] / "bin" / "python"
    code = (
        "import importlib.util, json, sys\n"
        "print(json.dumps({m: importlib.util.find_spec(m) is not None for m in sys.argv[1:]}))"
    )
    found = json.loads(
        must(run([python, "-c", code, *DEV_TOOLS], cwd=installed["workdir"], env=bot_env(installed["workdir"])))
    )
    assert not any(found.values()), f"dev tools in a runtime install: {[m for m, ok in found.items() if ok]}"
