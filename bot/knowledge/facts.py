"""The knowledge base: loading `knowledge/*.yaml` with line numbers, every validation rule, and `Knowledge`.

This module owns reading the fact files safely (PyYAML's safe C composer, duplicate keys rejected, every
key's line and column kept), checking them against `bot.knowledge.model` and against each other and the corpus
(unique ids, resolvable references, excerpts and quoted words verbatim in their articles, untouched
article text), and reporting every problem in one run as `file:line:col: fact-id: message` that says what
to do. It also implements the `validate`, `facts` and `schema` commands and the cheap fingerprint used
for hot reloading. Nothing here knows about Telegram.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import difflib
import json
import re
import sys
import types
import typing
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Generic, Protocol, TextIO, TypeAlias, TypeVar

import yaml
from pydantic import BaseModel, JsonValue, ValidationError
from pydantic_core import ErrorDetails
from rapidfuzz import fuzz

from bot.knowledge import collector
from bot.knowledge.corpus import Article, CorpusError, normalise, read_article
from bot.knowledge.model import KINDS, Entity, Fact, KnowledgeFile

_LOADER: type[yaml.CSafeLoader] | type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_MAP_TAG = "tag:yaml.org,2002:map"
_SEQ_TAG = "tag:yaml.org,2002:seq"
_STR_TAG = "tag:yaml.org,2002:str"
_MERGE_TAG = "tag:yaml.org,2002:merge"
_REGENERATE = "python -m bot schema"
# Draft-07 is what the VS Code YAML extension validates fully; pydantic's output uses nothing newer.
SCHEMA_DIALECT = "http://json-schema.org/draft-07/schema#"

# Plain data as `yaml.safe_load` builds it from a knowledge file (the safe loader's scalars: text, numbers,
# true/false, null, dates, binary), unchecked until the models validate it.
YamlScalar: TypeAlias = str | int | float | bool | bytes | dt.date | None
YamlValue: TypeAlias = YamlScalar | list["YamlValue"] | dict[YamlScalar, "YamlValue"]
YamlPath: TypeAlias = tuple[YamlScalar, ...]  # keys and list positions, from the document's root
ErrorLoc: TypeAlias = tuple[int | str, ...]  # a pydantic error's `loc`: field names and list positions
M = TypeVar("M", bound=BaseModel)


# --- problems -----------------------------------------------------------------------------------------


def display_path(path: Path) -> str:
    """`path` relative to the current directory when it is inside it, else as given."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except (ValueError, OSError):
        return str(path)


@dataclasses.dataclass(frozen=True)
class Problem:
    """One thing wrong with the knowledge; str() is `file:line:col: fact-id: message` (line/col 1-based)."""

    path: Path
    line: int
    col: int
    fact_id: str | None
    message: str

    def __str__(self) -> str:
        where = display_path(self.path) + (f":{self.line}:{self.col}" if self.line else "")
        return f"{where}: {self.fact_id or '-'}: {self.message}"

    @property
    def sort_key(self) -> tuple[str, int, int, str]:
        return (display_path(self.path), self.line, self.col, self.message)


class KnowledgeError(Exception):
    """The knowledge is invalid; `problems` lists every problem found, sorted by file and line."""

    def __init__(self, problems: Iterable[Problem]):
        self.problems = sorted(problems, key=lambda p: p.sort_key)
        shown = "\n".join(str(p) for p in self.problems[:10])
        more = f"\n... and {len(self.problems) - 10} more" if len(self.problems) > 10 else ""
        super().__init__(f"{len(self.problems)} problem(s) in the knowledge:\n{shown}{more}")


# --- the loaded knowledge -----------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, eq=False)  # eq=False: compared and hashed by identity (one per load)
class Knowledge:
    """A validated snapshot of the knowledge base; replaced as a whole on reload, never mutated."""

    facts: tuple[Fact, ...]  # file order (files by name, facts as written)
    by_id: Mapping[str, Fact]
    entities: Mapping[str, Entity]  # by id; by convention from knowledge/aliases.yaml
    articles: Mapping[str, Article]  # by id, from corpus/

    def article(self, fact: Fact) -> Article:
        """The article of the fact's first source."""
        return self.articles[fact.sources[0].article]

    def exchange_facts(self) -> list[Fact]:
        """The New Year exchange facts (kind: exchange), oldest first."""
        return sorted(self.facts_of_kind("exchange"), key=lambda f: f.date)

    def entity(self, entity_id: str) -> Entity:
        """The entity with this id (KeyError if none: validation guarantees every id a fact uses exists)."""
        return self.entities[entity_id]

    def facts_of_kind(self, kind: str) -> list[Fact]:
        return [f for f in self.facts if f.kind == kind]

    def facts_in_year(self, year: int) -> list[Fact]:
        return [f for f in self.facts if f.year == year]

    def facts_of_exchange(self, exchange_id: str) -> list[Fact]:
        """The facts that belong to an exchange (their `exchange:` names it), in file order."""
        return [f for f in self.facts if f.exchange == exchange_id]


