"""The yearly New Year exchange digest, composed from the facts alone; and the `digest` command.

This module owns what a digest says and in what order. `compose` is pure: from a `Knowledge` and a year
it builds a `Digest` (frozen dataclasses: sections of items) with no hand-written content, so a
maintainer's fact edit shows up in the next digest without a code change. The rules, all derived from
the facts' fields:

- The digest of year Y covers the exchange fact(s) (kind: exchange) dated in Y — the greetings sent at the
  end of Y for New Year Y+1. "Who wrote to whom, and when" is that fact: its date and text.
- A quote or statement that belongs to the exchange (`exchange:` names it) is part of the New Year
  messages when its `occasion` or `said_via` starts with "New Year", or, having neither, when it is dated
  the exchange's date exactly. Such quotes are the "Key lines", grouped by speaker (the exchange's
  `people` order first) and quoted exactly with where they were said and their sources; such statements
  (reported speech) follow as "More from the messages". The exchange's other quotes and statements dated
  in Y are listed under "Also said in Y".
- "Y in relations" lists every meeting, trade and anniversary fact in the base dated in Y, up to the
  exchange.
- "What lies ahead" lists facts that belong to the exchange or cite one of its articles and are dated
  after it (announced visits, coming anniversaries), as seen at the time of the exchange.
- "Sources" lists every article the digest cites.

Rendering produces Telegram HTML (every string escaped) in which each line is complete on its own, so the
bot's splitter can cut a long digest at any line; plain text is derived from that HTML.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import sys
from collections.abc import Iterable
from typing import TYPE_CHECKING, Literal

from bot.delivery.schedule import exchange_for_run, partial_date_bounds
from bot.presentation import render
from bot.presentation.render import e
from bot.presentation.telegram_text import MAX_MESSAGE_LENGTH, paginate

if TYPE_CHECKING:  # types only: the knowledge is loaded by the caller (or by main_digest, on demand)
    from bot.knowledge.facts import KnowledgeView
    from bot.knowledge.model import Fact

YEAR_KINDS = ("meeting", "trade", "anniversary")  # what "the year in relations" is made of
LINE_KINDS = ("quote", "statement")  # what can be a key line of a message
MESSAGE_MARK = "new year"  # an occasion or said_via starting with this marks a line of the New Year messages


@dataclasses.dataclass(frozen=True)
class Item:
    kind: Literal["fact", "quote", "source"]
    date: str  # as people read it ('' when undated)
    text: str  # a fact's text; a quote's exact words; an article's title
    fact_id: str = ""  # '' for sources
    speaker: str = ""  # quotes and statements: who said it
    via: str = ""  # quotes: where or how it was said
    sources: tuple[str, ...] = ()  # 'Outlet, date' of each article the fact cites


@dataclasses.dataclass(frozen=True)
class Section:
    key: str  # exchange | lines | more | also | year | ahead | sources
    title: str
    items: tuple[Item, ...]


@dataclasses.dataclass(frozen=True)
class Digest:
    year: int | None
    title: str
    sections: tuple[Section, ...]
    available_years: tuple[int, ...]  # years that have an exchange, ascending
    exchange_ids: tuple[str, ...] = ()

    @property
    def found(self) -> bool:
        return bool(self.exchange_ids)

    def fact_ids(self) -> list[str]:
        return [i.fact_id for s in self.sections for i in s.items if i.fact_id]

    def section(self, key: str) -> Section | None:
        return next((s for s in self.sections if s.key == key), None)


# --- composition (pure) --------------------------------------------------------------------------------------


def exchange_years(knowledge: KnowledgeView) -> list[int]:
    """Years that have a New Year exchange in the base, ascending."""
    return sorted({f.year for f in knowledge.facts if f.kind == "exchange"})


def latest_year(knowledge: KnowledgeView) -> int | None:
    years = exchange_years(knowledge)
    return years[-1] if years else None


def year_for_run(knowledge: KnowledgeView, run: dt.datetime, tz: dt.tzinfo | None = None) -> int | None:
    """The digest year a scheduled run sends: the latest exchange on or before the run's day (in `tz`, the
    schedule's zone), under a year old. On the default 1 January, the exchange of the previous 31 December.
    """
    chosen = exchange_for_run(run, [f.date for f in knowledge.facts if f.kind == "exchange"], tz)
    return int(chosen[:4]) if chosen else None


def _overlaps(fact: Fact, start: dt.date, end: dt.date) -> bool:
    first, last = partial_date_bounds(fact.date)
    return first <= end and last >= start


def _starts_after(fact: Fact, day: dt.date) -> bool:
    return partial_date_bounds(fact.date)[0] > day


def _article_ids(fact: Fact) -> list[str]:
    return list(dict.fromkeys(s.article for s in fact.sources))


def _source_labels(fact: Fact, knowledge: KnowledgeView) -> tuple[str, ...]:
    labels = []
    for article_id in _article_ids(fact):
        article = knowledge.articles.get(article_id)
        labels.append(render.article_line(article) if article is not None else article_id)
    return tuple(labels)


def _is_message_line(fact: Fact, exchange_dates: set[str]) -> bool:
    """Part of the New Year messages: says so in occasion/said_via, or (saying nothing) dated the exchange's day."""
    marks = [value.strip().lower() for value in (fact.occasion, fact.said_via) if value and value.strip()]
    if marks:
        return any(mark.startswith(MESSAGE_MARK) for mark in marks)
    return fact.date in exchange_dates


