"""One log line per update: its kind, what came of it, and how long it took — never the token, never the
user's text unless `logging.log_message_text` is on.

This module owns that line. `LoggingApplication` (PTB's Application, built through ApplicationBuilder's
`application_class`) times `process_update`, which runs the handlers and, for blocking handlers, the error
handler within the same task; handlers report what happened with `note()`, which writes into a context
variable scoped to the update being processed.
"""

from __future__ import annotations

import logging
import time
from contextvars import ContextVar
from typing import Any

from telegram import Update
from telegram.ext import Application

log = logging.getLogger("bot.updates")

_OUTCOME: ContextVar[dict[str, Any] | None] = ContextVar("update_outcome", default=None)


def note(outcome: str, **fields: Any) -> None:
    """Record the outcome of the update being processed: answered, declined, error, ... plus details."""
    current = _OUTCOME.get()
    if current is not None:
        current["outcome"] = outcome
        current.update(fields)


def update_kind(update: object) -> str:
    if not isinstance(update, Update):
        return type(update).__name__
    if update.message is not None:
        text = update.message.text or ""
        return "command" if text.startswith("/") else "message"
    for kind in ("edited_message", "callback_query", "inline_query", "my_chat_member"):
        if getattr(update, kind) is not None:
            return kind
    return "other"


def format_line(update: object, record: dict[str, Any], latency_ms: float) -> str:
    update_id = getattr(update, "update_id", "-")
    extra = " ".join(f"{k}={v}" for k, v in record.items() if k != "outcome")
    return f"update {update_id} kind={update_kind(update)} outcome={record['outcome']} latency_ms={latency_ms:.1f}" + (
        f" {extra}" if extra else ""
    )


class LoggingApplication(Application):
    """PTB Application that logs one INFO line per processed update."""

    async def process_update(self, update: object) -> None:
        record: dict[str, Any] = {"outcome": "handled"}
        token = _OUTCOME.set(record)
        start = time.perf_counter()
        try:
            await super().process_update(update)
        finally:
            _OUTCOME.reset(token)
            log.info("%s", format_line(update, record, (time.perf_counter() - start) * 1000))
