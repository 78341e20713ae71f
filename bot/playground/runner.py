"""The local playground: `make run` without a token (`python -m bot playground`).

This module owns the web chat page's HTTP routes and the process that ties everything together: it starts
the project's own Bot API server (`bot.playground.botapi_server`) on the configured host and port with the page's
routes added, runs the real bot (`python -m bot run`) as a subprocess pointed at that server with a fixed
fake token, forwards the bot's log, and stops both cleanly on Ctrl-C or SIGTERM. The page itself is plain
HTML/CSS/JS in `bot/playground/static/`; it renders Bot API messages (text + entities, inline keyboards) client-side.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import errno
import json
import os
import signal
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import tornado.http1connection
import tornado.web

from bot.config import Config, load_config
from bot.playground.botapi_server import BotApiServer

STATIC_DIR = Path(__file__).resolve().parent / "static"
# Not a secret and never a real token: real bot ids are not 100000 and real secrets are 35 characters.
PLAYGROUND_TOKEN = "100000:PLAYGROUND"
# The one person using the playground; their private chat with the bot has the same id (as in Telegram).
PLAYGROUND_USER_ID = 1000001
PLAYGROUND_FIRST_NAME = "You"
LONG_POLL_SECONDS = 25.0
MAX_TEXT = 4096
STOP_TIMEOUT = 15.0
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


class ChatFeed:
    """Revision numbers for the messages of one chat, so the page can ask for what changed since N.

    The server keeps the chat log; this keeps a signature of every message it has reported, and gives a
    message a new revision when it first appears, when it is edited and when it is deleted.
    """

    def __init__(self, srv: BotApiServer, chat_id: int) -> None:
        self.srv = srv
        self.chat_id = chat_id
        self.rev = 0
        # Tells a page that outlived a previous run of the playground to start over from revision 0.
        self.run_id = f"{os.getpid()}-{time.time_ns()}"
        self._seen: dict[int, tuple[int, str]] = {}  # message_id -> (revision, signature)
        self._deleted: dict[int, int] = {}  # message_id -> revision of the deletion
        self._calls_seen = 0
        self._notices: list[tuple[int, str]] = []  # (revision, text of an answerCallbackQuery)

    def refresh(self) -> None:
        current: dict[int, dict[str, Any]] = {}
        for message in self.srv.chat_log(self.chat_id):
            current[message["message_id"]] = message
        for message_id, message in current.items():
            signature = json.dumps(message, sort_keys=True, default=str)
            seen = self._seen.get(message_id)
            if seen is None or seen[1] != signature:
                self.rev += 1
                self._seen[message_id] = (self.rev, signature)
                self._deleted.pop(message_id, None)
        for message_id in [m for m in self._seen if m not in current]:
            self.rev += 1
            del self._seen[message_id]
            self._deleted[message_id] = self.rev
        self._collect_notices()

    def _collect_notices(self) -> None:
        """Pop-up texts the bot sent with answerCallbackQuery, shown by the page like Telegram's toasts."""
        calls = self.srv.calls
        for call in calls[self._calls_seen :]:
            if call.ok and call.method == "answerCallbackQuery" and call.params.get("text"):
                self.rev += 1
                self._notices.append((self.rev, str(call.params["text"])))
        self._calls_seen = len(calls)

    def changes(self, since: int) -> dict[str, Any]:
        """Messages added or changed after revision `since` (all of them when the page is new or stale)."""
        self.refresh()
        reset = since > self.rev  # the page saw a previous run of the playground: send everything again
        if reset:
            since = 0
        messages = []
        for message in self.srv.chat_log(self.chat_id):
            rev, _ = self._seen[message["message_id"]]
            if rev > since:
                messages.append({**message, "outgoing": not message.get("from", {}).get("is_bot", False)})
        return {
            "run": self.run_id,
            "rev": self.rev,
            "reset": reset,
            "messages": messages,
            "deleted": [m for m, rev in self._deleted.items() if rev > since],
            "notices": [text for rev, text in self._notices if rev > since and since > 0],
        }

    async def wait_changes(
        self, since: int, timeout: float, gone: Callable[[], bool] = lambda: False
    ) -> dict[str, Any]:
        """Long poll: as soon as something changed after `since`; an empty change list at `timeout` or when
        `gone()` says the page disconnected."""
        deadline = time.monotonic() + timeout
        while True:
            version = self.srv.version
            result = self.changes(since)
            remaining = deadline - time.monotonic()
            if result["messages"] or result["deleted"] or result["notices"] or result["reset"]:
                return result
            if remaining <= 0 or gone():
                return result
            await self.srv.wait_for_change(version, remaining)


