"""Pure rendering of facts and answers to Telegram HTML, and the plain-text form derived from that HTML.

This module owns how the bot's replies read: a fact (title, text, the date as people say it, a source line
per article; for quotes the speaker, the exact words in a blockquote, where and when they were said), an
answer (one fact, a numbered list, or an honest decline with "did you mean"), the /year, /timeline,
/sources and /quote texts. Every dynamic string is escaped with `html.escape`, so a question or fact text
containing <, & or markup characters can never break a reply. `to_plain` turns any of these messages into
plain text (for the CLI, JSON and logs), so both forms always say the same thing. No Telegram, no I/O.
"""

from __future__ import annotations

import html
import random
import re
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from bot.matching.textnorm import MONTHS

if TYPE_CHECKING:  # types only: rendering needs none of these modules at run time
    from bot.knowledge.corpus import Article
    from bot.knowledge.facts import KnowledgeView
    from bot.knowledge.model import Fact
    from bot.matching.matcher import Answer

DECLINE = "I have no fact on that in the articles."
KIND_ORDER = ("exchange", "meeting", "anniversary", "trade", "statement", "quote", "context")
TIMELINE_PER_YEAR = 3

e = html.escape  # short alias: every dynamic string goes through it


# --- dates ---------------------------------------------------------------------------------------------------


def format_date(date: str) -> str:
    """'2024-12-31' -> '31 December 2024', '2022-02' -> 'February 2022', '2023' -> '2023'; '' -> ''."""
    if not date:
        return ""
    parts = date.split("-")
    try:
        if len(parts) == 3:
            return f"{int(parts[2])} {MONTHS[int(parts[1]) - 1]} {int(parts[0])}"
        if len(parts) == 2:
            return f"{MONTHS[int(parts[1]) - 1]} {int(parts[0])}"
    except (ValueError, IndexError):
        return date  # not a partial ISO date: show it as printed rather than guess
    return date


def fact_date(fact: Fact) -> str:
    """The fact's date as people read it, marked when it is not printed exactly in the article."""
    shown = format_date(fact.date)
    certainty = getattr(fact, "date_certainty", "exact")
    if certainty == "approximate":
        return f"about {shown}"
    if certainty == "inferred":
        return f"{shown} (date inferred)"
    return shown


# --- names and sources ---------------------------------------------------------------------------------------


def entity_name(knowledge: KnowledgeView, entity_id: str | None) -> str:
    """The display name of an entity id (the id itself if aliases.yaml lacks it)."""
    if not entity_id:
        return ""
    entity = knowledge.entities.get(entity_id)
    return entity.name if entity is not None else entity_id


def _article_ids(fact: Fact) -> list[str]:
    seen: list[str] = []
    for source in fact.sources:
        if source.article not in seen:
            seen.append(source.article)
    return seen


def article_line(article: Article) -> str:
    """'<outlet>, <published date or undated>' for an article (plain text)."""
    published = format_date(article.published) if article.published else "undated"
    return f"{article.outlet}, {published}"


def source_lines(fact: Fact, knowledge: KnowledgeView) -> list[str]:
    """One plain-text 'Source: <outlet>, <date or undated>' line per article the fact cites (in order)."""
    lines = []
    for article_id in _article_ids(fact):
        article = knowledge.articles.get(article_id)
        lines.append(f"Source: {article_line(article)}" if article is not None else f"Source: {article_id}")
    return lines


def source_line(fact: Fact, knowledge: KnowledgeView) -> str:
    """The fact's source lines as plain text (not escaped), one per cited article, joined by newlines."""
    return "\n".join(source_lines(fact, knowledge))


def _sources_html(fact: Fact, knowledge: KnowledgeView) -> str:
    return "\n".join(f"<i>{e(line)}</i>" for line in source_lines(fact, knowledge))


# --- facts and answers ---------------------------------------------------------------------------------------


def quote_html(fact: Fact, knowledge: KnowledgeView) -> str:
    """Speaker, the exact words in a blockquote, and where/when they were said."""
    speaker = entity_name(knowledge, fact.speaker)
    lines = [f"<b>{e(speaker)}</b>:" if speaker else "", f"<blockquote>{e(fact.words or '')}</blockquote>"]
    context = "; ".join(x for x in (fact.said_via, fact.occasion) if x)
    if context:
        lines.append(f"<i>{e(context)}</i>")
    return "\n".join(line for line in lines if line)


def fact_html(fact: Fact, knowledge: KnowledgeView) -> str:
    """One fact: bold title, the text, (quote block), the date, and its source lines."""
    lines = [f"<b>{e(fact.title)}</b>", e(fact.text)]
    if fact.kind == "quote" and fact.words:
        lines.append(quote_html(fact, knowledge))
    lines.append(f"Date: {e(fact_date(fact))}")
    lines.append(_sources_html(fact, knowledge))
    return "\n".join(lines)


