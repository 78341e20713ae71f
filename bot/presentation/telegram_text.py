"""Telegram's limits as pure functions: splitting HTML messages, paging, callback_data and inline result ids.

This module owns everything that must fit a Bot API limit. `split_html` cuts a message at line boundaries
(then at spaces, then between characters, only when one line or word is itself too long) so that every part
is at most 4,096 characters *as Telegram counts them* — the visible text after entity parsing, in UTF-16
code units — and every part is well-formed HTML: tags still open at a cut are closed at the end of the
part and reopened at the start of the next. callback_data is at most 64 bytes: a compact scheme
("f:<fact id>", or "i:<position>" when the id is too long; "y:<year>:<page>"; "q:<fact id>"; "e:<n>") with a
parser that returns None for anything forged or malformed instead of raising.
"""

from __future__ import annotations

import dataclasses
import html
import re
from collections.abc import Callable, Sequence

MAX_MESSAGE_LENGTH = 4096  # visible characters after entity parsing
MAX_CALLBACK_DATA = 64  # bytes
MAX_INLINE_RESULTS = 50
MAX_INLINE_ID = 64  # bytes
MAX_BUTTON_TEXT = 64  # characters we allow on a button (Telegram truncates longer ones)

# A tag, an entity, a newline, a run of spaces, or a run of other text: the units a split may fall between.
_TOKEN = re.compile(r"<[^<>]*>|&(?:#\d+|#x[0-9a-fA-F]+|\w+);|\n|[ \t]+|[^<&\n \t]+|[<&]")
_TAG_NAME = re.compile(r"<\s*(/?)\s*([a-zA-Z][a-zA-Z0-9-]*)")


def utf16_len(text: str) -> int:
    """Length as Telegram counts it (UTF-16 code units: an emoji outside the BMP counts 2)."""
    return len(text.encode("utf-16-le")) // 2


def visible_text(markup: str) -> str:
    """The text Telegram shows for an HTML message: tags removed, entities decoded."""
    return html.unescape(re.sub(r"<[^<>]*>", "", markup))


def visible_length(markup: str) -> int:
    return utf16_len(visible_text(markup))


@dataclasses.dataclass(frozen=True)
class _Token:
    raw: str
    size: int  # visible UTF-16 length
    tag: str = ""  # tag name for tags
    closing: bool = False
    is_space: bool = False
    is_newline: bool = False


def _tokenize(markup: str) -> list[_Token]:
    tokens = []
    for match in _TOKEN.finditer(markup):
        raw = match.group(0)
        if raw.startswith("<") and len(raw) > 1:
            name = _TAG_NAME.match(raw)
            tokens.append(_Token(raw, 0, tag=name.group(2).lower() if name else "", closing=bool(name and name[1])))
        elif raw.startswith("&") and len(raw) > 1:
            tokens.append(_Token(raw, utf16_len(html.unescape(raw))))
        elif raw == "\n":
            tokens.append(_Token(raw, 1, is_newline=True))
        elif raw[0] in " \t":
            tokens.append(_Token(raw, utf16_len(raw), is_space=True))
        else:
            tokens.append(_Token(raw, utf16_len(raw)))
    return tokens


