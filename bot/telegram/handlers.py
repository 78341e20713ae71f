"""Thin python-telegram-bot handlers: questions, commands, buttons, inline mode and the error handler.

This module owns the conversation with Telegram, and nothing else: each handler reads the shared services
from `application.bot_data` ("config", "knowledge", "index"; swapped by a hot reload), calls the pure
matcher (`bot.matching.matcher.answer`) and renderer (`bot.presentation.render`), and sends the result through
`bot.presentation.telegram_text` so no message, button or inline answer exceeds a Bot API limit.

Behaviour worth knowing:
- Private chat: every text message is a question. Groups: only when addressed — a mention of the bot, a
  reply to one of its messages, or /ask.
- An edited message is answered again, as a new reply to the edited message (a corrected typo deserves the
  corrected answer); the earlier reply is left as it was.
- Declined and low-confidence questions are passed to the optional `bot_data["on_unanswered"]` hook
  (callable(answer, chat_id), sync or async) so the storage layer can record them.
- Anything that goes wrong inside a handler reaches `on_error`: logged with a summary of the update, and the
  user gets a short apology, never a traceback.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import datetime
import functools
import inspect
import logging
import re
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from typing import Any

from telegram import (
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InlineQueryResultArticle,
    InlineQueryResultsButton,
    InputTextMessageContent,
    Message,
    Update,
)
from telegram.constants import ChatAction, ChatType
from telegram.error import BadRequest, Forbidden, TelegramError
from telegram.ext import ContextTypes

from bot.matching.matcher import answer
from bot.presentation import render
from bot.presentation.telegram_text import (
    MAX_MESSAGE_LENGTH,
    button_text,
    example_callback,
    fact_callback,
    inline_result_id,
    paginate,
    parse_callback,
    quote_callback,
    split_html,
    year_callback,
)
from bot.telegram.updatelog import note

log = logging.getLogger(__name__)

# bot_data keys
CONFIG, KNOWLEDGE, INDEX, ON_UNANSWERED = "config", "knowledge", "index", "on_unanswered"
ON_QUESTION = "on_question"  # hook(answer, chat_id) for every question: counts for /stats
NOT_ALLOWED = "Not allowed: this command is only for the bot's administrators."

Handler = Callable[[Update, ContextTypes.DEFAULT_TYPE], Coroutine[Any, Any, None]]


def admin_only(callback: Handler) -> Handler:
    """Run `callback` only for users listed in config `admins`; everyone else gets NOT_ALLOWED and nothing else."""

    @functools.wraps(callback)
    async def guarded(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message, user = update.effective_message, update.effective_user
        if message is None:
            return
        if user is None or user.id not in context.application.bot_data[CONFIG].admins:
            await message.reply_text(NOT_ALLOWED)
            return
        await callback(update, context)

    return guarded


# The three example questions offered by /start (tests check the bot answers each of them).
EXAMPLES = (
    "How much was trade between China and Russia in 2023?",
    "What did Xi say to Putin in his New Year message for 2025?",
    "When did Putin visit Beijing?",
)
APOLOGY = "Sorry, something went wrong on my side. Please try again in a moment."
STALE_BUTTON = "Sorry, that button is no longer valid. Ask me again, or try /help."
TYPING_DELAY = 0.3  # seconds of work before "typing…" is shown
TYPING_REPEAT = 4.5  # Telegram shows a chat action for about 5 seconds
YEAR_PAGE_SIZE = 5  # facts per /year page
MAX_SUGGESTION_BUTTONS = 5
MAX_INLINE_OFFERED = 10
INLINE_CACHE_SECONDS = 60  # short: a knowledge reload should show up soon
ANSWERED_QUERIES = "answered_callback_queries"  # bot_data: recent callback query ids already answered

WELCOME = (
    "<b>Hello!</b> I answer questions about China–Russia relations, using only facts from five news reports "
    "of the New Year messages Xi Jinping and Vladimir Putin exchanged. Every answer names its source.\n\n"
    "Just type a question, or try one of these:"
)
HELP = (
    "<b>How to use me</b>\n"
    "Type a question in plain words, e.g. <i>what did Xi say in 2023?</i> — in English or Russian. "
    "In a group, mention me, reply to my message, or use /ask.\n\n"
    "/ask &lt;question&gt; — ask a question\n"
    "/year &lt;YYYY&gt; — what happened that year\n"
    "/timeline — the highlights of every year\n"
    "/quote [person or topic] — a quote with speaker, occasion and source\n"
    "/sources — the articles my facts come from\n"
    "/about — what this bot is\n\n"
    "Inline: type <code>@{username} trade</code> in any chat to share a fact."
)
ABOUT = (
    "<b>About</b>\n"
    "This bot answers from a curated set of facts, each checked word for word against one of five news articles "
    "about the New Year greetings between China and Russia's leaders (see /sources). It does not search the web "
    "and does not make things up: when the articles say nothing on a question, it says so.\n"
    "Facts: {facts}. Years covered: {years}."
)


# --- shared helpers ----------------------------------------------------------------------------------------


def services(context: ContextTypes.DEFAULT_TYPE) -> tuple[Any, Any]:
    """(knowledge, index) as currently served; read per update so a hot reload takes effect at once."""
    data = context.application.bot_data
    return data[KNOWLEDGE], data[INDEX]


def today() -> datetime.date:
    return datetime.date.today()


async def send_html(
    message: Message, markup: str, keyboard: InlineKeyboardMarkup | None = None, *, quote: bool | None = None
) -> list[Message]:
    """Reply with `markup`, split under Telegram's limit; the keyboard goes on the last part."""
    parts = split_html(markup) or [render.e("(empty)")]
    if quote is None:  # in groups, quote the question so it is clear who is being answered
        quote = message.chat.type != ChatType.PRIVATE
    sent = []
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        sent.append(
            await message.reply_text(
                part,
                reply_markup=keyboard if last else None,
                do_quote=quote and i == 0,
                allow_sending_without_reply=True,  # the question may have been deleted meanwhile
            )
        )
    return sent