class KnowledgeView(Protocol):
    """What matching, rendering and the digest read of a `Knowledge`: its data, not its methods (so a test may
    hand them a stand-in with just these fields)."""

    @property
    def facts(self) -> Sequence[Fact]: ...
    @property
    def by_id(self) -> Mapping[str, Fact]: ...
    @property
    def entities(self) -> Mapping[str, Entity]: ...
    @property
    def articles(self) -> Mapping[str, Article]: ...


# --- YAML with positions ------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class YamlDocument:
    """Plain data as `yaml.safe_load` would build it, plus the 1-based (line, col) of every key and item."""

    data: YamlValue
    marks: Mapping[YamlPath, tuple[int, int]]
    broken: frozenset[YamlPath]  # values already reported as unreadable (their model errors are not repeated)
    problems: tuple[tuple[YamlPath, int, int, str], ...]  # (path, line, col, message): duplicate keys ...

    def mark(self, path: YamlPath) -> tuple[int, int]:
        """Position of `path`, or of its closest existing parent (e.g. a fact that lacks a field)."""
        for end in range(len(path), -1, -1):
            if path[:end] in self.marks:
                return self.marks[path[:end]]
        return (1, 1)


class YamlSyntaxError(Exception):
    def __init__(self, line: int, col: int, message: str):
        super().__init__(message)
        self.line, self.col, self.message = line, col, message


def _pos(mark: yaml.error.Mark) -> tuple[int, int]:
    return (mark.line + 1, mark.column + 1)


def parse_yaml(text: str) -> YamlDocument:
    """Compose `text` with the safe (C when available) loader and build plain data, keeping positions.

    Raises YamlSyntaxError for text that is not YAML; duplicate keys and unreadable values are returned
    as problems so the rest of the file is still checked.
    """
    loader = _LOADER(text)
    try:
        node = loader.get_single_node()
        builder = _Builder(loader)
        data = None if node is None else builder.build(node, ())
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = _pos(mark) if mark else (1, 1)
        if "single document" in str(exc.context):
            message = "a knowledge file holds one YAML document: remove this `---` and what follows, or move it"
            raise YamlSyntaxError(line, col, message) from None
        what = exc.problem or "not valid YAML"
        context = f" ({exc.context}" if exc.context else ""
        if context and exc.context_mark and mark is not exc.context_mark:
            context += f" at line {exc.context_mark.line + 1}"
        context += ")" if context else ""
        raise YamlSyntaxError(
            line, col, f"YAML syntax error: {what}{context}: fix the indentation or quoting here"
        ) from None
    except yaml.YAMLError as exc:
        raise YamlSyntaxError(1, 1, f"YAML error: {exc}") from None
    finally:
        loader.dispose()
    return YamlDocument(data, builder.marks, frozenset(builder.broken), tuple(builder.problems))


def _unsupported_tag(tag: str) -> str:
    short = tag.replace("tag:yaml.org,2002:", "!!")
    return f"unsupported YAML tag {short}: knowledge files hold plain text, lists and mappings only; remove the tag"


