"""Reading fact texts into units, the words the index is made of, for `bot.matching.matcher`.

This module owns how a fact's phrasings and text become units: tokens stemmed (`bot.matching.textnorm`), stopwords
dropped, years as '%2024' and figures as '#200', alias phrases ("Xi Jinping", "Си Цзиньпин") as the entity
they name ('@xi-jinping'), and the year of a "New Year 2024" as the holiday ('^2024'). `read_facts` reads
facts into the per-fact unit strings and posting lists the index keeps, and is pure. `Reading` is the one part
that goes beyond this process: for big knowledge it hands part of the facts to a worker process (`python -m
bot.matching.reading`, this module's `main`), whose result is the same as reading them here, so that both cores build
the index.
"""

from __future__ import annotations

import contextlib
import enum
import gc
import logging
import os
import pickle
import queue
import subprocess
import sys
import tempfile
import threading
from bisect import bisect_right
from collections import defaultdict, deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from itertools import accumulate, chain, compress, count, repeat
from operator import attrgetter
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, BinaryIO, Final, Literal, NamedTuple, Never, TypeAlias, TypeVar, cast

from bot.matching import textnorm as tn

if TYPE_CHECKING:  # not imported at run time: the worker process reads plain tuples and needs no pydantic
    from bot.knowledge.model import Entity, Fact

log = logging.getLogger(__name__)
_K = TypeVar("_K")
_V = TypeVar("_V")

Years = frozenset[int]
AliasMap = Mapping[tuple[str, ...], tuple[str, bool]]  # alias stems -> (entity unit, needs capitals)
AliasTable = tuple[dict[tuple[str, ...], tuple[str, bool]], set[str]]  # alias_table's: the map, every word form


def entity_unit(entity_id: str) -> str:
    return "@" + entity_id


def entity_names(entities: Mapping[str, Entity]) -> dict[str, list[str]]:
    """Entity id -> its name and aliases, from `bot.knowledge.model.Entity`s."""
    return {entity_id: [entity.name, *entity.aliases] for entity_id, entity in entities.items()}


def parsed_names(entities: Iterable[Any]) -> dict[str, list[str]]:
    """`entity_names` of entities as parsed from YAML, before validation: the same, if they are valid (raw YAML, of
    any shape: one that is not an entity's raises)."""
    return {e["id"]: [e["name"], *e.get("aliases", [])] for e in entities}


def alias_table(entity_names: Mapping[str, Sequence[str]]) -> AliasTable:
    """alias stems -> (entity unit, needs capitals), and every word form of every alias; from `entity_names`."""
    table: dict[tuple[str, ...], tuple[str, bool]] = {}
    surfaces: set[str] = set()
    for entity_id, own_names in entity_names.items():
        unit = entity_unit(entity_id)
        names = list(own_names)
        names += [tn.split_prefixes(n) for n in names if "-" in n]  # "non alliance" typed without the hyphen
        # Typed names in the other alphabet: "Moskva" for "Москва", "Kazan" for "Казань".
        names += [
            v for n in names if tn.is_cyrillic(n.casefold()) and len(n) >= 4 for v in tn.transliterations(n.casefold())
        ]
        for name in names:
            tokens = tn.tokenise(name)
            if not tokens or any(t.isdigit() for t in tokens):
                continue  # "Beijing 2022": a year inside an alias would hide the year the question asks about
            surfaces.update(tokens)
            # "US" is also "us": an alias made only of stopwords matches only when typed in capitals.
            table.setdefault(tuple(tn.stem(t) for t in tokens), (unit, all(t in tn.STOPWORDS for t in tokens)))
    return table, surfaces


def number_unit(number: float) -> str:
    return f"#{int(number)}" if number == int(number) else f"#{number:g}"


def _token_unit(token: str) -> tuple[str, str | None]:
    """(stem, unit) of a case-folded token; the unit is None for stopwords and stray letters."""
    if token[0].isdigit():
        year = tn.year_of(token)
        if year:
            return token, f"%{year}"
        number = tn.parse_number(token)
        return token, (number_unit(number) if number is not None else token)
    stemmed = tn.stem(token)
    if token in tn.STOPWORDS or len(token) == 1:
        return stemmed, None
    return stemmed, stemmed


# A date's day and month as units ("2024-12-31": '#31' and 'december'): the index gives them to the fact.
DAY_UNITS = {str(d).zfill(2): number_unit(d) for d in range(1, 32)}
MONTH_UNITS = {str(m).zfill(2): tn.stem(name.casefold()) for m, name in enumerate(tn.MONTHS, 1)}