@contextlib.asynccontextmanager
async def typing(context: ContextTypes.DEFAULT_TYPE, chat_id: int | None) -> AsyncIterator[None]:
    """Show "typing…" in the chat while the enclosed work takes longer than TYPING_DELAY."""

    async def keep_typing(chat_id: int) -> None:
        await asyncio.sleep(TYPING_DELAY)
        while True:
            with contextlib.suppress(TelegramError):
                await context.bot.send_chat_action(chat_id, ChatAction.TYPING)
            await asyncio.sleep(TYPING_REPEAT)

    task = asyncio.create_task(keep_typing(chat_id)) if chat_id is not None else None
    try:
        yield
    finally:
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


def fact_keyboard(facts: Sequence[Any], knowledge: Any) -> InlineKeyboardMarkup | None:
    """One button per fact (at most MAX_SUGGESTION_BUTTONS); pressing one shows that fact."""
    position = {f.id: i for i, f in enumerate(knowledge.facts)}
    rows = [
        [InlineKeyboardButton(button_text(f.title), callback_data=fact_callback(f.id, position.get(f.id, 0)))]
        for f in facts[:MAX_SUGGESTION_BUTTONS]
    ]
    return InlineKeyboardMarkup(rows) if rows else None


async def notify_unanswered(context: ContextTypes.DEFAULT_TYPE, result: Any, chat_id: int | None) -> None:
    """Count every question, and hand a declined or low-confidence one to the storage hook, if plugged in."""
    keys = [ON_QUESTION]
    if not result.answered or result.low_confidence:
        keys.append(ON_UNANSWERED)
    for key in keys:
        hook = context.application.bot_data.get(key)
        if hook is None:
            continue
        try:
            outcome = hook(result, chat_id)
            if inspect.isawaitable(outcome):
                await outcome
        except Exception:  # recording is best effort: the user already has their reply
            log.exception("%s hook failed", key)


def _log_question(context: ContextTypes.DEFAULT_TYPE, chat_type: str, result: Any) -> None:
    """Details for this update's log line (bot.telegram.updatelog); the question text only when configured."""
    config = context.application.bot_data.get(CONFIG)
    fields: dict[str, Any] = {
        "chat": chat_type,
        "score": f"{result.score:.0f}",
        "facts": ",".join(f.id for f in result.facts[:3]) or "-",
    }
    if config is not None and config.logging.log_message_text:
        fields["text"] = repr(result.question)
    note("answered" if result.answered else "declined", **fields)