class _Builder:
    """Turns a composed node tree into dicts/lists/scalars, recording marks and refusing duplicate keys."""

    def __init__(self, loader: yaml.CSafeLoader | yaml.SafeLoader):
        self.loader = loader
        self.marks: dict[YamlPath, tuple[int, int]] = {}
        self.broken: set[YamlPath] = set()
        self.problems: list[tuple[YamlPath, int, int, str]] = []
        self._open: set[int] = set()  # nodes being built: an alias to one of them is a cycle

    def problem(self, node: yaml.Node, message: str, path: YamlPath, broken: bool = True) -> None:
        self.problems.append((path, *_pos(node.start_mark), message))
        if broken:  # the value is unusable: the model's complaint about it would only repeat this one
            self.broken.add(path)

    def build(self, node: yaml.Node, path: YamlPath) -> YamlValue:
        self.marks.setdefault(path, _pos(node.start_mark))
        if isinstance(node, yaml.ScalarNode):
            return self.scalar(node, path)
        if id(node) in self._open:
            self.problem(node, "an alias refers to a value that contains it: write the value out instead", path)
            return None
        self._open.add(id(node))
        try:
            if isinstance(node, yaml.SequenceNode):
                if node.tag != _SEQ_TAG:
                    self.problem(node, _unsupported_tag(node.tag), path)
                    return None
                return [self.build(child, (*path, i)) for i, child in enumerate(node.value)]
            if node.tag != _MAP_TAG:
                self.problem(node, _unsupported_tag(node.tag), path)
                return None
            return self.mapping(node, path)
        finally:
            self._open.discard(id(node))

    def mapping(self, node: yaml.Node, path: YamlPath) -> dict[YamlScalar, YamlValue]:
        out: dict[YamlScalar, YamlValue] = {}
        first: dict[YamlScalar, tuple[int, int]] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                self.problem(
                    key_node, "merge keys (<<) are not supported in knowledge files: write the fields out", path, False
                )
                continue
            if not isinstance(key_node, yaml.ScalarNode):
                self.problem(key_node, "a key must be a plain name, not a list or mapping", path, False)
                continue
            key = self.scalar(key_node, path)
            where = _pos(key_node.start_mark)
            if key in first:
                message = (
                    f"duplicate key '{key!s}' (first at line {first[key][0]}): YAML would silently keep only the last "
                    "one; remove or rename one of them"
                )
                self.problems.append((path, *where, message))
                continue
            first[key] = where
            self.marks[(*path, key)] = where
            out[key] = self.build(value_node, (*path, key))
        return out

    def scalar(self, node: yaml.Node, path: YamlPath) -> YamlScalar:
        if node.tag == _STR_TAG:
            text: str = node.value  # what the constructor would return, without its cost (most scalars are text)
            return text
        try:
            value: YamlScalar = self.loader.construct_object(node, deep=True)  # a safe loader's scalar
            return value
        except yaml.constructor.ConstructorError as exc:
            self.problem(node, _unsupported_tag(node.tag) if "constructor" in str(exc.problem) else str(exc), path)
        except (ValueError, TypeError) as exc:  # e.g. 2023-02-30 resolves as a timestamp, then fails
            self.problem(node, f"'{node.value}' cannot be read ({exc}): if it is a date, fix it and quote it", path)
        return None


# --- turning pydantic errors into sentences -----------------------------------------------------------


def _model_of(annotation: object) -> type[BaseModel] | None:
    """The model a field holds directly or as list items (list[Fact] -> Fact)."""
    for candidate in (annotation, *typing.get_args(annotation)):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None


def _item_model(loc: ErrorLoc) -> type[BaseModel]:
    """The model whose fields are found at `loc` (('facts', 3) -> Fact, ('facts', 3, 'sources', 0) -> Source)."""
    model: type[BaseModel] = KnowledgeFile
    for part in loc:
        if isinstance(part, str) and part in model.model_fields:
            model = _model_of(model.model_fields[part].annotation) or model
    return model


def _label(loc: ErrorLoc) -> str:
    """`sources[0].excerpt` for loc ('facts', 3, 'sources', 0, 'excerpt'): the part inside one item."""
    if len(loc) >= 2 and loc[0] in ("facts", "entities") and isinstance(loc[1], int):
        if len(loc) == 2:
            return "this fact" if loc[0] == "facts" else "this entity"
        loc = loc[2:]
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _suggest(value: object, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(str(value), list(choices), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _what(value: object) -> str:
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, dt.date):
        return "a date"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, str):
        return "text"
    return type(value).__name__


