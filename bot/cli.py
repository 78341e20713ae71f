"""Command line: `python -m bot <command>`; parses arguments and hands off to the module that owns each command.

Each command is implemented as `main_<name>(args) -> int` in the module named in COMMANDS and imported
only when used, so `python -m bot validate` does not pay for importing python-telegram-bot.
Exit status: 0 success, 1 a check failed (e.g. invalid knowledge), 2 bad usage or configuration. Commands
let a configuration error or invalid knowledge propagate; `main` reports both the same way for all of them.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Callable

from bot.config import ConfigError

COMMANDS = {
    "validate": "bot.knowledge.facts:main_validate",
    "facts": "bot.knowledge.facts:main_facts",
    "schema": "bot.knowledge.facts:main_schema",
    "ask": "bot.ask:main_ask",
    "run": "bot.telegram.app:main_run",
    "digest": "bot.delivery.digest:main_digest",
    "send-digest": "bot.telegram.app:main_send_digest",
    "unanswered": "bot.store.database:main_unanswered",
    "playground": "bot.playground.runner:main_playground",
}


def build_parser() -> argparse.ArgumentParser:
    # `python -m bot` or the console script `china-russia-bot`: usage lines name what the user typed.
    invoked = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    prog = "python -m bot" if invoked in {"", "__main__.py", "-c"} else invoked
    parser = argparse.ArgumentParser(prog=prog, description="China–Russia New Year exchange facts bot")
    parser.add_argument("--config", help="config file (default: config.yaml, or $BOT_CONFIG)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("validate", help="check the knowledge files; prints counts per kind or every problem")
    p.add_argument("--knowledge", help="knowledge folder (default: from config)")
    p.add_argument("--corpus", help="corpus folder (default: from config)")

    p = sub.add_parser("facts", help="print the facts")
    p.add_argument("--json", action="store_true", help="as a JSON array")
    p.add_argument("--knowledge", help="knowledge folder (default: from config)")

    p = sub.add_parser("schema", help="regenerate knowledge/schema.json from the fact model")
    p.add_argument("--check", action="store_true", help="exit 1 if the file is out of date instead of writing it")

    p = sub.add_parser("ask", help="answer a question as the bot would")
    p.add_argument("--json", action="store_true", help="print one JSON object per question")
    p.add_argument("question", help="the question, or - to read one question per line from standard input")

    sub.add_parser("run", help="run the Telegram bot (token from TELEGRAM_BOT_TOKEN)")

    p = sub.add_parser("digest", help="print a year's New Year exchange digest")
    p.add_argument("year", nargs="?", type=int, help="year of the exchange (default: the latest)")

    p = sub.add_parser("send-digest", help="broadcast a year's digest to subscribers now")
    p.add_argument("--year", type=int, help="year of the exchange (default: the latest)")

    p = sub.add_parser("unanswered", help="list declined and low-confidence questions, grouped, most frequent first")
    p.add_argument("--limit", type=int, default=50, help="groups to show (default 50)")

    sub.add_parser("playground", help="run the local Bot API server, the bot and the web chat page")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    module_name, func_name = COMMANDS[args.command].split(":")
    func: Callable[[argparse.Namespace], int | None] = getattr(importlib.import_module(module_name), func_name)
    try:
        return int(func(args) or 0)
    except BrokenPipeError:  # the reader went away (`... | head`): stop quietly with success, as Unix tools do
        _silence_stdout()
        return 0
    except ConfigError as exc:  # one clear line; the token is never part of the message
        print(f"config error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:
        from bot.knowledge.facts import KnowledgeError  # imported late: most commands never load the knowledge layer

        if not isinstance(exc, KnowledgeError):
            raise
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        print("error: the knowledge files are invalid; run `python -m bot validate`", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so the interpreter's final flush of what is still buffered cannot fail again."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
