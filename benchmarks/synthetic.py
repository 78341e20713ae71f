"""Deterministic synthetic knowledge bases of any size, with questions, for the matching benchmark.

This module owns the invented world used to measure matching at scale: leaders, cities, countries, topics
and outlets with English and Russian aliases, and facts of every kind (meetings, New Year exchanges, trade
figures, anniversaries, quotes, statements, context) whose titles, texts, phrasings and keywords read like
the real ones. It also writes questions a person might type about those facts (keywords, full questions,
typos, Russian), each with the facts that answer it, and questions nothing answers. Same size and seed,
same base: nothing here depends on the clock or on global random state.
"""

from __future__ import annotations

import dataclasses
import random
import types
from typing import Any

from bot.knowledge import collector
from bot.knowledge.facts import Knowledge
from bot.knowledge.model import Entity, Fact

MONTHS = (
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
)  # fmt: skip
_SYLLABLES = [
    "ka",
    "ri",
    "no",
    "va",
    "le",
    "to",
    "mi",
    "sa",
    "do",
    "ru",
    "an",
    "el",
    "or",
    "is",
    "ta",
    "ne",
    "ko",
    "lu",
    "be",
    "gar",
    "vin",
    "dor",
    "mel",
    "tor",
    "san",
    "vel",
    "kor",
    "len",
    "mar",
    "sol",
    "dan",
    "fer",
    "gol",
    "hal",
    "jen",
    "kas",
    "lom",
    "nor",
    "pel",
    "rad",
    "sel",
    "tam",
    "vor",
    "zan",
    "bri",
    "cla",
    "dre",
    "fro",
    "gri",
    "pra",
    "tra",
    "sto",
]
_LAT_TO_CYR = {
    "a": "а", "b": "б", "c": "к", "d": "д", "e": "е", "f": "ф", "g": "г", "h": "х", "i": "и", "j": "дж",
    "k": "к", "l": "л", "m": "м", "n": "н", "o": "о", "p": "п", "r": "р", "s": "с", "t": "т", "u": "у",
    "v": "в", "z": "з", "y": "й", "w": "в", "x": "кс", "q": "к",
}  # fmt: skip
TOPICS = (
    "energy", "oil", "gas", "nuclear power", "space", "satellites", "railways", "shipping", "ports", "grain",
    "fertiliser", "fisheries", "tourism", "education", "health care", "vaccines", "banking", "currency swaps",
    "payments", "technology", "semiconductors", "artificial intelligence", "telecoms", "culture", "sport",
    "climate", "forests", "water", "security", "border", "customs", "investment", "infrastructure", "bridges",
    "pipelines", "aviation", "shipbuilding", "mining", "metals", "timber", "textiles", "cars", "machinery",
    "pharmaceuticals", "agriculture", "food safety", "science", "research", "students", "media", "film",
    "museums", "archives", "languages", "youth", "veterans", "disaster relief", "migration", "labour",
)  # fmt: skip
ADJECTIVES = (
    "strong", "steady", "lasting", "deep", "broad", "mutual", "practical", "strategic", "honest", "open",
    "reliable", "balanced", "dynamic", "peaceful", "fruitful", "solid", "growing", "historic", "constructive",
    "friendly", "sincere", "resilient", "lively", "patient", "bold", "shared", "fair", "stable", "warm", "bright",
)  # fmt: skip
NOUNS = (
    "friendship", "partnership", "trust", "cooperation", "dialogue", "bridge", "foundation", "river", "road",
    "harvest", "lighthouse", "garden", "compass", "anchor", "engine", "horizon", "path", "voyage", "alliance",
    "neighbourhood", "future", "momentum", "spirit", "promise", "covenant", "balance", "progress", "prosperity",
    "security", "stability", "heritage", "legacy", "vision", "commitment", "understanding", "coordination",
)  # fmt: skip
VERBS = (
    "grow", "deepen", "prevail", "endure", "flourish", "advance", "strengthen", "expand", "thrive", "continue",
    "succeed", "mature", "unite", "widen", "rise", "last",
)  # fmt: skip
OUTLETS = (
    "Morning Wire", "Harbour Post", "Eastern Ledger", "Northern Courier", "Daily Meridian", "State Radio",
    "Capital Gazette", "Evening Herald", "Pacific Observer", "Central Telegraph", "Frontier News", "Atlas Agency",
)  # fmt: skip
OUT_OF_SCOPE = (
    "weather in Paris", "football results", "recipe for borscht", "bitcoin price today", "How tall is Mount Fuji?",
    "Who won the World Cup?", "best pizza in Naples", "What is the capital of Peru?", "stock market crash",
    "Какая погода в Лондоне?", "Olympics 1936", "Beatles concert tour", "how to learn guitar",
)  # fmt: skip


