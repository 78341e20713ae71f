"""Question → answer matching: a pure function of an index built once per knowledge snapshot.

This module owns how a question typed by a person becomes an `Answer`: which facts answer it (best first),
how confident that is, whether to offer "did you mean" choices, list several facts, or decline. It knows
nothing about particular facts; everything content-specific comes from the knowledge (phrasings, keywords,
titles, texts, dates and the entity aliases a fact refers to), and language knowledge from `bot.matching.textnorm`.

How: the question is tokenised and stemmed, typos are corrected against the knowledge's own vocabulary
(rapidfuzz OSA distance), alias phrases become entity ids, years (also "last year") and numbers become hard
constraints, and question words say which kinds of fact fit. Candidates come from an inverted index; each
is scored on coverage (how much of the question the fact explains, weighted by rarity), recall (how much of
its closest phrasing the question covers), rapidfuzz token_sort_ratio against its phrasings, and small
adjustments for kind, year and speaker. A question the best fact does not explain well enough is declined.
How fact texts become the index's units is `bot.matching.reading`'s, which reads big knowledge in two processes.
"""

from __future__ import annotations

import datetime
import functools
import heapq
import logging
import math
import os
from collections import defaultdict
from collections.abc import Collection, Container, Iterable, Mapping, Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import NamedTuple

from rapidfuzz import fuzz, process
from rapidfuzz.distance import OSA

from bot.knowledge import collector
from bot.knowledge.facts import KnowledgeView
from bot.knowledge.model import Fact
from bot.matching import reading as rd
from bot.matching import textnorm as tn
from bot.matching import translit

log = logging.getLogger(__name__)

# --- tunables (calibrated on tests/questions.yaml; see benchmarks/matching.py) --------------------------------
MAX_TOKENS = 160  # a pasted essay is matched on its first words, so a 4,096-character message stays fast
MIN_COVERAGE = 0.6  # below this share of the question explained by the best fact, decline
DECLINE_SCORE = 64.0  # ... or below this score
CONFIDENT_SCORE = 72.0  # answered below this: flagged low_confidence for maintainers
CLOSE_MARGIN = 4.0  # facts within this many points of the best are offered as "did you mean"
MAX_SUGGESTIONS = 3
LIST_LIMIT = 10
CANDIDATE_LIMIT = 300  # candidates whose coverage is computed per question
FULL_LIMIT = 60  # ... of which the best by coverage are scored in full (phrasings, rapidfuzz)
SUGGEST_COVERAGE = 0.45  # below this coverage a fact is neither answer nor suggestion
SUGGEST_LIMIT = 20  # facts scored for "did you mean" outside the year or figure asked
PART_WEIGHT = 0.8  # a named thing this specific (rarer than the leaders and their countries) ...
PART_COVERAGE = 0.25  # ... gets the fact about it offered, when none has all the things asked about together
POSTING_BUDGET = 20_000  # posting entries read per question before commoner words are skipped
PARALLEL_FACTS = 20_000  # from this many facts on, a second process reads part of them (on two cores or more)
WORKER_SHARE = 0.5  # of the facts, read by that process
EARLY_WORKER_SHARE = 0.65  # ... when it starts while the facts are validated (start_reading)
SMALL_INDEX = 3000  # up to this many facts, phrasings are prepared at build time and kind nouns list by kind
WEAK_CREDIT = 0.8  # a word found only in the fact's text (not its title, phrasings or keywords)
UNKNOWN_WEIGHT = 1.5  # a word the knowledge never uses (likely a name or topic it does not cover)
RUSSIAN_UNKNOWN_WEIGHT = 0.7  # a lower-case Russian word form the knowledge lacks (inflection, verb)
SHORT_UNKNOWN_WEIGHT = 0.6  # an unknown word of three letters or fewer
RUSSIAN_WORD_WEIGHT = 0.6  # Russian words beyond aliases: the knowledge has few Russian phrasings
COMMON_WEIGHT = 0.2  # generic filler ("happen", "information")
MONTH_WEIGHT = 0.3  # a month no fact is dated in or names
YEAR_UNIT_WEIGHT = 0.7  # a year inside a phrasing, for recall
SMALL_NUMBER = 10  # numbers up to this are counts ("2 meetings"), not exact figures
SOFT_NUMBER_WEIGHT = 0.3
GUESS_CREDIT = 0.8  # a word matched only after a typo correction counts a little less
GUESS_FLOOR = 0.9  # ... and, when it matches nothing, weighs at least this much in the question
KIND_NOUN_WEIGHT = 0.5  # "meetings", "quotes", "поздравления" name what is wanted
MIN_MATCHED = 0.6  # the best fact must explain at least this much weight of the question ("Putin" alone: no)
YEAR_MATCHED = 0.5  # ... where a year it matches counts this much


@dataclass(frozen=True)
class Answer:
    question: str
    answered: bool
    facts: tuple[Fact, ...]  # best first; several when is_list
    score: float  # 0-100 confidence of the best
    suggestions: tuple[Fact, ...]  # "did you mean" choices, when declined or ambiguous
    is_list: bool = False
    low_confidence: bool = False  # answered but not confidently: recorded for maintainers


