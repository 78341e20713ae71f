"""Pure validation of Bot API requests: the spec's types, Telegram's prose rules and its HTML entity parser.

This module owns everything the local Bot API server (`bot/playground/botapi_server.py`) checks about a request
before acting on it, as plain functions tested directly: loading the bundled spec subset
(`bot/playground/data/botapi_spec.json`), decoding a request's parameters (form, multipart and JSON bodies all
decode to the same typed values), checking them recursively against the spec (required fields, no unknown fields,
value types, union types), the limits Telegram enforces but the spec only states in prose (callback_data 1-64
bytes, at most 50 inline results, command names, chat actions, ...) and Telegram-style HTML parsing into plain text
plus entities with offsets in UTF-16 code units. Every rejection is an `ApiError` carrying the error code and the
description Telegram would answer with. The server is deliberately stricter than Telegram in two places, to catch
bot bugs early: unknown parameters and unknown object fields are rejected (Telegram silently ignores them), and a
bare `<` or an `&` that does not start an entity is rejected in HTML (Telegram passes some of them through)."""

from __future__ import annotations

import dataclasses
import functools
import json
import re
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

SPEC_PATH = Path(__file__).resolve().parent / "data" / "botapi_spec.json"

MAX_MESSAGE_LENGTH = 4096  # UTF-16 code units after entity parsing (counting as the stricter unit)
MAX_CALLBACK_ANSWER_LENGTH = 200
MAX_CALLBACK_DATA_BYTES = 64
MAX_INLINE_RESULTS = 50
MAX_INLINE_RESULT_ID_BYTES = 64
MAX_BOT_COMMANDS = 100
# The values the sendChatAction documentation lists in prose ("typing for text messages, upload_photo ...").
CHAT_ACTIONS = frozenset(
    {
        "typing",
        "upload_photo",
        "record_video",
        "upload_video",
        "record_voice",
        "upload_voice",
        "upload_document",
        "choose_sticker",
        "find_location",
        "record_video_note",
        "upload_video_note",
    }
)
NOT_MODIFIED = (
    "message is not modified: specified new message content and reply markup are exactly the same "
    "as a current content and reply markup of the message"
)
_PRIMITIVES = frozenset({"Integer", "Float", "Boolean", "String"})
_ARRAY = "Array of "


class ApiError(Exception):
    """A request Telegram would refuse: `code` and `description` are what the server answers with."""

    def __init__(self, code: int, description: str, *, retry_after: int | None = None) -> None:
        super().__init__(description)
        self.code = code
        self.description = description
        self.retry_after = retry_after

    def response(self) -> dict[str, Any]:
        body: dict[str, Any] = {"ok": False, "error_code": self.code, "description": self.description}
        if self.retry_after is not None:
            body["parameters"] = {"retry_after": self.retry_after}
        return body


def bad_request(message: str) -> ApiError:
    return ApiError(400, f"Bad Request: {message}")


# --- the spec ---------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Field:
    name: str
    types: tuple[str, ...]  # type expressions, e.g. ("Integer", "String") or ("Array of MessageEntity",)
    required: bool
    description: str


@dataclasses.dataclass(frozen=True)
class TypeSpec:
    name: str
    fields: Mapping[str, Field]
    subtypes: tuple[str, ...]  # a union type ("one of ...") when non-empty
    # ("type", "article") when a field's description says it is always / must be that value
    discriminator: tuple[str, str] | None


@dataclasses.dataclass(frozen=True)
class MethodSpec:
    name: str
    fields: Mapping[str, Field]
    returns: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class Spec:
    version: str
    methods: Mapping[str, MethodSpec]  # keyed by lower-case name: Telegram's method names are case-insensitive
    types: Mapping[str, TypeSpec]

    def method(self, name: str) -> MethodSpec | None:
        return self.methods.get(name.lower())


_DISCRIMINATOR = re.compile(r'(?:always|must be) "?([a-z0-9_]+)"?\s*$')