def describe_error(error: ErrorDetails) -> str:
    """A pydantic error (from errors()) as a sentence saying what is wrong and what to do."""
    loc: ErrorLoc = tuple(error["loc"])
    kind, value, ctx = error["type"], error.get("input"), error.get("ctx") or {}
    label = _label(loc) or "the file"
    leaf = loc[-1] if loc else ""
    parent = _item_model(loc[:-1])
    field = parent.model_fields.get(leaf) if isinstance(leaf, str) else None
    desc = f" ({field.description})" if field and field.description else ""

    if kind == "missing":
        return f"missing required field '{label}': add `{leaf}:`{desc}"
    if kind == "extra_forbidden":
        allowed = list(parent.model_fields)
        return (
            f"unknown field '{leaf}'{_suggest(leaf, allowed)}: remove it or fix its name "
            f"(allowed: {', '.join(allowed)})"
        )
    if kind == "model_type" or kind == "dict_type":
        if not loc:
            return "the file must be a mapping with a `facts:` list and/or an `entities:` list"
        return f"{label} must be a mapping of fields (name: value), not {_what(value)}"
    if kind == "string_type":
        if value is None:
            return f"{label} is empty: give it a value or remove the line"
        if isinstance(value, dt.date):
            return f"{label} {value} was read by YAML as a date, not text: quote it, e.g. {leaf}: '{value}'"
        if isinstance(value, bool | int | float):
            return f"{label} must be text, not {_what(value)}: quote it, e.g. {leaf}: '{value}'"
        return f"{label} must be text, not {_what(value)}"
    if kind == "list_type":
        if value is None:
            return f"{label} is empty: list at least one item, write `{leaf}: []`, or remove the line"
        example = f"`{leaf}: [{value}]`" if isinstance(value, str) else f"`{leaf}: [...]`"
        return f"{label} must be a list, not {_what(value)}: write {example} or one '- item' per line"
    if kind == "literal_error":
        allowed = re.findall(r"'([^']*)'", str(ctx.get("expected", "")))
        return f"{label} '{value}' is not one of {', '.join(allowed)}{_suggest(value, allowed)}: use one of them"
    if kind == "string_pattern_mismatch":
        if leaf == "date":
            return f"date '{value}' is not YYYY, YYYY-MM or YYYY-MM-DD: write it like date: '2023-12-31' (quoted)"
        if leaf == "id":
            return (
                f"id '{value}' must be lowercase letters and digits joined by single hyphens "
                "(e.g. putin-beijing-2022-02): rename it"
            )
        return f"{label} '{value}' does not match {ctx.get('pattern')}"
    if kind == "too_short":
        return f"{label} is empty: add at least {ctx.get('min_length', 1)} item{desc}"
    if kind == "string_too_short":
        if not str(value).strip():
            return f"{label} is empty: write it out{desc}"
        return f"{label} is too short (at least {ctx.get('min_length')} characters): write it out{desc}"
    if kind == "string_too_long":
        return f"{label} is too long ({len(str(value))} characters, at most {ctx.get('max_length')}): shorten it"
    if kind == "value_error":
        reason = str(ctx.get("error", error.get("msg", "")))
        if leaf == "date":
            return f"date {reason}: use YYYY, YYYY-MM or YYYY-MM-DD with a real month and day"
        if reason.startswith("a quote needs "):
            missing = [m.strip() for m in reason.removeprefix("a quote needs ").split(",")]
            fields = Fact.model_fields
            return f"{reason}: add " + "; ".join(f"`{m}:` ({fields[m].description})" for m in missing if m in fields)
        return reason
    return f"{label}: {error.get('msg', kind)}"


# --- per-file reading ---------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _Item(Generic[M]):
    """One fact or entity as written: raw data (checked even when invalid), model (None if invalid)."""

    path: Path
    doc: YamlDocument
    loc: YamlPath  # ('facts', 3)
    raw: YamlValue
    model: M | None

    @property
    def id(self) -> str | None:
        value = self.raw.get("id") if isinstance(self.raw, dict) else None
        return value if isinstance(value, str) else None

    def get(self, name: str) -> YamlValue:
        return self.raw.get(name) if isinstance(self.raw, dict) else None

    def strings(self, name: str) -> list[tuple[int, str]]:
        value = self.get(name)
        return [(i, v) for i, v in enumerate(value) if isinstance(v, str)] if isinstance(value, list) else []

    def problem(self, sub: YamlPath, message: str) -> Problem:
        line, col = self.doc.mark((*self.loc, *sub))
        return Problem(self.path, line, col, self.id, message)

    def where(self, sub: YamlPath = ()) -> str:
        line, col = self.doc.mark((*self.loc, *sub))
        return f"{display_path(self.path)}:{line}:{col}"


@dataclasses.dataclass
class _FileResult:
    facts: list[_Item[Fact]]
    entities: list[_Item[Entity]]
    problems: list[Problem]


def _validate_item(model: type[M], raw: YamlValue) -> tuple[M | None, list[ErrorDetails]]:
    try:
        return model.model_validate(raw), []
    except ValidationError as exc:
        errors = exc.errors()
    if isinstance(raw, dict) and not any(e["loc"] == () for e in errors):
        errors += _model_rule_errors(model, raw)
    return None, errors


def _model_rule_errors(model: type[BaseModel], raw: dict[YamlScalar, YamlValue]) -> list[ErrorDetails]:
    """Run the model's whole-record rules on an item that failed field checks (pydantic skips them then),
    so a quote without words is reported in the same run as its bad date."""
    errors: list[ErrorDetails] = []
    fields = {k: v for k, v in raw.items() if isinstance(k, str) and k in model.model_fields}
    instance = model.model_construct(None, **fields)
    for decorator in model.__pydantic_decorators__.model_validators.values():
        if decorator.info.mode != "after":
            continue
        try:
            decorator.func(instance)
        except ValueError as exc:
            errors.append({"type": "value_error", "loc": (), "msg": str(exc), "input": raw, "ctx": {"error": exc}})
        except Exception:  # raw values of the wrong type: the field errors already say so
            pass
    return errors


def _error_loc(error: ErrorDetails, raw: YamlValue) -> ErrorLoc:
    """Where to point for an error: a whole-record rule about dates points at date_certainty."""
    loc = tuple(error["loc"])
    about_dates = str(error.get("ctx", {}).get("error", "")).startswith("date_certainty")
    if error["type"] == "value_error" and not loc and about_dates and isinstance(raw, dict) and "date_certainty" in raw:
        return ("date_certainty",)
    return loc


