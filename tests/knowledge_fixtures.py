"""Builders of small, valid knowledge and corpus folders for tests, so each test can break exactly one thing.

The articles and facts here are invented test data (not China–Russia facts): two short articles, three
knowledge files (entities, an exchange and a quote, a trade fact). `write_project` writes them to a
temporary folder, optionally with one text edit, and `line_of` finds the line a test expects a problem on
from the text itself, so tests do not hard-code line numbers that drift when the fixture changes.
`clean_env` is the environment tests give the bot's command-line subprocesses.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without the bot's own settings (BOT_*, TELEGRAM_*), plus `extra`: what a
    test hands a `python -m bot` subprocess, so a token or database exported in the shell never leaks in."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BOT_", "TELEGRAM_"))}
    env.update(extra)
    return env


ARTICLES: dict[str, str] = {
    "alpha-2023": (
        "Leader A said on Sunday that ties with Country B had grown stronger in 2023.\n\n"
        "In her message she said: \u201cThe foundation of our relationship has become stronger.\u201d\n\n"
        "The two leaders met twice\u2014once in Capital A and once in Capital B.\n"
    ),
    "beta-2024": (
        "Beta News reported the exchange of New Year greetings on December 31, 2024.\n"
        "Trade between the two countries reached a record high, officials said.\n"
    ),
}

ALIASES_YAML = """\
# yaml-language-server: $schema=schema.json
entities:
  - id: leader-a
    type: person
    name: Leader A
    aliases: [A, Madam A]
  - id: leader-b
    type: person
    name: Leader B
  - id: capital-a
    type: place
    name: Capital A
  - id: beta-news
    type: outlet
    name: Beta News
"""

EXCHANGES_YAML = """\
# yaml-language-server: $schema=schema.json
facts:
  - id: exchange-2023
    kind: exchange
    title: New Year exchange of 2023
    date: "2023-12-31"
    date_certainty: inferred
    date_note: The article says Sunday; the Sunday at the end of 2023 was 31 December.
    people: [leader-a, leader-b]
    text: Leader A and Leader B exchanged New Year greetings.
    questions:
      - When did they exchange greetings in 2023?
    sources:
      - article: alpha-2023
        excerpt: Leader A said on Sunday that ties with Country B had grown stronger in 2023.
  - id: foundation-quote-2023
    kind: quote
    title: The foundation became stronger
    date: "2023-12-31"
    date_certainty: inferred
    date_note: Said in the exchange of 31 December 2023.
    exchange: exchange-2023
    related: [exchange-2023]
    people: [leader-a]
    speaker: leader-a
    words: "The foundation of our relationship has become stronger."
    said_via: New Year message
    occasion: New Year greetings, end of 2023
    text: Leader A said the foundation of the relationship had become stronger.
    questions: [What did Leader A say about the foundation?]
    sources:
      - article: alpha-2023
        excerpt: 'she said: "The foundation of our relationship has become stronger."'
"""

TRADE_YAML = """\
# yaml-language-server: $schema=schema.json
facts:
  - id: record-trade-2024
    kind: trade
    title: Record trade in 2024
    date: "2024"
    places: [capital-a]
    reported_by: [beta-news]
    text: Trade between the two countries reached a record high, officials said.
    questions:
      - How much was trade in 2024?
      - Сколько составила торговля?
    keywords: [trade, record]
    sources:
      - article: beta-2024
        excerpt: Trade between the two countries reached a record high,
"""

KNOWLEDGE: dict[str, str] = {
    "aliases.yaml": ALIASES_YAML,
    "exchanges.yaml": EXCHANGES_YAML,
    "trade.yaml": TRADE_YAML,
}


def article_file(article_id: str, text: str, sha256: str | None = None) -> str:
    """An article file as in corpus/: YAML header (checksum of `text` unless given) and the text."""
    digest = sha256 or hashlib.sha256(text.encode("utf-8")).hexdigest()
    return (
        "---\n"
        f"id: {article_id}\n"
        f'title: "Test article {article_id}"\n'
        f'outlet: "Outlet of {article_id}"\n'
        'published: "2024-12-31"\n'
        'attribution: "Test fixture"\n'
        'exchange_date: "2024-12-31"\n'
        "date_certainty: exact\n"
        'date_basis: "Test fixture"\n'
        f"original_file: {article_id}.txt\n"
        f"sha256: {digest}\n"
        "---\n"
        f"{text}"
    )


def write_corpus(directory: Path, articles: dict[str, str] | None = None) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for article_id, text in (ARTICLES if articles is None else articles).items():
        (directory / f"{article_id}.txt").write_text(article_file(article_id, text), encoding="utf-8")
    return directory


def write_knowledge(directory: Path, files: dict[str, str] | None = None) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in (KNOWLEDGE if files is None else files).items():
        (directory / name).write_text(text, encoding="utf-8")
    return directory


def edited(name: str, old: str, new: str, files: dict[str, str] | None = None) -> dict[str, str]:
    """The knowledge files with the first `old` in file `name` replaced by `new` (which must be there)."""
    files = dict(KNOWLEDGE if files is None else files)
    assert old in files[name], f"fixture {name} has no {old!r}"
    files[name] = files[name].replace(old, new, 1)
    return files


def write_project(tmp_path: Path, files: dict[str, str] | None = None) -> tuple[Path, Path]:
    """(knowledge dir, corpus dir) under tmp_path, from the fixture (or the given knowledge files)."""
    return write_knowledge(tmp_path / "knowledge", files), write_corpus(tmp_path / "corpus")


def copy_shipped(tmp_path: Path) -> tuple[Path, Path]:
    """A copy of the project's real knowledge/ and corpus/ under tmp_path."""
    knowledge, corpus = tmp_path / "knowledge", tmp_path / "corpus"
    shutil.copytree(PROJECT_ROOT / "knowledge", knowledge)
    shutil.copytree(PROJECT_ROOT / "corpus", corpus)
    return knowledge, corpus


def line_of(text: str, needle: str, nth: int = 1) -> int:
    """1-based number of the line holding the nth occurrence of `needle` in `text`."""
    at = -1
    for _ in range(nth):
        at = text.index(needle, at + 1)
    return text.count("\n", 0, at) + 1
