"""Live knowledge edits: notice changed files under knowledge/, validate, and swap them in without a restart.

This module owns the hot-reload policy. A JobQueue job compares a cheap fingerprint of the knowledge files
(names, sizes, mtimes) every `reload.interval` seconds; once a change has been stable for one interval
(so an editor's half-written save is not reported), the whole knowledge is validated and, only if it is
valid, the knowledge and its matching index are replaced in `bot_data` in one step. An invalid edit leaves
the last good knowledge serving; its problems (file:line) are logged and sent once to every admin. The
admin command /reload does the same on demand.
"""

from __future__ import annotations

import asyncio
import dataclasses
import html
import logging
from collections.abc import MutableMapping
from typing import Any

from telegram import Update
from telegram.error import TelegramError
from telegram.ext import Application, CommandHandler, ContextTypes

from bot.config import Config
from bot.knowledge.facts import Knowledge, Problem, knowledge_fingerprint
from bot.matching.loading import load_indexed
from bot.telegram.handlers import admin_only

log = logging.getLogger(__name__)

# bot_data keys owned by this module
SEEN = "reload_seen_fingerprint"  # last fingerprint observed by the poller
LOADED = "reload_loaded_fingerprint"  # fingerprint of the knowledge being served (or last reported as broken)
MAX_PROBLEMS_SHOWN = 15


@dataclasses.dataclass(frozen=True)
class ReloadOutcome:
    changed: bool  # whether anything was (re)loaded or reported
    ok: bool  # the knowledge on disk is valid (and now served)
    problems: tuple[Problem, ...] = ()
    facts: int = 0


def _load(config: Config) -> tuple[Knowledge | None, list[Problem], Any]:
    """Validate and index outside the event loop; returns (knowledge, problems, index)."""
    return load_indexed(config.knowledge_dir, config.corpus_dir)


async def reload_knowledge(bot_data: MutableMapping[str, Any], *, force: bool = False) -> ReloadOutcome:
    """Reload knowledge/ into bot_data if it changed (or if forced). Never raises for bad knowledge."""
    config: Config = bot_data["config"]
    fingerprint = await asyncio.to_thread(knowledge_fingerprint, config.knowledge_dir)
    previous_seen = bot_data.get(SEEN)
    bot_data[SEEN] = fingerprint
    if not force:
        if fingerprint == bot_data.get(LOADED):
            return ReloadOutcome(changed=False, ok=True)
        if fingerprint != previous_seen:  # still changing: wait one more interval for the save to settle
            return ReloadOutcome(changed=False, ok=True)
    knowledge, problems, index = await asyncio.to_thread(_load, config)
    bot_data[LOADED] = fingerprint
    if knowledge is None or problems:
        for problem in problems:
            log.error("knowledge not reloaded: %s", problem)
        log.error("knowledge edit rejected (%d problems); still serving the last good knowledge", len(problems))
        return ReloadOutcome(changed=True, ok=False, problems=tuple(problems))
    bot_data["knowledge"] = knowledge
    bot_data["index"] = index
    log.info("knowledge reloaded: %d facts", len(knowledge.facts))
    return ReloadOutcome(changed=True, ok=True, facts=len(knowledge.facts))


def outcome_html(outcome: ReloadOutcome) -> str:
    """What admins are told, as Telegram HTML (problem text escaped)."""
    if outcome.ok:
        if not outcome.changed:
            return "Knowledge unchanged; nothing to reload."
        return f"Knowledge reloaded: <b>{outcome.facts}</b> facts."
    shown = outcome.problems[:MAX_PROBLEMS_SHOWN]
    lines = [f"<b>Knowledge edit rejected</b> ({len(outcome.problems)} problems); still serving the last good facts."]
    lines += [f"<code>{html.escape(str(p))}</code>" for p in shown]
    if len(outcome.problems) > len(shown):
        lines.append(f"… and {len(outcome.problems) - len(shown)} more: run <code>python -m bot validate</code>.")
    return "\n".join(lines)


async def _tell_admins(application: Application, text: str) -> None:
    from bot.presentation.telegram_text import split_html  # the splitter keeps every part under Telegram's limit

    for admin in application.bot_data["config"].admins:
        try:
            for part in split_html(text):
                await application.bot.send_message(admin, part)
        except TelegramError as exc:  # an admin who never started the bot must not stop the others
            log.warning("could not notify admin %s: %s", admin, exc)


async def _poll(context: ContextTypes.DEFAULT_TYPE) -> None:
    outcome = await reload_knowledge(context.application.bot_data)
    if outcome.changed and not outcome.ok:
        await _tell_admins(context.application, outcome_html(outcome))


@admin_only
async def reload_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/reload — admins only: validate and load knowledge/ now."""
    message = update.effective_message
    assert message is not None  # admin_only checked
    outcome = await reload_knowledge(context.application.bot_data, force=True)
    from bot.presentation.telegram_text import split_html

    for part in split_html(outcome_html(outcome)):
        await message.reply_text(part)


def register(application: Application) -> None:
    """Add the polling job and /reload. Call after bot_data["config"] and ["knowledge"] are set."""
    config: Config = application.bot_data["config"]
    application.bot_data[LOADED] = knowledge_fingerprint(config.knowledge_dir)
    application.bot_data[SEEN] = application.bot_data[LOADED]
    application.add_handler(CommandHandler("reload", reload_command))
    if application.job_queue is not None and config.reload.interval > 0:
        application.job_queue.run_repeating(
            _poll, interval=config.reload.interval, first=config.reload.interval, name="knowledge-reload"
        )