def _parse_knowledge_file(path: Path) -> YamlDocument | Problem:
    """The file parsed, or the problem that stops it being read."""
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        return Problem(path, 1, 1, None, f"not UTF-8 text ({exc.reason} at byte {exc.start}): save it as UTF-8")
    except OSError as exc:
        return Problem(path, 1, 1, None, f"cannot read the file: {exc.strerror}")
    try:
        return parse_yaml(text)
    except YamlSyntaxError as exc:
        return Problem(path, exc.line, exc.col, None, exc.message)


def _parsed_items(doc: YamlDocument, section: str) -> list[YamlValue]:
    """The items of a parsed file's `facts` or `entities` list, as parsed."""
    items = doc.data.get(section) if isinstance(doc.data, dict) else None
    return items if isinstance(items, list) else []


def _check_knowledge_file(path: Path, doc: YamlDocument) -> _FileResult:
    result = _FileResult([], [], [])
    data: YamlValue = {} if doc.data is None else doc.data

    def fact_id_at(loc: YamlPath) -> str | None:
        if len(loc) >= 2 and loc[0] in ("facts", "entities") and isinstance(loc[1], int) and isinstance(data, dict):
            items = data.get(loc[0])
            item = items[loc[1]] if isinstance(items, list) and loc[1] < len(items) else None
            if isinstance(item, dict):
                value = item.get("id")
                return value if isinstance(value, str) else None
        return None

    for loc, line, col, message in doc.problems:
        result.problems.append(Problem(path, line, col, fact_id_at(loc), message))

    def report(errors: list[ErrorDetails], prefix: ErrorLoc, raw: YamlValue) -> None:
        for error in errors:
            loc = (*prefix, *_error_loc(error, raw))
            if any(loc[: len(b)] == b for b in doc.broken):
                continue  # the value could not be read; already reported
            error = {**error, "loc": (*prefix, *error["loc"])}
            line, col = doc.mark(loc)
            result.problems.append(Problem(path, line, col, fact_id_at(loc), describe_error(error)))

    # The file's shape against KnowledgeFile itself (lists emptied: their items are checked one by one,
    # so one bad fact does not hide the others).
    shape: YamlValue = (
        {k: ([] if isinstance(v, list) else v) for k, v in data.items()} if isinstance(data, dict) else data
    )
    try:
        KnowledgeFile.model_validate(shape)
    except ValidationError as exc:
        report(exc.errors(), (), data)
    if not isinstance(data, dict):
        return result

    def check_items(items: YamlValue, section: str, model: type[M], bucket: list[_Item[M]]) -> None:
        if not isinstance(items, list):
            return
        for index, raw in enumerate(items):
            instance, errors = _validate_item(model, raw)
            report(errors, (section, index), raw)
            bucket.append(_Item(path, doc, (section, index), raw, instance))

    check_items(data.get("facts"), "facts", Fact, result.facts)
    check_items(data.get("entities"), "entities", Entity, result.entities)
    return result


# --- the corpus -----------------------------------------------------------------------------------------


def _read_corpus(corpus_dir: Path) -> tuple[dict[str, Article], list[Problem]]:
    articles: dict[str, Article] = {}
    problems: list[Problem] = []
    if not corpus_dir.is_dir():
        return articles, [Problem(corpus_dir, 0, 0, None, "corpus folder not found: pass --corpus or set corpus_dir")]
    for path in sorted(corpus_dir.glob("*.txt")):
        try:
            article = read_article(path)
        except CorpusError as exc:
            message = str(exc).removeprefix(f"{path}: ")
            problems.append(Problem(path, 1, 1, None, f"{message}: fix the header (see the other articles)"))
            continue
        except (OSError, UnicodeDecodeError) as exc:
            problems.append(Problem(path, 1, 1, None, f"cannot read the article: {exc}"))
            continue
        if article.id in articles:
            other = display_path(articles[article.id].path)
            problems.append(
                Problem(
                    path,
                    _header_line(path, "id"),
                    1,
                    None,
                    f"duplicate article id '{article.id}' (also {other}): rename one",
                )
            )
            continue
        if not article.body_intact:
            message = (
                "the article text does not match its sha256 header: the evidence was altered; restore the text "
                "exactly as published (e.g. git checkout the file) instead of editing it"
            )
            problems.append(Problem(path, _header_line(path, "sha256"), 1, None, message))
        articles[article.id] = article
    return articles, problems


def _header_line(path: Path, key: str) -> int:
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if line.startswith(f"{key}:"):
            return number
    return 1


