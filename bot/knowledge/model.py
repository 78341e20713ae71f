"""The fact record format: the typed model every knowledge file is checked against.

This module owns the shape of a fact, an entity (the shared aliases) and a knowledge file, as pydantic
models. The validator (`bot.knowledge.facts`) and the JSON Schema in `knowledge/schema.json` (used by editors) are
both derived from these classes, so the format is defined in exactly one place. Field descriptions here
become the hover text maintainers see in their editor.
"""

from __future__ import annotations

import datetime as dt
import functools
import typing
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Kind = Literal["exchange", "meeting", "anniversary", "trade", "quote", "statement", "context"]
KINDS: tuple[Kind, ...] = typing.get_args(Kind)

EntityType = Literal["person", "place", "organisation", "platform", "outlet", "topic", "event"]

ID_PATTERN = r"^[a-z0-9]+(?:-[a-z0-9]+)*$"
DATE_PATTERN = r"^\d{4}(?:-\d{2}(?:-\d{2})?)?$"


@functools.lru_cache(maxsize=1 << 16)  # many facts share a date; a big base validates it once, not per fact
def check_partial_date(value: str) -> str:
    """Accept YYYY, YYYY-MM or YYYY-MM-DD naming a real calendar date."""
    parts = [int(p) for p in value.split("-")]
    year, month, day = parts + [1] * (3 - len(parts))
    try:
        dt.date(year, month, day)
    except ValueError as exc:
        raise ValueError(f"'{value}' is not a real date ({exc})") from None
    return value


class Source(BaseModel):
    """Where a fact comes from: an article of the corpus and words copied from it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    article: str = Field(description="Corpus id of the article (the `id:` in the header of a file in corpus/).")
    excerpt: str = Field(
        min_length=1,
        description="Words copied verbatim from the article that support the fact. Only whitespace and "
        "typographic quotes/dashes may differ.",
    )


class Fact(BaseModel):
    """One fact the bot can tell, with its provenance."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=ID_PATTERN, description="Stable, unique, human-readable id, e.g. putin-beijing-2022-02.")
    kind: Kind = Field(description="What sort of fact: " + ", ".join(KINDS) + ".")
    title: str = Field(min_length=3, max_length=60, description="Short title shown on buttons and in lists.")
    date: str = Field(
        pattern=DATE_PATTERN,
        description="When it happened: 'YYYY', 'YYYY-MM' or 'YYYY-MM-DD'. Quote it so YAML keeps it a string.",
    )
    date_certainty: Literal["exact", "inferred", "approximate"] = Field(
        default="exact",
        description="exact: the article prints the date; inferred: worked out from the text (say how in "
        "date_note); approximate: the article is vague (say what it says in date_note).",
    )
    date_note: str | None = Field(
        default=None,
        description="How the date was derived and how sure it is. Required unless date_certainty is exact.",
    )
    people: list[str] = Field(default_factory=list, description="Entity ids (aliases.yaml) of the people involved.")
    places: list[str] = Field(default_factory=list, description="Entity ids (aliases.yaml) of the places involved.")
    topics: list[str] = Field(
        default_factory=list, description="Entity ids (aliases.yaml) of organisations, platforms and subjects."
    )
    reported_by: list[str] = Field(
        default_factory=list,
        description="Entity ids of the outlets or agencies the article credits (Xinhua, CCTV ...).",
    )
    exchange: str | None = Field(
        default=None, description="Id of the New Year exchange fact (kind: exchange) this fact belongs to."
    )
    related: list[str] = Field(default_factory=list, description="Ids of other facts worth reading next.")
    text: str = Field(min_length=10, description="The answer as a person should read it: one to three sentences.")
    questions: list[str] = Field(
        min_length=1,
        description="Ways a user might ask for this fact (English, and Russian for important facts).",
    )
    keywords: list[str] = Field(default_factory=list, description="Extra keywords and aliases specific to this fact.")
    speaker: str | None = Field(default=None, description="Quotes: entity id of who said it.")
    words: str | None = Field(default=None, description="Quotes: the exact words, verbatim from the article.")
    said_via: str | None = Field(
        default=None, description="Quotes: where or how it was said, e.g. 'New Year message, as reported by Xinhua'."
    )
    occasion: str | None = Field(
        default=None, description="Quotes: the occasion, e.g. 'New Year greetings, end of 2024'."
    )
    sources: list[Source] = Field(min_length=1, description="One or more article excerpts that support the fact.")

    _check_date = field_validator("date")(classmethod(lambda cls, v: check_partial_date(v)))

    @model_validator(mode="after")
    def _kind_rules(self) -> Fact:
        if self.kind == "quote":
            missing = [f for f in ("speaker", "words", "occasion") if not getattr(self, f)]
            if missing:
                raise ValueError(f"a quote needs {', '.join(missing)}")
        if self.date_certainty != "exact" and not self.date_note:
            raise ValueError(
                f"date_certainty is {self.date_certainty}: add a date_note saying how the date was derived"
            )
        return self

    @property
    def year(self) -> int:
        return int(self.date[:4])


class Entity(BaseModel):
    """A person, place, organisation or topic that many facts mention, with every name users type for it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=ID_PATTERN, description="Id that facts use in people/places/topics/reported_by/speaker.")
    type: EntityType = Field(description="What it is.")
    name: str = Field(min_length=1, description="The name shown to users.")
    aliases: list[str] = Field(
        default_factory=list,
        description="Other names and spellings users type, in any language (e.g. Xi, President Xi, Си Цзиньпин).",
    )


class KnowledgeFile(BaseModel):
    """One YAML file under knowledge/: a list of facts, or (aliases.yaml) a list of entities."""

    model_config = ConfigDict(extra="forbid")

    facts: list[Fact] = Field(default_factory=list, description="The facts in this file.")
    entities: list[Entity] = Field(default_factory=list, description="Shared entities and their aliases.")