def list_item_html(number: int, fact: Fact, knowledge: KnowledgeView) -> str:
    """A numbered list entry: '1. <b>title</b> — date', the text, the source lines."""
    return "\n".join(
        (
            f"{number}. <b>{e(fact.title)}</b> — {e(fact_date(fact))}",
            e(fact.text),
            _sources_html(fact, knowledge),
        )
    )


def suggestions_html(suggestions: Sequence[Fact]) -> str:
    if not suggestions:
        return ""
    return "Did you mean:\n" + "\n".join(f"• {e(f.title)}" for f in suggestions)


def declined_html(answer: Answer) -> str:
    lines = [DECLINE]
    if answer.suggestions:
        lines.append(suggestions_html(answer.suggestions))
    else:
        lines.append("Try /help for what I can tell, or /timeline for the highlights of every year.")
    return "\n\n".join(lines)


def answer_html(answer: Answer, knowledge: KnowledgeView) -> str:
    """The whole reply to a question: a fact, a numbered list, or an honest decline with suggestions."""
    if not answer.answered or not answer.facts:
        return declined_html(answer)
    if answer.is_list and len(answer.facts) > 1:
        head = f"<b>{len(answer.facts)} facts match:</b>"
        return "\n\n".join([head, *(list_item_html(i, f, knowledge) for i, f in enumerate(answer.facts, 1))])
    body = fact_html(answer.facts[0], knowledge)
    if answer.low_confidence:
        body = "<i>This is the closest fact I found:</i>\n\n" + body
    return body


# --- /year, /timeline, /sources ------------------------------------------------------------------------------


def years(knowledge: KnowledgeView) -> list[int]:
    """Every year some fact is dated in, ascending."""
    return sorted({f.year for f in knowledge.facts})


def year_facts(knowledge: KnowledgeView, year: int) -> list[Fact]:
    """Facts dated in `year`, by date (file order among equal dates)."""
    return sorted((f for f in knowledge.facts if f.year == year), key=lambda f: f.date)


def year_range_text(knowledge: KnowledgeView) -> str:
    ys = years(knowledge)
    return f"{ys[0]}–{ys[-1]}" if ys else "none"


def year_header_html(year: int, count: int) -> str:
    return f"<b>{year}</b>: {count} fact{'s' if count != 1 else ''} in the articles"


def year_items_html(knowledge: KnowledgeView, year: int) -> list[str]:
    """One numbered HTML block per fact of the year (for pagination)."""
    return [list_item_html(i, f, knowledge) for i, f in enumerate(year_facts(knowledge, year), 1)]


def year_html(knowledge: KnowledgeView, year: int) -> str:
    """What happened in `year`, or a clear message naming the years that have facts."""
    items = year_items_html(knowledge, year)
    if not items:
        return no_year_html(knowledge, year)
    return "\n\n".join([year_header_html(year, len(items)), *items])


def no_year_html(knowledge: KnowledgeView, year: int) -> str:
    ys = years(knowledge)
    listed = ", ".join(str(y) for y in ys)
    return f"I have no facts dated {year}. The articles cover these years: {e(listed)}."


def _highlights(facts: Iterable[Fact], limit: int) -> list[Fact]:
    rank = {kind: i for i, kind in enumerate(KIND_ORDER)}
    chosen = sorted(facts, key=lambda f: (rank.get(f.kind, len(rank)), f.date))[:limit]
    return sorted(chosen, key=lambda f: f.date)


def timeline_html(knowledge: KnowledgeView, per_year: int = TIMELINE_PER_YEAR) -> str:
    """The highlights of every year (New Year exchanges and meetings first), one block per year."""
    blocks = ["<b>Timeline</b> (highlights of every year; /year YYYY for all of a year)"]
    for year in years(knowledge):
        facts = year_facts(knowledge, year)
        lines = [f"<b>{year}</b>"]
        lines += [f"• {e(format_date(f.date))}: {e(f.title)}" for f in _highlights(facts, per_year)]
        if len(facts) > per_year:
            lines.append(f"  … {len(facts) - per_year} more: /year {year}")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def sources_html(knowledge: KnowledgeView) -> str:
    """The articles: outlet, date and title, with how many facts cite each."""
    cited: dict[str, int] = {}
    for fact in knowledge.facts:
        for article_id in _article_ids(fact):
            cited[article_id] = cited.get(article_id, 0) + 1
    articles = sorted(knowledge.articles.values(), key=lambda a: (a.exchange_date, a.id))
    blocks = [f"<b>The {len(articles)} articles</b> every fact comes from:"]
    for i, article in enumerate(articles, 1):
        n = cited.get(article.id, 0)
        blocks.append(
            f"{i}. <b>{e(article.outlet)}</b>, {e(format_date(article.published) or 'undated')}\n"
            f"{e(article.title)}\n"
            f"<i>{n} fact{'s' if n != 1 else ''}</i>"
        )
    return "\n\n".join(blocks)