def _fields(raw: Sequence[Mapping[str, Any]]) -> dict[str, Field]:
    return {f["name"]: Field(f["name"], tuple(f["types"]), bool(f["required"]), f.get("description", "")) for f in raw}


def _discriminator(fields: Mapping[str, Field]) -> tuple[str, str] | None:
    for name in ("type", "source", "status"):
        field = fields.get(name)
        if field is not None and (match := _DISCRIMINATOR.search(field.description)):
            return name, match.group(1)
    return None


def spec_from_json(data: Mapping[str, Any]) -> Spec:
    types = {}
    for name, raw in data["types"].items():
        fields = _fields(raw.get("fields", []))
        types[name] = TypeSpec(name, fields, tuple(raw.get("subtypes", [])), _discriminator(fields))
    methods = {
        name.lower(): MethodSpec(name, _fields(raw.get("fields", [])), tuple(raw.get("returns", [])))
        for name, raw in data["methods"].items()
    }
    return Spec(data["version"], methods, types)


@functools.cache
def load_spec(path: Path = SPEC_PATH) -> Spec:
    return spec_from_json(json.loads(path.read_text(encoding="utf-8")))


# --- value checking against the spec ----------------------------------------------------------------------


class SpecMismatch(Exception):
    """A value that does not match its spec type; `path` locates it inside the parameter."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}" if path else message)
        self.path = path
        self.message = message


@dataclasses.dataclass(frozen=True)
class UploadedFile:
    """A multipart file part (the spec's InputFile)."""

    filename: str
    content_type: str
    size: int


def _article(type_expr: str) -> str:
    return f"an {type_expr}" if type_expr[0] in "AEIOU" else f"a {type_expr}"


def describe_types(type_exprs: Sequence[str]) -> str:
    return " or ".join(_article(t) for t in type_exprs)


def check_value(spec: Spec, type_exprs: Sequence[str], value: Any, path: str = "") -> None:
    """Raise SpecMismatch unless `value` (decoded JSON) matches one of the type expressions."""
    if len(type_exprs) == 1:
        _check_one(spec, type_exprs[0], value, path)
        return
    candidates = [t for t in type_exprs if _plausible(spec, t, value)] or list(type_exprs)
    failures = []
    for type_expr in candidates:
        try:
            _check_one(spec, type_expr, value, path)
        except SpecMismatch as mismatch:
            failures.append(mismatch)
        else:
            return
    if len(candidates) < len(type_exprs) or len(failures) == 1:
        # the deepest failure belongs to the alternative the value was closest to
        raise max(failures, key=lambda m: m.path.count(".") + m.path.count("["))
    raise SpecMismatch(path, f"must be {describe_types(type_exprs)}")


def _plausible(spec: Spec, type_expr: str, value: Any) -> bool:
    """Whether a union alternative is worth reporting on: right JSON kind and matching discriminator."""
    if type_expr.startswith(_ARRAY):
        return isinstance(value, list)
    type_spec = spec.types.get(type_expr)
    if type_spec is None:
        return not isinstance(value, dict | list)
    if type_spec.subtypes:
        return any(_plausible(spec, sub, value) for sub in type_spec.subtypes)
    if not isinstance(value, dict):
        return False
    if type_spec.discriminator:
        key, expected = type_spec.discriminator
        return value.get(key) == expected
    return not type_spec.fields or any(key in type_spec.fields for key in value)


def _check_one(spec: Spec, type_expr: str, value: Any, path: str) -> None:
    if type_expr.startswith(_ARRAY):
        if not isinstance(value, list):
            raise SpecMismatch(path, f"must be an {type_expr}")
        item_type = type_expr[len(_ARRAY) :]
        for i, item in enumerate(value):
            _check_one(spec, item_type, item, f"{path}[{i}]")
        return
    if type_expr in _PRIMITIVES:
        if not _primitive_ok(type_expr, value):
            raise SpecMismatch(path, f"must be {_article(type_expr)}")
        return
    type_spec = spec.types.get(type_expr)
    if type_spec is None:
        raise SpecMismatch(path, f"has type {type_expr}, which the bundled spec does not describe")
    if type_spec.subtypes:
        check_value(spec, type_spec.subtypes, value, path)
        return
    if type_expr == "InputFile":
        if not isinstance(value, UploadedFile):
            raise SpecMismatch(path, "must be a file uploaded with multipart/form-data")
        return
    if not isinstance(value, dict):
        raise SpecMismatch(path, f"must be {_article(type_expr)} object")
    prefix = f"{path}." if path else ""
    for key in value:
        if key not in type_spec.fields:
            raise SpecMismatch(f"{prefix}{key}", f"is not a field of {type_expr}")
    for field in type_spec.fields.values():
        if field.name not in value:
            if field.required:
                raise SpecMismatch(f"{prefix}{field.name}", f"is required in {type_expr}")
            continue
        check_value(spec, field.types, value[field.name], f"{prefix}{field.name}")
    if type_spec.discriminator:
        key, expected = type_spec.discriminator
        if value[key] != expected:
            raise SpecMismatch(f"{prefix}{key}", f'must be "{expected}" in {type_expr}')


def _primitive_ok(type_expr: str, value: Any) -> bool:
    if type_expr == "String":
        return isinstance(value, str)
    if type_expr == "Boolean":
        return isinstance(value, bool)
    if isinstance(value, bool):  # bool is an int in Python, never in JSON
        return False
    if type_expr == "Integer":
        return isinstance(value, int)
    return isinstance(value, int | float)  # Float


# --- request parameters -----------------------------------------------------------------------------------

_INTEGER = re.compile(r"^-?\d{1,20}$")
_FLOAT = re.compile(r"^-?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$")
_BOOLEANS = {"true": True, "1": True, "false": False, "0": False}


def as_form_value(value: Any) -> str | UploadedFile | None:
    """A JSON body value as the string a form would carry (how Telegram treats JSON bodies); None if absent."""
    if value is None or isinstance(value, str | UploadedFile):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return json.dumps(value)
    return json.dumps(value, ensure_ascii=False)


def decode_parameter(spec: Spec, field: Field, raw: str | UploadedFile) -> Any:
    """A parameter's string value decoded to its spec type: ints, bools, JSON-serialized objects and arrays."""
    if isinstance(raw, UploadedFile):
        if "InputFile" in field.types:
            return raw
        raise bad_request(f'parameter "{field.name}" must be {describe_types(field.types)}, not an uploaded file')
    for type_expr in field.types:
        if type_expr == "Integer" and _INTEGER.match(raw):
            return int(raw)
        if type_expr == "Float" and _FLOAT.match(raw):
            return float(raw)
        if type_expr == "Boolean" and raw.lower() in _BOOLEANS:
            return _BOOLEANS[raw.lower()]
    if "String" in field.types or "InputFile" in field.types:  # InputFile also takes a file_id or URL
        return raw
    structured = [t for t in field.types if t not in _PRIMITIVES]
    if not structured:
        raise bad_request(f'parameter "{field.name}" must be {describe_types(field.types)}')
    try:
        value = json.loads(raw)
    except ValueError:
        raise bad_request(f"can't parse {field.name} JSON object") from None
    try:
        check_value(spec, structured, value)
    except SpecMismatch as mismatch:
        where = field.name + ("." if mismatch.path[:1] not in ("", "[") else "") + mismatch.path
        raise bad_request(f"can't parse {field.name}: field {where} {mismatch.message}") from None
    return value


def decode_parameters(spec: Spec, method: MethodSpec, raw: Mapping[str, str | UploadedFile]) -> dict[str, Any]:
    """Every parameter decoded and checked: required ones present, no unknown ones, types as documented."""
    for name in raw:
        if name not in method.fields:
            raise bad_request(f'unknown parameter "{name}" for method {method.name}')
    params: dict[str, Any] = {}
    for field in method.fields.values():
        value = raw.get(field.name)
        # Telegram treats an empty value of a non-string parameter as not given
        if value is None or (value == "" and "String" not in field.types):
            if field.required:
                raise missing_parameter(method.name, field.name)
            continue
        params[field.name] = decode_parameter(spec, field, value)
    return params


def missing_parameter(method: str, name: str) -> ApiError:
    if name == "text" and method in ("sendMessage", "editMessageText"):
        return bad_request("message text is empty")
    if name == "chat_id":
        return bad_request("chat_id is empty")
    return bad_request(f'parameter "{name}" is required')


# --- Telegram's prose rules -------------------------------------------------------------------------------

_COMMAND = re.compile(r"^[a-z0-9_]{1,32}$")
_BUTTON_URL = re.compile(r"^(https?|tg)://\S+$", re.IGNORECASE)
_WEBHOOK_URL = re.compile(r"^https://\S+$", re.IGNORECASE)
# InlineKeyboardButton: "Exactly one of the fields other than text, icon_custom_emoji_id, and style must be used"
_BUTTON_DECORATION = frozenset({"text", "icon_custom_emoji_id", "style"})


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def check_callback_data(data: str) -> None:
    if not 1 <= len(data.encode("utf-8")) <= MAX_CALLBACK_DATA_BYTES:
        raise bad_request("BUTTON_DATA_INVALID")


def check_inline_keyboard(markup: Mapping[str, Any]) -> None:
    """An InlineKeyboardMarkup already checked against the spec: the per-button rules."""
    for row in markup["inline_keyboard"]:
        for button in row:
            actions = [key for key in button if key not in _BUTTON_DECORATION]
            if not actions:
                raise bad_request(
                    "can't parse inline keyboard button: Text buttons are unallowed in the inline keyboard"
                )
            if len(actions) > 1:
                raise bad_request(
                    f"can't parse inline keyboard button: exactly one of {', '.join(actions)} must be used"
                )
            if "callback_data" in button:
                check_callback_data(button["callback_data"])
            if "url" in button and not _BUTTON_URL.match(button["url"]):
                raise bad_request("BUTTON_URL_INVALID")


def inline_keyboards(value: Any) -> Iterator[Mapping[str, Any]]:
    """Every InlineKeyboardMarkup inside decoded parameters (the only objects with an inline_keyboard field)."""
    if isinstance(value, dict):
        if "inline_keyboard" in value:
            yield value
        for item in value.values():
            yield from inline_keyboards(item)
    elif isinstance(value, list):
        for item in value:
            yield from inline_keyboards(item)


def check_bot_commands(commands: Sequence[Mapping[str, Any]]) -> None:
    if len(commands) > MAX_BOT_COMMANDS:
        raise bad_request("BOT_COMMANDS_TOO_MUCH")
    for command in commands:
        if not _COMMAND.match(command["command"]):
            raise bad_request("BOT_COMMAND_INVALID")
        if not 1 <= len(command["description"]) <= 256:
            raise bad_request("BOT_COMMAND_DESCRIPTION_INVALID")


def check_chat_action(action: str) -> None:
    if action not in CHAT_ACTIONS:
        raise bad_request("wrong parameter action in request")


def check_callback_answer(text: str | None) -> None:
    if text is not None and utf16_len(text) > MAX_CALLBACK_ANSWER_LENGTH:
        raise bad_request("MESSAGE_TOO_LONG")


def check_inline_results(results: Sequence[Mapping[str, Any]]) -> None:
    if len(results) > MAX_INLINE_RESULTS:
        raise bad_request("RESULTS_TOO_MUCH")
    seen: set[str] = set()
    for result in results:
        result_id = result["id"]
        if not 1 <= len(result_id.encode("utf-8")) <= MAX_INLINE_RESULT_ID_BYTES:
            raise bad_request("RESULT_ID_INVALID")
        if result_id in seen:
            raise bad_request("RESULT_ID_DUPLICATE")
        seen.add(result_id)
        content = result.get("input_message_content")
        if isinstance(content, dict) and "message_text" in content:
            message_text(content["message_text"], content.get("parse_mode"), content.get("entities"))


def check_webhook_url(url: str) -> None:
    if url and not _WEBHOOK_URL.match(url):
        raise bad_request("bad webhook: An HTTPS URL must be provided for webhook")


def check_rules(method: str, params: Mapping[str, Any]) -> None:
    """The rules Telegram enforces that the spec states in prose, for parameters already decoded."""
    for markup in inline_keyboards(params):
        check_inline_keyboard(markup)
    if method == "sendMessage" or (method == "editMessageText" and "text" in params):
        message_text(params["text"], params.get("parse_mode"), params.get("entities"))
    elif method == "editMessageText" and "rich_message" not in params and "inline_message_id" not in params:
        raise bad_request("message text is empty")
    elif method == "answerCallbackQuery":
        check_callback_answer(params.get("text"))
    elif method == "answerInlineQuery":
        check_inline_results(params["results"])
    elif method == "setMyCommands":
        check_bot_commands(params["commands"])
    elif method == "sendChatAction":
        check_chat_action(params["action"])
    elif method == "setWebhook":
        check_webhook_url(params["url"])


def validate_request(spec: Spec, method_name: str, raw: Mapping[str, str | UploadedFile]) -> tuple[str, dict[str, Any]]:
    """(canonical method name, decoded parameters) for a valid request; ApiError like Telegram's otherwise."""
    method = spec.method(method_name)
    if method is None:
        raise ApiError(404, "Not Found")
    params = decode_parameters(spec, method, raw)
    check_rules(method.name, params)
    return method.name, params


# --- message text and HTML entities -----------------------------------------------------------------------


class EntityParseError(Exception):
    """Malformed HTML in a message; the message is the part after "can't parse entities: "."""


def message_text(text: str, parse_mode: str | None, entities: Sequence[Mapping[str, Any]] | None) -> tuple[str, list]:
    """The text and entities Telegram would store: markup parsed, surrounding whitespace trimmed, limits checked."""
    mode = (parse_mode or "").lower()
    if mode == "html":
        try:
            plain, parsed = parse_html(text)
        except EntityParseError as error:
            raise bad_request(f"can't parse entities: {error}") from None
    elif mode in ("", "markdown", "markdownv2"):
        # Markdown is not parsed here (the bot sends HTML); its text is kept verbatim
        plain, parsed = text, [dict(e) for e in entities or ()]
    else:
        raise bad_request(f"unsupported parse_mode {parse_mode!r}")
    plain, parsed = trim_text(plain, parsed)
    if not plain:
        raise bad_request("message text is empty")
    if utf16_len(plain) > MAX_MESSAGE_LENGTH:
        raise bad_request("message is too long")
    return plain, parsed


def trim_text(text: str, entities: list[dict]) -> tuple[str, list[dict]]:
    """Leading and trailing whitespace removed as Telegram does, entities shifted and clipped to match."""
    stripped = text.strip()
    if stripped == text:
        return text, entities
    shift = utf16_len(text[: len(text) - len(text.lstrip())])
    end = utf16_len(stripped)
    kept = []
    for entity in entities:
        start = max(entity["offset"] - shift, 0)
        stop = min(entity["offset"] + entity["length"] - shift, end)
        if stop > start:
            kept.append({**entity, "offset": start, "length": stop - start})
    return stripped, kept


_SIMPLE_TAGS = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "tg-spoiler": "spoiler",
    "code": "code",
    "pre": "pre",
}
SUPPORTED_TAGS = frozenset({*_SIMPLE_TAGS, "span", "a", "blockquote", "tg-emoji"})
_ALLOWED_ATTRIBUTES = {
    "span": {"class"},
    "a": {"href"},
    "code": {"class"},
    "blockquote": {"expandable"},
    "tg-emoji": {"emoji-id"},
}
_HTML_ENTITY = re.compile(r"&(?:(lt|gt|amp|quot)|#(\d{1,8})|#[xX]([0-9a-fA-F]{1,6}));")
_NAMED = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
_TAG_NAME = re.compile(r"[a-zA-Z][a-zA-Z0-9-]*")
_ATTRIBUTE_NAME = re.compile(r"[a-zA-Z][a-zA-Z0-9_-]*")
_UNQUOTED_VALUE = re.compile(r"[^\s\"'<>=`]+")
_SPECIAL = re.compile(r"[<&]")
_END_TAG = re.compile(r"</([a-zA-Z][a-zA-Z0-9-]*)?\s*>")


