"""Rendering: what a reader sees for facts, answers, /year, /timeline, /sources and /quote, in HTML and plain text.

Facts here are built with the real fact model and cite the real articles in corpus/, so dates, outlets and
'undated' come from the article headers; hostile strings check that every dynamic value is escaped.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Mapping
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from bot.knowledge.corpus import Article, load_corpus
from bot.knowledge.model import Entity, Fact
from bot.presentation.render import (
    DECLINE,
    answer_html,
    fact_date,
    fact_html,
    format_date,
    no_quote_html,
    no_year_html,
    pick_quote,
    select_quotes,
    source_line,
    sources_html,
    timeline_html,
    to_plain,
    year_html,
    year_items_html,
)
from bot.presentation.telegram_text import visible_length

ROOT = Path(__file__).resolve().parent.parent
ARTICLES = load_corpus(ROOT / "corpus")
ALLOWED_TAGS = {"b", "i", "u", "s", "a", "code", "pre", "blockquote", "tg-spoiler", "span"}


@dataclasses.dataclass(frozen=True)
class StandInKnowledge:
    """The fields of bot.knowledge.facts.Knowledge that rendering reads."""

    facts: tuple[Fact, ...]
    by_id: Mapping[str, Fact]
    entities: Mapping[str, Entity]
    articles: Mapping[str, Article]


@dataclasses.dataclass(frozen=True)
class StandInAnswer:
    question: str
    answered: bool
    facts: tuple[Fact, ...]
    score: float
    suggestions: tuple[Fact, ...] = ()
    is_list: bool = False
    low_confidence: bool = False


def excerpt(article: str) -> str:
    return ARTICLES[article].text.split()[5]


def make_fact(**fields: Any) -> Fact:
    base: dict[str, Any] = {
        "id": "sample-fact",
        "kind": "trade",
        "title": "Trade in 2023",
        "date": "2023-12-31",
        "text": "Trade reached a record.",
        "questions": ["how much was trade"],
        "sources": [{"article": "mna-2024-12-31", "excerpt": excerpt("mna-2024-12-31")}],
    }
    base.update(fields)
    return Fact(**base)


ENTITIES = {
    "xi-jinping": Entity(id="xi-jinping", type="person", name="Xi Jinping", aliases=["Xi", "President Xi"]),
    "vladimir-putin": Entity(id="vladimir-putin", type="person", name="Vladimir Putin", aliases=["Putin"]),
    "olympics": Entity(id="olympics", type="event", name="Winter Olympics", aliases=["Beijing Games"]),
}

XI_QUOTE = make_fact(
    id="xi-quote-2024",
    kind="quote",
    title="Xi: hand in hand",
    date="2024-12-31",
    text="Xi said both sides moved forward hand in hand.",
    speaker="xi-jinping",
    words='China and Russia are moving forward "hand in hand" <along> the right path & more',
    said_via="New Year message, as reported by Xinhua",
    occasion="New Year greetings, end of 2024",
    people=["xi-jinping"],
)
PUTIN_QUOTE = make_fact(
    id="putin-quote-olympics",
    kind="quote",
    title="Putin on the Olympics",
    date="2021-12",
    date_certainty="approximate",
    date_note="Earlier than New Year's Eve",
    text="Putin wished Beijing a successful Olympics.",
    speaker="vladimir-putin",
    words="I wish the Games success",
    occasion="New Year telegram",
    topics=["olympics"],
    sources=[{"article": "rt-2021-12-31", "excerpt": excerpt("rt-2021-12-31")}],
)
TRADE = make_fact(
    id="trade-2023",
    title="Trade <b>record</b> & *more*",
    text="Trade was $240 billion <script>alert(1)</script> _x_ [y]",
    date="2023",
    date_certainty="inferred",
    date_note="the article says 'last year'",
    sources=[
        {"article": "moscow-times-2023-12-31", "excerpt": excerpt("moscow-times-2023-12-31")},
        {"article": "moscow-times-2023-12-31", "excerpt": excerpt("moscow-times-2023-12-31")},
        {"article": "mna-2024-12-31", "excerpt": excerpt("mna-2024-12-31")},
    ],
)
MEETING = make_fact(
    id="meeting-2022", kind="meeting", title="Beijing meeting", date="2022-02-04", text="The two leaders met."
)
EXCHANGE = make_fact(
    id="exchange-2024", kind="exchange", title="Exchange 2024", date="2024-12-31", text="They exchanged greetings."
)
FACTS = (PUTIN_QUOTE, MEETING, TRADE, EXCHANGE, XI_QUOTE)
KNOWLEDGE = StandInKnowledge(FACTS, {f.id: f for f in FACTS}, ENTITIES, ARTICLES)


class _Checker(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.bad: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag not in ALLOWED_TAGS:
            self.bad.append(tag)
        self.stack.append(tag)

    def handle_endtag(self, tag):
        if not self.stack or self.stack.pop() != tag:
            self.bad.append("/" + tag)


def assert_telegram_html(markup: str) -> None:
    checker = _Checker()
    checker.feed(markup)
    checker.close()
    assert not checker.bad and not checker.stack, (checker.bad, checker.stack, markup)


@pytest.mark.parametrize(
    ("date", "shown"),
    [
        ("2024-12-31", "31 December 2024"),
        ("2022-02", "February 2022"),
        ("2023", "2023"),
        ("2022-01-05", "5 January 2022"),
    ],
)
def test_dates_read_as_people_write_them(date, shown):
    assert format_date(date) == shown


def test_date_certainty_is_shown():
    assert fact_date(XI_QUOTE) == "31 December 2024"
    assert fact_date(TRADE) == "2023 (date inferred)"
    assert fact_date(PUTIN_QUOTE) == "about December 2021"


def test_source_line_names_each_article_once_with_its_date_or_undated():
    assert source_line(XI_QUOTE, KNOWLEDGE) == "Source: Mehr News Agency, 31 December 2024"
    assert source_line(TRADE, KNOWLEDGE).split("\n") == [
        "Source: The Moscow Times, undated",
        "Source: Mehr News Agency, 31 December 2024",
    ]
    assert source_line(PUTIN_QUOTE, KNOWLEDGE) == "Source: RT, 25 January 2022"


def test_fact_html_escapes_every_dynamic_string():
    markup = fact_html(TRADE, KNOWLEDGE)
    assert_telegram_html(markup)
    assert "<script>" not in markup and "&lt;script&gt;" in markup
    assert "<b>Trade &lt;b&gt;record&lt;/b&gt; &amp; *more*</b>" in markup
    plain = to_plain(markup)
    assert plain.split("\n") == [
        "Trade <b>record</b> & *more*",
        "Trade was $240 billion <script>alert(1)</script> _x_ [y]",
        "Date: 2023 (date inferred)",
        "Source: The Moscow Times, undated",
        "Source: Mehr News Agency, 31 December 2024",
    ]


def test_quote_shows_speaker_exact_words_in_a_blockquote_and_occasion():
    markup = fact_html(XI_QUOTE, KNOWLEDGE)
    assert_telegram_html(markup)
    assert "<b>Xi Jinping</b>:" in markup
    assert "<blockquote>China and Russia are moving forward &quot;hand in hand&quot; &lt;along&gt;" in markup
    plain = to_plain(markup)
    assert '> China and Russia are moving forward "hand in hand" <along> the right path & more' in plain
    assert "New Year message, as reported by Xinhua; New Year greetings, end of 2024" in plain
    assert plain.endswith("Date: 31 December 2024\nSource: Mehr News Agency, 31 December 2024")


def test_single_answer_and_low_confidence_note():
    sure = StandInAnswer("trade?", True, (TRADE,), 92.0)
    assert answer_html(sure, KNOWLEDGE) == fact_html(TRADE, KNOWLEDGE)
    unsure = dataclasses.replace(sure, low_confidence=True)
    assert to_plain(answer_html(unsure, KNOWLEDGE)).startswith("This is the closest fact I found:")


def test_list_answer_is_numbered_with_a_source_for_each():
    listed = StandInAnswer("all quotes", True, (PUTIN_QUOTE, XI_QUOTE), 80.0, is_list=True)
    markup = answer_html(listed, KNOWLEDGE)
    assert_telegram_html(markup)
    plain = to_plain(markup)
    assert plain.startswith("2 facts match:")
    assert "1. Putin on the Olympics — about December 2021" in plain
    assert "2. Xi: hand in hand — 31 December 2024" in plain
    assert plain.count("Source:") == 2


def test_declined_answer_is_honest_and_offers_suggestions():
    declined = StandInAnswer("<script>who won the 1850 <i>war</i>?", False, (), 12.0, (MEETING, TRADE))
    markup = answer_html(declined, KNOWLEDGE)
    assert_telegram_html(markup)
    plain = to_plain(markup)
    assert plain.startswith(DECLINE)
    assert "Did you mean:\n• Beijing meeting\n• Trade <b>record</b> & *more*" in plain
    bare = to_plain(answer_html(dataclasses.replace(declined, suggestions=()), KNOWLEDGE))
    assert bare.startswith(DECLINE) and "Did you mean" not in bare and "/help" in bare


def test_year_lists_that_years_facts_by_date():
    plain = to_plain(year_html(KNOWLEDGE, 2024))
    assert plain.startswith("2024: 2 facts in the articles")
    assert plain.index("1. Exchange 2024") < plain.index("2. Xi: hand in hand")  # same date: file order
    assert [to_plain(b).split("\n")[0] for b in year_items_html(KNOWLEDGE, 2021)] == [
        "1. Putin on the Olympics — about December 2021"
    ]
    missing = to_plain(no_year_html(KNOWLEDGE, 1850))
    assert "1850" in missing and "2021, 2022, 2023, 2024" in missing
    assert year_html(KNOWLEDGE, 1850) == no_year_html(KNOWLEDGE, 1850)


def test_timeline_has_every_year_with_highlights():
    plain = to_plain(timeline_html(KNOWLEDGE, per_year=1))
    for year in (2021, 2022, 2023, 2024):
        assert f"\n{year}\n" in plain
    # the exchange outranks the quote in 2024, and the rest of the year is pointed to
    assert "• 31 December 2024: Exchange 2024" in plain
    assert "Xi: hand in hand" not in plain and "1 more: /year 2024" in plain


def test_sources_lists_every_article_with_outlet_date_title_and_count():
    markup = sources_html(KNOWLEDGE)
    assert_telegram_html(markup)
    plain = to_plain(markup)
    assert plain.startswith(f"The {len(ARTICLES)} articles")
    for article in ARTICLES.values():
        assert article.title in plain
    assert "RT, 25 January 2022" in plain and "The Moscow Times, undated" in plain
    assert "Mehr News Agency, 31 December 2024\n" in plain and "4 facts" in plain


def test_quote_selection_by_person_alias_or_topic():
    assert select_quotes(KNOWLEDGE) == [PUTIN_QUOTE, XI_QUOTE]
    assert select_quotes(KNOWLEDGE, "Putin") == [PUTIN_QUOTE]
    assert select_quotes(KNOWLEDGE, "president xi")[0] == XI_QUOTE
    assert select_quotes(KNOWLEDGE, "beijing games") == [PUTIN_QUOTE]
    assert select_quotes(KNOWLEDGE, "right path") == [XI_QUOTE]
    assert select_quotes(KNOWLEDGE, "bananas") == []
    assert "Xi Jinping" in to_plain(no_quote_html(KNOWLEDGE, "<bananas>"))
    assert "“<bananas>”" in to_plain(no_quote_html(KNOWLEDGE, "<bananas>"))


def test_pick_quote_avoids_the_one_just_shown():
    rng = random.Random(1)
    quotes = select_quotes(KNOWLEDGE)
    assert {pick_quote(quotes, rng, exclude=XI_QUOTE.id).id for _ in range(20)} == {PUTIN_QUOTE.id}
    assert pick_quote([XI_QUOTE], rng, exclude=XI_QUOTE.id) == XI_QUOTE
    assert pick_quote([], rng) is None


def test_every_rendered_text_fits_and_is_well_formed():
    for markup in [
        *(fact_html(f, KNOWLEDGE) for f in FACTS),
        timeline_html(KNOWLEDGE),
        sources_html(KNOWLEDGE),
        year_html(KNOWLEDGE, 2023),
    ]:
        assert_telegram_html(markup)
        assert 0 < visible_length(markup) < 4096