def _fact_item(fact: Fact, knowledge: KnowledgeView) -> Item:
    if fact.kind == "quote" and fact.words:
        return Item(
            "quote",
            render.fact_date(fact),
            " ".join(fact.words.split()),  # one line; whitespace only, the words stay exact
            fact.id,
            speaker=render.entity_name(knowledge, fact.speaker),
            via=fact.said_via or fact.occasion or "",
            sources=_source_labels(fact, knowledge),
        )
    return Item(
        "fact",
        render.fact_date(fact),
        " ".join(fact.text.split()),
        fact.id,
        speaker=render.entity_name(knowledge, fact.speaker),
        sources=_source_labels(fact, knowledge),
    )


def _by_date(facts: Iterable[Fact]) -> list[Fact]:
    return sorted(facts, key=lambda f: partial_date_bounds(f.date))


def no_exchange_text(year: int | None, available: Iterable[int]) -> str:
    years = sorted(available)
    if not years:
        return "There is no New Year exchange in the fact base yet."
    listed = ", ".join(str(y) for y in years)
    text = f"There is no New Year exchange dated {year} in the fact base. Digests are available for: {listed}."
    if year is not None and year - 1 in years:
        text += f" The greetings for New Year {year} were exchanged at the end of {year - 1}: ask for {year - 1}."
    return text


def compose(knowledge: KnowledgeView, year: int | None = None) -> Digest:
    """The digest of the exchange dated in `year` (default: the latest); `found` is False if there is none."""
    available = tuple(exchange_years(knowledge))
    if year is None:
        year = available[-1] if available else None
    exchanges = [f for f in knowledge.facts if f.kind == "exchange" and f.year == year]
    if year is None or not exchanges:  # (no year: no exchange either)
        return Digest(year, "New Year exchange digest", (), available)
    exchanges = _by_date(exchanges)
    ids = {x.id for x in exchanges}
    end = max(partial_date_bounds(x.date)[1] for x in exchanges)
    start = dt.date(year, 1, 1)
    linked = [f for f in knowledge.facts if f.exchange in ids]
    articles = {a for f in [*exchanges, *linked] for a in _article_ids(f)}
    related = [f for f in knowledge.facts if f.kind != "exchange" and (f in linked or set(_article_ids(f)) & articles)]
    used: set[str] = set(ids)

    def take(facts: Iterable[Fact]) -> list[Fact]:
        chosen = [f for f in facts if f.id not in used]
        used.update(f.id for f in chosen)
        return chosen

    sections = [Section("exchange", "Who wrote to whom, and when", tuple(_fact_item(x, knowledge) for x in exchanges))]

    dates = {x.date for x in exchanges}
    lines = take(f for f in linked if f.kind in LINE_KINDS and _is_message_line(f, dates))
    quoted = [f for f in lines if f.kind == "quote" and f.words]
    order = [p for x in exchanges for p in x.people]
    speakers = list(
        dict.fromkeys([*(p for p in order if any(f.speaker == p for f in quoted)), *(f.speaker for f in quoted)])
    )
    for speaker in speakers:
        own = tuple(_fact_item(f, knowledge) for f in quoted if f.speaker == speaker)
        sections.append(Section("lines", f"Key lines: {render.entity_name(knowledge, speaker)}", own))
    reported = [f for f in lines if f not in quoted]
    if reported:
        sections.append(Section("more", "More from the messages", tuple(_fact_item(f, knowledge) for f in reported)))

    also = take(_by_date(f for f in linked if f.kind in LINE_KINDS and _overlaps(f, start, end)))
    if also:
        sections.append(Section("also", f"Also said in {year}", tuple(_fact_item(f, knowledge) for f in also)))

    in_year = take(_by_date(f for f in knowledge.facts if f.kind in YEAR_KINDS and _overlaps(f, start, end)))
    if in_year:
        title = f"{year} in relations: meetings, trade, anniversaries"
        sections.append(Section("year", title, tuple(_fact_item(f, knowledge) for f in in_year)))

    ahead = take(_by_date(f for f in related if _starts_after(f, end)))
    if ahead:
        sections.append(Section("ahead", "What lies ahead", tuple(_fact_item(f, knowledge) for f in ahead)))

    cited = list(dict.fromkeys(a for fid in used for a in _article_ids(knowledge.by_id[fid])))
    cited.sort(key=lambda a: (knowledge.articles[a].published or "9999", a) if a in knowledge.articles else ("", a))
    source_items = []
    for article_id in cited:
        article = knowledge.articles.get(article_id)
        if article is not None:
            published = render.format_date(article.published) if article.published else "undated"
            source_items.append(Item("source", published, article.title, speaker=article.outlet))
    sections.append(Section("sources", "Sources", tuple(source_items)))
    return Digest(year, exchanges[0].title, tuple(sections), available, tuple(x.id for x in exchanges))