def closest_passage(needle: str, article: Article, width: int = 240) -> tuple[str, str]:
    """The passage of `article` most like `needle` (normalised, whole words, about as long as the needle)
    and a hint naming the first words that differ ("" when there is no passage or no word differs)."""
    hay, want = article.normalised, normalise(needle)
    aligned = fuzz.partial_ratio_alignment(want, hay) if hay and want else None
    if aligned is None:
        return "", ""
    ours, words = want.split(" "), hay.split(" ")
    first, last = hay.count(" ", 0, aligned.dest_start), hay.count(" ", 0, aligned.dest_end)
    # A window with room for the needle's unmatched ends, then trimmed to where the needle's words line up.
    lo, hi = max(0, first - len(ours)), min(len(words), last + 1 + len(ours))
    window = words[lo:hi]
    blocks = [b for b in difflib.SequenceMatcher(None, ours, window, autojunk=False).get_matching_blocks() if b.size]
    if blocks:
        start = max(0, blocks[0].b - blocks[0].a)
        end = min(len(window), blocks[-1].b + len(ours) - blocks[-1].a)
    else:
        start, end = first - lo, last + 1 - lo
    theirs = window[start:end]
    hint = ""
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(None, ours, theirs, autojunk=False).get_opcodes():
        mine, article_words = " ".join(ours[i1:i2]), " ".join(theirs[j1:j2])
        if op == "replace":
            hint = f"the article has `{article_words}` where this has `{mine}`"
        elif op == "delete":
            hint = f"the article does not have `{mine}`"
        elif op == "insert":
            hint = f"the article has `{article_words}` here, which this leaves out"
        if hint:
            break
    passage = " ".join(theirs)
    if len(passage) > width:
        passage = passage[:width].rsplit(" ", 1)[0] + " ..."
    return passage, hint


def _not_verbatim(what: str, text: str, articles: list[Article]) -> str:
    best = max(articles, key=lambda a: fuzz.partial_ratio(normalise(text), a.normalised))
    passage, hint = closest_passage(text, best)
    ids = ", ".join(f"'{a.id}'" for a in articles)
    return (
        f"{what} not verbatim in {'article' if len(articles) == 1 else 'any of the articles'} {ids}"
        + (f"; {hint}" if hint else "")
        + (f"; closest passage in '{best.id}': `{passage}`" if passage else "")
        + "; copy the words exactly (only whitespace and typographic quotes/dashes may differ)"
    )


# --- checking everything ------------------------------------------------------------------------------


def knowledge_files(knowledge_dir: Path) -> list[Path]:
    """The knowledge files, in load order (by name)."""
    return sorted(p for p in knowledge_dir.glob("*.yaml") if p.is_file())


# Called with the `facts` and `entities` items of every knowledge file, as parsed, before they are validated.
OnParsed = Callable[[list[YamlValue], list[YamlValue]], None]


def check_knowledge(
    knowledge_dir: Path, corpus_dir: Path, on_parsed: OnParsed | None = None
) -> tuple[Knowledge | None, list[Problem]]:
    """Read and check everything; the Knowledge (None if there is any problem) and every problem, sorted.

    `on_parsed` is called once every file is parsed without a problem, before the facts are validated (so the
    index can start on them: `bot.matching.loading`)."""
    with collector.paused():
        return _check_knowledge(knowledge_dir, corpus_dir, on_parsed)


def _check_knowledge(
    knowledge_dir: Path, corpus_dir: Path, on_parsed: OnParsed | None
) -> tuple[Knowledge | None, list[Problem]]:
    knowledge_dir, corpus_dir = Path(knowledge_dir), Path(corpus_dir)
    problems: list[Problem] = []
    articles, corpus_problems = _read_corpus(corpus_dir)
    problems += corpus_problems

    facts: list[_Item[Fact]] = []
    entities: list[_Item[Entity]] = []
    if not knowledge_dir.is_dir():
        problems.append(
            Problem(knowledge_dir, 0, 0, None, "knowledge folder not found: pass --knowledge or set knowledge_dir")
        )
    else:
        files = knowledge_files(knowledge_dir)
        if not files:
            problems.append(Problem(knowledge_dir, 0, 0, None, "no *.yaml knowledge files here"))
        for path in sorted(knowledge_dir.glob("*.yml")):
            problems.append(Problem(path, 1, 1, None, "ignored: knowledge files must end in .yaml; rename it"))
        parsed = [(path, _parse_knowledge_file(path)) for path in files]
        docs = [doc for _, doc in parsed if isinstance(doc, YamlDocument)]
        if on_parsed is not None and len(docs) == len(parsed) and not any(doc.problems for doc in docs):
            on_parsed(
                [item for doc in docs for item in _parsed_items(doc, "facts")],
                [item for doc in docs for item in _parsed_items(doc, "entities")],
            )
        for path, doc in parsed:
            if isinstance(doc, Problem):
                problems.append(doc)
                continue
            result = _check_knowledge_file(path, doc)
            problems += result.problems
            facts += result.facts
            entities += result.entities

    fact_by_id = _unique(facts, "fact", problems)
    entity_by_id = _unique(entities, "entity", problems)
    for item in facts:
        problems += _check_references(item, fact_by_id, entity_by_id, articles)

    problems.sort(key=lambda p: p.sort_key)
    if problems:
        return None, problems
    # Without a problem, every item has its model.
    models = tuple(item.model for item in facts if item.model is not None)
    knowledge = Knowledge(
        facts=models,
        by_id=types.MappingProxyType({f.id: f for f in models}),
        entities=types.MappingProxyType({e.model.id: e.model for e in entities if e.model is not None}),
        articles=types.MappingProxyType(dict(articles)),
    )
    return knowledge, []


