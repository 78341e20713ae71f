"""The source articles: reading `corpus/*.txt` (metadata header + verbatim text) and verbatim matching.

This module owns the article file format (a `---` delimited YAML header followed by the article exactly
as published) and the one normalisation used to decide whether an excerpt is "verbatim": whitespace is
collapsed and typographic quotes, apostrophes and dashes are mapped to their ASCII forms; nothing else.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import re
from pathlib import Path

import yaml

_TYPOGRAPHIC = str.maketrans(
    {
        "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u00ab": '"', "\u00bb": '"',
        "\u2018": "'", "\u2019": "'", "\u201a": "'", "\u2032": "'",
        "\u2013": "-", "\u2014": "-", "\u2012": "-", "\u2212": "-",
        "\u00a0": " ", "\u2026": "...",
    }
)  # fmt: skip
_SPACE = re.compile(r"\s+")


def normalise(text: str) -> str:
    """Whitespace and typographic quotes/dashes normalised, nothing else (case and words kept)."""
    return _SPACE.sub(" ", text.translate(_TYPOGRAPHIC)).strip()


class CorpusError(Exception):
    """An article file that cannot be read; the message names the file."""


@dataclasses.dataclass(frozen=True)
class Article:
    id: str
    title: str
    outlet: str  # short, for the source line of a reply
    published: str  # publication date as printed, "" when the article prints none
    attribution: str
    exchange_date: str  # date of the New Year exchange it reports (partial dates allowed)
    date_certainty: str
    date_basis: str
    original_file: str
    sha256: str
    text: str  # verbatim article text
    path: Path

    @functools.cached_property
    def normalised(self) -> str:  # once per article: every excerpt of every fact is looked up in it
        return normalise(self.text)

    def contains(self, excerpt: str) -> bool:
        return normalise(excerpt) in self.normalised

    @property
    def body_intact(self) -> bool:
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest() == self.sha256


def read_article(path: Path) -> Article:
    raw = path.read_text(encoding="utf-8")
    if not raw.startswith("---\n") or "\n---\n" not in raw[3:]:
        raise CorpusError(f"{path}: expected a '---' header block before the article text")
    head, body = raw[4:].split("\n---\n", 1)
    try:
        meta = yaml.safe_load(head) or {}
    except yaml.YAMLError as exc:
        raise CorpusError(f"{path}: header is not valid YAML: {exc}") from None
    fields = {f.name for f in dataclasses.fields(Article)} - {"text", "path"}
    missing = sorted(fields - set(meta))
    if missing:
        raise CorpusError(f"{path}: header lacks {', '.join(missing)}")
    return Article(**{k: str(meta[k]) for k in fields}, text=body, path=path)


def load_corpus(directory: Path) -> dict[str, Article]:
    """All articles in `directory`, by id. Raises CorpusError on an unreadable file or duplicate id."""
    articles: dict[str, Article] = {}
    for path in sorted(directory.glob("*.txt")):
        article = read_article(path)
        if article.id in articles:
            raise CorpusError(f"{path}: duplicate article id {article.id} (also in {articles[article.id].path})")
        articles[article.id] = article
    return articles
