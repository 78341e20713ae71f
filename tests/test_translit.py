"""Russian typed in Latin letters (`bot.matching.translit`) is read as the Russian it stands for."""

from __future__ import annotations

import datetime

import pytest

from bot.matching import translit
from bot.matching.matcher import Index, answer

TODAY = datetime.date(2026, 6, 1)


@pytest.mark.parametrize(
    ("typed", "words"),
    [
        ("kogda putin byl v pekine", ["когда", "был", "в", "пекине"]),
        ("skolko sostavil tovarooborot rossii i kitaja", ["сколько", "составил", "товарооборот", "китая"]),
        ("kto posol rossii v kitae", ["кто", "посол", "россии", "китае"]),
    ],
)
def test_russian_in_latin_letters_is_rewritten_in_cyrillic(typed: str, words: list[str]) -> None:
    assert translit.is_russian_in_latin(typed)
    rewritten = translit.to_cyrillic(typed).split()
    for word in words:
        assert word in rewritten, f"{typed!r} -> {rewritten}"


@pytest.mark.parametrize(
    "question",
    [
        "when did putin visit beijing",
        "xi putin kazan",  # two names a Russian dictionary also knows are not a Russian sentence
        "what did the chinese foreign ministry say about the visit",
        "china russia trade 2023",
        "Когда Путин был в Пекине?",  # already Cyrillic
    ],
)
def test_english_and_cyrillic_questions_are_left_as_typed(question: str) -> None:
    assert translit.read_as_russian(question) == question


def test_a_question_in_latin_letters_gets_the_answer_of_its_cyrillic_form(index: Index) -> None:
    typed = answer(index, "kogda putin ezdil v pekin posle pereizbraniya", TODAY)
    cyrillic = answer(index, "когда путин ездил в пекин после переизбрания", TODAY)
    assert typed.answered and cyrillic.answered
    assert [f.id for f in typed.facts] == [f.id for f in cyrillic.facts]
    assert typed.question == "kogda putin ezdil v pekin posle pereizbraniya"  # the reply quotes what was typed