class _ApiHandler(tornado.web.RequestHandler):
    """JSON endpoints of the page; POSTs must be JSON from the page's own origin."""

    def initialize(self, feed: ChatFeed) -> None:
        self.feed = feed
        self.srv = feed.srv

    def set_default_headers(self) -> None:
        self.set_header("Cache-Control", "no-store")
        self.set_header("X-Content-Type-Options", "nosniff")

    def reply(self, status: int, body: Mapping[str, Any]) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.finish(json.dumps(body, ensure_ascii=False))

    def json_body(self) -> dict[str, Any] | None:
        """The request's JSON object, or None after replying 400/403 (another site, not JSON, not an object)."""
        origin = self.request.headers.get("Origin")
        if origin and urlsplit(origin).netloc != self.request.host:
            self.reply(403, {"ok": False, "error": "requests from other sites are not accepted"})
            return None
        if not self.request.headers.get("Content-Type", "").startswith("application/json"):
            self.reply(400, {"ok": False, "error": "send a JSON body with Content-Type: application/json"})
            return None
        try:
            body = json.loads(self.request.body or b"null")
        except ValueError:
            body = None
        if not isinstance(body, dict):
            self.reply(400, {"ok": False, "error": "the body must be a JSON object"})
            return None
        return body


class SendHandler(_ApiHandler):
    def post(self) -> None:
        body = self.json_body()
        if body is None:
            return
        text = body.get("text")
        if not isinstance(text, str) or not text.strip():
            return self.reply(400, {"ok": False, "error": "text must be a non-empty string"})
        if len(text) > MAX_TEXT:
            return self.reply(400, {"ok": False, "error": f"text is longer than Telegram's {MAX_TEXT} characters"})
        update = self.srv.user_message(
            self.feed.chat_id, text, user_id=PLAYGROUND_USER_ID, first_name=PLAYGROUND_FIRST_NAME
        )
        self.reply(200, {"ok": True, "message": {**update["message"], "outgoing": True}})


class PressHandler(_ApiHandler):
    def post(self) -> None:
        body = self.json_body()
        if body is None:
            return
        message_id, data = body.get("message_id"), body.get("data")
        if not isinstance(message_id, int) or isinstance(message_id, bool) or not isinstance(data, str) or not data:
            return self.reply(400, {"ok": False, "error": "message_id must be a number and data a non-empty string"})
        try:
            self.srv.press_button(self.feed.chat_id, message_id, data, user_id=PLAYGROUND_USER_ID)
        except (KeyError, ValueError, LookupError) as exc:
            return self.reply(400, {"ok": False, "error": f"cannot press that button: {exc}"})
        self.reply(200, {"ok": True})


class UpdatesHandler(_ApiHandler):
    def _gone(self) -> bool:
        connection = self.request.connection
        assert isinstance(connection, tornado.http1connection.HTTP1Connection)  # tornado's HTTP server's
        return connection.stream.closed()

    async def get(self) -> None:
        try:
            since = int(self.get_query_argument("since", "0"))
            timeout = float(self.get_query_argument("timeout", str(LONG_POLL_SECONDS)))
        except ValueError:
            return self.reply(400, {"ok": False, "error": "since must be a whole number and timeout a number"})
        timeout = max(0.0, min(timeout, LONG_POLL_SECONDS))
        result = await self.feed.wait_changes(max(0, since), timeout, self._gone)
        if self._gone():  # the page went away (or the server is stopping) while we waited
            return
        self.reply(200, {"ok": True, **result})


class CommandsHandler(_ApiHandler):
    def get(self) -> None:
        self.reply(200, {"ok": True, "commands": commands_for_menu(self.srv.my_commands)})


class PageHandler(tornado.web.RequestHandler):
    def get(self) -> None:
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.set_header("Cache-Control", "no-cache")
        self.set_header("Content-Security-Policy", CSP)
        self.set_header("X-Content-Type-Options", "nosniff")
        self.finish((STATIC_DIR / "playground.html").read_bytes())


class StaticHandler(tornado.web.StaticFileHandler):
    def set_extra_headers(self, path: str) -> None:
        self.set_header("Cache-Control", "no-cache")  # a maintainer editing the page sees the change on reload
        self.set_header("X-Content-Type-Options", "nosniff")


def commands_for_menu(my_commands: list[dict[str, Any]]) -> list[dict[str, str]]:
    """The command menu of a private chat: what setMyCommands set for the default scope."""
    return [
        {"command": str(c["command"]).lstrip("/"), "description": str(c.get("description", ""))}
        for c in my_commands
        if c.get("command")
    ]


Route = tuple[str, type[tornado.web.RequestHandler], dict[str, object]]  # pattern, handler, its initialize() args


