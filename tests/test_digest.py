"""The yearly digest's content, checked against the knowledge itself (no expected text is written here).

For every exchange year in the base: each leader's New Year message lines are quoted exactly under that
leader's name with their source, the year's meetings, trade and anniversaries are there, what lay ahead is
there, and every cited article is listed. Also: a year without an exchange is stated plainly, the HTML is
escaped and splits at line boundaries, a maintainer's edit to a fact file shows up with no code change,
and the `digest` command prints the same text.
"""

from __future__ import annotations

import datetime as dt
import re
import shutil
from pathlib import Path

import pytest

from bot.cli import main as cli_main
from bot.delivery import digest
from bot.delivery.schedule import partial_date_bounds
from bot.knowledge.facts import Knowledge, load_knowledge
from bot.presentation.render import entity_name
from bot.presentation.telegram_text import MAX_MESSAGE_LENGTH, visible_length, visible_text

ROOT = Path(__file__).resolve().parent.parent


def exchange_years(knowledge) -> list[int]:
    return sorted({f.year for f in knowledge.facts if f.kind == "exchange"})


def exchange_of(knowledge, year):
    return next(f for f in knowledge.facts if f.kind == "exchange" and f.year == year)


def linked(knowledge, exchange):
    return [f for f in knowledge.facts if f.exchange == exchange.id]


def message_quotes(knowledge, exchange):
    """The exchange's quotes that its own fields say were part of the New Year messages."""
    return [
        f
        for f in linked(knowledge, exchange)
        if f.kind == "quote" and any((v or "").lower().startswith("new year") for v in (f.occasion, f.said_via))
    ]


def test_the_base_has_exchanges_to_digest(knowledge):
    assert len(exchange_years(knowledge)) >= 2


@pytest.mark.parametrize("position", range(4))
def test_digest_of_each_exchange_year_is_composed_from_its_facts(knowledge, position):
    years = exchange_years(knowledge)
    if position >= len(years):
        pytest.skip("fewer exchanges in the base")
    year = years[position]
    exchange = exchange_of(knowledge, year)
    composed = digest.compose(knowledge, year)
    plain = digest.render_plain(composed)
    assert composed.found and composed.year == year

    # Who wrote to whom and when: the exchange fact itself, with its date.
    assert plain.splitlines()[0] == exchange.title
    assert " ".join(exchange.text.split()) in plain
    assert year == int(exchange.date[:4])

    # Each leader's message lines, verbatim, under that leader's heading, with the source outlet.
    quotes = message_quotes(knowledge, exchange)
    assert quotes, "an exchange without a quoted line"
    for quote in quotes:
        heading = f"Key lines: {entity_name(knowledge, quote.speaker)}"
        words = " ".join(quote.words.split())
        assert f"> {words}" in plain, f"{quote.id}: words not quoted exactly"
        section = plain[plain.index(heading) :].split("\n\n")[0]
        assert words in section, f"{quote.id} is not under {heading}"
        note = section[section.index(words) :].splitlines()[1]
        assert all(knowledge.articles[s.article].outlet in note for s in quote.sources)
    # Every other quote of the exchange dated in the year is quoted too (under "Also said").
    end = partial_date_bounds(exchange.date)[1]
    for fact in linked(knowledge, exchange):
        if fact.kind == "quote" and partial_date_bounds(fact.date)[0] <= end and fact.year == year:
            assert " ".join(fact.words.split()) in plain, fact.id

    # The year's meetings, trade milestones and anniversaries, from anywhere in the base.
    for fact in knowledge.facts:
        if fact.kind in ("meeting", "trade", "anniversary") and fact.year == year:
            assert " ".join(fact.text.split()) in plain, f"{fact.id} missing from the {year} digest"

    # What lies ahead: the exchange's facts dated after it, under that heading.
    ahead = [f for f in linked(knowledge, exchange) if partial_date_bounds(f.date)[0] > end]
    if ahead:
        section = plain[plain.index("What lies ahead") :]
        for fact in ahead:
            assert " ".join(fact.text.split()) in section, fact.id

    # Sources: every article any listed fact cites.
    sources = plain[plain.index("\nSources\n") :]
    for fact_id in composed.fact_ids():
        for source in knowledge.by_id[fact_id].sources:
            article = knowledge.articles[source.article]
            assert article.title in sources and article.outlet in sources
    assert len(composed.fact_ids()) == len(set(composed.fact_ids())), "a fact is listed twice"


def test_some_digest_looks_ahead(knowledge):
    assert any(digest.compose(knowledge, y).section("ahead") for y in exchange_years(knowledge))


def test_default_is_the_latest_exchange(knowledge):
    assert digest.compose(knowledge).year == max(exchange_years(knowledge))
    assert digest.latest_year(knowledge) == max(exchange_years(knowledge))