class _Chunk(NamedTuple):
    """What a whitespace-separated chunk of fact text ("Putin's", "$200", "2023.") contributes."""

    units: tuple[str, ...]  # its units, single-word aliases already read as entities
    multi: tuple[int, ...]  # positions of words that may start a multi-word alias ("Xi" of "Xi Jinping")
    stems: tuple[str, ...]  # every token's stem, stopwords included (aliases may contain them)
    token_units: tuple[str | None, ...]  # units aligned with stems (None for stopwords)
    new_year: bool  # starts a "New Year" phrase ("New Year 2024" names a holiday, not a period)
    year: bool  # holds a year


_SEPARATOR = "\x01"  # between phrasings read together; never part of a word
_BREAK = "|"  # the unit a separator becomes (units are words, '@', '#' or '%' strings: never '|')
_END = "\x02"  # between texts read together, and the unit it becomes: aliases and holidays stop there
PHRASING_BREAK = f" {_BREAK} "
EXTRAS = " \x00 "  # in Index.strong, between the phrasings' units and the entity ids and alias words
_Edit: TypeAlias = tuple[int, int, int, tuple[str | None, ...]]  # (chunk, start, end, its new token units)
# What the aliases starting in a window's first chunk do (see _Reader._read_aliases): the units of the chunks taken
# whole (or None), the edits, the alias words, and (chunk, word) where the last alias ends.
_Aliases: TypeAlias = tuple[tuple[str, ...] | None, tuple[_Edit, ...], tuple[str, ...], tuple[int, int]]


class _Window(enum.Enum):
    MORE = enum.auto()


_MORE: Final = _Window.MORE  # an alias window ended before the alias could: read the rest of the text instead
_NO_ALIAS: Final[_Aliases] = ((), (), (), (0, 0))  # no alias starts in the window (true, so a memo hit needs one test)
_ALIAS_START, _HOLIDAY_START = 1, 2  # what a chunk may start (Reader.special)
MEMO_LIMIT = 200_000  # alias and holiday windows remembered; past this the memo starts afresh


