"""Telegram limits: HTML splitting (visible length, well-formed parts), paging, callback_data and inline ids."""

from __future__ import annotations

import html
from html.parser import HTMLParser

import pytest

from bot.presentation.telegram_text import (
    MAX_CALLBACK_DATA,
    MAX_MESSAGE_LENGTH,
    Callback,
    button_text,
    example_callback,
    fact_callback,
    inline_result_id,
    paginate,
    parse_callback,
    quote_callback,
    split_html,
    utf16_len,
    visible_length,
    visible_text,
    year_callback,
)


class _Balance(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.errors: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.stack.append(tag)

    def handle_endtag(self, tag):
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"unexpected </{tag}> with open {self.stack}")
        else:
            self.stack.pop()


def assert_well_formed(markup: str) -> None:
    checker = _Balance()
    checker.feed(markup)
    checker.close()
    assert not checker.errors, checker.errors
    assert not checker.stack, f"unclosed tags {checker.stack} in {markup[-200:]!r}"


def words_of(parts: list[str]) -> list[str]:
    return " ".join(visible_text(p) for p in parts).split()


def test_short_message_is_one_unchanged_part():
    text = "<b>Title</b>\nSome &amp; text\n<i>Source: RT, 25 January 2022</i>"
    assert split_html(text) == [text]


def test_long_message_splits_at_line_boundaries_under_the_limit():
    lines = [f"{i}. <b>Fact number {i}</b> — some text about &lt;trade&gt; in {2000 + i % 25}" for i in range(400)]
    markup = "\n".join(lines)
    assert visible_length(markup) > 3 * MAX_MESSAGE_LENGTH
    parts = split_html(markup)
    assert len(parts) >= 4
    for part in parts:
        assert 0 < visible_length(part) <= MAX_MESSAGE_LENGTH
        assert_well_formed(part)
        # every part starts at the beginning of a line of the original and ends at the end of one
        first, last = part.split("\n")[0], part.split("\n")[-1]
        assert first in lines and last in lines
    assert words_of(parts) == visible_text(markup).split()


def test_a_tag_open_across_a_cut_is_closed_and_reopened():
    quote = "\n".join(f"line {i} of a long quotation" for i in range(300))
    markup = f"<b>Speaker</b>:\n<blockquote>{quote}</blockquote>\n<i>occasion</i>"
    parts = split_html(markup, limit=1000)
    assert len(parts) > 3
    for part in parts:
        assert visible_length(part) <= 1000
        assert_well_formed(part)
    assert all("<blockquote>" in p for p in parts[1:-1])
    assert parts[-1].endswith("<i>occasion</i>")
    assert words_of(parts) == visible_text(markup).split()


def test_length_is_counted_after_entity_parsing():
    # 4,000 ampersands are 20,000 characters of HTML but 4,000 visible characters: one message
    markup = "&amp;" * 4000
    assert split_html(markup) == [markup]
    # and an entity is never cut in half
    parts = split_html("&amp;" * 5000)
    assert len(parts) == 2
    assert all(html.unescape(p) == "&" * visible_length(p) for p in parts)
    assert sum(visible_length(p) for p in parts) == 5000


def test_emoji_outside_the_bmp_count_two():
    assert utf16_len("🇨🇳") == 4
    markup = "🐼" * 3000  # 6,000 UTF-16 units
    parts = split_html(markup)
    assert len(parts) == 2
    assert all(utf16_len(p) <= MAX_MESSAGE_LENGTH for p in parts)
    assert "".join(parts) == markup


def test_a_line_longer_than_the_limit_is_cut_at_spaces_then_characters():
    words = " ".join(["word"] * 2000)
    parts = split_html(f"<b>{words}</b>")
    assert all(visible_length(p) <= MAX_MESSAGE_LENGTH for p in parts)
    assert all(p.startswith("<b>") and p.endswith("</b>") for p in parts)
    assert words_of(parts) == ["word"] * 2000
    unbroken = "x" * 10000
    parts = split_html(unbroken)
    assert [visible_length(p) for p in parts] == [4096, 4096, 1808]


def test_whitespace_only_gives_no_parts():
    assert split_html("   \n\n  ") == []
    assert split_html("<b> </b>") == []


def test_blank_lines_at_a_cut_do_not_start_the_next_part():
    markup = "a" * 10 + "\n\n\n" + "b" * 10
    assert split_html(markup, limit=12) == ["a" * 10, "b" * 10]


def test_paginate_keeps_blocks_whole_and_caps_blocks_per_page():
    blocks = [f"{i}. <b>fact {i}</b>\n" + "text " * 50 for i in range(1, 21)]
    pages = paginate(blocks, per_page=6, header="<b>2024</b>")
    assert len(pages) == 4
    for page in pages:
        assert page.startswith("<b>2024</b>\n\n")
        assert visible_length(page) <= MAX_MESSAGE_LENGTH
        assert_well_formed(page)
    assert [p.count("<b>fact") for p in pages] == [6, 6, 6, 2]
    small = paginate(blocks, limit=700)
    assert all(visible_length(p) <= 700 for p in small)
    assert sum(p.count("<b>fact") for p in small) == 20


def test_fact_callback_uses_the_id_and_falls_back_to_the_position():
    assert fact_callback("putin-beijing-2022-02", 7) == "f:putin-beijing-2022-02"
    long_id = "-".join(["word"] * 15)
    data = fact_callback(long_id, 12)
    assert data == "i:12"
    assert parse_callback("f:putin-beijing-2022-02") == Callback("fact", fact_id="putin-beijing-2022-02")
    assert parse_callback(data) == Callback("fact", position=12)


@pytest.mark.parametrize(
    "data",
    [
        year_callback(2024, 2),
        quote_callback("xi-quote-2024"),
        quote_callback(),
        example_callback(1),
        fact_callback("a" * 62, 0),
        fact_callback("a" * 63, 3),
    ],
)
def test_every_callback_we_make_fits_64_bytes_and_parses(data):
    assert len(data.encode()) <= MAX_CALLBACK_DATA
    assert parse_callback(data) is not None


def test_year_and_quote_callbacks_round_trip():
    assert parse_callback(year_callback(2024, 2)) == Callback("year", year=2024, page=2)
    assert parse_callback(quote_callback("xi-2024")) == Callback("quote", fact_id="xi-2024")
    assert parse_callback(quote_callback("x" * 80)) == Callback("quote")
    assert parse_callback(example_callback(2)) == Callback("example", position=2)


@pytest.mark.parametrize(
    "forged",
    [None, "", "x", "f:", "f:../../etc", "f:Bad_ID", "y:abc:1", "y:2024", "y:20245:1", "i:-1", "i:1e3",
     "f:" + "a" * 70, "\x00", "zz:1", "q:<script>", "e:", "e:1:2", "y:2024:-1", "💥:1"],
)  # fmt: skip
def test_forged_callback_data_is_rejected_without_raising(forged):
    assert parse_callback(forged) is None


def test_inline_result_id_and_button_text():
    assert inline_result_id("xi-2024", 3) == "xi-2024"
    assert inline_result_id("a" * 65, 3) == "3"
    assert button_text("short") == "short"
    label = button_text("a very long title " * 10)
    assert len(label) <= 64 and label.endswith("…")