@dataclasses.dataclass
class _OpenTag:
    name: str
    start: int  # UTF-16 offset in the output
    entity: dict[str, Any]


def _byte_offset(markup: str, index: int) -> int:
    return len(markup[:index].encode("utf-8"))


def _decode_entity(markup: str, i: int) -> tuple[str, int]:
    match = _HTML_ENTITY.match(markup, i)
    if match is None:
        raise EntityParseError(f"Character '&' must be escaped as &amp; at byte offset {_byte_offset(markup, i)}")
    if match.group(1):
        return _NAMED[match.group(1)], match.end()
    code = int(match.group(2)) if match.group(2) else int(match.group(3), 16)
    if code == 0 or code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
        raise EntityParseError(f"Invalid character reference at byte offset {_byte_offset(markup, i)}")
    return chr(code), match.end()


def _decode_attribute(value: str) -> str:
    out, i = [], 0
    while i < len(value):
        if value[i] == "&":
            char, i = _decode_entity(value, i)
        else:
            stop = value.find("&", i)
            char, i = (value[i:], len(value)) if stop < 0 else (value[i:stop], stop)
        out.append(char)
    return "".join(out)


class _TagProblem(Exception):
    """A start tag Telegram refuses; parse_html adds where it starts."""


def _parse_attributes(markup: str, i: int, tag: str) -> tuple[dict[str, str], int]:
    """The attributes of a start tag from just after its name; returns them and the index after '>'."""
    attributes: dict[str, str] = {}
    while True:
        while i < len(markup) and markup[i].isspace():
            i += 1
        if i >= len(markup):
            raise _TagProblem("Unclosed start tag")
        if markup[i] == ">":
            return attributes, i + 1
        name_match = _ATTRIBUTE_NAME.match(markup, i)
        if name_match is None:
            raise _TagProblem(f'Empty attribute name in the tag "{tag}"')
        name, i = name_match.group(0).lower(), name_match.end()
        while i < len(markup) and markup[i].isspace():
            i += 1
        value = ""
        if i < len(markup) and markup[i] == "=":
            i += 1
            while i < len(markup) and markup[i].isspace():
                i += 1
            if i < len(markup) and markup[i] in "\"'":
                close = markup.find(markup[i], i + 1)
                if close < 0:
                    raise _TagProblem("Unclosed start tag")
                value, i = markup[i + 1 : close], close + 1
            else:
                value_match = _UNQUOTED_VALUE.match(markup, i)
                if value_match is None:
                    raise _TagProblem(f'Bad value of attribute "{name}" in the tag "{tag}"')
                value, i = value_match.group(0), value_match.end()
        if name not in _ALLOWED_ATTRIBUTES.get(tag, ()):
            raise _TagProblem(f'Unsupported attribute "{name}" in the tag "{tag}"')
        try:
            attributes[name] = _decode_attribute(value)
        except EntityParseError:
            raise _TagProblem(f'Bad character reference in attribute "{name}" of the tag "{tag}"') from None