class _Reader:
    """Turns fact texts into units, remembering every whitespace chunk and alias window it has read.

    Splitting on whitespace and looking chunks up (most recur) gives the same tokens as the tokeniser, since
    no token spans whitespace, at a fraction of the cost. Multi-word aliases ("Xi Jinping") and New Year
    years ("New Year 2024") depend only on the few chunks from where they start, so what a window of chunks
    yields is worked out once and remembered too: at 100,000 facts most windows recur.
    """

    def __init__(self, alias_map: Mapping[tuple[str, ...], tuple[str, bool]], surfaces: set[str]):
        # Fact texts never use the capitals-only aliases ("US"): their own entity lists name those.
        self.aliases = {k: unit for k, (unit, needs_caps) in alias_map.items() if not needs_caps}
        lengths: dict[str, set[int]] = {}
        for alias in self.aliases:
            if len(alias) > 1:
                lengths.setdefault(alias[0], set()).add(len(alias))
        self.multi_lengths = {k: tuple(sorted(v, reverse=True)) for k, v in lengths.items()}
        self.surfaces = surfaces
        self.compound: set[str] = {""}  # unit strings of chunks that are not one unit: "" and "dollar #200"
        # Every chunk read, twice: its units as one string (most chunks need nothing else), and in full.
        self.units = _Chunks(self._read_units)
        self.chunks = _Chunks(self.chunk)
        # Chunks that may start a multi-word alias (_ALIAS_START) or a "New Year" (_HOLIDAY_START), or both.
        self.special: dict[str, int] = {}
        self.multi: dict[str, int] = {}  # chunk that may start a multi-word alias -> chunks the longest spans
        self.years: set[str] = set()  # chunks holding a year
        self.stemless: set[str] = set()  # chunks without words ("—")
        self.alias_memo: dict[tuple[tuple[str, ...], bool, int], _Aliases] = {}
        self.holiday_memo: dict[tuple[str, ...], tuple[tuple[int, int], ...]] = {}
        self.units_of = self.units.__getitem__
        self.lookup = self.chunks.__getitem__
        for chunk, unit in ((_SEPARATOR, _BREAK), (_END, _END)):
            self.units[chunk] = unit
            self.chunks[chunk] = _Chunk((unit,), (), (unit,), (unit,), False, False)

    def chunk(self, chunk: str) -> _Chunk:
        stems, token_units = [], []
        for token in tn.tokenise(chunk):
            self.surfaces.add(token)
            stemmed, unit = _token_unit(token)
            stems.append(stemmed)
            token_units.append(self.aliases.get((stemmed,), unit) if unit is not None else None)
        found = self.chunks[chunk] = _Chunk(
            tuple(u for u in token_units if u is not None),
            tuple(i for i, s in enumerate(stems) if s in self.multi_lengths),
            tuple(stems),
            tuple(token_units),
            any(s in tn.NEW_YEAR_FIRST for s in stems),
            any(tn.year_of(s) for s in stems),
        )
        self.units[chunk] = self._joined(found.units)
        if found.multi:
            self.multi[chunk] = max(self.multi_lengths[stems[j]][0] for j in found.multi)
        if found.year:
            self.years.add(chunk)
        if not stems:
            self.stemless.add(chunk)
        if found.multi or found.new_year:
            self.special[chunk] = (_ALIAS_START if found.multi else 0) | (_HOLIDAY_START if found.new_year else 0)
        return found

    def _read_units(self, chunk: str) -> str:
        self.chunk(chunk)
        return self.units[chunk]

    def read(self, chunks: list[str], words: list[str] | None = None, words_before: int = 0) -> list[str]:
        """Per chunk of a text split on whitespace (texts read together are divided by _END chunks), its units
        as one string ("" for none; several are space-separated and listed in `compound`): alias phrases read
        as '@entity' (longest first), separators as _BREAK.

        The words inside each multi-word alias starting before chunk `words_before` are added to `words`, so a
        question using part of the name ("новогоднее послание" for "новогоднее поздравление") still finds the
        fact.
        """
        simple = list(map(self.units_of, chunks))  # in C; reads chunks never seen before
        # Where chunks that may start an alias or a "New Year" are: one pass in C, most texts have a few.
        starts = list(compress(count(), map(self.special.get, chunks)))
        if not starts:
            return simple
        # Chunks whose token units a holiday year or an alias that ends inside a chunk changed, to be joined
        # again at the end; and the spans of chunks that aliases took whole (their units in `simple` are final).
        edited: dict[int, list[str | None]] = {}
        spans: list[tuple[int, int]] = []
        free_chunk, free_word = -1, 0  # words before this one are taken by an alias already read
        memo, multi, size, special = self.alias_memo, self.multi, len(chunks), self.special
        holidays = []
        for k in starts:
            chunk = chunks[k]
            if special[chunk] & _HOLIDAY_START:
                holidays.append(k)
            if k < free_chunk or not special[chunk] & _ALIAS_START:
                continue
            window = chunks[k : k + multi[chunk]]
            at_end = k + len(window) >= size
            if _END in window:
                window, at_end = window[: window.index(_END)], True
            key = (tuple(window), at_end, free_word if k == free_chunk else 0)
            found = memo.get(key) or self._alias_window(chunks, k, key)
            if found is _NO_ALIAS:
                continue
            taken, edits, alias_words, (last, stop) = found
            if taken is not None:  # the usual case: whole chunks become the entity
                simple[k : k + len(taken)] = taken
                spans.append((k, k + len(taken)))
            else:
                for c, start, end, replacement in edits:
                    self._tokens(edited, chunks, k + c)[start:end] = replacement
            if words is not None and k < words_before:
                words += alias_words
            free_chunk, free_word = k + last, stop
        if holidays and not self.years.isdisjoint(chunks):
            # "New Year 2024": the year names a holiday, not a period
            for k in holidays:
                # A "New Year" starting in chunk k and the three words after it lie within four chunks, unless
                # some have no words; one starting further on is read from its own chunk.
                window = chunks[k : k + 4]
                if not self.stemless.isdisjoint(window):
                    window = chunks[k : k + 6]
                if self.years.isdisjoint(window):
                    continue
                if _END in window:
                    window = window[: window.index(_END)]
                holiday_key = tuple(window)
                positions = self.holiday_memo.get(holiday_key)
                if positions is None:
                    positions = self._remember(self.holiday_memo, holiday_key, self._holiday_years(holiday_key))
                for c, i in positions:
                    if any(a <= k + c < b for a, b in spans):
                        continue  # an alias took the chunk (aliases hold no years)
                    units = self._tokens(edited, chunks, k + c)
                    unit = units[i]
                    if unit and unit[0] == "%":
                        units[i] = "^" + unit[1:]
        for c, units in edited.items():
            simple[c] = self._joined(filter(None, units))
        return simple

    def _joined(self, units: Iterable[str]) -> str:
        joined = " ".join(units)
        if " " in joined:
            self.compound.add(joined)
        return joined

    def _tokens(self, edited: dict[int, list[str | None]], chunks: list[str], c: int) -> list[str | None]:
        """Chunk c's token units, to edit (never called for a chunk an alias took whole)."""
        if c not in edited:
            edited[c] = list(self.lookup(chunks[c]).token_units)
        return edited[c]

    def _alias_window(self, chunks: list[str], k: int, key: tuple[tuple[str, ...], bool, int]) -> _Aliases:
        """What the aliases starting in chunk k do (see `_read_aliases`), remembered by its window of chunks."""
        found = self._read_aliases(*key)
        if found is _MORE:  # rare: chunks without words inside the window; read to the end, not remembered
            rest = chunks[k:]
            read = self._read_aliases(tuple(rest[: rest.index(_END)] if _END in rest else rest), True, key[2])
            assert read is not _MORE  # read to the end of the text
            return read
        return self._remember(self.alias_memo, key, found)

    def _read_aliases(self, window: tuple[str, ...], at_end: bool, skip: int) -> _Aliases | Literal[_Window.MORE]:
        """For the multi-word aliases starting in the window's first chunk (from word `skip`), longest first:
        (the units of the chunks taken whole, from the first on, or None, edits as ((chunk, start, end, token units),
        ...), the alias words, (chunk, word) where the last alias ends), chunks relative to the first; or
        _NO_ALIAS, or _MORE if an alias may run past a window that ends before the text does."""
        parts = [self.lookup(c) for c in window]
        edits: list[_Edit] = []
        words: list[str] = []
        free = (0, skip)
        for j in parts[0].multi:
            if (0, j) < free:
                continue
            for size in self.multi_lengths[parts[0].stems[j]]:
                stems, last = list(parts[0].stems[j : j + size]), 0
                while len(stems) < size and last + 1 < len(parts):
                    last += 1
                    stems.extend(parts[last].stems[: size - len(stems)])
                if len(stems) < size and not at_end:
                    return _MORE
                entity = self.aliases.get(tuple(stems))
                if entity is None:
                    continue
                start, left = j, size  # replace `size` words from word j of chunk 0
                for c in range(last + 1):
                    units = parts[c].token_units
                    end = min(len(units), start + left)
                    words.extend(u for u in units[start:end] if u)
                    edits.append((c, start, end, (entity if c == 0 else None,) + (None,) * (end - start - 1)))
                    left -= end - start
                    free = (c, end)
                    start = 0
                break
        if not edits:
            return _NO_ALIAS
        # Whole chunks taken, no year left in them for a holiday to change, no earlier alias in them: their units
        # are final (a later alias starts after them).
        final: dict[int, list[str | None]] = {}
        for c, start, end, replacement in edits:
            final.setdefault(c, list(parts[c].token_units))[start:end] = replacement
        taken: tuple[str, ...] | None = None
        if (
            skip == 0
            and free[1] >= len(parts[free[0]].token_units)
            and not any(u and u[0] == "%" for units in final.values() for u in units)
        ):
            taken = tuple(self._joined(filter(None, final[c])) for c in range(len(final)))
        return taken, tuple(edits), tuple(words), free

    def _holiday_years(self, window: tuple[str, ...]) -> tuple[tuple[int, int], ...]:
        """(chunk, word) of each year in the window that names a New Year rather than a period."""
        stems = [self.lookup(c).stems for c in window]
        offsets = list(accumulate(map(len, stems), initial=0))
        found = []
        for i in tn.holiday_year_positions(list(chain.from_iterable(stems))):
            c = bisect_right(offsets, i) - 1
            found.append((c, i - offsets[c]))
        return tuple(found)

    @staticmethod
    def _remember(memo: dict[_K, _V], key: _K, value: _V) -> _V:
        if len(memo) >= MEMO_LIMIT:
            memo.clear()
        memo[key] = value
        return value