@dataclasses.dataclass(frozen=True)
class Question:
    q: str
    expect: tuple[str, ...]  # fact ids that answer it; () when nothing should
    signature: tuple[Any, ...] = ()  # what it asks (kind, who, where, when): facts with it answer equally well


@dataclasses.dataclass(frozen=True)
class SyntheticBase:
    entities: list[dict[str, Any]]
    facts: list[dict[str, Any]]
    answers: list[frozenset[tuple[Any, ...]]]  # per fact, the signatures of the questions it answers
    questions: list[Question]  # in scope and out of scope, interleaved


def to_cyrillic(name: str) -> str:
    return "".join(_LAT_TO_CYR.get(ch, ch) for ch in name.lower()).capitalize()


def _name(rng: random.Random, used: set[str], parts: int) -> str:
    """A new pronounceable name; one syllable longer whenever the short ones run out."""
    for attempt in range(10_000):
        name = "".join(rng.choice(_SYLLABLES) for _ in range(parts + attempt // 50)).capitalize()
        if name not in used and len(name) >= 4:
            used.add(name)
            return name
    raise RuntimeError("no new name found")


def _typo(rng: random.Random, word: str) -> str:
    """One slip: a dropped, doubled or swapped letter (never the first one)."""
    if len(word) < 5:
        return word
    i = rng.randrange(1, len(word) - 1)
    kind = rng.randrange(3)
    if kind == 0:
        return word[:i] + word[i + 1 :]
    if kind == 1:
        return word[:i] + word[i] + word[i:]
    return word[:i] + word[i + 1] + word[i] + word[i + 2 :]


def _entities(rng: random.Random, n_facts: int) -> dict[str, list[dict[str, Any]]]:
    used: set[str] = set()
    countries = []
    for _ in range(max(12, n_facts // 400)):
        base = _name(rng, used, 2)
        countries.append({"id": f"country-{base.lower()}", "type": "place", "name": f"{base}ia",
                          "aliases": [f"{base}ia", f"{base}ian", to_cyrillic(base + "ия")]})  # fmt: skip
    people = []
    for _ in range(max(20, n_facts // 40)):
        first, last = _name(rng, used, 2), _name(rng, used, rng.choice((2, 3)))
        country = rng.choice(countries)
        role = rng.choice(("President", "Prime Minister", "Foreign Minister", "Ambassador"))
        adjective = country["aliases"][1]
        people.append({"id": f"{first}-{last}".lower(), "type": "person", "name": f"{first} {last}",
                       "aliases": [last, f"{first} {last}", f"{role} {last}", f"{adjective} {role.lower()}",
                                   to_cyrillic(last), f"{to_cyrillic(first)} {to_cyrillic(last)}"],
                       "role": role, "country": country["id"]})  # fmt: skip
    cities = []
    for _ in range(max(20, n_facts // 60)):
        base = _name(rng, used, rng.choice((2, 3)))
        cities.append({"id": f"city-{base.lower()}", "type": "place", "name": base,
                       "aliases": [base, to_cyrillic(base)], "country": rng.choice(countries)["id"]})  # fmt: skip
    topics = [{"id": "topic-" + t.replace(" ", "-"), "type": "topic", "name": t.capitalize(), "aliases": [t]}
              for t in TOPICS]  # fmt: skip
    topics += [
        {"id": "trade", "type": "topic", "name": "Trade", "aliases": ["trade", "commerce", "turnover", "торговля"]},
        {"id": "new-year", "type": "topic", "name": "New Year greetings",
         "aliases": ["New Year", "New Year message", "greetings", "новогоднее поздравление"]},
        {"id": "meeting", "type": "topic", "name": "Meetings",
         "aliases": ["meeting", "visit", "visited", "talks", "summit", "встреча", "визит"]},
        {"id": "anniversary", "type": "topic", "name": "Anniversaries", "aliases": ["anniversary", "годовщина"]},
    ]  # fmt: skip
    outlets = [{"id": "outlet-" + o.lower().replace(" ", "-"), "type": "outlet", "name": o, "aliases": [o]}
               for o in OUTLETS]  # fmt: skip
    return {"countries": countries, "people": people, "cities": cities, "topics": topics, "outlets": outlets}


def _date(rng: random.Random) -> tuple[int, int, int]:
    return rng.randrange(1995, 2026), rng.randrange(1, 13), rng.randrange(1, 29)


def _fact(
    rng: random.Random, i: int, world: dict[str, list[dict[str, Any]]]
) -> tuple[dict[str, Any], frozenset[tuple[Any, ...]], Question]:
    """One fact, the questions it answers (as signatures) and one question about it, worded differently from
    the fact's own phrasings."""
    people, cities, topics = world["people"], world["cities"], world["topics"][:-4]
    outlet = rng.choice(world["outlets"])
    p1, p2 = rng.sample(people, 2)
    city = rng.choice(cities)
    t1, t2 = rng.sample(topics, 2)
    year, month, day = _date(rng)
    mname = MONTHS[month - 1]
    last1, last2 = p1["aliases"][0], p2["aliases"][0]
    topic1, topic2 = t1["aliases"][0], t2["aliases"][0]
    kind = rng.choice(("meeting", "meeting", "quote", "quote", "statement", "trade", "exchange", "anniversary",
                       "context"))  # fmt: skip
    base: dict[str, Any] = {"reported_by": [outlet["id"]], "keywords": []}
    also: list[tuple[Any, ...]] = []  # further questions the fact answers as well as any other
    sig: tuple[object, ...]
    variants: list[tuple[str, tuple[object, ...]]]  # (question, its signature)
    if kind == "meeting":
        fid = f"{last1.lower()}-{city['name'].lower()}-{year}-{month:02d}-{i}"
        base |= {
            "title": f"{last1} visits {city['name']} ({mname} {year})",
            "date": f"{year}-{month:02d}",
            "people": [p1["id"], p2["id"]], "places": [city["id"]], "topics": ["meeting", t1["id"], t2["id"]],
            "text": f"{p1['name']} visited {city['name']} in {mname} {year} and held talks with {p2['name']} on "
            f"{topic1} and {topic2}. Both sides called the visit {rng.choice(ADJECTIVES)}, {outlet['name']} reported.",
            "questions": [f"When did {last1} visit {city['name']}?", f"{last1} visit to {city['name']} {year}",
                          f"{last1} {last2} talks {city['name']}", f"What did {last1} and {last2} discuss in "
                          f"{city['name']}?", f"{last1} trip {mname} {year}",
                          f"Когда {to_cyrillic(last1)} был в {to_cyrillic(city['name'])}е?"],
            "keywords": [f"{mname} {year}", f"{topic1} talks"],
        }  # fmt: skip
        sig = ("visit", p1["id"], city["id"], year)
        variants = [(f"{_typo(rng, last1)} {city['name']} {year}", sig),
                    (f"When was {p1['aliases'][2]} in {city['name']} in {year}?", sig),
                    (f"{city['name'].lower()} {last1.lower()} visit {year}", sig),
                    (f"визит {to_cyrillic(last1)} {year}", ("visit", p1["id"], year))]  # fmt: skip
    elif kind in ("quote", "statement"):
        noun, adjective, verb = rng.choice(NOUNS), rng.choice(ADJECTIVES), rng.choice(VERBS)
        words = f"Our {noun} is {adjective} and will {verb}, and {topic1} will {rng.choice(VERBS)} with it."
        fid = f"{last1.lower()}-{kind}-{noun}-{year}-{i}"
        base |= {
            "title": f"{last1}: a {adjective} {noun} ({year})",
            "date": f"{year}-{month:02d}-{day:02d}",
            "people": [p1["id"]], "topics": [t1["id"]],
            "text": f"On {day} {mname} {year} {p1['name']} said the {noun} between the two countries was "
            f"{adjective} and would {verb}, mentioning {topic1}.",
            "questions": [f"What did {last1} say about the {noun}?", f"{last1} {noun} {adjective}",
                          f"{adjective} {noun} {verb}", f"Who said the {noun} will {verb}?",
                          f"{last1} quote {year}"],
            "keywords": [f"{adjective} {noun}", f"will {verb}"],
        }  # fmt: skip
        if kind == "quote":
            base |= {"speaker": p1["id"], "words": words, "occasion": f"{rng.choice(('press', 'state'))} "
                     f"conference, {mname} {year}", "said_via": f"as reported by {outlet['name']}"}  # fmt: skip
        variants = [(f"What did {last1} say about {noun} in {year}?", ("said", p1["id"], noun, year)),
                    (f"{noun} will {verb} {last1}", ("said", p1["id"], noun, verb)),
                    (f"{_typo(rng, last1)} {adjective} {noun}", ("said", p1["id"], adjective, noun))]  # fmt: skip
    elif kind == "trade":
        amount = rng.randrange(11, 400)
        c1 = next(c for c in world["countries"] if c["id"] == p1["country"])
        fid = f"trade-{c1['name'].lower()}-{year}-{i}"
        base |= {
            "title": f"{c1['name']} trade passes ${amount} billion ({year})",
            "date": f"{year}",
            "places": [c1["id"]], "topics": ["trade", t1["id"]], "people": [p1["id"]],
            "text": f"Trade with {c1['name']} passed ${amount} billion in {year}, led by {topic1}, {last1} said.",
            "questions": [f"How much was {c1['name']} trade in {year}?", f"{c1['name']} trade {year}",
                          f"Did trade with {c1['name']} pass {amount} billion?", f"{topic1} trade {year}"],
            "keywords": [f"${amount} billion", f"{amount} billion"],
        }  # fmt: skip
        sig = ("trade", c1["id"], year)
        variants = [(f"how much trade {c1['aliases'][1]} {year}", sig), (f"{c1['name']} trade volume {year}", sig),
                    (f"trade {amount} billion {c1['name']}", ("trade", c1["id"], amount))]  # fmt: skip
    elif kind == "exchange":
        fid = f"exchange-{last1.lower()}-{last2.lower()}-{year}-{i}"
        base |= {
            "title": f"New Year exchange, {last1} and {last2}, end of {year}",
            "date": f"{year}-12-31",
            "people": [p1["id"], p2["id"]], "topics": ["new-year", t1["id"]],
            "text": f"On 31 December {year} {p1['name']} and {p2['name']} exchanged New Year greetings and praised "
            f"their {rng.choice(NOUNS)} and cooperation on {topic1}.",
            "questions": [f"New Year exchange {last1} {last2} {year}", f"What did {last1} and {last2} say at New Year "
                          f"{year + 1}?", f"{last1} {last2} greetings end of {year}"],
            "keywords": [f"New Year {year + 1}", f"end of {year}"],
        }  # fmt: skip
        # "New Year message 2003" may be the one sent at the end of 2003 or the one greeting 2003.
        pair = frozenset((p1["id"], p2["id"]))
        variants = [(f"new year greetings {last2} {last1} {year}", ("greetings", pair, year)),
                    (f"{last1} New Year message {year}", ("greetings", p1["id"], year))]  # fmt: skip
        also = [("greetings", pair, year + 1), ("greetings", p1["id"], year + 1),
                ("greetings", p2["id"], year), ("greetings", p2["id"], year + 1)]  # fmt: skip
    elif kind == "anniversary":
        years = rng.randrange(11, 90)
        fid = f"anniversary-{years}-{last1.lower()}-{year}-{i}"
        base |= {
            "title": f"{years}th anniversary of ties with {city['name']} ({year})",
            "date": f"{year}",
            "people": [p1["id"]], "places": [city["id"]], "topics": ["anniversary"],
            "text": f"{year} marked the {years}th anniversary of ties with {city['name']}, {last1} noted.",
            "questions": [f"{years}th anniversary {city['name']}", f"What anniversary did {city['name']} mark in "
                          f"{year}?", f"anniversary {city['name']} {year}"],
            "keywords": [f"{years}th", f"{years} years"],
        }  # fmt: skip
        variants = [(f"When was the {years}th anniversary with {city['name']}?", ("anniversary", years, city["id"]))]
    else:
        fid = f"context-{topic1.replace(' ', '-')}-{city['name'].lower()}-{year}-{i}"
        base |= {
            "title": f"{topic1.capitalize()} dispute near {city['name']} ({year})",
            "date": f"{year}",
            "places": [city["id"]], "topics": [t1["id"], t2["id"]],
            "text": f"In {year} a dispute over {topic1} near {city['name']} strained {topic2} plans, according to "
            f"{outlet['name']}.",
            "questions": [f"{topic1} dispute {city['name']}", f"What happened with {topic1} near {city['name']}?",
                          f"{city['name']} {topic2} {year}"],
        }  # fmt: skip
        variants = [(f"{topic1} {city['name']} dispute {year}", ("dispute", t1["id"], city["id"], year))]
    fact = {"id": fid, "kind": kind, **base, "sources": [{"article": "synthetic", "excerpt": base["text"]}]}
    question, sig = rng.choice(variants)
    return fact, frozenset([s for _, s in variants] + also), Question(question, (fid,), sig)


def generate(n_facts: int, seed: int = 1949) -> SyntheticBase:
    """A base of `n_facts` facts, its entities, and about one question per 50 facts (at least 40)."""
    rng = random.Random(seed)
    world = _entities(rng, n_facts)
    facts: list[dict[str, Any]] = []
    answers: list[frozenset[tuple[Any, ...]]] = []
    questions: list[Question] = []
    want = max(40, n_facts // 50)
    step = max(1, n_facts // want)
    for i in range(n_facts):
        fact, answered, question = _fact(rng, i, world)
        facts.append(fact)
        answers.append(answered)
        if i % step == 0:
            questions.append(question)
    people = world["people"]
    for j, text in enumerate(OUT_OF_SCOPE * (1 + want // (4 * len(OUT_OF_SCOPE)))):
        questions.insert((j * 7) % (len(questions) + 1), Question(text, ()))
        if j % 3 == 0:  # a known person, a year no fact has
            questions.append(Question(f"{people[j % len(people)]['aliases'][0]} visit 1950", ()))
    entities = [
        {k: v for k, v in e.items() if k in ("id", "type", "name", "aliases")}
        for group in world.values()
        for e in group
    ]
    return SyntheticBase(entities=entities, facts=facts, answers=answers, questions=questions)


def expected_answers(base: SyntheticBase) -> list[Question]:
    """The questions, each with every fact that answers it as well as the one it was written for."""
    by_signature: dict[tuple[Any, ...], list[str]] = {}
    for fact, answered in zip(base.facts, base.answers, strict=True):
        for signature in answered:
            by_signature.setdefault(signature, []).append(fact["id"])
    out = []
    for question in base.questions:
        ids = set(question.expect) | set(by_signature.get(question.signature, ()) if question.expect else ())
        out.append(Question(question.q, tuple(sorted(ids, key=lambda x: x not in question.expect)), question.signature))
    return out


def to_knowledge(base: SyntheticBase) -> Knowledge:
    """Validate the base into the models `bot.knowledge.facts.load_knowledge` builds.

    No YAML parsing, no corpus checks.
    """
    with collector.paused():
        facts = tuple(Fact.model_validate(f) for f in base.facts)
        entities = {e["id"]: Entity.model_validate(e) for e in base.entities}
    return Knowledge(
        facts=facts,
        by_id=types.MappingProxyType({f.id: f for f in facts}),
        entities=types.MappingProxyType(entities),
        articles=types.MappingProxyType({}),
    )