def playground_routes(srv: BotApiServer, chat_id: int = PLAYGROUND_USER_ID) -> list[Route]:
    """Tornado routes of the page and its API for the server's chat with `chat_id`."""
    feed = ChatFeed(srv, chat_id)
    api: dict[str, object] = {"feed": feed}
    return [
        (r"/", PageHandler, {}),
        (r"/playground/?", PageHandler, {}),
        (r"/playground/static/(.*)", StaticHandler, {"path": str(STATIC_DIR)}),
        (r"/playground/api/send", SendHandler, api),
        (r"/playground/api/press", PressHandler, api),
        (r"/playground/api/updates", UpdatesHandler, api),
        (r"/playground/api/commands", CommandsHandler, api),
    ]


def bot_environment(config: Config, base_url: str, environ: Mapping[str, str]) -> dict[str, str]:
    """The environment of the bot subprocess: the fake token, the local server and the playground user as admin."""
    admins = sorted({*config.admins, PLAYGROUND_USER_ID})
    return {
        **environ,
        "TELEGRAM_BOT_TOKEN": PLAYGROUND_TOKEN,
        "TELEGRAM_API_BASE_URL": base_url,
        "BOT_DATABASE": str(config.database),
        "BOT_ADMINS": ",".join(str(a) for a in admins),
        "BOT_MODE": "polling",  # the local server has no webhooks to call
        "PYTHONUNBUFFERED": "1",  # the bot's log reaches the terminal line by line
    }


def bot_command(config_path: str | None) -> list[str]:
    return [sys.executable, "-m", "bot", *(["--config", config_path] if config_path else []), "run"]


def _die_with_parent() -> Callable[[], None] | None:
    """On Linux, a pre-exec hook so the bot gets SIGTERM if the playground is killed without cleaning up."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl  # looked up here: nothing may be imported after fork
    except (OSError, AttributeError):
        return None
    pr_set_pdeathsig = 1
    return lambda: prctl(pr_set_pdeathsig, int(signal.SIGTERM))


def _say(line: str) -> None:
    print(line, flush=True)  # at once even when piped (`make run | tee`, tests): it is a live log


def _display_url(host: str, port: int) -> str:
    shown = "127.0.0.1" if host in ("", "0.0.0.0", "::") else host
    return f"http://[{shown}]:{port}" if ":" in shown else f"http://{shown}:{port}"


async def _forward(stream: asyncio.StreamReader, out: Callable[[str], None]) -> None:
    while line := await stream.readline():
        out("[bot] " + line.decode("utf-8", "replace").rstrip("\n"))


async def run_playground(
    config: Config,
    config_path: str | None = None,
    *,
    stop: asyncio.Event | None = None,
    out: Callable[[str], None] | None = None,
    environ: Mapping[str, str] | None = None,
) -> int:
    """Serve the page and the Bot API, run the bot until `stop` is set (or a signal), then shut both down."""
    stop = stop or asyncio.Event()
    out = out or _say
    srv = BotApiServer(accepted_token=PLAYGROUND_TOKEN)
    srv.add_handlers(playground_routes(srv))
    host, port = config.playground.host, config.playground.port
    try:
        await srv.start(host, port)
    except ValueError as exc:  # the server listens on loopback only: nothing here is meant for a network
        out(f"Playground: {exc}; set playground.host (BOT_PLAYGROUND_HOST) to 127.0.0.1.")
        return 2
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            out(f"Playground: port {port} on {host} is in use; set BOT_PLAYGROUND_PORT to a free port (0 picks one).")
        else:
            out(f"Playground: cannot listen on {host}:{port}: {exc.strerror or exc}")
        return 2
    actual_port = urlsplit(srv.base_url).port or port
    out(f"Playground: {_display_url(host, actual_port)} (bot API on {srv.base_url}, press Ctrl-C to stop)")

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    proc: asyncio.subprocess.Process | None = None
    forward: asyncio.Task[None] | None = None
    try:
        proc = await asyncio.create_subprocess_exec(
            *bot_command(config_path),
            env=bot_environment(config, srv.base_url, os.environ if environ is None else environ),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches only us; we stop the bot in order
            preexec_fn=_die_with_parent(),
        )
        assert proc.stdout is not None
        forward = asyncio.create_task(_forward(proc.stdout, out))
        exited = asyncio.create_task(proc.wait())
        stopping = asyncio.create_task(stop.wait())
        await asyncio.wait({exited, stopping}, return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        if exited.done():
            await forward
            out(f"Playground: the bot process exited with status {proc.returncode}; see its log above. Stopping.")
            return 1
        out("Playground: stopping the bot…")
        return 0
    finally:
        if proc is not None and proc.returncode is None:
            await _terminate(proc)
        if forward is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(forward, 2.0)
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        await srv.stop()


async def _terminate(proc: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(ProcessLookupError):
        proc.terminate()
    try:
        await asyncio.wait_for(proc.wait(), STOP_TIMEOUT)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()


def main_playground(args: argparse.Namespace) -> int:
    config = load_config(getattr(args, "config", None))
    return asyncio.run(run_playground(config, getattr(args, "config", None)))