def _unique(items: list[_Item[M]], what: str, problems: list[Problem]) -> dict[str, _Item[M]]:
    """First item of each id; a problem at every later one, naming where the first is."""
    first: dict[str, _Item[M]] = {}
    for item in items:
        if item.id is None:
            continue
        if item.id in first:
            message = (
                f"duplicate {what} id '{item.id}': the first is at {first[item.id].where(('id',))}; "
                "give one of them another id"
            )
            problems.append(item.problem(("id",), message))
        else:
            first[item.id] = item
    return first


def _check_references(
    item: _Item[Fact],
    facts: Mapping[str, _Item[Fact]],
    entities: Mapping[str, _Item[Entity]],
    articles: Mapping[str, Article],
) -> list[Problem]:
    out: list[Problem] = []
    exchange = item.get("exchange")
    if isinstance(exchange, str):
        target = facts.get(exchange)
        if target is None or target.get("kind") != "exchange":
            # Only for a problem: listing the exchanges for every fact would make checking a big base quadratic.
            hint = _suggest(exchange, [i for i, f in facts.items() if f.get("kind") == "exchange"])
            if target is None:
                message = f"exchange '{exchange}' is not the id of any fact{hint}: use the id of a kind: exchange fact"
            else:
                message = (
                    f"exchange '{exchange}' is a {target.get('kind')!s} fact, not kind: exchange: use the id of the "
                    f"New Year exchange it belongs to{hint}"
                )
            out.append(item.problem(("exchange",), message))
    for index, ref in item.strings("related"):
        if ref not in facts:
            message = f"related '{ref}' is not the id of any fact{_suggest(ref, facts)}: fix the id or remove it"
            out.append(item.problem(("related", index), message))
    for name in ("people", "places", "topics", "reported_by"):
        for index, ref in item.strings(name):
            if ref not in entities:
                out.append(item.problem((name, index), _unknown_entity(f"{name} '{ref}'", ref, entities)))
    speaker = item.get("speaker")
    if isinstance(speaker, str) and speaker not in entities:
        out.append(item.problem(("speaker",), _unknown_entity(f"speaker '{speaker}'", speaker, entities)))

    cited: list[Article] = []
    sources = item.get("sources")
    for index, source in enumerate(sources if isinstance(sources, list) else []):
        article_id = source.get("article") if isinstance(source, dict) else None
        if not isinstance(source, dict) or not isinstance(article_id, str):
            continue
        article = articles.get(article_id)
        if article is None:
            message = (
                f"sources[{index}].article '{article_id}' is not in the corpus{_suggest(article_id, articles)}: "
                f"use one of {', '.join(sorted(articles))}"
            )
            out.append(item.problem(("sources", index, "article"), message))
            continue
        cited.append(article)
        excerpt = source.get("excerpt")
        if isinstance(excerpt, str) and excerpt.strip() and not article.contains(excerpt):
            out.append(
                item.problem(
                    ("sources", index, "excerpt"), _not_verbatim(f"sources[{index}].excerpt is", excerpt, [article])
                )
            )
    words = item.get("words")
    if isinstance(words, str) and words.strip() and cited and not any(a.contains(words) for a in cited):
        out.append(item.problem(("words",), _not_verbatim("words are", words, list(dict.fromkeys(cited)))))
    return out


def _unknown_entity(what: str, ref: str, entities: Mapping[str, _Item[Entity]]) -> str:
    return (
        f"{what} is not an entity id{_suggest(ref, entities)}: use an id from the entities in aliases.yaml "
        "or add the entity there"
    )


def load_knowledge(knowledge_dir: Path, corpus_dir: Path) -> Knowledge:
    """The validated knowledge; raises KnowledgeError listing every problem."""
    knowledge, problems = check_knowledge(knowledge_dir, corpus_dir)
    if knowledge is None:
        raise KnowledgeError(problems)
    return knowledge