async def reply_to_question(
    update: Update, context: ContextTypes.DEFAULT_TYPE, question: str, *, quote: bool | None = None
) -> None:
    """Answer `question` in reply to the update's message: the fact(s), or a decline with suggestion buttons."""
    message = update.effective_message
    if message is None:
        return
    question = question.strip()
    if not question:
        await send_html(message, "Ask me a question in words, for example:\n<i>" + render.e(EXAMPLES[0]) + "</i>")
        return
    knowledge, index = services(context)
    async with typing(context, message.chat_id):
        result = await asyncio.to_thread(answer, index, question, today())
    _log_question(context, message.chat.type, result)
    keyboard = None
    if not result.answered or not result.facts:
        keyboard = fact_keyboard(result.suggestions, knowledge)
    if update.edited_message is not None:  # quote the edited message, so it is clear which version is answered
        quote = True
    await send_html(message, render.answer_html(result, knowledge), keyboard, quote=quote)
    await notify_unanswered(context, result, message.chat_id)


# --- who is being asked ---------------------------------------------------------------------------------------


def addressed_question(text: str, chat_type: str, bot_username: str, replied_to_bot: bool) -> str | None:
    """The question in a message, or None when a group message is not for the bot.

    Private chats: the whole text. Groups: only if the bot is mentioned (the mention is removed) or the
    message replies to the bot.
    """
    if chat_type == ChatType.PRIVATE:
        return text
    mention = re.compile(rf"@{re.escape(bot_username)}\b", re.IGNORECASE) if bot_username else None
    if mention is not None and mention.search(text):
        return mention.sub(" ", text).strip(" ,:")
    if replied_to_bot:
        return text
    return None