# --- /quote --------------------------------------------------------------------------------------------------

_WORD = re.compile(r"\w+", re.UNICODE)


def quote_facts(knowledge: KnowledgeView) -> list[Fact]:
    """Every quote fact, by date."""
    return sorted((f for f in knowledge.facts if f.kind == "quote" and f.words), key=lambda f: f.date)


def _entity_names(knowledge: KnowledgeView, ids: Iterable[str | None]) -> list[str]:
    names: list[str] = []
    for entity_id in ids:
        entity = knowledge.entities.get(entity_id) if entity_id else None
        if entity is not None:
            names += [entity.name, *entity.aliases]
        elif entity_id:
            names.append(entity_id.replace("-", " "))
    return names


def _quote_haystack(fact: Fact, knowledge: KnowledgeView) -> tuple[str, str]:
    """(speaker names, everything else) in lower case, for /quote matching."""
    speaker = " | ".join(_entity_names(knowledge, [fact.speaker])).casefold()
    other = " | ".join(
        [
            fact.title,
            fact.text,
            fact.words or "",
            fact.occasion or "",
            fact.said_via or "",
            fact.date[:4],
            *fact.keywords,
            *_entity_names(knowledge, [*fact.people, *fact.places, *fact.topics]),
        ]
    ).casefold()
    return speaker, other


def select_quotes(knowledge: KnowledgeView, query: str = "") -> list[Fact]:
    """Quotes for /quote [person or topic], best first: the speaker's names weigh most, then words and topic.

    An empty query returns every quote (by date); a query nothing matches returns [].
    """
    quotes = quote_facts(knowledge)
    query = query.strip().casefold()
    if not query:
        return quotes
    words = [w for w in _WORD.findall(query) if len(w) > 2 or w.isdigit()] or _WORD.findall(query)
    scored = []
    for position, fact in enumerate(quotes):
        speaker, other = _quote_haystack(fact, knowledge)
        score = 0.0
        if query in speaker:
            score += 10
        elif query in other:
            score += 6
        for word in words:
            if re.search(rf"\b{re.escape(word)}", speaker):
                score += 3
            elif re.search(rf"\b{re.escape(word)}", other):
                score += 1
        if score > 0:
            scored.append((-score, position, fact))
    return [fact for _, _, fact in sorted(scored, key=lambda t: (t[0], t[1]))]


def pick_quote(quotes: Sequence[Fact], rng: random.Random | None = None, exclude: str | None = None) -> Fact | None:
    """A random quote, avoiding `exclude` (a fact id) when there is another choice."""
    choices = [q for q in quotes if q.id != exclude] or list(quotes)
    if not choices:
        return None
    return (rng or random).choice(choices)


def quote_speakers(knowledge: KnowledgeView) -> list[str]:
    """Names of everyone quoted, in first-quoted order."""
    names: list[str] = []
    for fact in quote_facts(knowledge):
        name = entity_name(knowledge, fact.speaker)
        if name not in names:
            names.append(name)
    return names


def no_quote_html(knowledge: KnowledgeView, query: str) -> str:
    speakers = ", ".join(quote_speakers(knowledge)) or "nobody"
    return f"I have no quote about “{e(query)}”. The articles quote: {e(speakers)}. Try /quote with one of them."


# --- plain text ----------------------------------------------------------------------------------------------

_BLOCKQUOTE = re.compile(r"<blockquote[^>]*>(.*?)</blockquote>", re.DOTALL | re.IGNORECASE)
_LINK = re.compile(r'<a\s[^>]*href="([^"]*)"[^>]*>(.*?)</a>', re.DOTALL | re.IGNORECASE)
_TAG = re.compile(r"<[^>]+>")


def to_plain(markup: str) -> str:
    """The same message as plain text: blockquote lines prefixed with '> ', tags dropped, entities decoded."""

    def quote(match: re.Match[str]) -> str:
        return "\n".join("> " + line for line in match.group(1).split("\n"))

    text = _BLOCKQUOTE.sub(quote, markup)
    text = _LINK.sub(lambda m: m.group(2) if m.group(2) == m.group(1) else f"{m.group(2)} ({m.group(1)})", text)
    return html.unescape(_TAG.sub("", text))