# --- rendering -----------------------------------------------------------------------------------------------


def _sources_line(item: Item) -> str:
    if not item.sources:
        return ""
    label = "Source" if len(item.sources) == 1 else "Sources"
    return f"{label}: {'; '.join(item.sources)}"


def item_lines(item: Item) -> list[str]:
    """An item as lines of HTML, each complete on its own (no tag spans two lines)."""
    if item.kind == "source":
        return [f"• <b>{e(item.speaker)}</b>, {e(item.date)}: {e(item.text)}"]
    if item.kind == "quote":
        note = " · ".join(x for x in (item.via, item.date, _sources_line(item)) if x)
        return [f"<blockquote>{e(item.text)}</blockquote>", f"<i>{e(note)}</i>"]
    lines = [f"• <b>{e(item.date)}</b>: {e(item.text)}" if item.date else f"• {e(item.text)}"]
    if item.sources:
        lines.append(f"<i>{e(_sources_line(item))}</i>")
    return lines


def section_html(section: Section) -> str:
    lines = [f"<b>{e(section.title)}</b>"]
    for item in section.items:
        lines += item_lines(item)
    return "\n".join(lines)


def blocks(digest: Digest) -> list[str]:
    """The digest as HTML blocks: a heading, then one block per section."""
    if not digest.found:
        return [e(no_exchange_text(digest.year, digest.available_years))]
    head = f"<b>{e(digest.title)}</b>\n<i>Digest of the New Year messages, composed from the cited facts.</i>"
    return [head, *(section_html(s) for s in digest.sections)]


def render_html(digest: Digest) -> str:
    return "\n\n".join(blocks(digest))


def render_parts(digest: Digest, limit: int = MAX_MESSAGE_LENGTH) -> list[str]:
    """The digest as Telegram messages, each under `limit`; a section is split (at lines) only if it must be."""
    return paginate(blocks(digest), limit)


def render_plain(digest: Digest) -> str:
    return render.to_plain(render_html(digest))


# --- python -m bot digest ------------------------------------------------------------------------------------


def main_digest(args: argparse.Namespace) -> int:
    """Print a year's digest (default: the latest exchange) as plain text."""
    from bot.config import load_config
    from bot.knowledge.facts import load_knowledge

    config = load_config(getattr(args, "config", None))
    knowledge = load_knowledge(config.knowledge_dir, config.corpus_dir)
    digest = compose(knowledge, getattr(args, "year", None))
    if not digest.found:  # nothing to show: the message on stderr and status 1, so a script can tell
        print(render_plain(digest), file=sys.stderr)
        return 1
    print(render_plain(digest))
    return 0