def test_a_year_without_exchange_is_stated_plainly_with_the_years_that_have_one(knowledge):
    years = exchange_years(knowledge)
    missing = next(y for y in range(years[0], years[-1] + 2) if y not in years)
    composed = digest.compose(knowledge, missing)
    assert not composed.found and composed.sections == ()
    plain = digest.render_plain(composed)
    assert f"no New Year exchange dated {missing}" in plain
    assert all(str(y) in plain for y in years)
    assert len(digest.render_parts(composed)) == 1


def test_every_line_is_well_formed_html_so_the_digest_splits_at_any_line(knowledge):
    for year in exchange_years(knowledge):
        html = digest.render_html(digest.compose(knowledge, year))
        for line in html.splitlines():
            for tag in ("b", "i", "blockquote"):
                assert line.count(f"<{tag}>") == line.count(f"</{tag}>"), line
        parts = digest.render_parts(digest.compose(knowledge, year), limit=1000)
        assert len(parts) > 1 and all(visible_length(p) <= 1000 for p in parts)
        assert " ".join(visible_text("\n".join(parts)).split()) == " ".join(visible_text(html).split())
        assert all(
            visible_length(p) <= MAX_MESSAGE_LENGTH for p in digest.render_parts(digest.compose(knowledge, year))
        )


def test_text_from_the_facts_is_escaped(knowledge):
    year = max(exchange_years(knowledge))
    exchange = exchange_of(knowledge, year)
    quote = message_quotes(knowledge, exchange)[0]
    tricky = quote.model_copy(update={"words": "a <b>bold</b> & <script>"})
    facts = tuple(tricky if f.id == quote.id else f for f in knowledge.facts)
    edited = Knowledge(facts, {f.id: f for f in facts}, knowledge.entities, knowledge.articles)
    composed = digest.compose(edited, year)
    assert "a &lt;b&gt;bold&lt;/b&gt; &amp; &lt;script&gt;" in digest.render_html(composed)
    assert "> a <b>bold</b> & <script>" in digest.render_plain(composed)


def test_a_maintainers_edit_shows_up_in_the_next_digest(knowledge, tmp_path):
    """Edit knowledge/*.yaml as a maintainer would (text, and a fact moved to another exchange); reload."""
    shutil.copytree(ROOT / "knowledge", tmp_path / "knowledge")
    year = max(exchange_years(knowledge))
    meeting = next(f for f in knowledge.facts if f.kind in ("meeting", "trade", "anniversary") and f.year == year)
    path = next(p for p in (tmp_path / "knowledge").glob("*.yaml") if f"id: {meeting.id}\n" in p.read_text())
    source = path.read_text()
    start = source.index(f"id: {meeting.id}\n")
    block_end = source.find("\n  - id:", start)
    block = source[start : block_end if block_end > 0 else len(source)]
    new_block = re.sub(
        r"\n    text: (>-\n(?:      .*\n)+|.*\n)", "\n    text: A corrected summary written by the maintainer.\n", block
    )
    assert new_block != block
    path.write_text(source.replace(block, new_block))

    edited = load_knowledge(tmp_path / "knowledge", ROOT / "corpus")
    plain = digest.render_plain(digest.compose(edited, year))
    assert "A corrected summary written by the maintainer." in plain
    assert " ".join(meeting.text.split()) not in plain


def test_digest_command_prints_the_plain_digest(knowledge, capsys, monkeypatch):
    monkeypatch.delenv("BOT_KNOWLEDGE_DIR", raising=False)
    year = min(exchange_years(knowledge))
    assert cli_main(["digest", str(year)]) == 0
    out = capsys.readouterr().out
    assert out.strip() == digest.render_plain(digest.compose(knowledge, year)).strip()
    assert "<b>" not in out and "&amp;" not in out

    assert cli_main(["digest"]) == 0
    assert capsys.readouterr().out.splitlines()[0] == exchange_of(knowledge, max(exchange_years(knowledge))).title

    assert cli_main(["digest", "1999"]) == 1  # nothing to show: status 1, the message on stderr
    assert "no New Year exchange dated 1999" in capsys.readouterr().err


def test_year_for_a_scheduled_run(knowledge):
    years = exchange_years(knowledge)
    tz = dt.timezone(dt.timedelta(hours=3))
    for year in years:
        run = dt.datetime(year + 1, 1, 1, 10, tzinfo=tz)
        assert digest.year_for_run(knowledge, run, tz) == year
    gap = next((y for y in range(years[0], years[-1]) if y not in years), None)
    if gap is not None:
        assert digest.year_for_run(knowledge, dt.datetime(gap + 1, 1, 1, 10, tzinfo=tz), tz) is None
