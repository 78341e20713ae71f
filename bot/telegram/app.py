"""Building and running the Telegram bot: the PTB `Application`, its shared services, logging, `run`, `send-digest`.

This module owns the wiring: `build_application` registers every handler in one place (in the order that
matters — commands, then the subscriptions layer and /reload, then the catch-alls), `post_init` puts the
shared services in `bot_data` ("config", "knowledge", "index") and registers the command menu with
setMyCommands, and `main_run` is `python -m bot run`: config and token, token-safe logging, then long polling
or, when configured, a webhook whose secret token PTB checks on every request. `main_send_digest` is
`python -m bot send-digest`: the same config, token and logging, a `Bot` of its own and the store, handed to
`bot.delivery.broadcast.broadcast` with the digest composed once. The token is read only from
TELEGRAM_BOT_TOKEN and a logging filter removes it from every log record, tracebacks included.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import inspect
import logging
import sys
import threading
import urllib.parse
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from typing import TYPE_CHECKING, Any

from telegram import Bot, BotCommand, LinkPreviewOptions, Update
from telegram.constants import ParseMode
from telegram.ext import (
    AIORateLimiter,
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    CommandHandler,
    Defaults,
    InlineQueryHandler,
    MessageHandler,
    filters,
)

from bot.config import Config, bot_token, load_config
from bot.delivery.schedule import Schedule
from bot.telegram import handlers
from bot.telegram.http import AiohttpRequest
from bot.telegram.updatelog import LoggingApplication

if TYPE_CHECKING:
    from bot.delivery.broadcast import Summary

log = logging.getLogger(__name__)

ALLOWED_UPDATES = [Update.MESSAGE, Update.EDITED_MESSAGE, Update.CALLBACK_QUERY, Update.INLINE_QUERY]
BOT_COMMANDS = (
    ("start", "Welcome and example questions"),
    ("help", "How to ask, and the commands"),
    ("ask", "Ask a question (in groups)"),
    ("year", "What happened in a year, e.g. /year 2024"),
    ("timeline", "The highlights of every year"),
    ("quote", "A quote, e.g. /quote Putin"),
    ("sources", "The articles the facts come from"),
    ("about", "What this bot is"),
)
# Shown in the menu when bot.telegram.subscriptions is present and its register() does not return its own list.
SUBSCRIPTION_COMMANDS = (
    ("subscribe", "Get the New Year exchange digest every year"),
    ("unsubscribe", "Stop the yearly digest"),
    ("digest", "The latest New Year exchange digest"),
)
STARTUP_HOOKS = "on_startup"  # bot_data list of async callables(application), run at the end of post_init
SHUTDOWN_HOOKS = "on_shutdown"  # bot_data list of async callables(application), run in post_shutdown
MENU = "menu_commands"
PRELIMITED = "prelimited"  # rate_limit_args of a request its sender has rate-limited already (the digest broadcast)


# --- token-safe logging -----------------------------------------------------------------------------------------


class RedactSecrets(logging.Filter):
    """Replaces the token (and its URL-encoded form) in a record's message, arguments and traceback."""

    def __init__(self, *secrets: str) -> None:
        super().__init__()
        values = {s for s in secrets if s}
        values |= {urllib.parse.quote(s, safe="") for s in values}
        self.secrets = sorted(values, key=len, reverse=True)

    def redact(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, "[REDACTED]")
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string must not lose the record
            message = f"{record.msg} {record.args}"
        record.msg, record.args = self.redact(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        return True


def setup_logging(config: Config, token: str) -> RedactSecrets:
    """Log to stderr at the configured level, with the token redacted from everything that is logged."""
    logging.basicConfig(
        level=getattr(logging, config.logging.level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    redact = RedactSecrets(token, config.telegram.webhook.secret_token)
    for handler in logging.getLogger().handlers:
        handler.addFilter(redact)
    logging.captureWarnings(True)  # warnings go through the same (redacting) handlers
    # httpx logs every request URL, and the URL contains the token; apscheduler logs every job run.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    threading.excepthook = lambda hook: log.error(
        "uncaught exception in thread %s", hook.thread, exc_info=hook.exc_value
    )
    return redact


# --- the application ------------------------------------------------------------------------------------------


async def post_init(application: Application) -> None:
    """Shared services into bot_data (unless given to build_application), the command menu, startup hooks."""
    from bot.matching.loading import load_indexed_or_raise
    from bot.matching.matcher import build_index

    data = application.bot_data
    config: Config = data[handlers.CONFIG]
    if handlers.KNOWLEDGE not in data:
        knowledge, index = await asyncio.to_thread(load_indexed_or_raise, config.knowledge_dir, config.corpus_dir)
        data[handlers.KNOWLEDGE] = knowledge
        data.setdefault(handlers.INDEX, index)
    if handlers.INDEX not in data:
        data[handlers.INDEX] = await asyncio.to_thread(build_index, data[handlers.KNOWLEDGE])
    await application.bot.set_my_commands([BotCommand(name, text) for name, text in data[MENU]])
    for hook in data.get(STARTUP_HOOKS, []):
        await hook(application)
    log.info("bot @%s ready: %d facts", application.bot.username, len(data[handlers.KNOWLEDGE].facts))


async def post_shutdown(application: Application) -> None:
    for hook in application.bot_data.get(SHUTDOWN_HOOKS, []):
        try:
            await hook(application)
        except Exception:
            log.exception("shutdown hook failed")


def _menu_entries(registered: object) -> list[tuple[str, str]]:
    """Menu entries returned by a layer's register(): (command, description) pairs or BotCommands."""
    if not isinstance(registered, Iterable) or isinstance(registered, str | bytes):
        return []
    entries = []
    for item in registered:
        if isinstance(item, BotCommand):
            entries.append((item.command, item.description))
        elif isinstance(item, tuple) and len(item) == 2:
            entries.append((str(item[0]), str(item[1])))
    return entries


def _optional_layer(module_name: str) -> Any | None:
    """An optional module of the project (None until a teammate's layer exists)."""
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name != module_name:  # the module exists but something it imports is missing: a real error
            raise
        return None


def bot_defaults(config: Config) -> Defaults:
    """How everything the bot sends is sent: as Telegram HTML (what bot.presentation renders) without link
    previews; naive times (the JobQueue's among them) in the digest's time zone."""
    return Defaults(
        parse_mode=ParseMode.HTML,
        link_preview_options=LinkPreviewOptions(is_disabled=True),
        tzinfo=Schedule.from_config(config.digest).tz,
    )


class BotRateLimiter(AIORateLimiter):
    """PTB's AIORateLimiter for everything the bot sends, except requests with rate_limit_args=PRELIMITED.

    Those go straight through: the digest broadcast keeps Telegram's limits itself (broadcast.rate_per_second,
    the per-chat interval, and 429 pauses and retries, in bot.delivery.broadcast). Through this limiter as well,
    each of its messages would be limited twice, and its 429s retried here before the broadcast saw them.
    """

    async def process_request(
        self,
        callback: Callable[..., Coroutine[Any, Any, Any]],
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: int | str | None,
    ) -> Any:
        if rate_limit_args == PRELIMITED:
            return await callback(*args, **kwargs)
        retries = rate_limit_args if isinstance(rate_limit_args, int) else None
        return await super().process_request(callback, args, kwargs, endpoint, data, retries)


def prelimited(bot: Bot) -> str | None:
    """The rate_limit_args for sends the caller rate-limits itself: PRELIMITED if `bot` has a BotRateLimiter."""
    return PRELIMITED if isinstance(getattr(bot, "rate_limiter", None), BotRateLimiter) else None


def file_base_url(base_url: str) -> str:
    """The file download URL that goes with a Bot API base URL (".../bot" -> ".../file/bot")."""
    root = base_url[: -len("bot")] if base_url.endswith("bot") else base_url.rstrip("/") + "/"
    return f"{root}file/bot"


def build_application(
    config: Config,
    token: str,
    *,
    base_url: str | None = None,
    knowledge: Any = None,
    index: Any = None,
    with_subscriptions: bool = True,
) -> Application:
    """The bot: every handler wired here, services in bot_data. Knowledge/index given here are not reloaded."""
    base_url = base_url or config.telegram.api_base_url
    application = (
        ApplicationBuilder()
        .application_class(LoggingApplication)  # one log line per update: kind, outcome, latency
        .token(token)
        .base_url(base_url)
        .base_file_url(file_base_url(base_url))
        .defaults(bot_defaults(config))
        # All Bot API traffic over aiohttp: a fraction of httpx's CPU per request (benchmarks/broadcast.py). Pool
        # sizes as PTB's defaults: 256 connections for requests, one for getUpdates.
        .request(AiohttpRequest())
        .get_updates_request(AiohttpRequest(connection_pool_size=1))
        # Telegram's flood limits (30 messages/s overall, 20 a minute per group) for replies, 429 retry_after waited
        # out; the digest broadcast passes by it (PRELIMITED), limited by its own bucket at broadcast.rate_per_second
        .rate_limiter(BotRateLimiter(max_retries=3))
        .post_init(post_init)
        .post_shutdown(post_shutdown)
        .build()
    )
    data = application.bot_data
    data[handlers.CONFIG] = config
    if knowledge is not None:
        data[handlers.KNOWLEDGE] = knowledge
        if index is not None:
            data[handlers.INDEX] = index
    menu = list(BOT_COMMANDS)

    application.add_handler(CommandHandler("start", handlers.start))
    application.add_handler(CommandHandler("help", handlers.help_command))
    application.add_handler(CommandHandler("about", handlers.about))
    application.add_handler(CommandHandler("ask", handlers.ask))
    application.add_handler(CommandHandler("year", handlers.year))
    application.add_handler(CommandHandler("timeline", handlers.timeline))
    application.add_handler(CommandHandler("quote", handlers.quote))
    application.add_handler(CommandHandler("sources", handlers.sources))

    # >>> subscriptions layer: the single call site. bot.telegram.subscriptions.register(application) adds /subscribe,
    # /unsubscribe, /digest, /senddigest and /stats; it may return its menu entries ((command, description)
    # pairs). It runs before the catch-all handlers below, or they would swallow its commands.
    subscriptions = _optional_layer("bot.telegram.subscriptions") if with_subscriptions else None
    if subscriptions is not None:
        menu += _menu_entries(subscriptions.register(application)) or list(SUBSCRIPTION_COMMANDS)
    # <<<
    reload = _optional_layer("bot.telegram.reload")
    if reload is not None:
        reload.register(application)  # /reload (admins) and the knowledge/ watcher job

    application.add_handler(CallbackQueryHandler(handlers.on_button))
    application.add_handler(InlineQueryHandler(handlers.on_inline_query))
    application.add_handler(MessageHandler(filters.TEXT & ~filters.COMMAND, handlers.on_text))
    application.add_handler(MessageHandler(filters.COMMAND, handlers.unknown_command))
    application.add_error_handler(handlers.on_error)
    data[MENU] = menu
    return application


def add_hook(application: Application, key: str, hook: Callable[[Application], Awaitable[None]]) -> None:
    """Register an async startup (STARTUP_HOOKS) or shutdown (SHUTDOWN_HOOKS) hook for another layer."""
    if not inspect.iscoroutinefunction(hook):
        raise TypeError("hooks must be async functions taking the application")
    application.bot_data.setdefault(key, []).append(hook)


# --- python -m bot run ------------------------------------------------------------------------------------------


def main_run(args: argparse.Namespace) -> int:
    """Run the bot until interrupted: long polling, or a webhook when telegram.mode is webhook."""
    config = load_config(getattr(args, "config", None))
    token = bot_token()
    redact = setup_logging(config, token)
    from bot.knowledge.facts import load_knowledge

    knowledge = load_knowledge(config.knowledge_dir, config.corpus_dir)
    try:
        application = build_application(config, token, knowledge=knowledge)  # the index is built in post_init
        tg = config.telegram
        if tg.mode == "webhook":
            application.run_webhook(
                listen=tg.webhook.listen,
                port=tg.webhook.port,
                url_path=urllib.parse.urlsplit(tg.webhook.url).path.lstrip("/"),
                webhook_url=tg.webhook.url,
                secret_token=tg.webhook.secret_token,  # PTB rejects requests without this header value (403)
                allowed_updates=ALLOWED_UPDATES,
            )
        else:
            application.run_polling(timeout=tg.poll_timeout, allowed_updates=ALLOWED_UPDATES)
    except Exception as exc:  # e.g. the token rejected, the API unreachable: one line, without the token
        log.debug("bot stopped by an error", exc_info=exc)
        print(f"error: {redact.redact(f'{type(exc).__name__}: {exc}')}", file=sys.stderr)
        return 1
    return 0


# --- python -m bot send-digest ----------------------------------------------------------------------------------


def main_send_digest(args: argparse.Namespace) -> int:
    """Broadcast a year's digest now through the configured Bot API, using the configured database."""
    from telegram.error import InvalidToken, TelegramError
    from telegram.ext import ExtBot

    from bot.delivery import digest
    from bot.delivery.broadcast import broadcast
    from bot.knowledge.facts import load_knowledge
    from bot.store.database import open_store

    config = load_config(getattr(args, "config", None))
    token = bot_token()
    redact = setup_logging(config, token)  # token-redacting logging; httpx quietened (its URLs hold the token)
    logging.getLogger("aiosqlite").setLevel(logging.INFO)  # at DEBUG it logs every database call
    knowledge = load_knowledge(config.knowledge_dir, config.corpus_dir)
    year = args.year if args.year is not None else digest.latest_year(knowledge)
    composed = digest.compose(knowledge, year)
    if not composed.found or composed.year is None:  # said before anything is opened or sent
        print(digest.render_plain(composed), file=sys.stderr)
        return 2
    found_year, parts = composed.year, digest.render_parts(composed)

    async def run() -> Summary:
        request = AiohttpRequest(connection_pool_size=config.broadcast.concurrency + 4)
        bot = ExtBot(token, base_url=config.telegram.api_base_url, request=request, defaults=bot_defaults(config))
        store = await open_store(config.database)
        try:
            async with bot:  # getMe: checks the token and that the Bot API answers
                return await broadcast(bot, store, found_year, parts, config.broadcast)
        finally:
            await store.close()

    try:
        summary = asyncio.run(run())
    except InvalidToken:
        print("error: the Bot API rejected the token in TELEGRAM_BOT_TOKEN", file=sys.stderr)
        return 2
    except TelegramError as exc:
        print(
            f"error: the Bot API at {config.telegram.api_base_url} failed: {redact.redact(str(exc))}", file=sys.stderr
        )
        return 1
    print(summary.text())
    return 0 if summary.busy is None else 1