@dataclass(frozen=True, eq=False)
class Index:
    """Everything about the knowledge that does not depend on the question, computed once by `build_index`."""

    knowledge: KnowledgeView  # the Knowledge it was built from (for rendering the answers)
    facts: tuple[Fact, ...]
    kinds: tuple[str, ...]
    speakers: tuple[str | None, ...]  # '@entity' of who speaks in a quote or statement
    voices: frozenset[str]  # every speaker: people, and organisations that speak ("the foreign ministry said")
    actors: tuple[str | None, ...]  # '@entity' of whose words or doings a one-sided fact reports (not exchanges)
    people: tuple[frozenset[str], ...]  # '@entity' of every person a fact involves
    # Per fact, its units as one string, separated by spaces and with a space at each end, so a membership test
    # is a substring search (" unit " in strong[f]): building a set per fact costs more than all the searches
    # do, and the strings take a fraction of the memory at 100,000 facts.
    strong: tuple[str, ...]  # title, questions, keywords, quote fields; after rd.EXTRAS, alias words and entity ids
    weak: tuple[str, ...]  # units of the text (and the day of the date)
    numbers: tuple[frozenset[str], ...]  # '#75', '#200', the day of the date ...
    date_year: tuple[int, ...]
    december: tuple[bool, ...]  # dated in December: the New Year it greets is the next year
    phrasing_years: tuple[frozenset[int], ...]  # years in title, questions, keywords
    all_years: tuple[frozenset[int], ...]  # date year and every year the fact mentions
    holiday_years: tuple[frozenset[int], ...]  # years it names only as a New Year ("greetings for New Year 2024")
    # Per fact, its phrasings (see _Phrasing). Prepared at build time on small indexes; on big ones (None), made
    # for the few candidates of each question.
    prepared: tuple[tuple[_Phrasing, ...], ...] | None
    postings: Mapping[str, list[int]]  # unit -> facts having it
    # '%2024' -> facts dated in or mentioning 2024, '^2024' -> facts greeting New Year 2024, '12/2023' -> facts
    # dated December 2023, '=2024' -> facts dated in 2024.
    year_postings: Mapping[str, list[int]]
    weights: Mapping[str, float]  # unit -> weight (rarer = heavier)
    alias_map: Mapping[tuple[str, ...], tuple[str, bool]]  # alias stems -> (entity unit, needs capitals)
    alias_lengths: Mapping[str, tuple[int, ...]]  # first stem -> lengths of aliases starting with it, longest first
    partial_aliases: Mapping[str, str]  # a word found in the aliases of one entity only ("jinping") -> that entity
    entity_types: Mapping[str, str]  # '@id' -> person/place/...
    new_year_entities: frozenset[str]  # entities one of whose names is "New Year" ("greetings" names one too)
    vocabulary: frozenset[str]  # every stem the knowledge uses, in facts or aliases
    spellings: Mapping[tuple[bool, int], tuple[str, ...]]  # (cyrillic, length) -> known word forms, for typos

    def __repr__(self) -> str:
        return f"<Index of {len(self.facts)} facts, {len(self.postings)} terms>"

    def phrasings(self, f: int) -> tuple[_Phrasing, ...]:
        """The phrasings of fact f, read for scoring."""
        if self.prepared is not None:
            return self.prepared[f]
        return _phrasings(self.strong[f], self.weights)


class _Phrasing(NamedTuple):
    """One phrasing of a fact (its title, a question, a keyword ...), read for scoring."""

    units: frozenset[str]  # unique units
    text: str  # the units sorted, for rapidfuzz
    weight: float  # their summed weight
    yearless_weight: float  # ... leaving out years: a question naming no year is not missing the phrasing's


_UNITS_AND_WEIGHT = itemgetter(0, 2)
_UNITS_AND_YEARLESS = itemgetter(0, 3)


def _phrasings(strong: str, weights: Mapping[str, float]) -> tuple[_Phrasing, ...]:
    return tuple(_phrasing(p, weights) for p in strong[1 : strong.index(rd.EXTRAS)].split(rd.PHRASING_BREAK))


def _phrasing(units: str, weights: Mapping[str, float]) -> _Phrasing:
    unique = frozenset(units.split())
    weight = math.fsum(weights.get(u, 0.5) for u in unique) or 1.0
    years = math.fsum(weights.get(u, 0.5) for u in unique if u[0] in "%^")
    return _Phrasing(unique, " ".join(sorted(unique)), weight, (weight - years) or weight)


# --- building the index ------------------------------------------------------------------------------------------


def build_index(knowledge: KnowledgeView, processes: int | None = None, started: rd.Reading | None = None) -> Index:
    """Index `knowledge` (anything with `.facts` and `.entities`, e.g. `bot.knowledge.facts.Knowledge`) once.

    `processes`: 2 reads part of the facts in a worker process (`bot.matching.reading.Reading`); the default does so
    from PARALLEL_FACTS facts on, when this process may run on two cores or more. The index is the same.
    `started`: the reading `start_reading` began on these facts as parsed, used if the facts as validated are
    the same (otherwise stopped, and the facts read afresh); the caller stops it if this is never called.
    """
    if processes is None:
        processes = _processes(len(knowledge.facts))
    translit.load()  # at build time (start, reload), not in the first Latin-letter question
    with collector.paused():
        return _build(knowledge, processes, started)


def start_reading(
    entities: Sequence[object], facts: Sequence[object], processes: int | None = None
) -> rd.Reading | None:
    """Begin reading facts as parsed from YAML, before they are validated, in a worker process: given to
    `build_index`, the worker has had the time validation takes. `entities` and `facts` are the items of the
    knowledge files' `entities` and `facts` lists, in load order. None when one process will do (see
    `build_index`) or the items are not all shaped like facts and entities (validation will say how)."""
    if processes is None:
        processes = _processes(len(facts))
    if processes < 2:
        return None
    try:
        names = rd.parsed_names(entities)
        fields = [rd.parsed_fields(item) for item in facts]
        return rd.Reading(names, fields, processes, share=EARLY_WORKER_SHARE)
    except Exception:  # not a fact or an entity (a list, a string, a key missing ...): no early start
        return None


def _processes(facts: int) -> int:
    # POSIX: the worker writes its result to a file descriptor it inherits (`subprocess` passes them there only).
    return 2 if facts >= PARALLEL_FACTS and _cores() >= 2 and os.name == "posix" else 1