class _Parts:
    """Accumulates tokens into parts, tracking open tags so each part can be closed and the next reopened."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.parts: list[str] = []
        self.current: list[str] = []
        self.size = 0
        self.has_text = False
        self.open: list[_Token] = []  # tags open at the end of `current`

    def fits(self, piece: Sequence[_Token]) -> bool:
        return self.size + sum(t.size for t in piece) <= self.limit

    def add(self, piece: Sequence[_Token]) -> None:
        for token in piece:
            if token.tag:
                if token.closing:
                    for i in range(len(self.open) - 1, -1, -1):
                        if self.open[i].tag == token.tag:
                            del self.open[i]
                            break
                else:
                    self.open.append(token)
            elif token.raw.strip():
                self.has_text = True
            self.current.append(token.raw)
            self.size += token.size

    def flush(self) -> None:
        if self.has_text:
            closing = "".join(f"</{t.tag}>" for t in reversed(self.open))
            self.parts.append(("".join(self.current) + closing).strip("\n "))
            self.current = [t.raw for t in self.open]  # reopen in the next part
            self.size = 0
            self.has_text = False
        else:  # only tags and blank space so far: drop the space so it cannot push the part over the limit
            self.current = [raw for raw in self.current if raw.startswith("<") and len(raw) > 1]
            self.size = 0


def _pieces(tokens: Sequence[_Token], level: int) -> list[list[_Token]]:
    """Split tokens into pieces: level 1 at newlines, 2 at spaces, 3 between characters.

    A separator starts the piece that follows it; tags stay with the text after them.
    """
    if level == 3:
        pieces: list[list[_Token]] = []
        pending: list[_Token] = []
        for token in tokens:
            if token.tag:
                pending.append(token)
            elif token.raw.startswith("&") or token.size <= 1 or token.is_space or token.is_newline:
                pieces.append([*pending, token])
                pending = []
            else:
                for char in token.raw:
                    pieces.append([*pending, _Token(char, utf16_len(char))])
                    pending = []
        if pending:
            pieces.append(pending)
        return pieces
    is_sep: Callable[[_Token], bool] = (
        (lambda t: t.is_newline) if level == 1 else (lambda t: t.is_space or t.is_newline)
    )
    pieces = [[]]
    for token in tokens:
        if is_sep(token) and pieces[-1]:
            pieces.append([])
        pieces[-1].append(token)
    return [p for p in pieces if p]


def _lstrip(piece: list[_Token]) -> list[_Token]:
    i = 0
    while i < len(piece) and (piece[i].is_newline or piece[i].is_space):
        i += 1
    return piece[i:]


def _place(parts: _Parts, pieces: list[list[_Token]], level: int) -> None:
    for piece in pieces:
        if parts.fits(piece):
            parts.add(piece)
            continue
        parts.flush()
        piece = _lstrip(piece)
        if parts.fits(piece) or level >= 3:
            parts.add(piece)
        else:
            _place(parts, _pieces(piece, level + 1), level + 1)


def split_html(markup: str, limit: int = MAX_MESSAGE_LENGTH) -> list[str]:
    """Split a Telegram HTML message into well-formed parts of at most `limit` visible characters each.

    Cuts fall at line boundaries where possible. Returns [] for a message with no visible text.
    """
    if limit < 2:
        raise ValueError("limit must be at least 2 (one character outside the BMP counts 2)")
    parts = _Parts(limit)
    _place(parts, _pieces(_tokenize(markup), 1), 1)
    parts.flush()
    return parts.parts


def paginate(blocks: Sequence[str], limit: int = MAX_MESSAGE_LENGTH, per_page: int = 0, header: str = "") -> list[str]:
    """Group HTML blocks into pages (joined by blank lines), each under `limit` with `header` on top.

    A block never spans two pages unless it alone is too long (then it is split by `split_html`).
    `per_page` > 0 also caps the number of blocks per page.
    """
    pages: list[str] = []
    current: list[str] = []
    room = limit - (visible_length(header) + 2 if header else 0)

    def flush() -> None:
        if current:
            pages.append("\n\n".join([header, *current] if header else current))
            current.clear()

    for block in blocks:
        candidate = "\n\n".join([*current, block])
        if current and (visible_length(candidate) > room or (per_page and len(current) >= per_page)):
            flush()
        if visible_length(block) > room:
            flush()
            pages.extend(("\n\n".join([header, part]) if header else part) for part in split_html(block, room))
            continue
        current.append(block)
    flush()
    return pages


# --- callback_data -------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Callback:
    """A parsed button press. kind: fact (by fact_id, or by position when fact_id is ''), year, quote, example."""

    kind: str
    fact_id: str = ""
    position: int = -1
    year: int = 0
    page: int = 0


def _fits(data: str) -> bool:
    return 0 < len(data.encode("utf-8")) <= MAX_CALLBACK_DATA


def fact_callback(fact_id: str, position: int) -> str:
    """'f:<fact id>', or 'i:<position in knowledge.facts>' when the id would not fit in 64 bytes."""
    data = f"f:{fact_id}"
    return data if _fits(data) else f"i:{position}"


def year_callback(year: int, page: int) -> str:
    return f"y:{year}:{page}"


def quote_callback(current_fact_id: str = "") -> str:
    """'Another quote' button; carries the quote being shown so the next one differs (if it fits)."""
    data = f"q:{current_fact_id}"
    return data if _fits(data) else "q:"


def example_callback(n: int) -> str:
    return f"e:{n}"


_ID = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")


def parse_callback(data: str | None) -> Callback | None:
    """The button a callback_data names, or None when it is not one of ours (forged, stale format, garbage)."""
    if not data or not _fits(data) or ":" not in data:
        return None
    kind, _, rest = data.partition(":")
    if kind == "f" and _ID.fullmatch(rest):
        return Callback("fact", fact_id=rest)
    if kind == "i" and rest.isdigit() and len(rest) <= 6:
        return Callback("fact", position=int(rest))
    if kind == "y":
        year, _, page = rest.partition(":")
        if year.isdigit() and len(year) == 4 and page.isdigit() and len(page) <= 4:
            return Callback("year", year=int(year), page=int(page))
        return None
    if kind == "q" and (rest == "" or _ID.fullmatch(rest)):
        return Callback("quote", fact_id=rest)
    if kind == "e" and rest.isdigit() and len(rest) <= 3:
        return Callback("example", position=int(rest))
    return None


def inline_result_id(fact_id: str, position: int) -> str:
    """An inline result id (1-64 bytes): the fact id, or its position when the id is too long."""
    return fact_id if 0 < len(fact_id.encode("utf-8")) <= MAX_INLINE_ID else str(position)


def button_text(text: str, limit: int = MAX_BUTTON_TEXT) -> str:
    """Button label shortened with an ellipsis so it stays readable."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"