class _EntityUnits(dict[str, str]):
    """Entity id -> its unit ('@id'), made on first use."""

    def __missing__(self, entity_id: str) -> str:
        unit = self[entity_id] = entity_unit(entity_id)
        return unit


class _Chunks(dict[str, _V]):
    """Chunk memo: a missing chunk is read on first lookup, so lookups can run in C (`map`)."""

    def __init__(self, make: Callable[[str], _V]):
        super().__init__()
        self.make = make

    def __missing__(self, chunk: str) -> _V:
        return self.make(chunk)


# What the index reads of a fact, in plain strings and tuples (so a worker process can read it too): its phrasings
# (title, questions, keywords, quote fields) and text, divided by separators; the ids of the entities it declares
# (people, places, topics, outlets, speaker); its date.
Record = tuple[str, tuple[str, ...], str]


_PIECES = f" {_SEPARATOR} "  # between phrasings
_TEXT = f" {_END} "  # between the phrasings and the text

# The fields of a fact that the index reads: `Fields` is a tuple of their values, in this order.
FIELD_NAMES = (
    "title", "questions", "keywords", "words", "occasion", "said_via", "text",
    "people", "places", "topics", "reported_by", "speaker", "date",
)  # fmt: skip
Fields: TypeAlias = tuple[
    str, list[str], list[str], str | None, str | None, str | None, str,
    list[str], list[str], list[str], list[str], str | None, str,
]  # fmt: skip
_FIELDS = attrgetter(*FIELD_NAMES)