async def on_text(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Any text message (or edit) that is not a command: a question when the bot is addressed."""
    message = update.effective_message
    if message is None or message.text is None:
        return
    reply = message.reply_to_message
    replied_to_bot = bool(reply and reply.from_user and reply.from_user.id == context.bot.id)
    question = addressed_question(message.text, message.chat.type, context.bot.username or "", replied_to_bot)
    if question is None:
        return
    await reply_to_question(update, context, question)


# --- commands -------------------------------------------------------------------------------------------------


def examples_keyboard() -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        [[InlineKeyboardButton(button_text(q), callback_data=example_callback(i))] for i, q in enumerate(EXAMPLES)]
    )


async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    if update.effective_message:
        await send_html(update.effective_message, WELCOME, examples_keyboard())


async def help_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    if update.effective_message:
        username = render.e(context.bot.username or "this_bot")
        await send_html(update.effective_message, HELP.replace("{username}", username))


async def about(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    if update.effective_message:
        knowledge, _ = services(context)
        text = ABOUT.format(facts=len(knowledge.facts), years=render.e(render.year_range_text(knowledge)))
        await send_html(update.effective_message, text)


async def ask(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    message = update.effective_message
    if message is None:
        return
    question = " ".join(context.args or [])
    if not question.strip():
        await send_html(message, "Usage: /ask &lt;question&gt;, for example:\n/ask " + render.e(EXAMPLES[0]))
        return
    await reply_to_question(update, context, question)


def year_pages(knowledge: Any, year: int) -> list[str]:
    """The /year message for `year`, as pages (one page unless the year has more than YEAR_PAGE_SIZE facts)."""
    items = render.year_items_html(knowledge, year)
    if not items:
        return []
    bodies = paginate(items, limit=MAX_MESSAGE_LENGTH - 200, per_page=YEAR_PAGE_SIZE)
    header = render.year_header_html(year, len(items))
    if len(bodies) == 1:
        return [f"{header}\n\n{bodies[0]}"]
    return [f"{header} (page {i} of {len(bodies)})\n\n{body}" for i, body in enumerate(bodies, 1)]


def year_keyboard(year: int, page: int, pages: int) -> InlineKeyboardMarkup | None:
    if pages <= 1:
        return None
    row = []
    if page > 0:
        row.append(InlineKeyboardButton("◀ Previous", callback_data=year_callback(year, page - 1)))
    if page < pages - 1:
        row.append(InlineKeyboardButton("Next ▶", callback_data=year_callback(year, page + 1)))
    return InlineKeyboardMarkup([row])


async def year(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    message = update.effective_message
    if message is None:
        return
    knowledge, _ = services(context)
    args = context.args or []
    covered = render.e(", ".join(str(y) for y in render.years(knowledge)))
    if len(args) != 1 or not re.fullmatch(r"\d{4}", args[0]):
        await send_html(message, f"Usage: /year YYYY, for example /year 2024. Years with facts: {covered}.")
        return
    pages = year_pages(knowledge, int(args[0]))
    if not pages:
        await send_html(message, render.no_year_html(knowledge, int(args[0])))
        return
    await send_html(message, pages[0], year_keyboard(int(args[0]), 0, len(pages)))


async def timeline(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    if update.effective_message:
        knowledge, _ = services(context)
        await send_html(update.effective_message, render.timeline_html(knowledge))


async def sources(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    if update.effective_message:
        knowledge, _ = services(context)
        await send_html(update.effective_message, render.sources_html(knowledge))


def quote_reply(knowledge: Any, query: str, exclude: str | None = None) -> tuple[str, InlineKeyboardMarkup | None]:
    """The /quote message and its buttons: a random quote (no query) or the best match and other matches."""
    quotes = render.select_quotes(knowledge, query)
    if not quotes:
        return render.no_quote_html(knowledge, query), None
    if query.strip():
        chosen, others = quotes[0], quotes[1:]
        return render.fact_html(chosen, knowledge), fact_keyboard(others, knowledge)
    picked = render.pick_quote(quotes, exclude=exclude)
    if picked is None:  # cannot happen (quotes is not empty), but the type says it may
        return render.no_quote_html(knowledge, query), None
    chosen = picked
    keyboard = None
    if len(quotes) > 1:
        keyboard = InlineKeyboardMarkup(
            [[InlineKeyboardButton("Another quote", callback_data=quote_callback(chosen.id))]]
        )
    return render.fact_html(chosen, knowledge), keyboard


async def quote(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    if update.effective_message:
        knowledge, _ = services(context)
        markup, keyboard = quote_reply(knowledge, " ".join(context.args or []))
        await send_html(update.effective_message, markup, keyboard)


async def unknown_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A command this bot does not have. In groups only when it is addressed to this bot (/cmd@thisbot)."""
    message = update.effective_message
    if message is None or not message.text:
        return
    command = message.text.split()[0]
    name, _, target = command.partition("@")
    if message.chat.type != ChatType.PRIVATE and target.casefold() != (context.bot.username or "").casefold():
        return
    await send_html(
        message, f"I don't know the command {render.e(name)}. Send /help for what I can do, or just ask a question."
    )


# --- buttons --------------------------------------------------------------------------------------------------


def _fact_of(knowledge: Any, fact_id: str, position: int) -> Any | None:
    if fact_id:
        return knowledge.by_id.get(fact_id)
    if 0 <= position < len(knowledge.facts):
        return knowledge.facts[position]
    return None


async def _edit(query: Any, markup: str, keyboard: InlineKeyboardMarkup | None) -> bool:
    """Replace the pressed message's text; False if it cannot be edited (too old, inaccessible)."""
    parts = split_html(markup)
    if not parts or not isinstance(query.message, Message):
        return False
    try:
        await query.edit_message_text(parts[0], reply_markup=keyboard)
    except BadRequest as exc:
        if "not modified" in str(exc).lower():
            return True  # the same page pressed twice
        log.info("could not edit message for a button press: %s", exc)
        return False
    return True


async def answer_query(context: ContextTypes.DEFAULT_TYPE, query: Any, text: str | None = None) -> None:
    """answerCallbackQuery, remembered so the error handler never answers the same query twice (a 400)."""
    answered = context.application.bot_data.setdefault(ANSWERED_QUERIES, collections.deque(maxlen=512))
    answered.append(query.id)
    await query.answer(text)


async def on_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Inline keyboard presses: a fact, a /year page, another quote, an example question."""
    query = update.callback_query
    if query is None:
        return
    knowledge, _ = services(context)
    pressed = parse_callback(query.data)
    message = query.message if isinstance(query.message, Message) else None
    if pressed is None:
        log.info("ignored unknown callback_data (%d bytes)", len((query.data or "").encode()))
        await answer_query(context, query, STALE_BUTTON)
        return
    if pressed.kind == "fact":
        fact = _fact_of(knowledge, pressed.fact_id, pressed.position)
        if fact is None or message is None:
            await answer_query(context, query, STALE_BUTTON)
            return
        await answer_query(context, query)
        await send_html(message, render.fact_html(fact, knowledge), quote=False)
    elif pressed.kind == "year":
        pages = year_pages(knowledge, pressed.year)
        if not 0 <= pressed.page < len(pages):
            await answer_query(context, query, STALE_BUTTON)
            return
        await answer_query(context, query)
        keyboard = year_keyboard(pressed.year, pressed.page, len(pages))
        if not await _edit(query, pages[pressed.page], keyboard) and message is not None:
            await send_html(message, pages[pressed.page], keyboard, quote=False)
    elif pressed.kind == "quote":
        markup, keyboard = quote_reply(knowledge, "", exclude=pressed.fact_id or None)
        await answer_query(context, query)
        if not await _edit(query, markup, keyboard) and message is not None:
            await send_html(message, markup, keyboard, quote=False)
    elif pressed.kind == "example":
        if not 0 <= pressed.position < len(EXAMPLES) or message is None:
            await answer_query(context, query, STALE_BUTTON)
            return
        await answer_query(context, query)
        await reply_to_question(update, context, EXAMPLES[pressed.position], quote=False)


# --- inline mode ----------------------------------------------------------------------------------------------


def inline_facts(knowledge: Any, index: Any, query: str, limit: int = MAX_INLINE_OFFERED) -> list[Any]:
    """Facts to offer for an inline query: the answer's facts then its suggestions; the latest exchanges if empty."""
    if not query.strip():
        return sorted(knowledge.exchange_facts(), key=lambda f: f.date, reverse=True)[:limit]
    result = answer(index, query, today())
    chosen: list[Any] = []
    for fact in [*(result.facts if result.answered else ()), *result.suggestions]:
        if fact not in chosen:
            chosen.append(fact)
    return chosen[:limit]


async def on_inline_query(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    query = update.inline_query
    if query is None:
        return
    knowledge, index = services(context)
    facts = await asyncio.to_thread(inline_facts, knowledge, index, query.query)
    position = {f.id: i for i, f in enumerate(knowledge.facts)}
    results = [
        InlineQueryResultArticle(
            id=inline_result_id(f.id, position.get(f.id, i)),
            title=button_text(f.title),
            description=button_text(f"{render.fact_date(f)} — {f.text}", 120),
            input_message_content=InputTextMessageContent(split_html(render.fact_html(f, knowledge))[0]),
        )
        for i, f in enumerate(facts)
    ]
    button = (
        None
        if results
        else InlineQueryResultsButton(text="No fact matches — ask me in private", start_parameter="inline")
    )
    await query.answer(results, cache_time=INLINE_CACHE_SECONDS, button=button)


# --- errors ---------------------------------------------------------------------------------------------------


def describe_update(update: object, with_text: bool) -> str:
    """A one-line summary of an update for the error log; the user's text only when configured."""
    if not isinstance(update, Update):
        return repr(update) if update is not None else "no update"
    kind = next(
        (k for k in ("message", "edited_message", "callback_query", "inline_query") if getattr(update, k)), "other"
    )
    chat = update.effective_chat
    user = update.effective_user
    parts = [f"update {update.update_id}", kind, f"chat {chat.id} ({chat.type})" if chat else "no chat"]
    if user:
        parts.append(f"user {user.id}")
    if with_text:
        message = update.effective_message
        text = message.text if message else (update.inline_query.query if update.inline_query else None)
        if update.callback_query:
            text = update.callback_query.data
        parts.append(f"text {text!r}")
    return ", ".join(parts)


async def on_error(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Log the exception with the update, and apologise to the user (never showing the error itself)."""
    config = context.application.bot_data.get(CONFIG)
    with_text = bool(config is not None and config.logging.log_message_text)
    error = context.error
    note("error", error=type(error).__name__)
    if isinstance(error, Forbidden):  # the user blocked the bot or left the group: nothing to tell them
        log.info("cannot reach the user (%s): %s", error, describe_update(update, with_text))
        return
    log.error("error while handling %s", describe_update(update, with_text), exc_info=error)
    if not isinstance(update, Update):
        return
    try:
        query = update.callback_query
        if query is not None and query.id not in context.application.bot_data.get(ANSWERED_QUERIES, ()):
            with contextlib.suppress(BadRequest):  # too old to answer
                await answer_query(context, query, APOLOGY)
        if update.effective_chat is not None:
            await context.bot.send_message(update.effective_chat.id, APOLOGY)
    except TelegramError as exc:
        log.warning("could not send the apology: %s", exc)