def knowledge_fingerprint(knowledge_dir: Path) -> tuple[tuple[str, int, int], ...]:
    """(name, mtime_ns, size) of every knowledge file: cheap to poll, changes when any file is edited,
    added or removed."""
    out = []
    for path in knowledge_files(Path(knowledge_dir)) if Path(knowledge_dir).is_dir() else []:
        try:
            stat = path.stat()
        except OSError:  # removed while we looked: the next poll sees the change
            continue
        out.append((path.name, stat.st_mtime_ns, stat.st_size))
    return tuple(out)


# --- schema ---------------------------------------------------------------------------------------------


def schema_text() -> str:
    """knowledge/schema.json as it should be: the JSON Schema of KnowledgeFile, deterministic."""
    schema = KnowledgeFile.model_json_schema()
    schema["$schema"] = SCHEMA_DIALECT
    schema["title"] = "Knowledge file (knowledge/*.yaml)"
    schema["description"] = (
        f"{KnowledgeFile.__doc__} GENERATED from bot/knowledge/model.py by `{_REGENERATE}`; do not edit by hand. "
        "Editors use it for completion and checks; `python -m bot validate` does the full validation."
    )
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


# --- commands -------------------------------------------------------------------------------------------


def _dirs(args: argparse.Namespace, names: Iterable[str]) -> dict[str, Path]:
    """Folders from the command line, the rest from the config (loaded only when needed)."""
    given = {n: getattr(args, n, None) for n in names}
    out = {n: Path(v) for n, v in given.items() if v}
    if len(out) < len(given):
        from bot.config import load_config

        config = load_config(getattr(args, "config", None))
        for name in given:
            out.setdefault(name, getattr(config, f"{name}_dir"))
    return out


def _print_problems(problems: list[Problem], stream: TextIO) -> None:
    for problem in problems:
        print(problem, file=stream)
    files = len({p.path for p in problems})
    print(
        f"{len(problems)} problem{'s' if len(problems) != 1 else ''} in {files} file{'s' if files != 1 else ''}; "
        "fix them and run `python -m bot validate` again",
        file=sys.stderr,
    )


def summary(knowledge: Knowledge) -> str:
    """`96 facts (exchange 4, meeting 12, ...), 40 entities, 5 articles`."""
    counts = Counter(f.kind for f in knowledge.facts)
    kinds = ", ".join(f"{k} {counts[k]}" for k in KINDS if counts[k])
    facts, entities, articles = len(knowledge.facts), len(knowledge.entities), len(knowledge.articles)
    return f"{facts} facts ({kinds}), {entities} entities, {articles} articles"


def main_validate(args: argparse.Namespace) -> int:
    def run(args: argparse.Namespace) -> int:
        dirs = _dirs(args, ("knowledge", "corpus"))
        knowledge, problems = check_knowledge(dirs["knowledge"], dirs["corpus"])
        if knowledge is None:
            _print_problems(problems, sys.stdout)
            return 1
        print(f"ok: {summary(knowledge)}")
        return 0

    return run(args)


def fact_json(fact: Fact) -> dict[str, JsonValue]:
    """Every model field of a fact, as JSON data (None for an absent optional field)."""
    return fact.model_dump(mode="json")


def main_facts(args: argparse.Namespace) -> int:
    def run(args: argparse.Namespace) -> int:
        dirs = _dirs(args, ("knowledge", "corpus"))
        knowledge, problems = check_knowledge(dirs["knowledge"], dirs["corpus"])
        if knowledge is None:
            _print_problems(problems, sys.stderr)  # stdout stays clean for a JSON consumer
            return 1
        if getattr(args, "json", False):
            json.dump([fact_json(f) for f in knowledge.facts], sys.stdout, ensure_ascii=False, indent=2)
            sys.stdout.write("\n")
            return 0
        width = max((len(f.id) for f in knowledge.facts), default=0)
        for fact in knowledge.facts:
            print(f"{fact.id:<{width}}  {fact.date:<10}  {fact.title}")
        return 0

    return run(args)


def main_schema(args: argparse.Namespace) -> int:
    def run(args: argparse.Namespace) -> int:
        target = _dirs(args, ("knowledge",))["knowledge"] / "schema.json"
        wanted = schema_text()
        current = target.read_text(encoding="utf-8") if target.is_file() else None
        if getattr(args, "check", False):
            if current != wanted:
                state = "missing" if current is None else "out of date"
                print(f"{display_path(target)} is {state}: run `{_REGENERATE}` and commit it", file=sys.stderr)
                return 1
            print(f"{display_path(target)} is up to date")
            return 0
        if current != wanted:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(wanted, encoding="utf-8")
            print(f"wrote {display_path(target)}")
        else:
            print(f"{display_path(target)} is already up to date")
        return 0

    return run(args)