def fields_of(facts: Iterable[Fact]) -> list[Fields]:
    """The `Fields` of facts (`bot.knowledge.model.Fact`s)."""
    return list(map(_FIELDS, facts))


def parsed_fields(item: Any) -> Fields:
    """The `Fields` of a fact as parsed from YAML, before validation: the validated fact's, if it is valid (a
    field left out has its default). Raw YAML, of any shape: raises KeyError if a field every fact has is missing,
    and TypeError or AttributeError if it is not a mapping at all."""
    get = item.get
    # Written out, not looped over FIELD_NAMES: this runs for every fact of a big base before it is validated.
    return (
        item["title"], item["questions"], get("keywords", []), get("words"), get("occasion"), get("said_via"),
        item["text"], get("people", []), get("places", []), get("topics", []), get("reported_by", []),
        get("speaker"), item["date"],
    )  # fmt: skip


def record(fields: Fields) -> Record:
    """The `Record` of a fact's `Fields`."""
    title, questions, keywords, words, occasion, said_via, text, people, places, topics, outlets, speaker, date = fields
    pieces = [title, *questions, *keywords]
    # A quote's words, occasion and channel are how people recall it ("what did X say at New Year 2022").
    pieces += [t for t in (words, occasion, said_via) if t]
    entities = (*people, *places, *topics, *outlets, speaker) if speaker else (*people, *places, *topics, *outlets)
    return f"{_PIECES.join(pieces)}{_TEXT}{text}", entities, date


class Read(NamedTuple):
    """Facts read into units. Per fact (lists aligned with the facts read): its strong and weak unit strings (see
    `bot.matching.matcher.Index`), the years it has (its date's and every year it mentions), the years its phrasings
    mention, the years it names as a New Year ('^2024') and its figures ('#200', the day of its date); facts
    without any share one empty set. And which facts have each unit and each year."""

    strong: list[str]
    weak: list[str]
    years: list[Years]
    phrased: list[Years]
    holidays: list[Years]
    figures: list[frozenset[str]]
    postings: dict[str, list[int]]  # unit -> positions of the facts having it, ascending
    # '%2024' -> facts dated in or mentioning 2024, '^2024' -> facts greeting New Year 2024, '=2024' -> facts
    # dated in 2024, '12/2023' -> facts dated December 2023; ascending
    year_postings: dict[str, list[int]]
    surfaces: set[str]  # every word form read, with the aliases' own (for typo correction)


def read_facts(alias_map: AliasMap, surfaces: set[str], records: Iterable[Record], start: int = 0) -> Read:
    """Read `records`, the facts at positions `start`, `start + 1` ...; `surfaces` gets the word forms read."""
    reader = _Reader(alias_map, surfaces)
    read = reader.read
    entity_units = _EntityUnits()
    strong: list[str] = []
    weak: list[str] = []
    postings: defaultdict[str, list[int]] = defaultdict(list)
    dates: list[str] = []
    join = " ".join
    for position, (pieces, entities, date) in enumerate(records, start):
        dates.append(date)
        # Phrasings and text read together (split in C, mostly), divided by an _END chunk.
        chunks = pieces.casefold().split()
        words: list[str] = []
        cut = chunks.index(_END)  # read gives one entry per chunk: the same place in its result
        parts = read(chunks, words, cut)
        words += map(entity_units.__getitem__, entities)
        # The date's month is the fact's as much as its entities are ("December 2025" for a fact dated 2025-12,
        # whether or not its text says so); its day counts as a figure the fact holds ("31 December").
        if len(date) >= 7:
            words.append(MONTH_UNITS[date[5:7]])
        strong.append(f" {join(parts[:cut])}{EXTRAS}{join(words)} ")
        unique = set(parts)  # the unit strings are the reader's own: their hashes are cached
        unique.update(words)
        for compound in unique & reader.compound:
            unique.remove(compound)
            unique.update(compound.split())
        if len(date) == 10:
            day = DAY_UNITS[date[8:]]
            weak.append(f" {join(parts[cut + 1 :])} {day} ")
            unique.add(day)
        else:
            weak.append(f" {join(parts[cut + 1 :])} ")
        # Posting lists: list.append run over every unit in C (no Python loop per unit).
        deque(map(list.append, map(postings.__getitem__, unique), repeat(position)), maxlen=0)
    postings.pop(_BREAK, None)
    postings.pop(_END, None)
    years, phrased, holidays, figures, year_postings = _years_and_figures(postings, strong, dates, start)
    return Read(strong, weak, years, phrased, holidays, figures, dict(postings), year_postings, surfaces)


