"""Russian typed in Latin letters ("kogda putin byl v pekine"), read as the Russian it stands for.

This module owns deciding whether a question is Russian in Latin letters and rewriting it in Cyrillic, so the
rest of matching reads it like any Russian question. It leans on libraries rather than hand tables: cyrtranslit
transliterates, pymorphy3's dictionary says whether a result is a Russian word, and wordfreq's frequencies keep
English words English and pick the commonest reading ("visit" is not "висит"). A handful of spelling habits that
the library does not know (j for й/я, cz for ц, a dropped soft sign) are tried as variants, and a variant is
kept only when the dictionary knows the word it makes.
Pure: no I/O beyond the libraries' bundled data, loaded once on first use.
May import: nothing of the bot.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable

import cyrtranslit

# A word this frequent in English (Zipf scale: 3 is about once per million words) is taken as English.
ENGLISH_ZIPF = 3.0
# A question is read as Russian when at least this many of its longer Latin words are Russian words, and at
# least half of them: "xi putin kazan" stays English, "kto posol rossii v kitae" does not.
MIN_RUSSIAN_WORDS = 2
MIN_WORD_LENGTH = 4  # shorter words ("on", "to", "no", "pro") read as both languages

_LATIN_WORD = re.compile(r"[A-Za-z]+")
_CYRILLIC_ONLY = re.compile(r"[а-яё]+")
# Habits of informal transliteration that cyrtranslit (which reads j as ж) does not expect, tried in turn.
# cyrtranslit reads y as и: ы is tried too, and the commonest Russian word among the results wins.
_SPELLINGS: tuple[tuple[str, str], ...] = (("j", "y"), ("cz", "ts"), ("x", "ks"), ("w", "sh"), ("h", "kh"), ("y", "ы"))
_SOFT_SIGN_BEFORE = re.compile(r"(?<=[лнтсдрзвм])(?=[кнмтс]|$)")


@functools.cache
def _morph() -> Callable[[str], bool]:
    import pymorphy3  # loaded on first use: its dictionary takes a moment and some memory

    word_is_known: Callable[[str], bool] = pymorphy3.MorphAnalyzer().word_is_known  # pymorphy3 ships no types
    return word_is_known


@functools.cache
def _zipf() -> Callable[[str, str], float]:
    from wordfreq import zipf_frequency

    return zipf_frequency


@functools.lru_cache(maxsize=65536)
def russian_word(word: str) -> str | None:
    """The Russian word a Latin-letter word most likely spells (the commonest the dictionary knows), or None."""
    low = word.lower()
    known = _morph()
    variants = [low]
    for old, new in _SPELLINGS:
        variants += [v.replace(old, new) for v in variants if old in v]
    candidates: list[str] = []
    for variant in variants:
        cyrillic = cyrtranslit.to_cyrillic(variant, "ru")
        if not _CYRILLIC_ONLY.fullmatch(cyrillic):
            continue
        candidates.append(cyrillic)
        # Informal spelling often drops the soft sign ("skolko", "vstrechalis").
        candidates += [
            cyrillic[: m.start()] + "ь" + cyrillic[m.start() :] for m in _SOFT_SIGN_BEFORE.finditer(cyrillic)
        ]
    found = [c for c in dict.fromkeys(candidates) if known(c)]
    if not found:
        return None
    frequency = _zipf()
    return max(found, key=lambda c: frequency(c, "ru"))  # "byl": был, not бил


def load() -> None:
    """Load the dictionaries now (about 0.3 s, once per process), so no question waits for them."""
    _morph()("когда")
    _zipf()("when", "en")
    _zipf()("когда", "ru")


def _is_english(word: str) -> bool:
    return _zipf()(word.lower(), "en") >= ENGLISH_ZIPF


def is_russian_in_latin(question: str) -> bool:
    """Whether the question is Russian typed in Latin letters (most of its longer words are Russian words)."""
    if not question.isascii():  # already has Cyrillic (or other) letters: nothing to do
        return False
    words = [w for w in _LATIN_WORD.findall(question) if len(w) >= MIN_WORD_LENGTH]
    if len(words) < MIN_RUSSIAN_WORDS:
        return False
    russian = sum(1 for w in words if not _is_english(w) and russian_word(w) is not None)
    return russian >= MIN_RUSSIAN_WORDS and 2 * russian >= len(words)


def to_cyrillic(question: str) -> str:
    """The question with every Latin word that spells a Russian word (or a short one) written in Cyrillic.

    Words that spell nothing Russian and are common in English (names like "Putin" often are) stay as typed,
    so aliases in Latin letters still find them.
    """

    def word(match: re.Match[str]) -> str:
        w = match.group(0)
        found = russian_word(w)
        if found is not None and (len(w) < MIN_WORD_LENGTH or not _is_english(w)):
            return found
        if found is None and len(w) < MIN_WORD_LENGTH:  # "si", "v", "s": prepositions and short names
            short = cyrtranslit.to_cyrillic(w.lower(), "ru")
            return short if _CYRILLIC_ONLY.fullmatch(short) else w
        return w

    return _LATIN_WORD.sub(word, question)


def read_as_russian(question: str) -> str:
    """The question to match: rewritten in Cyrillic when it is Russian in Latin letters, else as it is."""
    return to_cyrillic(question) if is_russian_in_latin(question) else question