def _entity_for(tag: str, attributes: Mapping[str, str]) -> dict[str, Any]:
    """The entity a start tag opens (offset and length filled in when it closes)."""
    if tag in _SIMPLE_TAGS:
        if tag == "code" and "class" in attributes:
            if not attributes["class"].startswith("language-") or attributes["class"] == "language-":
                raise _TagProblem('Tag "code" may only have class "language-<name>"')
            return {"type": "code", "language": attributes["class"][len("language-") :]}
        return {"type": _SIMPLE_TAGS[tag]}
    if tag == "span":
        if attributes.get("class") != "tg-spoiler":
            raise _TagProblem('Tag "span" must have class "tg-spoiler"')
        return {"type": "spoiler"}
    if tag == "a":
        if not attributes.get("href"):
            raise _TagProblem('Tag "a" must have a non-empty attribute "href"')
        return {"type": "text_link", "url": attributes["href"]}
    if tag == "blockquote":
        return {"type": "expandable_blockquote" if "expandable" in attributes else "blockquote"}
    if not attributes.get("emoji-id", "").isdigit():  # tg-emoji
        raise _TagProblem('Tag "tg-emoji" must have a numeric attribute "emoji-id"')
    return {"type": "custom_emoji", "custom_emoji_id": attributes["emoji-id"]}