def _years_and_figures(
    postings: Mapping[str, list[int]], strong: list[str], dates: list[str], start: int
) -> tuple[list[Years], list[Years], list[Years], list[frozenset[str]], dict[str, list[int]]]:
    """Read's years, phrased, holidays, figures and year_postings, from the (short) posting lists of years and
    figures rather than a scan of every fact's units."""
    mentioned: defaultdict[int, set[int]] = defaultdict(set)
    phrased: defaultdict[int, set[int]] = defaultdict(set)
    holidays: defaultdict[int, set[int]] = defaultdict(set)
    figures: defaultdict[int, set[str]] = defaultdict(set)
    for unit, posting in postings.items():
        if unit[0] == "%":
            year, probe = int(unit[1:]), f" {unit} "
            for f in posting:
                mentioned[f - start].add(year)
                if probe in strong[f - start]:
                    phrased[f - start].add(year)
        elif unit[0] == "#":
            for f in posting:
                figures[f - start].add(unit)
        elif unit[0] == "^":
            for f in posting:
                holidays[f - start].add(int(unit[1:]))
    none: frozenset[Never] = frozenset()
    only: dict[int, frozenset[int]] = {}
    years: list[Years] = []
    year_postings: defaultdict[str, list[int]] = defaultdict(list)
    for i, date in enumerate(dates):
        year = int(date[:4])
        found = frozenset(mentioned[i] | {year}) if i in mentioned else only.setdefault(year, frozenset({year}))
        years.append(found)
        f = start + i
        year_postings[f"={year}"].append(f)
        if date[5:7] == "12":
            year_postings[f"12/{year}"].append(f)
        for y in found:
            year_postings[f"%{y}"].append(f)
        for y in holidays.get(i, ()):
            year_postings[f"^{y}"].append(f)
    return (
        years,
        [frozenset(phrased[i]) if i in phrased else none for i in range(len(dates))],
        [frozenset(holidays[i]) if i in holidays else none for i in range(len(dates))],
        [frozenset(figures[i]) if i in figures else none for i in range(len(dates))],
        dict(year_postings),
    )


# --- reading in two processes -------------------------------------------------------------------------------

WORKER_COMMAND = (sys.executable, "-m", "bot.matching.reading")
# The worker gets what Python itself needs of the environment and nothing else (no tokens or other secrets).
_WORKER_ENV = frozenset({"PATH", "SYSTEMROOT", "LANG", "TMPDIR", "TEMP", "TMP"})
_WORKER_ENV_PREFIXES = ("PYTHON", "LC_")
_PACKAGE_ROOT = str(Path(__file__).resolve().parent.parent)  # where `bot` is, installed or not


def worker_env(environ: Mapping[str, str]) -> dict[str, str]:
    """The environment of the worker process: Python's and the locale's variables from `environ`, and a
    PYTHONPATH that finds this package first."""
    env = {k: v for k, v in environ.items() if k in _WORKER_ENV or k.startswith(_WORKER_ENV_PREFIXES)}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, (_PACKAGE_ROOT, env.get("PYTHONPATH"))))
    return env


