"""Tests of bot.knowledge.facts: every validation rule against a small fixture broken in exactly one place, checking the
message a maintainer reads and the line it points at; plus the Knowledge helpers, the fingerprint, the
schema file and the shipped knowledge itself."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest
import yaml
from knowledge_fixtures import (
    EXCHANGES_YAML,
    KNOWLEDGE,
    PROJECT_ROOT,
    TRADE_YAML,
    article_file,
    copy_shipped,
    edited,
    line_of,
    write_project,
)

from bot.knowledge.facts import (
    Knowledge,
    KnowledgeError,
    Problem,
    check_knowledge,
    knowledge_fingerprint,
    load_knowledge,
    parse_yaml,
    schema_text,
)
from bot.knowledge.model import Fact

EX, TR, AL = "exchanges.yaml", "trade.yaml", "aliases.yaml"


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Problems show paths relative to the current directory: run inside tmp_path so they read knowledge/...
    monkeypatch.chdir(tmp_path)


def problems_of(tmp_path: Path, files: dict[str, str] | None = None) -> list[Problem]:
    knowledge, problems = check_knowledge(*write_project(tmp_path, files))
    assert (knowledge is None) == bool(problems)
    return problems


def only_problem(tmp_path: Path, files: dict[str, str]) -> Problem:
    problems = problems_of(tmp_path, files)
    assert len(problems) == 1, "expected one problem, got:\n" + "\n".join(map(str, problems))
    return problems[0]


def shown(problem: Problem) -> str:
    return str(problem)


# --- the fixture and the Knowledge it loads -----------------------------------------------------------


def test_fixture_is_valid_and_loads_in_file_order(tmp_path: Path) -> None:
    knowledge = load_knowledge(*write_project(tmp_path))
    assert [f.id for f in knowledge.facts] == ["exchange-2023", "foundation-quote-2023", "record-trade-2024"]
    assert sorted(knowledge.entities) == ["beta-news", "capital-a", "leader-a", "leader-b"]
    assert sorted(knowledge.articles) == ["alpha-2023", "beta-2024"]
    assert knowledge.by_id["record-trade-2024"].sources[0].article == "beta-2024"


def test_knowledge_helpers(tmp_path: Path) -> None:
    knowledge = load_knowledge(*write_project(tmp_path))
    quote = knowledge.by_id["foundation-quote-2023"]
    assert knowledge.article(quote).id == "alpha-2023"
    assert [f.id for f in knowledge.exchange_facts()] == ["exchange-2023"]
    assert knowledge.entity("leader-a").name == "Leader A"
    with pytest.raises(KeyError):
        knowledge.entity("nobody")
    assert [f.id for f in knowledge.facts_of_kind("quote")] == ["foundation-quote-2023"]
    assert [f.id for f in knowledge.facts_in_year(2024)] == ["record-trade-2024"]
    assert [f.id for f in knowledge.facts_of_exchange("exchange-2023")] == ["foundation-quote-2023"]
    with pytest.raises(TypeError):
        knowledge.by_id["x"] = quote  # type: ignore[index]


def test_exchange_facts_are_sorted_by_date_across_files(tmp_path: Path) -> None:
    later = EXCHANGES_YAML.replace("exchange-2023", "exchange-2025").replace('"2023-12-31"', '"2025-12"', 1)
    files = {**KNOWLEDGE, "a-later.yaml": later.replace("foundation-quote-2023", "foundation-quote-2025")}
    knowledge = load_knowledge(*write_project(tmp_path, files))
    assert [f.id for f in knowledge.facts][:2] == ["exchange-2025", "foundation-quote-2025"]  # a-later.yaml first
    assert [f.date for f in knowledge.exchange_facts()] == ["2023-12-31", "2025-12"]


def test_entities_may_live_in_any_file(tmp_path: Path) -> None:
    files = edited(TR, "facts:\n", "entities:\n  - {id: capital-b, type: place, name: Capital B}\nfacts:\n")
    files = edited(TR, "places: [capital-a]", "places: [capital-a, capital-b]", files)
    assert "capital-b" in load_knowledge(*write_project(tmp_path, files)).entities


def test_load_knowledge_raises_with_every_problem(tmp_path: Path) -> None:
    files = edited(TR, 'date: "2024"', 'date: "2024-13"')
    files = edited(EX, "speaker: leader-a", "speaker: leader-z", files)
    with pytest.raises(KnowledgeError) as caught:
        load_knowledge(*write_project(tmp_path, files))
    assert [(p.path.name, p.fact_id) for p in caught.value.problems] == [
        (EX, "foundation-quote-2023"),
        (TR, "record-trade-2024"),
    ]
    assert "2 problem(s)" in str(caught.value)


def test_problem_path_is_relative_inside_the_current_directory_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    problem = Problem(tmp_path / "knowledge" / "quotes.yaml", 42, 5, "some-fact", "what to do")
    assert str(problem) == "knowledge/quotes.yaml:42:5: some-fact: what to do"
    monkeypatch.chdir(tmp_path / "..")
    assert str(problem) == f"{tmp_path.name}/knowledge/quotes.yaml:42:5: some-fact: what to do"
    assert str(Problem(Path("/elsewhere/x.yaml"), 1, 2, None, "m")) == "/elsewhere/x.yaml:1:2: -: m"


# --- YAML reading ---------------------------------------------------------------------------------------


def test_yaml_syntax_error_points_at_the_line_and_column(tmp_path: Path) -> None:
    files = edited(TR, "title: Record trade in 2024", "title: Record trade: 2024")
    problem = only_problem(tmp_path, files)
    line = line_of(files[TR], "title: Record trade: 2024")
    col = files[TR].splitlines()[line - 1].index(": 2024") + 1
    assert shown(problem) == (
        f"knowledge/trade.yaml:{line}:{col}: -: YAML syntax error: mapping values are not allowed in this "
        "context: fix the indentation or quoting here"
    )


def test_yaml_syntax_error_of_an_unclosed_list_names_where_it_opened(tmp_path: Path) -> None:
    files = edited(TR, "places: [capital-a]", "places: [capital-a")
    problem = only_problem(tmp_path, files)
    assert problem.path.name == TR
    assert problem.line == line_of(files[TR], "reported_by:")
    assert f"at line {line_of(files[TR], 'places:')}" in problem.message


def test_duplicate_key_is_reported_at_the_second_key(tmp_path: Path) -> None:
    files = edited(TR, '    date: "2024"\n', '    date: "2024"\n    title: Another title\n')
    problem = only_problem(tmp_path, files)
    first, second = line_of(files[TR], "title:"), line_of(files[TR], "title:", 2)
    assert shown(problem) == (
        f"knowledge/trade.yaml:{second}:5: record-trade-2024: duplicate key 'title' (first at line {first}): "
        "YAML would silently keep only the last one; remove or rename one of them"
    )


def test_python_tags_are_refused_not_executed(tmp_path: Path) -> None:
    files = edited(TR, "title: Record trade in 2024", "title: !!python/object/apply:os.getcwd []")
    problem = only_problem(tmp_path, files)
    assert problem.line == line_of(files[TR], "!!python")
    assert problem.col == 12
    assert problem.message == (
        "unsupported YAML tag !!python/object/apply:os.getcwd: knowledge files hold plain text, lists and mappings "
        "only; remove the tag"
    )


def test_more_than_one_yaml_document_is_refused(tmp_path: Path) -> None:
    files = {**KNOWLEDGE, TR: TRADE_YAML + "---\nfacts: []\n"}
    problem = only_problem(tmp_path, files)
    assert (problem.line, problem.message.split(":")[0]) == (
        line_of(files[TR], "---"),
        "a knowledge file holds one YAML document",
    )


def test_merge_keys_are_refused(tmp_path: Path) -> None:
    files = edited(TR, "    kind: trade\n", "    kind: trade\n    <<: {keywords: [x]}\n")
    problem = only_problem(tmp_path, files)
    assert problem.line == line_of(files[TR], "<<:")
    assert problem.message.startswith("merge keys (<<) are not supported")


def test_an_alias_that_contains_itself_is_refused(tmp_path: Path) -> None:
    files = edited(TR, "    keywords: [trade, record]\n", "    keywords: &loop [trade, *loop]\n")
    problem = only_problem(tmp_path, files)
    assert (problem.line, problem.fact_id) == (line_of(files[TR], "&loop"), "record-trade-2024")
    assert problem.message == "an alias refers to a value that contains it: write the value out instead"


def test_yml_files_are_flagged_not_silently_ignored(tmp_path: Path) -> None:
    problem = only_problem(tmp_path, {**KNOWLEDGE, "extra.yml": "facts: []\n"})
    assert shown(problem) == "knowledge/extra.yml:1:1: -: ignored: knowledge files must end in .yaml; rename it"


# --- the fact model, with messages for humans -------------------------------------------------------------


def test_missing_id_points_at_the_fact(tmp_path: Path) -> None:
    files = edited(TR, "  - id: record-trade-2024\n    kind: trade\n", "  - kind: trade\n")
    problem = only_problem(tmp_path, files)
    assert shown(problem) == (
        f"knowledge/trade.yaml:{line_of(files[TR], '- kind: trade')}:5: -: missing required field 'id': add `id:` "
        "(Stable, unique, human-readable id, e.g. putin-beijing-2022-02.)"
    )


def test_missing_nested_field_names_the_source(tmp_path: Path) -> None:
    files = edited(TR, "        excerpt: Trade between the two countries reached a record high,\n", "")
    problem = only_problem(tmp_path, files)
    assert (problem.line, problem.col) == (line_of(files[TR], "- article: beta-2024"), 9)
    assert problem.message.startswith("missing required field 'sources[0].excerpt': add `excerpt:`")


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (
            'date: "2024"',
            'date: "2024-13"',
            "date '2024-13' is not a real date (month must be in 1..12): use YYYY, YYYY-MM or YYYY-MM-DD with a "
            "real month and day",
        ),
        (
            'date: "2024"',
            'date: "2024-02-30"',
            "date '2024-02-30' is not a real date (day is out of range for month): use YYYY, YYYY-MM or "
            "YYYY-MM-DD with a real month and day",
        ),
        (
            'date: "2024"',
            'date: "31/12/2024"',
            "date '31/12/2024' is not YYYY, YYYY-MM or YYYY-MM-DD: write it like date: '2023-12-31' (quoted)",
        ),
        (
            'date: "2024"',
            "date: 2024-12-31",
            "date 2024-12-31 was read by YAML as a date, not text: quote it, e.g. date: '2024-12-31'",
        ),
        ('date: "2024"', "date: 2024", "date must be text, not a number: quote it, e.g. date: '2024'"),
        (
            'date: "2024"',
            "date: 2024-02-30",
            "'2024-02-30' cannot be read (day is out of range for month): if it is a date, fix it and quote it",
        ),
    ],
)
def test_bad_dates(tmp_path: Path, old: str, new: str, message: str) -> None:
    files = edited(TR, old, new)
    problem = only_problem(tmp_path, files)
    assert (problem.path.name, problem.line, problem.fact_id, problem.message) == (
        TR,
        line_of(files[TR], new),
        "record-trade-2024",
        message,
    )
    assert problem.col == (5 if "cannot be read" not in message else 11)  # the key; YAML's own: the value


def test_unknown_kind_suggests_the_closest(tmp_path: Path) -> None:
    files = edited(TR, "kind: trade", "kind: trades")
    assert shown(only_problem(tmp_path, files)) == (
        f"knowledge/trade.yaml:{line_of(files[TR], 'kind:')}:5: record-trade-2024: kind 'trades' is not one of "
        "exchange, meeting, anniversary, trade, quote, statement, context (did you mean 'trade'?): use one of them"
    )


def test_unknown_field_suggests_the_closest(tmp_path: Path) -> None:
    files = edited(TR, "keywords: [trade, record]", "keyword: [trade, record]")
    problem = only_problem(tmp_path, files)
    assert (problem.line, problem.col) == (line_of(files[TR], "keyword:"), 5)
    assert problem.message.startswith(
        "unknown field 'keyword' (did you mean 'keywords'?): remove it or fix its name (allowed: id, kind, title,"
    )


def test_unknown_field_in_a_source_lists_the_source_fields(tmp_path: Path) -> None:
    files = edited(TR, "      - article: beta-2024\n", "      - article: beta-2024\n        page: 3\n")
    problem = only_problem(tmp_path, files)
    assert (problem.line, problem.col) == (line_of(files[TR], "page: 3"), 9)
    assert problem.message == "unknown field 'page': remove it or fix its name (allowed: article, excerpt)"


def test_unknown_top_level_key(tmp_path: Path) -> None:
    files = {**KNOWLEDGE, TR: TRADE_YAML.replace("facts:", "fact:")}
    problems = problems_of(tmp_path, files)
    assert shown(problems[-1]).startswith(
        f"knowledge/trade.yaml:{line_of(files[TR], 'fact:')}:1: -: unknown field 'fact' (did you mean 'facts'?)"
    )


def test_a_fact_that_is_not_a_mapping(tmp_path: Path) -> None:
    files = {**KNOWLEDGE, TR: "facts:\n  - just a sentence\n"}
    assert shown(only_problem(tmp_path, files)) == (
        "knowledge/trade.yaml:2:5: -: this fact must be a mapping of fields (name: value), not text"
    )


def test_bad_id_pattern(tmp_path: Path) -> None:
    files = edited(TR, "id: record-trade-2024", "id: Record_Trade")
    assert only_problem(tmp_path, files).message == (
        "id 'Record_Trade' must be lowercase letters and digits joined by single hyphens (e.g. putin-beijing-2022-02): "
        "rename it"
    )


def test_list_field_given_as_text(tmp_path: Path) -> None:
    files = edited(TR, "places: [capital-a]", "places: capital-a")
    problem = only_problem(tmp_path, files)
    assert problem.message == "places must be a list, not text: write `places: [capital-a]` or one '- item' per line"


def test_questions_must_not_be_empty(tmp_path: Path) -> None:
    files = edited(
        TR, "    questions:\n      - How much was trade in 2024?\n      - Сколько составила торговля?\n", ""
    ).copy()
    files[TR] = files[TR].replace("    keywords:", "    questions: []\n    keywords:")
    problem = only_problem(tmp_path, files)
    assert problem.line == line_of(files[TR], "questions: []")
    assert problem.message.startswith("questions is empty: add at least 1 item (Ways a user might ask")


def test_empty_excerpt(tmp_path: Path) -> None:
    files = edited(TR, "excerpt: Trade between the two countries reached a record high,", 'excerpt: ""')
    problem = only_problem(tmp_path, files)
    assert (problem.line, problem.col) == (line_of(files[TR], "excerpt:"), 9)
    assert problem.message.startswith("sources[0].excerpt is empty: write it out (Words copied verbatim")


def test_quote_needs_speaker_words_and_occasion(tmp_path: Path) -> None:
    files = edited(EX, "    speaker: leader-a\n", "")
    files = edited(EX, "    occasion: New Year greetings, end of 2023\n", "", files)
    problem = only_problem(tmp_path, files)
    assert (problem.line, problem.col) == (line_of(files[EX], "id: foundation-quote-2023"), 5)
    assert problem.message == (
        "a quote needs speaker, occasion: add `speaker:` (Quotes: entity id of who said it.); `occasion:` "
        "(Quotes: the occasion, e.g. 'New Year greetings, end of 2024'.)"
    )


def test_quote_rules_are_reported_with_field_errors_in_one_run(tmp_path: Path) -> None:
    files = edited(EX, '    words: "The foundation of our relationship has become stronger."\n', "")
    quote_date = 'date: "2023-12-31"\n    date_certainty: inferred\n    date_note: Said'
    files = edited(EX, quote_date, quote_date.replace("2023-12-31", "2023-12-32"), files)
    messages = [p.message.split(":")[0] for p in problems_of(tmp_path, files)]
    assert messages == ["a quote needs words", "date '2023-12-32' is not a real date (day is out of range for month)"]


def test_date_note_is_needed_unless_exact(tmp_path: Path) -> None:
    files = edited(EX, "    date_note: The article says Sunday; the Sunday at the end of 2023 was 31 December.\n", "")
    assert shown(only_problem(tmp_path, files)) == (
        f"knowledge/exchanges.yaml:{line_of(files[EX], 'date_certainty: inferred')}:5: exchange-2023: "
        "date_certainty is inferred: add a date_note saying how the date was derived"
    )


def test_text_too_short_and_title_too_long(tmp_path: Path) -> None:
    files = edited(TR, "title: Record trade in 2024", "title: " + "Record trade " * 6)
    files = edited(
        TR, "text: Trade between the two countries reached a record high, officials said.", "text: Trade.", files
    )
    first, second = problems_of(tmp_path, files)
    assert first.message == "title is too long (77 characters, at most 60): shorten it"
    assert second.message.startswith("text is too short (at least 10 characters): write it out")
    assert (first.line, second.line) == (line_of(files[TR], "title:"), line_of(files[TR], "text:"))


# --- across facts and files -------------------------------------------------------------------------------


def test_duplicate_fact_id_points_at_the_second_and_names_the_first(tmp_path: Path) -> None:
    files = edited(TR, "id: record-trade-2024", "id: exchange-2023")
    assert shown(only_problem(tmp_path, files)) == (
        f"knowledge/trade.yaml:{line_of(files[TR], 'id: exchange-2023')}:5: exchange-2023: duplicate fact id "
        f"'exchange-2023': the first is at knowledge/exchanges.yaml:{line_of(EXCHANGES_YAML, 'id: exchange-2023')}:5; "
        "give one of them another id"
    )


def test_duplicate_entity_id(tmp_path: Path) -> None:
    files = edited(AL, "id: capital-a", "id: leader-b")
    files = edited(TR, "places: [capital-a]", "places: [leader-b]", files)
    assert shown(only_problem(tmp_path, files)) == (
        f"knowledge/aliases.yaml:{line_of(files[AL], 'id: leader-b', 2)}:5: leader-b: duplicate entity id "
        f"'leader-b': the first is at knowledge/aliases.yaml:{line_of(files[AL], 'id: leader-b')}:5; "
        "give one of them another id"
    )


def test_exchange_must_name_an_existing_fact(tmp_path: Path) -> None:
    files = edited(EX, "exchange: exchange-2023", "exchange: exchange-2032")
    assert shown(only_problem(tmp_path, files)) == (
        f"knowledge/exchanges.yaml:{line_of(files[EX], 'exchange: exchange-2032')}:5: foundation-quote-2023: "
        "exchange 'exchange-2032' is not the id of any fact (did you mean 'exchange-2023'?): use the id of a "
        "kind: exchange fact"
    )


def test_exchange_must_name_an_exchange_fact(tmp_path: Path) -> None:
    files = edited(EX, "exchange: exchange-2023", "exchange: record-trade-2024")
    assert only_problem(tmp_path, files).message == (
        "exchange 'record-trade-2024' is a trade fact, not kind: exchange: use the id of the New Year exchange it "
        "belongs to"
    )


def test_related_must_name_existing_facts(tmp_path: Path) -> None:
    files = edited(EX, "related: [exchange-2023]", "related: [exchange-2023, record-trade-2042]")
    problem = only_problem(tmp_path, files)
    line = line_of(files[EX], "related:")
    assert (problem.line, problem.col) == (line, files[EX].splitlines()[line - 1].index("record-trade-2042") + 1)
    assert problem.message == (
        "related 'record-trade-2042' is not the id of any fact (did you mean 'record-trade-2024'?): fix the id or "
        "remove it"
    )


@pytest.mark.parametrize(
    ("name", "file", "old", "new"),
    [
        ("people", EX, "people: [leader-a, leader-b]", "people: [leader-a, leader-q]"),
        ("places", TR, "places: [capital-a]", "places: [capital-q]"),
        ("topics", TR, "places: [capital-a]", "places: [capital-a]\n    topics: [leader-q]"),
        ("reported_by", TR, "reported_by: [beta-news]", "reported_by: [leader-q]"),
        ("speaker", EX, "speaker: leader-a", "speaker: leader-q"),
    ],
)
def test_entity_references_must_exist(tmp_path: Path, name: str, file: str, old: str, new: str) -> None:
    files = edited(file, old, new)
    problem = only_problem(tmp_path, files)
    ref = re.search(r"(leader|capital)-q", new)[0]  # type: ignore[index]
    line = line_of(files[file], ref)
    assert (problem.path.name, problem.line, problem.col) == (
        file,
        line,
        files[file].splitlines()[line - 1].index(ref if name != "speaker" else name) + 1,
    )
    assert re.fullmatch(
        rf"{name} '{ref}' is not an entity id \(did you mean '[a-z-]+'\?\): use an id from the entities in "
        r"aliases.yaml or add the entity there",
        problem.message,
    )


def test_source_article_must_be_in_the_corpus(tmp_path: Path) -> None:
    files = edited(TR, "article: beta-2024", "article: beta-2025")
    assert shown(only_problem(tmp_path, files)) == (
        f"knowledge/trade.yaml:{line_of(files[TR], 'article: beta-2025')}:9: record-trade-2024: sources[0].article "
        "'beta-2025' is not in the corpus (did you mean 'beta-2024'?): use one of alpha-2023, beta-2024"
    )


def test_excerpt_must_be_verbatim_and_the_message_shows_the_passage(tmp_path: Path) -> None:
    files = edited(
        TR,
        "excerpt: Trade between the two countries reached a record high,",
        "excerpt: Trade between the two countries reached a record level,",
    )
    assert shown(only_problem(tmp_path, files)) == (
        f"knowledge/trade.yaml:{line_of(files[TR], 'excerpt:')}:9: record-trade-2024: sources[0].excerpt is not "
        "verbatim in article 'beta-2024'; the article has `high,` where this has `level,`; closest passage in "
        "'beta-2024': `Trade between the two countries reached a record high,`; copy the words exactly (only "
        "whitespace and typographic quotes/dashes may differ)"
    )


def test_excerpt_may_differ_in_whitespace_and_typographic_marks_only(tmp_path: Path) -> None:
    # The article prints "twice", an em dash, "once" on one line; the excerpt has an ASCII dash and a line break.
    second_source = "      - article: alpha-2023\n        excerpt: >-\n          The two leaders met twice-once in\n"
    assert problems_of(tmp_path, {**KNOWLEDGE, TR: TRADE_YAML + second_source + "          Capital A\n"}) == []
    wrong_case = edited(TR, "excerpt: Trade between", "excerpt: trade between")
    assert "the article has `Trade` where this has `trade`" in only_problem(tmp_path / "2", wrong_case).message


def test_quote_words_must_be_verbatim_in_a_cited_article(tmp_path: Path) -> None:
    files = edited(EX, 'words: "The foundation of our', 'words: "The basis of our')
    problem = only_problem(tmp_path, files)
    assert (problem.line, problem.col, problem.fact_id) == (line_of(files[EX], "words:"), 5, "foundation-quote-2023")
    assert problem.message == (
        "words are not verbatim in article 'alpha-2023'; the article has `\"The foundation` where this has "
        "`The basis`; closest passage in 'alpha-2023': `\"The foundation of our relationship has become "
        'stronger."`; copy the words exactly (only whitespace and typographic quotes/dashes may differ)'
    )


def test_quote_words_may_come_from_any_cited_article(tmp_path: Path) -> None:
    second_source = "      - article: beta-2024\n        excerpt: Beta News reported\n"
    files = {**KNOWLEDGE, EX: EXCHANGES_YAML + second_source}
    files = edited(
        EX, 'words: "The foundation of our relationship has become stronger."', "words: a record high", files
    )
    assert problems_of(tmp_path, files) == []


def test_altered_article_text_is_reported(tmp_path: Path) -> None:
    knowledge, corpus = write_project(tmp_path)
    path = corpus / "alpha-2023.txt"
    path.write_text(path.read_text(encoding="utf-8").replace("Capital B", "Capital C"), encoding="utf-8")
    _, problems = check_knowledge(knowledge, corpus)
    assert [str(p) for p in problems] == [
        f"corpus/alpha-2023.txt:{line_of(path.read_text(encoding='utf-8'), 'sha256:')}:1: -: the article text does "
        "not match its sha256 header: the evidence was altered; restore the text exactly as published (e.g. git "
        "checkout the file) instead of editing it"
    ]


def test_unreadable_article_header_is_reported_with_the_others(tmp_path: Path) -> None:
    knowledge, corpus = write_project(tmp_path)
    (corpus / "broken.txt").write_text("no header here\n", encoding="utf-8")
    (corpus / "copy.txt").write_text(article_file("beta-2024", "Other text.\n"), encoding="utf-8")
    _, problems = check_knowledge(knowledge, corpus)
    assert [(p.path.name, p.line, p.message.split(":")[0]) for p in problems] == [
        ("broken.txt", 1, "expected a '---' header block before the article text"),
        ("copy.txt", 2, "duplicate article id 'beta-2024' (also corpus/beta-2024.txt)"),
    ]
    assert hashlib.sha256(b"Other text.\n").hexdigest() in (corpus / "copy.txt").read_text(encoding="utf-8")


def test_every_problem_in_every_file_is_reported_sorted(tmp_path: Path) -> None:
    files = edited(TR, "kind: trade", "kind: trading")
    files = edited(EX, "speaker: leader-a", "speaker: leader-x", files)
    files = edited(EX, "title: New Year exchange of 2023", "title: [New", files)
    files = edited(AL, "type: outlet", "type: newspaper", files)
    problems = problems_of(tmp_path, files)
    assert [(p.path.name, p.line) for p in problems] == [
        (AL, line_of(files[AL], "type: newspaper")),
        (EX, line_of(files[EX], "date: ")),  # the unclosed flow list is noticed on the next line
        (TR, line_of(files[TR], "kind: trading")),
    ]


def test_missing_folders_and_empty_knowledge(tmp_path: Path) -> None:
    _, problems = check_knowledge(tmp_path / "nowhere", tmp_path / "nothing")
    assert [str(p) for p in problems] == [
        "nothing: -: corpus folder not found: pass --corpus or set corpus_dir",
        "nowhere: -: knowledge folder not found: pass --knowledge or set knowledge_dir",
    ]
    (tmp_path / "empty").mkdir()
    _, problems = check_knowledge(tmp_path / "empty", write_project(tmp_path)[1])
    assert [str(p) for p in problems] == ["empty: -: no *.yaml knowledge files here"]


def test_empty_file_is_allowed(tmp_path: Path) -> None:
    assert problems_of(tmp_path, {**KNOWLEDGE, "notes.yaml": "# nothing yet\n"}) == []


# --- hot-reload fingerprint -------------------------------------------------------------------------------


def test_fingerprint_changes_when_a_file_is_edited_added_or_removed(tmp_path: Path) -> None:
    knowledge, _ = write_project(tmp_path)
    first = knowledge_fingerprint(knowledge)
    assert first == knowledge_fingerprint(knowledge)
    assert [name for name, _, _ in first] == sorted(KNOWLEDGE)
    (knowledge / TR).write_text(TRADE_YAML + "# edited\n", encoding="utf-8")
    edited_ = knowledge_fingerprint(knowledge)
    assert edited_ != first
    (knowledge / "new.yaml").write_text("facts: []\n", encoding="utf-8")
    added = knowledge_fingerprint(knowledge)
    assert added != edited_
    (knowledge / "new.yaml").unlink()
    assert knowledge_fingerprint(knowledge) == edited_
    assert knowledge_fingerprint(tmp_path / "missing") == ()


# --- the schema and the shipped knowledge -------------------------------------------------------------------


def test_schema_json_is_up_to_date() -> None:
    path = PROJECT_ROOT / "knowledge" / "schema.json"
    current = path.read_text(encoding="utf-8") if path.exists() else ""
    assert current == schema_text(), "knowledge/schema.json is out of date: run `python -m bot schema` and commit it"


def test_schema_describes_the_fact_model() -> None:
    schema = yaml.safe_load(schema_text())  # JSON is YAML
    assert schema["$schema"] == "http://json-schema.org/draft-07/schema#"
    assert "python -m bot schema" in schema["description"]
    assert set(schema["$defs"]["Fact"]["properties"]) == set(Fact.model_fields)
    assert schema["$defs"]["Fact"]["additionalProperties"] is False


def test_shipped_knowledge_is_valid() -> None:
    knowledge, problems = check_knowledge(PROJECT_ROOT / "knowledge", PROJECT_ROOT / "corpus")
    assert problems == [], "\n".join(map(str, problems))
    assert isinstance(knowledge, Knowledge)
    assert knowledge.exchange_facts(), "the bot needs at least one New Year exchange fact"
    files = sorted((PROJECT_ROOT / "knowledge").glob("*.yaml"))
    written = [f["id"] for p in files for f in (yaml.safe_load(p.read_text(encoding="utf-8")) or {}).get("facts", [])]
    assert [f.id for f in knowledge.facts] == written


def test_readme_example_fact_is_valid_against_the_shipped_knowledge(tmp_path: Path) -> None:
    readme = (PROJECT_ROOT / "knowledge" / "README.md").read_text(encoding="utf-8")
    example = next(block for block in re.findall(r"```yaml\n(.*?)```", readme, re.S) if block.startswith("facts:"))
    knowledge, corpus = copy_shipped(tmp_path)
    fact_id = yaml.safe_load(example)["facts"][0]["id"]
    (knowledge / "zz-readme.yaml").write_text(example.replace(fact_id, "readme-example-copy"), encoding="utf-8")
    _, problems = check_knowledge(knowledge, corpus)
    assert problems == [], "\n".join(map(str, problems))


MIXED_SCALARS = """\
facts:
  - id: plain
    title: "quoted: text"
    count: 12
    share: 1.5
    flag: yes
    nothing: null
    empty:
    date: "2024-12-31"
    bare_date: 2024-12-31
    text: >-
      folded
      text
    words: |
      kept
      lines
    list: [a, 'b', 3, true]
"""


@pytest.mark.parametrize("name", [p.name for p in sorted((PROJECT_ROOT / "knowledge").glob("*.yaml"))] + ["mixed"])
def test_parsed_yaml_is_what_yaml_safe_load_builds(name: str) -> None:
    text = MIXED_SCALARS if name == "mixed" else (PROJECT_ROOT / "knowledge" / name).read_text(encoding="utf-8")
    doc = parse_yaml(text)
    assert doc.data == yaml.safe_load(text)
    assert not doc.problems