def _cores() -> int:
    """Cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _build(knowledge: KnowledgeView, processes: int, started: rd.Reading | None) -> Index:
    facts = tuple(knowledge.facts)
    entities = dict(knowledge.entities)
    names = rd.entity_names(entities)
    fields = rd.fields_of(facts)
    reading = started
    if reading is not None and not reading.matches(names, fields):
        log.info("index: the facts as validated differ from the facts as parsed; reading them afresh")
        reading.close()
        reading = None
    if reading is None:
        reading = rd.Reading(names, fields, processes, share=WORKER_SHARE)
    # A worker may be making the alias table from here on, and then reading part of the facts: meanwhile, what
    # the facts' fields say.
    with reading:
        speakers = tuple(_speaker(f) for f in facts)
        persons = {k for k, v in entities.items() if v.type == "person"}
        actors = tuple(_actor(f, persons) for f in facts)
        people = _people(facts)
        kinds = tuple(f.kind for f in facts)
        date_year = tuple(int(f.date[:4]) for f in facts)
        december = tuple(f.date[5:7] == "12" for f in facts)

        alias_map = reading.aliases()[0]
        alias_lengths: dict[str, set[int]] = {}
        for alias in alias_map:
            alias_lengths.setdefault(alias[0], set()).add(len(alias))
        read = reading.result()
    n = len(facts)
    strong, postings = read.strong, read.postings
    idf_max = math.log((n + 1) / 0.5)
    weights = {u: 0.25 + math.log((n + 1) / (len(p) + 0.5)) / idf_max for u, p in postings.items()}
    for unit in weights:
        if unit[0] == "%":
            weights[unit] = YEAR_UNIT_WEIGHT
    small = n <= SMALL_INDEX

    vocabulary = {u for u in postings if u[0] not in "@#%^"} | {s for alias in alias_map for s in alias}
    spellings: dict[tuple[bool, int], set[str]] = {}
    for word in read.surfaces:
        if len(word) >= 4 and word.isalpha() and word not in tn.STOPWORDS:
            spellings.setdefault((tn.is_cyrillic(word), len(word)), set()).add(word)

    return Index(
        knowledge=knowledge,
        facts=facts,
        kinds=kinds,
        speakers=speakers,
        voices=frozenset(filter(None, speakers)),
        actors=actors,
        people=people,
        strong=tuple(strong),
        weak=tuple(read.weak),
        numbers=tuple(read.figures),
        date_year=date_year,
        december=december,
        phrasing_years=tuple(read.phrased),
        all_years=tuple(read.years),
        holiday_years=tuple(read.holidays),
        year_postings=read.year_postings,
        prepared=tuple(_phrasings(s, weights) for s in strong) if small else None,
        postings=postings,
        weights=weights,
        alias_map=alias_map,
        alias_lengths={k: tuple(sorted(v, reverse=True)) for k, v in alias_lengths.items()},
        partial_aliases=_partial_aliases(alias_map, {rd.entity_unit(k): v.type for k, v in entities.items()}),
        entity_types={rd.entity_unit(k): v.type for k, v in entities.items()},
        new_year_entities=frozenset(unit for alias, (unit, _) in alias_map.items() if alias in tn.NEW_YEAR_PATTERNS),
        vocabulary=frozenset(vocabulary),
        spellings={k: tuple(sorted(v)) for k, v in spellings.items()},
    )


def _people(facts: tuple[Fact, ...]) -> tuple[frozenset[str], ...]:
    """Per fact, the units of the people it involves; facts naming the same people share one set."""
    shared: dict[tuple[str, ...], frozenset[str]] = {}
    out = []
    for fact in facts:
        names = (*fact.people, fact.speaker) if fact.speaker else tuple(fact.people)
        if names not in shared:
            shared[names] = frozenset(map(rd.entity_unit, names))
        out.append(shared[names])
    return tuple(out)


def _partial_aliases(
    alias_map: Mapping[tuple[str, ...], tuple[str, bool]], entity_types: Mapping[str, str]
) -> dict[str, str]:
    """Words of people's multi-word names that belong to one person only ("jinping", "lijian").

    Only people: a word of another name ("Shanghai" of the Shanghai Cooperation Organisation, "capital" of
    an outlet's name) is often an ordinary word or the name of something else.
    """
    owners: defaultdict[str, set[str]] = defaultdict(set)
    for alias, (unit, _) in alias_map.items():
        for word in alias:
            owners[word].add(unit)
    owners = defaultdict(
        set, {w: u for w, u in owners.items() if all(entity_types[x] in ("person", "outlet") for x in u)}
    )
    return {
        word: next(iter(units))
        for word, units in owners.items()
        if len(units) == 1
        and len(word) >= 3
        and (word,) not in alias_map
        and word not in tn.STOPWORDS
        and word not in tn.COMMON_STEMS
    }


def _actor(fact: Fact, persons: Container[str]) -> str | None:
    """Whose words or doings a fact reports, for one-sided kinds: the speaker if a person, else the first person
    (what a foreign ministry says is about someone: "did Xi greet other leaders")."""
    if fact.kind in ("exchange", "meeting"):
        return None  # two-sided: both leaders are actors
    if fact.speaker is not None and fact.speaker in persons:
        return rd.entity_unit(fact.speaker)
    return rd.entity_unit(fact.people[0]) if fact.people else None


def _speaker(fact: Fact) -> str | None:
    if fact.speaker:
        return rd.entity_unit(fact.speaker)
    if fact.kind == "statement" and fact.people:
        return rd.entity_unit(fact.people[0])  # a statement's first person is, by convention, who made it
    return None


# --- analysing the question ----------------------------------------------------------------------------------


class Unit(NamedTuple):
    """A unit of meaning in the question: an '@entity', a stem, a '#figure'."""

    key: str
    weight: float
    kinds: frozenset[str] | None = None  # a kind noun ("meetings") is also answered by facts of these kinds
    credit: float = 1.0  # below 1 when the word was a guessed typo correction
    alt: str | None = None  # an entity the word also stands for ("jinping": Xi Jinping)


@dataclass(frozen=True)
class Query:
    """What the matcher understood of a question (exposed for tests and for explaining answers)."""

    units: tuple[Unit, ...]
    keys: frozenset[str]  # units and years, for recall against phrasings
    text: str  # canonical string for rapidfuzz
    years: frozenset[int]
    numbers: frozenset[str]  # exact figures every answer must contain
    cues: frozenset[str]
    wants_list: bool
    new_year: bool
    person: str | None  # first person named
    persons: tuple[str, ...]  # every person named, in order
    sayer: str | None  # first person or speaking organisation named: whose words "what did X say" asks for
    strict_years: frozenset[int]  # "at the end of 2022": the fact's own date must be in these years
    prospective_years: frozenset[int]  # "plans for 2025": best answered by what was said before 2025 about it
    holiday_years: frozenset[int]  # "greetings for New Year 2025": that holiday, greeted at the end of 2024
    measures: frozenset[str]  # units a figure is asked in ("barrels", "dollars"): the fact must use them
    noun_kinds: frozenset[str]  # kinds named by nouns ("meetings", "quotes", "trade")
    named: frozenset[str]  # entity units of named things (people, places, organisations, outlets, events)
    corrections: tuple[tuple[str, str], ...]  # (typed, understood as)

    @functools.cached_property
    def says(self) -> bool:
        """Whether the question asks for the words of the person it names ("what did Putin say"): not "who said"
        (someone else's), nor "what did the foreign ministry say about Putin" (an organisation's)."""
        return "say" in self.cues and "who" not in self.cues and self.sayer == self.person

    @functools.cached_property
    def total(self) -> float:
        return sum(u.weight for u in self.units)

    @functools.cached_property
    def probes(self) -> tuple[tuple[str, str, str, float, frozenset[str] | None, float], ...]:
        """Per unit: (key, " key ", " alt " to search Index.strong/weak for, weight, kinds, credit)."""
        return tuple((u.key, _probe(u.key), _probe(u.alt) if u.alt else _NO_PROBE, *u[1:4]) for u in self.units)

    @functools.cached_property
    def measure_probes(self) -> tuple[str, ...]:
        return tuple(map(_probe, self.measures))

    @property
    def specific(self) -> bool:
        """Names something beyond filler words."""
        return any(u.weight > COMMON_WEIGHT for u in self.units)


def _synonym(index: Index, stemmed: str) -> tuple[str, ...] | None:
    """The stems of an English word's synonym (`tn.EN_SYNONYMS`), if the knowledge uses them."""
    synonym = tn.EN_SYNONYMS.get(stemmed)
    if synonym and synonym != (stemmed,) and all(s in index.vocabulary or s in tn.STOPWORDS for s in synonym):
        return synonym
    return None


def _correct(index: Index, token: str) -> tuple[tuple[str, ...], bool] | None:
    """(stems, guessed) of what a word the knowledge does not use probably means, or None (leave it unknown).

    Russian news words are glossed into English and generic synonyms mapped (not guesses); typos are
    corrected to the nearest known spelling, and a Cyrillic name is transliterated (guesses).
    """
    cyrillic = tn.is_cyrillic(token)
    stemmed = tn.stem(token)
    glossed = tn.gloss(token) if cyrillic else None
    if glossed:
        return glossed, False
    synonym = None if cyrillic else _synonym(index, stemmed)
    if synonym:
        return synonym, False
    if len(token) == 3 and not cyrillic:
        # Three letters: only slips in question words ("wen" -> when) and "year"; "cup" must not become "up".
        best = process.extractOne(token, tn.SHORT_SLIP_TARGETS, scorer=OSA.distance, score_cutoff=1)
        return ((tn.stem(best[0]),), False) if best else None
    if len(token) < 4:
        return None
    if cyrillic:
        latin = tn.transliterate(token)
        if tn.stem(latin) in index.vocabulary:
            return (tn.stem(latin),), False
    found = _closest(index, token, cyrillic) or (_closest(index, tn.transliterate(token), False) if cyrillic else None)
    if found:
        return (tn.stem(found),), True
    # Question words and cue words ("waht", "ammount", "qoute").
    limit = 1 if len(token) < 7 else 2
    # These lists are short and common words lie near them: a letter too many must be a doubled one.
    best = process.extractOne(token, tn.QUESTION_WORDS + tn.CUE_SPELLINGS, scorer=OSA.distance, score_cutoff=limit)
    if best and tn.no_stray_letters(token, best[0]):
        return (tn.stem(best[0]),), False
    # A slip in a little word ("betwen"): one plausible slip, first letter kept, as for known words. It stays as
    # spelt, since stopwords are dropped by their spelling.
    if cyrillic:
        return None
    best = process.extractOne(token, tn.FILLER_SPELLINGS, scorer=OSA.distance, score_cutoff=1)
    if best and best[0][0] == token[0] and tn.plausible_typo(token, best[0]) and tn.no_stray_letters(token, best[0]):
        return (best[0],), False
    return None


def _closest(index: Index, token: str, cyrillic: bool) -> str | None:
    """The known spelling nearest to `token` within 1 edit (2 for words of 7+ letters), first letter kept."""
    limit = 1 if len(token) < 7 else 2
    best: tuple[int, int, str] | None = None
    for length in range(len(token) - limit, len(token) + limit + 1):
        pool = index.spellings.get((cyrillic, length))
        if not pool:
            continue
        for word, distance, _ in process.extract(token, pool, scorer=OSA.distance, score_cutoff=limit, limit=5):
            # "paris" is not "parts", "tall" not "talk", "tanks" not "talks"; but a long word one slip away from a
            # common one is that word ("presidnet").
            common = word in tn.COMMON_WORDS and (distance > 1 or len(token) < 6)
            if word[0] != token[0] or common or not tn.plausible_typo(token, word):
                continue
            rank = (int(distance), -len(index.postings.get(tn.stem(word), ())), word)
            if best is None or rank < best:
                best = rank
    return best[2] if best else None


@dataclass
class _Token:
    """One word of the question while it is being analysed."""

    text: str  # case-folded as typed, or the stem a correction put in its place
    stem: str
    caps: bool = False  # typed in capitals ("US", not "us")
    capitalised: bool = False  # typed with a capital letter
    known: bool = True  # the knowledge (or the language tables) know this word
    guessed: bool = False  # a typo correction: likely, not certain
    consumed: bool = False  # used up as a year, figure or question word
    # Another reading: the word as typed, when it was read as another (Russian "декабре" as "december"); or the
    # English of a Russian word kept as typed because it may begin a name ("войну": "war")
    alt: str | None = None
    month: bool = False  # a month name that is also a stopword ("May 2024", not "may I ask")


def _tokens(index: Index, question: str) -> tuple[list[_Token], list[tuple[str, str]], list[str]]:
    """The question's tokens, with typos corrected and Russian news words glossed where the knowledge lacks them;
    the corrections; and the words as typed (case-folded)."""
    out: list[_Token] = []
    corrections: list[tuple[str, str]] = []
    typed: list[str] = []
    for raw in tn.raw_tokens(question)[:MAX_TOKENS]:
        text = raw.casefold()
        stemmed = tn.stem(text)
        typed.append(text)
        known = (
            text[0].isdigit()
            or text in tn.STOPWORDS
            or stemmed in index.vocabulary
            or stemmed in tn.CUE_WORDS
            or stemmed in index.alias_lengths
            or text in tn.COMMON_WORDS
            or stemmed in tn.COMMON_STEMS
        )
        fixed = None if known else _correct(index, text)
        if fixed:
            stems, guessed = fixed
            corrections.append((text, " ".join(stems)))
            out.extend(_Token(s, s, guessed=guessed) for s in stems)
            continue
        english = None
        if known and stemmed in index.alias_lengths and tn.is_cyrillic(text):
            # It may begin a name ("войну" of "войну на Украине"); if it does not, its English matches too.
            glossed = tn.gloss(text)
            if glossed and len(glossed) == 1:
                out.append(_Token(text, stemmed, raw.isupper() and len(raw) > 1, raw[:1].isupper(), alt=glossed[0]))
                continue
        if known and stemmed not in index.alias_lengths:
            if tn.is_cyrillic(text):
                english = tn.gloss(text)
            else:
                english = _synonym(index, stemmed)
                # Not for cue words ("remarks", "said"): they say what kind of answer is wanted, and stay as typed.
                if english and any(s in tn.CUE_WORDS for s in (stemmed, *english)):
                    english = None
        if english:
            # A Russian word some fact uses and a plain English one most facts use, or an English word some fact
            # uses and the synonym most use ("celebrate" and "mark" an anniversary): either may match.
            out.extend(_Token(s, s, alt=stemmed if n == 0 else None) for n, s in enumerate(english))
            continue
        out.append(_Token(text, stemmed, raw.isupper() and len(raw) > 1, raw[:1].isupper(), known))
    return out, corrections, typed


_KIND_ENTITY_TYPES = frozenset({"topic", "event"})  # entities whose names may say which kind of fact is wanted


def analyse(index: Index, question: str, today: datetime.date) -> Query:
    """Tokens, corrections, years, figures, cues and weighted units of a question."""
    tokens, corrections, typed = _tokens(index, question)
    stems = [t.stem for t in tokens]
    # "for New Year 2025", read from the words as typed (glossing makes "Новый 2025 год" "new 2025 год")
    typed_stems = list(map(tn.stem, typed))
    holiday_years = frozenset(int(typed_stems[i]) for i in tn.holiday_year_positions(typed_stems))

    # Years: relative ones first ("last year"), then written ones; other numbers are figures.
    years: set[int] = set()
    for start, end, relative in tn.relative_years(stems, today):
        years.add(relative)
        for t in tokens[start:end]:
            t.consumed = True
    numbers: set[str] = set()
    soft_numbers: set[str] = set()
    strict_years: set[int] = set()
    prospective_years: set[int] = set()
    for i, t in enumerate(tokens):
        if t.consumed or not t.text[0].isdigit():
            continue
        year = tn.year_of(t.text)
        number = None if year else tn.parse_number(t.text)
        if year:
            years.add(year)
            if any(s in tn.STRICT_YEAR_BEFORE for s in stems[max(0, i - 3) : i]):
                strict_years.add(year)
            if any(s in tn.PROSPECTIVE_BEFORE for s in stems[max(0, i - 3) : i]):
                prospective_years.add(year)
        elif number is not None:
            (soft_numbers if number <= SMALL_NUMBER else numbers).add(rd.number_unit(number))
        else:
            continue
        t.consumed = True

    # Question words ("how much", "когда") say which kinds fit; kind nouns stay as content.
    cues: set[str] = set()
    i = 0
    while i < len(tokens):
        for pattern, cue in tn.CUES_BY_FIRST.get(stems[i], ()):
            size = len(pattern)
            if tuple(stems[i : i + size]) == pattern and not any(t.consumed for t in tokens[i : i + size]):
                if cue != "filler":
                    cues.add(str(cue))
                if not any(p in tn.KIND_NOUNS for p in pattern):
                    for t in tokens[i : i + size]:
                        t.consumed = True
                i += size - 1
                break
        i += 1
    # (plural nouns as typed: glossing makes "цитаты" "quote")
    # ... and "how many times did they meet" is answered by the meetings, listed
    wants_list = any(s in tn.LIST_WORDS for s in stems) or not tn.PLURAL_LIST_NOUNS.isdisjoint(typed) or "count" in cues
    new_year = bool(holiday_years) or any(
        tuple(stems[i : i + len(p)]) == p for i in range(len(stems)) for p in tn.NEW_YEAR_PATTERNS
    )
    for i, t in enumerate(tokens):  # "May 2024" is the month; "may I ask" is not
        if t.text == "may":
            t.month = any(0 <= j < len(tokens) and tokens[j].text[0].isdigit() for j in (i - 1, i + 1))
            t.consumed = not t.month

    # Alias phrases become entities (longest first); the remaining words are weighted by rarity.
    units: list[Unit] = []
    extra_keys: set[str] = set()  # the words inside matched aliases, for recall against phrasings
    seen: set[str] = set()
    persons: list[str] = []
    sayer: str | None = None
    i = 0
    while i < len(tokens):
        t = tokens[i]
        if t.consumed:
            i += 1
            continue
        span = _alias_at(index, tokens, stems, i)
        if span:
            unit, size = span
            part = tokens[i : i + size]
            if size > 1:
                extra_keys.update(p.stem for p in part if p.text not in tn.STOPWORDS and p.stem not in tn.COMMON_STEMS)
                extra_keys.update(u for p in part if (u := index.alias_map.get((p.stem,), ("", True))[0]))
            if unit not in seen:
                seen.add(unit)
                # A kind noun in the name of a topic asks for that kind ("New Year greetings", "встречи"); in the
                # name of a platform or a place it does not ("G20 summit" is the G20, not every meeting).
                kinds = None
                if index.entity_types.get(unit) in _KIND_ENTITY_TYPES:
                    kinds = next((tn.KIND_NOUNS[p.stem] for p in part if p.stem in tn.KIND_NOUNS), None)
                credit = GUESS_CREDIT if any(p.guessed for p in part) else 1.0
                weight = max(_weight(index, unit), KIND_NOUN_WEIGHT) if kinds else _weight(index, unit)
                units.append(Unit(unit, weight, kinds, credit))
                if index.entity_types.get(unit) == "person":
                    persons.append(unit)
                if sayer is None and (unit in index.voices or index.entity_types.get(unit) == "person"):
                    sayer = unit
            i += size
            continue
        i += 1
        if (t.text in tn.STOPWORDS and not t.month) or t.stem in seen:
            continue
        seen.add(t.stem)
        # A part of a person's name ("jinping") stands for the person, unless it was itself a guess.
        alt = t.alt or (None if t.guessed else index.partial_aliases.get(t.stem))
        weight = _word_weight(index, t, i - 1)
        if t.stem in tn.KIND_NOUNS:
            weight = max(weight, KIND_NOUN_WEIGHT)
        if alt and alt[0] == "@":
            weight = max(min(weight, UNKNOWN_WEIGHT), _weight(index, alt)) if t.known else _weight(index, alt)
            if index.entity_types.get(alt) == "person" and alt not in persons:
                persons.append(alt)
                sayer = sayer or alt
        units.append(Unit(t.stem, weight, tn.KIND_NOUNS.get(t.stem), GUESS_CREDIT if t.guessed else 1.0, alt))
    units += [Unit(n, 1.0) for n in sorted(numbers)] + [Unit(n, SOFT_NUMBER_WEIGHT) for n in sorted(soft_numbers)]
    # Any name of the New Year ("greetings for 2026") may greet the year asked about.
    new_year = new_year or not index.new_year_entities.isdisjoint(u.key for u in units)
    # A year named as a holiday ("New Year 2025") matches phrasings naming that holiday, not that period.
    year_keys = [f"^{y}" if y in holiday_years else f"%{y}" for y in sorted(years)]
    keys = {f"^{y}" for y in years} if new_year else set()
    keys |= {u.key for u in units} | {u.alt for u in units if u.alt} | extra_keys | set(year_keys)
    return Query(
        units=tuple(units),
        keys=frozenset(keys),
        text=" ".join(sorted([u.alt or u.key for u in units] + year_keys)),
        years=frozenset(years),
        numbers=frozenset(numbers),
        cues=frozenset(cues),
        wants_list=wants_list,
        new_year=new_year,
        person=persons[0] if persons else None,
        persons=tuple(persons),
        sayer=sayer,
        strict_years=frozenset(strict_years),
        prospective_years=frozenset(prospective_years),
        holiday_years=holiday_years,
        measures=frozenset(u.key for u in units if u.key in tn.MEASURE_UNITS),
        noun_kinds=frozenset(k for u in units if u.kinds for k in u.kinds),
        named=frozenset(u.key for u in units if index.entity_types.get(u.key, "topic") != "topic"),
        corrections=tuple(corrections),
    )


def _alias_at(index: Index, tokens: list[_Token], stems: list[str], i: int) -> tuple[str, int] | None:
    """(entity unit, number of tokens) of the longest alias starting at token i, if any."""
    for size in index.alias_lengths.get(stems[i], ()):
        found = index.alias_map.get(tuple(stems[i : i + size]))
        if found is None or any(t.consumed for t in tokens[i : i + size]):
            continue
        unit, needs_caps = found
        if needs_caps and not all(t.caps for t in tokens[i : i + size]):
            continue
        return unit, size
    return None


def _word_weight(index: Index, t: _Token, position: int) -> float:
    """How much a content word counts: generic filler little, words the knowledge never uses most."""
    if t.text in tn.COMMON_WORDS or t.stem in tn.COMMON_STEMS:
        return COMMON_WEIGHT
    if t.stem in tn.MONTH_STEMS and t.stem not in index.weights:
        return MONTH_WEIGHT  # a detail of the date ("in March 2023", "в марте"), not a subject the knowledge lacks
    if not t.known:
        # Names the knowledge never uses weigh most; Russian word forms it lacks and very short words
        # (particles, initials, slips) are weaker evidence.
        if len(t.text) <= 3:
            return SHORT_UNKNOWN_WEIGHT
        name_like = not tn.is_cyrillic(t.text) or (t.capitalised and position > 0)
        return UNKNOWN_WEIGHT if name_like else RUSSIAN_UNKNOWN_WEIGHT
    if tn.is_cyrillic(t.text):
        return min(RUSSIAN_WORD_WEIGHT, _weight(index, t.stem))
    return _weight(index, t.stem)


def _weight(index: Index, unit: str) -> float:
    return index.weights.get(unit, UNKNOWN_WEIGHT if unit[0] != "@" else 1.0)


# --- scoring -------------------------------------------------------------------------------------------------


class Scored(NamedTuple):
    position: int  # index of the fact in Index.facts
    score: float  # may exceed 100 with bonuses; shown clamped
    coverage: float

    @property
    def shown(self) -> float:
        """The 0-100 confidence reported: the score, held below the decline line when coverage is too low."""
        score = max(0.0, min(100.0, self.score))
        if self.coverage < MIN_COVERAGE:
            score = min(score, DECLINE_SCORE * self.coverage / MIN_COVERAGE)
        return round(score, 1)


def _allowed(index: Index, q: Query, f: int) -> bool:
    """Hard constraints: the year, exact figures and units asked for, and whose words "what did X say" wants."""
    if q.years and not (
        q.years & index.all_years[f]
        or (
            q.new_year
            and (q.years & index.holiday_years[f] or (index.december[f] and index.date_year[f] + 1 in q.years))
        )
    ):
        return False
    if q.strict_years and index.date_year[f] not in q.strict_years:
        return False
    if q.measures and not all(m in index.strong[f] or m in index.weak[f] for m in q.measure_probes):
        return False
    if q.person and q.says:
        # "What did Putin say" (a verb): Putin's own words, or an exchange or meeting he took part in. "Who said
        # Xi would visit" asks for someone else.
        actor = index.actors[f]
        if (actor or q.person) != q.person or q.person not in index.people[f]:
            return False
    return q.numbers <= index.numbers[f]


def _probe(unit: str) -> str:
    """What to search Index.strong/weak for: the unit with a space each side."""
    return f" {unit} "


_NO_PROBE = "\x02"  # found in no fact


def _coverage(index: Index, q: Query, f: int) -> float:
    """Share of the question's weight the fact explains (a named person or place it lacks counts double)."""
    matched, total = _explained(index, q, f)
    return matched / total if total else 0.0


def _explained(index: Index, q: Query, f: int) -> tuple[float, float]:
    strong, weak, kind = index.strong[f], index.weak[f], index.kinds[f]
    matched = 0.0
    total = q.total
    for unit, probe, alt, weight, kinds, credit in q.probes:
        if probe in strong or unit in index.numbers[f] or (kinds is not None and kind in kinds) or alt in strong:
            matched += weight * credit
        elif probe in weak or alt in weak:
            matched += WEAK_CREDIT * weight * credit
        elif unit in q.named:
            total += weight  # a person or place the fact does not involve counts double
        elif credit < 1 and weight < GUESS_FLOOR:
            total += GUESS_FLOOR - weight  # a guess that matches nothing was probably no typo ("tanks", "talks")
    return matched, total


def _score_all(index: Index, q: Query, candidates: Iterable[int], limit: int = FULL_LIMIT) -> list[Scored]:
    """Candidates scored (best first): coverage, recall of the closest phrasing, rapidfuzz similarity, fit."""
    candidates = list(candidates)
    if not candidates:
        return []
    coverage = {f: _coverage(index, q, f) for f in candidates}
    # Full scoring only for facts that could be answered or suggested: enough coverage, the best by it.
    candidates = [f for f in candidates if coverage[f] >= SUGGEST_COVERAGE]
    if len(candidates) > limit:
        candidates = heapq.nlargest(limit, candidates, key=coverage.__getitem__)
    owners: list[int] = []
    made: list[_Phrasing] = []
    for f in candidates:
        phrasings = index.phrasings(f)
        owners.extend([f] * len(phrasings))
        made.extend(phrasings)
    choices = [m.text for m in made]
    similarity: dict[int, float] = dict.fromkeys(candidates, 0.0)
    # Phrasings and question are stored with their units sorted, so plain ratio is token_sort_ratio, 5x faster.
    for _, value, pos in process.extract(q.text, choices, scorer=fuzz.ratio, limit=None):
        f = owners[pos]
        if value > similarity[f]:
            similarity[f] = value
    expected_kinds = frozenset().union(*(tn.CUE_KINDS[c] for c in q.cues if c in tn.CUE_KINDS))
    weights = index.weights
    out: list[Scored] = []
    recalls: dict[int, float] = dict.fromkeys(candidates, 0.0)
    read = _UNITS_AND_WEIGHT if q.years else _UNITS_AND_YEARLESS
    for f, (units, total) in zip(owners, map(read, made), strict=True):
        hit = q.keys.intersection(units)
        if hit:
            recalls[f] = max(recalls[f], math.fsum(map(weights.__getitem__, hit)) / total)
    for f in candidates:
        recall = recalls[f]
        score = 100 * (0.5 * coverage[f] + 0.3 * min(recall, 1.0) + 0.2 * similarity[f] / 100)
        if q.prospective_years:
            if index.date_year[f] < min(q.prospective_years):
                score += 5  # "plans for 2025": said before 2025 (it mentions 2025, or it would not be a candidate)
        elif q.years:
            # "for New Year 2025": greetings sent at the end of 2024 rather than those of December 2025 (for 2026),
            # though people also say "New Year 2025" for the latter
            greets = (index.date_year[f] + 1,) if index.december[f] else index.holiday_years[f]
            if q.holiday_years.intersection(greets):
                score += 5
            elif index.december[f] and index.date_year[f] in q.holiday_years:
                pass  # dated December 2025, it greets 2026: no bonus for its year
            elif index.date_year[f] in q.years:
                score += 5
            elif q.years & index.phrasing_years[f] or (q.new_year and q.years & index.holiday_years[f]):
                score += 3
        score += _fit(index, q, f, expected_kinds)
        out.append(Scored(f, score, coverage[f]))
    out.sort(key=_POSITION)
    if not q.years:
        # Equally good answers to a question naming no year ("Xi's New Year message"): the latest first (the sorts
        # are stable; a date without a month or day sorts before the dated ones of its year).
        facts = index.facts
        out.sort(key=lambda s: facts[s.position].date, reverse=True)
    out.sort(key=lambda s: (-round(s.score, 6), -s.coverage))
    return out


_POSITION = itemgetter(0)


def _fit(index: Index, q: Query, f: int, expected_kinds: frozenset[str]) -> float:
    """Points for the fact being the kind of answer the question asks for, and about the right person."""
    kind, points = index.kinds[f], 0.0
    if expected_kinds:  # question words: when, where, how much, who said
        points += 5 if kind in expected_kinds else -3
    if q.noun_kinds:  # nouns: meetings, quotes, trade
        points += 4 if kind in q.noun_kinds else -2
    says = q.says
    actor = index.actors[f]
    if q.person and actor:
        # "What did Putin say (about Trump)": the words must be the first person's, not a report about someone
        # else; "Putin plans ...": a fact about Putin rather than one only mentioning him.
        if actor == q.person:
            points += 6
        elif says:
            points -= 20
        else:
            points -= 5
    if "amount" in q.cues and not index.numbers[f] - {rd.DAY_UNITS.get(index.facts[f].date[8:])}:
        points -= 5  # "how much": a fact with a figure (not merely the day of its date) answers better
    if "who" in q.cues and not index.people[f]:
        points -= 6  # "who ...?" is answered by a fact naming people
    if "howto" in q.cues:
        points -= 10  # "how do I ...": instructions, which no fact gives
    return points


def _year_facts(index: Index, q: Query) -> set[int]:
    """Facts a question's years allow: dated in or mentioning them, or greeting them as a New Year."""
    allowed: set[int] = set()
    for year in q.years:
        allowed.update(index.year_postings.get(f"%{year}", ()))
        if q.new_year:
            allowed.update(index.year_postings.get(f"^{year}", ()))
            allowed.update(index.year_postings.get(f"12/{year - 1}", ()))
    return allowed


def _candidates(index: Index, q: Query, constrained: bool) -> list[int]:
    """Up to CANDIDATE_LIMIT facts sharing the most question weight, within the hard constraints.

    Posting lists are read rarest first, and common ones are skipped once POSTING_BUDGET entries have been
    read, so a question costs about the same on 100 or 100,000 facts. Years and exact figures narrow the
    search before that, through their own posting lists.
    """
    required: set[int] | None = None
    if constrained:
        if q.years:
            required = _year_facts(index, q)
        for number in q.numbers:
            facts = set(index.postings.get(number, ()))
            required = facts if required is None else required & facts
        if required is not None and not required:
            return []
    units = sorted(q.units, key=lambda u: len(index.postings.get(u.key, ())))
    gathered: dict[int, float] = {}
    spent = 0
    for unit in units:
        posting: Collection[int] = index.postings.get(unit.key, ())
        if unit.alt:
            posting = set(posting) | set(index.postings.get(unit.alt, ()))
        size = len(posting)
        if gathered and spent + size > POSTING_BUDGET:
            break  # the remaining units are commoner still
        spent += size
        for f in posting:
            if required is None or f in required:
                gathered[f] = gathered.get(f, 0.0) + unit.weight
    if required is not None and len(required) <= CANDIDATE_LIMIT:
        for f in required:  # few enough: every fact the years or figures allow is considered
            gathered.setdefault(f, 0.0)
    kinds = {k for u in q.units if u.kinds for k in u.kinds}
    if kinds and len(index.facts) <= SMALL_INDEX:  # "all quotes": facts of that kind, whatever their words
        for f, kind in enumerate(index.kinds):
            if kind in kinds and (required is None or f in required):
                gathered.setdefault(f, 0.0)
    found = list(gathered)
    if len(found) > CANDIDATE_LIMIT:
        found = heapq.nlargest(CANDIDATE_LIMIT, found, key=gathered.__getitem__)
    return [f for f in found if _allowed(index, q, f)] if constrained else found


# --- answering -----------------------------------------------------------------------------------------------


def _declined(question: str, score: float = 0.0, suggestions: Iterable[Fact] = ()) -> Answer:
    return Answer(question, False, (), round(max(0.0, min(100.0, score)), 1), tuple(suggestions), low_confidence=True)


def _year_list(index: Index, question: str, q: Query) -> Answer:
    """'What happened in 2024?': the facts dated in those years, exchanges and meetings first. None dated in
    them: declined, offering the facts that mention them or greet them as a New Year ("plans for 2026")."""
    order = {"exchange": 0, "meeting": 1, "anniversary": 2, "trade": 3, "statement": 4, "quote": 5, "context": 6}

    def key(f: int) -> tuple[int, str, int]:
        return order.get(index.kinds[f], 9), index.facts[f].date, f

    chosen = sorted({f for y in q.years for f in index.year_postings.get(f"={y}", ())}, key=key)
    if not chosen:
        postings = index.year_postings
        mention = sorted({f for y in q.years for p in (f"%{y}", f"^{y}") for f in postings.get(p, ())}, key=key)
        return _declined(question, 0.0, tuple(index.facts[f] for f in mention[:MAX_SUGGESTIONS]))
    facts = tuple(index.facts[f] for f in chosen[:LIST_LIMIT])
    return Answer(question, True, facts, 100.0, (), is_list=len(facts) > 1)


def answer(index: Index, question: str, today: datetime.date) -> Answer:
    """The reply to `question` ("today" resolves "last year" and the like)."""
    question = question or ""
    q = analyse(index, translit.read_as_russian(question), today)
    if not q.specific and not q.numbers:
        if q.years and (q.wants_list or not q.units or not q.specific):
            return _year_list(index, question, q)
        return _declined(question)

    ranked = _score_all(index, q, _candidates(index, q, constrained=True))
    best = ranked[0] if ranked else None
    if best is None:
        return _declined(question, 0.0, _suggest(index, q, ranked))
    if best.coverage < MIN_COVERAGE:
        # A fact that explains enough of the question, scored about as well, answers it instead.
        covering = next((s for s in ranked if s.coverage >= MIN_COVERAGE), None)
        if covering is not None and covering.score >= best.score - CLOSE_MARGIN:
            best = covering
    # How much of the question the best fact explains, in weight; a matching year counts too.
    explained = _explained(index, q, best.position)[0] + YEAR_MATCHED * bool(q.years)
    if best.coverage < MIN_COVERAGE or best.score < DECLINE_SCORE or (not q.wants_list and explained < MIN_MATCHED):
        # The reported confidence stays below the line, in proportion to what was missing.
        confidence = min(best.shown, DECLINE_SCORE * min(1.0, explained / MIN_MATCHED), DECLINE_SCORE - 1)
        return _declined(question, confidence, _suggest(index, q, ranked))

    close = [s for s in ranked if s is not best and s.score >= best.score - CLOSE_MARGIN and s.coverage >= MIN_COVERAGE]
    if q.wants_list:
        floor = max(MIN_COVERAGE, 0.8 * best.coverage)
        items = [s for s in ranked if s.coverage >= floor and s.score >= DECLINE_SCORE]
        if q.person and q.cues & {"say", "quote"}:
            spoken = [s for s in items if index.speakers[s.position] == q.person]
            items = spoken or items
        if q.noun_kinds:  # "every New Year message": the exchanges, not every fact that mentions one
            items = [s for s in items if index.kinds[s.position] in q.noun_kinds] or items
        items = items[:LIST_LIMIT]
        if all(s.coverage >= best.coverage for s in items):  # all answer it fully ("all meetings"): in time order
            items.sort(key=lambda s: (index.facts[s.position].date, s.position))
        if len(items) > 1:
            facts = tuple(index.facts[s.position] for s in items)
            return Answer(question, True, facts, best.shown, (), is_list=True)
    suggestions = tuple(index.facts[s.position] for s in close[:MAX_SUGGESTIONS])
    low = best.score < CONFIDENT_SCORE or bool(close and close[0].score >= best.score - 1.0)
    return Answer(question, True, (index.facts[best.position],), best.shown, suggestions, low_confidence=low)


def _suggest(index: Index, q: Query, ranked: list[Scored]) -> tuple[Fact, ...]:
    """'Did you mean' for a declined question: near misses, or good matches outside the year/figure asked."""
    near = [s for s in ranked if s.coverage >= SUGGEST_COVERAGE and s.score >= DECLINE_SCORE - 15]
    if not near and (q.years or q.numbers or q.measures or q.strict_years or (q.person and "say" in q.cues)):
        unconstrained = _score_all(index, q, _candidates(index, q, constrained=False), limit=SUGGEST_LIMIT)
        near = [s for s in unconstrained if s.coverage >= MIN_COVERAGE]
    if not near:
        return tuple(index.facts[f] for f in _part_matches(index, q))
    return tuple(index.facts[s.position] for s in near[:MAX_SUGGESTIONS])


def _part_matches(index: Index, q: Query) -> list[int]:
    """For a question naming several specific things that no fact has together ("BRICS summit in Kazan"): per
    thing, in the order asked, the fact having it that explains most of the question."""
    parts = [u.key for u in q.units if u.key in q.named and u.weight >= PART_WEIGHT]
    if len(parts) < 2:
        return []
    candidates = _candidates(index, q, constrained=True)
    found: list[int] = []
    for unit in parts:
        probe = _probe(unit)
        having = [(_coverage(index, q, f), f) for f in candidates if probe in index.strong[f] and f not in found]
        coverage, best = max(having, key=itemgetter(0), default=(0.0, None))
        if best is not None and coverage >= PART_COVERAGE:
            found.append(best)
    return found[:MAX_SUGGESTIONS]