class Reading:
    """Facts being read, perhaps in two processes. Made with processes=2, it starts a worker process (`python -m
    bot.matching.reading`) that makes the alias table, for both, and then reads the last `share` of the facts, so the
    caller can do other work meanwhile; `result` reads the rest here and takes the worker's share. If the worker
    cannot be started or fails, this process does its work too: the result is the same, only slower. As a context
    manager, it stops the worker if the caller fails before taking the result.

    It reads the facts' `Fields`: `fields_of` validated facts, or `parsed_fields` of facts as parsed, so that the
    worker reads while they are validated (the worker then has the time validation takes, and a bigger share);
    `matches` tells whether the facts as validated are the ones being read.
    """

    def __init__(
        self, names: Mapping[str, Sequence[str]], fields: Sequence[Fields], processes: int = 1, share: float = 0.5
    ):
        self.names = dict(names)
        self.fields = fields
        self.split = len(fields)
        self.worker: subprocess.Popen[bytes] | None = None
        self.sender: threading.Thread | None = None
        self.receiver: threading.Thread | None = None
        self.result_file: BinaryIO | None = None  # where the worker writes its `Read`
        self._received: object = None  # the worker's alias table (None if it failed), once the receiver has ended
        self._aliases: AliasTable | None = None
        if processes >= 2 and len(fields) >= 2:
            self.split = len(fields) - int(len(fields) * share)
            self._start()

    def _start(self) -> None:
        try:
            # The worker's result (tens of MB) goes to a file, not the pipe: through a pipe, every piece of it
            # would wait for a thread here to get the GIL (up to sys.getswitchinterval() while this one reads).
            self.result_file = tempfile.TemporaryFile()  # noqa: SIM115 (closed by _collect or close)
            fd = self.result_file.fileno()
            self.worker = subprocess.Popen(
                (*WORKER_COMMAND, str(fd)),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                env=worker_env(os.environ),
                cwd=_PACKAGE_ROOT,  # `-m` looks in the working directory first: there, it finds this package
                pass_fds=(fd,),
            )
        except OSError as exc:
            log.warning("index: could not start a worker process (%s); reading every fact here", exc)
            if self.result_file is not None:
                self.result_file.close()
            return
        _widen(self.worker.stdin)
        _widen(self.worker.stdout)
        # Written by a thread (which waits on the pipe without the GIL) while this one goes on: first the entity
        # names, so the worker makes the alias table while the records of its facts are made here.
        outbox: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        outbox.put(pickle.dumps(self.names, pickle.HIGHEST_PROTOCOL))
        self.sender = threading.Thread(target=_send, args=(self.worker, outbox), name="index-worker-feed")
        self.sender.start()
        # The alias table is taken as soon as it comes, so that the worker goes on to read its facts even while
        # this process is busy with something else (validating them).
        self.receiver = threading.Thread(target=self._receive, name="index-worker-aliases")
        self.receiver.start()
        try:
            records = [record(f) for f in self.fields[self.split :]]
        except Exception:  # fields that are not a fact's (facts as parsed, not yet validated)
            outbox.put(None)
            self.close()
            raise
        outbox.put(pickle.dumps((records, self.split), pickle.HIGHEST_PROTOCOL))
        outbox.put(None)

    def __enter__(self) -> Reading:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def matches(self, names: Mapping[str, Sequence[str]], fields: Sequence[Fields]) -> bool:
        """Whether this reads these entity names and facts' `Fields`."""
        return self.names == dict(names) and self.fields == fields

    def close(self) -> None:
        """Stop the worker if it is still running (the build failed, or did not use this, before taking the
        result)."""
        worker = self.worker
        if worker is None or worker.returncode is not None:
            return
        worker.kill()
        worker.wait()
        if self.receiver is not None:
            self.receiver.join()  # its read ended with the pipe
        if worker.stdout is not None:
            worker.stdout.close()
        if self.sender is not None:
            self.sender.join()  # its write failed or finished: the pipe's reader is gone
        if self.result_file is not None:
            self.result_file.close()

    def aliases(self) -> AliasTable:
        """`alias_table` of the entity names: the worker's, or made here."""
        if self._aliases is None:
            if self.receiver is not None:
                self.receiver.join()
            found = self._received
            # The worker's table (a pickle, checked for its shape), or made here.
            self._aliases = cast(AliasTable, found) if _shaped(found, (dict, set)) else alias_table(self.names)
        return self._aliases

    def result(self) -> Read:
        """Every fact read."""
        alias_map, surfaces = self.aliases()
        head = read_facts(alias_map, surfaces, map(record, self.fields[: self.split]))
        if self.split == len(self.fields):
            return head
        tail = self._collect()
        if tail is None:
            tail = read_facts(alias_map, surfaces, map(record, self.fields[self.split :]), self.split)
        return Read(
            head.strong + tail.strong,
            head.weak + tail.weak,
            head.years + tail.years,
            head.phrased + tail.phrased,
            head.holidays + tail.holidays,
            head.figures + tail.figures,
            _merged(head.postings, tail.postings),
            _merged(head.year_postings, tail.year_postings),
            surfaces | tail.surfaces,
        )

    def _receive(self) -> None:
        """(The receiver thread.) Put the worker's alias table in `_received`, or leave None if it failed."""
        assert self.worker is not None and self.worker.stdout is not None
        with contextlib.suppress(Exception):  # any failure of the worker: do its work here instead
            self._received = pickle.load(self.worker.stdout)

    def _collect(self) -> Read | None:
        worker, file = self.worker, self.result_file
        if worker is None or file is None:
            return None
        assert worker.stdout is not None and self.sender is not None
        worker.stdout.close()  # (the alias table was its last message: a worker writing more fails, not waits)
        worker.wait()
        self.sender.join()
        try:
            with file:
                file.seek(0)
                found = pickle.load(file)
        except Exception:  # any failure of the worker: do its work here instead
            found = None
        if worker.returncode != 0 or not (_shaped(found, (tuple, object)) and len(found[0]) == len(Read._fields)):
            log.warning("index: the worker process failed (exit %s); reading its facts here", worker.returncode)
            return None
        fields, peak_mb = found
        log.debug(
            "index: the worker process read %d facts, peak memory %s MB",
            len(self.fields) - self.split,
            peak_mb,
            extra={"worker_peak_mb": peak_mb},
        )
        return Read._make(fields)