def parse_html(markup: str) -> tuple[str, list[dict[str, Any]]]:
    """Telegram's HTML parse mode: (plain text, MessageEntity dicts with UTF-16 offsets), or EntityParseError."""
    text, entities = _parse_html(markup)
    return text, [dict(entity) for entity in entities]


@functools.lru_cache(maxsize=512)  # a broadcast sends the same text to every chat
def _parse_html(markup: str) -> tuple[str, tuple[Mapping[str, Any], ...]]:
    out: list[str] = []
    length = 0  # UTF-16 length of the output so far
    stack: list[_OpenTag] = []
    entities: list[dict[str, Any]] = []
    i = 0
    while i < len(markup):
        char = markup[i]
        if char == "&":
            text, i = _decode_entity(markup, i)
        elif char == "<" and markup.startswith("</", i):
            end = _END_TAG.match(markup, i)
            if end is None or end.group(1) is None:
                raise EntityParseError(f"Unclosed end tag at byte offset {_byte_offset(markup, i)}")
            name = end.group(1).lower()
            if not stack:
                raise EntityParseError(f"Unexpected end tag at byte offset {_byte_offset(markup, i)}")
            if stack[-1].name != name:
                raise EntityParseError(
                    f'Unmatched end tag at byte offset {_byte_offset(markup, i)}, expected "</{stack[-1].name}>", '
                    f'found "</{name}>"'
                )
            _close(stack.pop(), length, entities)
            i = end.end()
            continue
        elif char == "<":
            name_match = _TAG_NAME.match(markup, i + 1)
            if name_match is None:
                raise EntityParseError(
                    f"Character '<' must be escaped as &lt; at byte offset {_byte_offset(markup, i)}"
                )
            name = name_match.group(0).lower()
            try:
                if name not in SUPPORTED_TAGS:
                    raise _TagProblem(f'Unsupported start tag "{name}"')
                attributes, after = _parse_attributes(markup, name_match.end(), name)
                stack.append(_OpenTag(name, length, _entity_for(name, attributes)))
            except _TagProblem as problem:
                raise EntityParseError(f"{problem} at byte offset {_byte_offset(markup, i)}") from None
            i = after
            continue
        else:
            special = _SPECIAL.search(markup, i)
            stop = special.start() if special else len(markup)
            text, i = markup[i:stop], stop
        out.append(text)
        length += utf16_len(text)
    if stack:
        raise EntityParseError(f'Can\'t find end tag corresponding to start tag "{stack[-1].name}"')
    for entity in entities:
        if entity["type"] == "code":
            entity.pop("language", None)  # only pre entities carry a language
    entities.sort(key=lambda e: (e["offset"], -e["length"]))
    return "".join(out), tuple(entities)


def _close(tag: _OpenTag, end: int, entities: list[dict[str, Any]]) -> None:
    if end == tag.start:
        return  # Telegram drops empty entities
    entity = {"type": tag.entity["type"], "offset": tag.start, "length": end - tag.start}
    entity.update((k, v) for k, v in tag.entity.items() if k != "type")
    if entity["type"] == "pre":
        # <pre><code class="language-x">...</code></pre> is one pre entity with that language
        for inner in entities:
            if inner["type"] == "code" and inner["offset"] == tag.start and inner["length"] == entity["length"]:
                entities.remove(inner)
                if "language" in inner:
                    entity["language"] = inner["language"]
                break
    entities.append(entity)