def _shaped(found: object, types: tuple[type, ...]) -> bool:
    """Whether a message from the worker is a tuple of values of these types (a worker that went wrong may send
    anything pickle can hold)."""
    return isinstance(found, tuple) and len(found) == len(types) and all(map(isinstance, found, types))


def _merged(head: dict[str, list[int]], tail: dict[str, list[int]]) -> dict[str, list[int]]:
    """Posting lists of the head and of the tail, whose positions all follow the head's."""
    for key, positions in tail.items():
        if key in head:
            head[key] += positions
        else:
            head[key] = positions
    return head


PIPE_BYTES = 1 << 20  # Linux's default limit for a pipe's buffer (/proc/sys/fs/pipe-max-size)


def _widen(pipe: IO[bytes] | None) -> None:
    """Let a pipe to or from the worker hold PIPE_BYTES, where the system allows: the thread at this end needs the
    GIL after each wait on it (up to sys.getswitchinterval() while this process reads), so tens of MB pass in far
    fewer waits than through the default 64 KiB."""
    if pipe is None:
        return
    try:
        import fcntl

        fcntl.fcntl(pipe.fileno(), fcntl.F_SETPIPE_SZ, PIPE_BYTES)
    except (ImportError, AttributeError, OSError):
        pass  # not Linux, or a lower limit: slower, not wrong


def _send(worker: subprocess.Popen[bytes], outbox: queue.SimpleQueue[bytes | None]) -> None:
    assert worker.stdin is not None
    try:
        with worker.stdin:
            while (payload := outbox.get()) is not None:
                worker.stdin.write(payload)
    except OSError:
        pass  # it died early: Reading._collect tells


def _peak_mb() -> int | None:
    """This process's peak resident set in MB (Linux), since it started: ru_maxrss would count the parent's
    memory too, copied by the fork before the exec."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            return next(int(line.split()[1]) // 1024 for line in status if line.startswith("VmHWM:"))
    except (OSError, StopIteration, ValueError, IndexError):
        return None


def main(argv: Sequence[str] | None = None) -> int:
    """The worker, given the number of an open file descriptor: read the pickled entity names on standard input
    and write their pickled alias table (map, surfaces) on standard output; then read the pickled (records, start)
    and write the pickled `Read`, as a plain tuple (run as a script, this module's classes are __main__'s), with
    the worker's peak memory in MB, to that file."""
    (fd,) = sys.argv[1:] if argv is None else argv
    gc.disable()  # as build_index does: reading allocates millions of small objects and frees almost none
    alias_map, surfaces = alias_table(pickle.load(sys.stdin.buffer))
    pickle.dump((alias_map, surfaces), sys.stdout.buffer, pickle.HIGHEST_PROTOCOL)
    sys.stdout.buffer.flush()
    records, start = pickle.load(sys.stdin.buffer)
    found = tuple(read_facts(alias_map, surfaces, records, start))
    with open(int(fd), "wb") as out:
        pickle.dump((found, _peak_mb()), out, pickle.HIGHEST_PROTOCOL)
    return 0


if __name__ == "__main__":
    status = main()
    sys.stdout.flush()
    # The parent waits for this exit: skip freeing the objects read one by one (a fifth of a second on big bases).
    os._exit(status)
