"""An offline Telegram Bot API server on 127.0.0.1, for end-to-end tests and the local playground.

This module owns the simulated Telegram: a tornado app running in the caller's asyncio loop that answers
`/bot<token>/<method>` exactly like api.telegram.org ({"ok": true, "result": ...} or {"ok": false,
"error_code": ..., "description": ...} with the matching HTTP status), after validating every request against
the bundled Bot API spec and Telegram's prose rules (`bot/playground/botapi_validate.py`). It keeps the state a bot can
observe — chats, messages with per-chat increasing ids, the update queue behind `getUpdates` long polling,
callback and inline queries awaiting answers, commands, webhook — and offers what a test needs around it: the
user's side (`user_message`, `press_button`, `inline_query`, ...), a record of every call and of every rejected
one, waiting helpers, failure injection per chat (blocked, deactivated, not found, 429, 5xx), a global rate
limit, delivery statistics, and listeners plus a version counter so a web page can long-poll for changes.
Not simulated: webhook delivery (setWebhook is recorded and switches getUpdates off), Markdown parse modes
(their text is kept verbatim), media.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import json
import logging
import math
import re
import time
from collections import Counter, deque
from collections.abc import Callable, Mapping, Sequence
from http import HTTPStatus
from types import TracebackType
from typing import Any, TypeVar

import tornado.httpserver
import tornado.httputil
import tornado.netutil
import tornado.web

from bot.playground.botapi_validate import (
    NOT_MODIFIED,
    ApiError,
    Spec,
    UploadedFile,
    as_form_value,
    bad_request,
    load_spec,
    message_text,
    validate_request,
)

log = logging.getLogger(__name__)
_T = TypeVar("_T")

TOKEN_RE = re.compile(r"^\d{1,20}:[A-Za-z0-9_-]{1,100}$")
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
# Methods acting on one chat: refused for blocked, deactivated or unknown chats.
CHAT_METHODS = frozenset(
    {"sendMessage", "editMessageText", "editMessageReplyMarkup", "deleteMessage", "sendChatAction"}
)
# Methods consuming the failures queued by throttle_chat / fail_chat.
SEND_METHODS = frozenset({"sendMessage", "editMessageText", "editMessageReplyMarkup"})
RATE_LIMITED_METHODS = frozenset({"sendMessage", "editMessageText"})
# Update types Telegram leaves out unless allowed_updates asks for them.
DEFAULT_EXCLUDED_UPDATES = frozenset({"chat_member", "message_reaction", "message_reaction_count"})
CONFLICT_POLL = "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running"
CONFLICT_WEBHOOK = (
    "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first"
)
QUERY_INVALID = "query is too old and response timeout expired or query ID is invalid"
FIRST_UPDATE_ID = 100_000_001


@dataclasses.dataclass(frozen=True)
class ApiCall:
    """One request the bot made, as the server decoded and answered it."""

    method: str  # canonical spelling ("sendMessage") when the method exists, else as requested
    params: dict[str, Any]  # decoded: ints, bools, objects; identical for form, multipart and JSON bodies
    ok: bool
    error_code: int | None = None
    description: str | None = None
    result: Any = None
    retry_after: int | None = None
    at: float = 0.0  # time.monotonic() when answered


@dataclasses.dataclass(frozen=True)
class ServerEvent:
    """What listeners hear: "update" (a user acted; data is the Update), "call" (data is the ApiCall),
    "message" / "edit" / "delete" (the bot changed a chat; data is the Message)."""

    kind: str
    chat_id: int | None
    data: Any


@dataclasses.dataclass(frozen=True)
class ServerStats:
    sent: int  # sendMessage calls accepted
    edited: int  # editMessageText / editMessageReplyMarkup calls accepted
    too_many_requests: int  # 429 answers (rate limit and throttle_chat)
    errors: int  # every answer that was not ok
    per_chat: Mapping[int, int]  # accepted sendMessage calls per chat
    peak_per_second: int  # most sendMessage calls accepted within any one-second window

    @property
    def duplicates(self) -> dict[int, int]:
        """Chats that received more than one message, with their counts."""
        return {chat: n for chat, n in self.per_chat.items() if n > 1}


class _InjectedError(ApiError):
    """A failure the test asked for (or the rate limit): a legitimate answer, not an invalid request."""


@dataclasses.dataclass
class _Request:
    """One HTTP request in flight; lets a newer getUpdates or a dropped connection end a long poll."""

    terminated: bool = False
    disconnected: bool = False


@dataclasses.dataclass(frozen=True)
class _WithDescription:
    result: Any
    description: str


def user_entities(text: str) -> list[dict[str, Any]]:
    """The entities Telegram detects in a user's plain text: bot commands (with @botname) and @mentions."""
    found = []
    for pattern, kind in ((_COMMAND_IN_TEXT, "bot_command"), (_MENTION_IN_TEXT, "mention")):
        for match in pattern.finditer(text):
            offset = len(text[: match.start()].encode("utf-16-le")) // 2
            found.append({"type": kind, "offset": offset, "length": len(match.group(0).encode("utf-16-le")) // 2})
    return sorted(found, key=lambda e: e["offset"])


_COMMAND_IN_TEXT = re.compile(r"(?<![\w/@])/[A-Za-z0-9_]{1,64}(?:@[A-Za-z0-9_]{3,32})?(?![\w@])")
_MENTION_IN_TEXT = re.compile(r"(?<![\w/@])@[A-Za-z0-9_]{5,32}(?!\w)")


class BotApiServer:
    """The simulated Telegram. Create, `await start()`, point the bot at `base_url`, `await stop()`."""

    def __init__(
        self,
        *,
        rate_limit: float | None = None,
        bot_username: str = "china_russia_facts_bot",
        bot_name: str = "China–Russia Facts",
        accepted_token: str | None = None,
        known_chats_only: bool = False,
        spec: Spec | None = None,
    ) -> None:
        """rate_limit: sendMessage/editMessageText per second (all chats) above which calls get 429.
        accepted_token: when set, other well-formed tokens get 401 Unauthorized.
        known_chats_only: sending to a chat no user has written from gets "chat not found" (else it is created)."""
        self.rate_limit = rate_limit
        self.bot_username = bot_username
        self.bot_name = bot_name
        self.accepted_token = accepted_token
        self.known_chats_only = known_chats_only
        self.spec = spec or load_spec()
        self.calls: list[ApiCall] = []
        self.invalid_calls: list[ApiCall] = []
        self.updates: list[dict] = []  # every update queued, confirmed or not
        self.callback_answers: dict[str, dict] = {}  # callback_query_id -> answerCallbackQuery params
        self.inline_answers: dict[str, dict] = {}  # inline_query_id -> answerInlineQuery params
        self.chat_actions: list[tuple[int, str]] = []
        self.menu_buttons: dict[int | None, dict] = {}
        self.webhook: dict[str, Any] = {}  # setWebhook params while a webhook is set
        self._bot_id = 0
        self._chats: dict[int, dict] = {}
        self._users: dict[int, dict] = {}
        self._messages: dict[int, dict[int, dict]] = {}  # chat id -> message id -> Message, in chat order
        self._next_message_id: dict[int, int] = {}
        self._pending: deque[dict] = deque()  # updates not yet confirmed by getUpdates offset
        self._update_ids = itertools.count(FIRST_UPDATE_ID)
        self._query_ids = itertools.count(1)
        self._allowed_updates: frozenset[str] | None = None
        self._open_queries: dict[str, str] = {}  # unanswered query id -> "callback" / "inline"
        self._commands: dict[tuple[str, str], list[dict]] = {}
        self._blocked: set[int] = set()
        self._deactivated: set[int] = set()
        self._not_found: set[int] = set()
        self._injected: dict[int, deque[_InjectedError]] = {}
        self._tokens = max(1.0, rate_limit or 0.0)
        self._tokens_at = time.monotonic()
        self._sent = 0
        self._last_second: deque[float] = deque()  # sendMessage acceptance times within the last second
        self._peak = 0
        self._per_chat: Counter[int] = Counter()
        self._edited = 0
        self._too_many = 0
        self._errors = 0
        self._poll: _Request | None = None
        self._listeners: list[Callable[[ServerEvent], None]] = []
        self._version = 0
        self._changed = asyncio.Event()
        self._stopping = False
        self._extra_handlers: list = []
        self._http: tornado.httpserver.HTTPServer | None = None
        self._host = "127.0.0.1"
        self._port = 0

    # --- lifecycle and HTTP -----------------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        if host not in LOOPBACK_HOSTS:
            raise ValueError(f"the test Bot API server only listens on loopback, not {host!r}")
        app = tornado.web.Application(
            self.handlers() + self._extra_handlers,
            default_handler_class=_NotFoundHandler,
            log_function=_log_request,
        )
        sockets = tornado.netutil.bind_sockets(port, address=host)
        self._http = tornado.httpserver.HTTPServer(app)
        self._http.add_sockets(sockets)
        self._host = host if ":" not in host else f"[{host}]"
        self._port = sockets[0].getsockname()[1]
        self._stopping = False

    async def stop(self) -> None:
        if self._http is None:
            return
        self._stopping = True  # pending long polls return [] now
        self._notify(None)
        self._http.stop()
        await asyncio.sleep(0)
        await self._http.close_all_connections()
        self._http = None

    @property
    def port(self) -> int:
        return self._port

    @property
    def base_url(self) -> str:
        """What PTB's `base_url` expects: the token and method are appended."""
        return f"http://{self._host}:{self._port}/bot"

    @property
    def url(self) -> str:
        return f"http://{self._host}:{self._port}"

    def handlers(self) -> list:
        """The tornado routes of the Bot API; the playground adds its own with `add_handlers`."""
        return [(r"/bot([^/]*)/([^/]*)", _BotApiHandler, {"server": self})]

    def add_handlers(self, handlers: Sequence) -> None:
        """Extra tornado routes served on the same port (call before `start`)."""
        if self._http is not None:
            raise RuntimeError("add_handlers must be called before start()")
        self._extra_handlers.extend(handlers)

    async def serve(self, token: str, method_name: str, raw: Mapping[str, str | UploadedFile], request: _Request):
        """(HTTP status, response body) for one request; records it in `calls` (and `invalid_calls`)."""
        params: dict[str, Any] = dict(raw)
        method = method_name
        try:
            if not TOKEN_RE.match(token):
                raise ApiError(404, "Not Found")
            if self.accepted_token is not None and token != self.accepted_token:
                raise ApiError(401, "Unauthorized")
            self._bot_id = int(token.split(":", 1)[0])
            method, params = validate_request(self.spec, method_name, raw)
            reply = await self._execute(method, params, request)
        except ApiError as error:
            self._record(method, params, error=error)
            return error.code, error.response()
        except Exception:
            log.exception("the test Bot API server failed on %s", method)
            failure = ApiError(500, "Internal Server Error")
            self._record(method, params, error=failure)
            return 500, failure.response()
        result = reply.result if isinstance(reply, _WithDescription) else reply
        call = self._record(method, params, result=result)
        body: dict[str, Any] = {"ok": True, "result": call.result}
        if isinstance(reply, _WithDescription):
            body["description"] = reply.description
        return 200, body

    def _record(self, method: str, params: dict, *, result: Any = None, error: ApiError | None = None) -> ApiCall:
        call = ApiCall(
            method,
            params,
            ok=error is None,
            error_code=error.code if error else None,
            description=error.description if error else None,
            result=_clone(result),
            retry_after=error.retry_after if error else None,
            at=time.monotonic(),
        )
        self.calls.append(call)
        if error is not None:
            self._errors += 1
            self._too_many += error.code == 429
            if error.code in (400, 404) and not isinstance(error, _InjectedError):
                self.invalid_calls.append(call)
                log.warning("invalid Bot API call %s: %s", method, error.description)
        self._notify(ServerEvent("call", _chat_of(params), call))
        return call

    # --- what the bot observes: method implementations ----------------------------------------------------

    async def _execute(self, method: str, params: dict[str, Any], request: _Request) -> Any:
        if method in CHAT_METHODS and "chat_id" in params:
            self._check_chat(method, params["chat_id"])
        if method in RATE_LIMITED_METHODS:
            self._take_rate_token()
        if method == "getUpdates":
            return await self._get_updates(params, request)
        return getattr(self, f"_api_{method}")(params)

    def _check_chat(self, method: str, chat_id: int | str) -> None:
        if isinstance(chat_id, str):
            return
        if chat_id in self._not_found:
            raise _InjectedError(400, "Bad Request: chat not found")
        if chat_id in self._deactivated:
            raise _InjectedError(403, "Forbidden: user is deactivated")
        if chat_id in self._blocked:
            raise _InjectedError(403, "Forbidden: bot was blocked by the user")
        queued = self._injected.get(chat_id)
        if method in SEND_METHODS and queued:
            raise queued.popleft()

    def _take_rate_token(self) -> None:
        if self.rate_limit is None:
            return
        now = time.monotonic()
        self._tokens = min(max(1.0, self.rate_limit), self._tokens + (now - self._tokens_at) * self.rate_limit)
        self._tokens_at = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return
        retry_after = max(1, math.ceil((1.0 - self._tokens) / self.rate_limit))
        raise _InjectedError(429, f"Too Many Requests: retry after {retry_after}", retry_after=retry_after)

    def _bot_user(self) -> dict[str, Any]:
        return {"id": self._bot_id, "is_bot": True, "first_name": self.bot_name, "username": self.bot_username}

    def _api_getMe(self, params: dict) -> dict:
        return {
            **self._bot_user(),
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": True,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }

    def _api_logOut(self, params: dict) -> bool:
        return True

    def _api_close(self, params: dict) -> bool:
        return True

    def _api_setWebhook(self, params: dict) -> _WithDescription:
        if not params["url"]:
            return self._api_deleteWebhook(params)
        if params.get("drop_pending_updates"):
            self._pending.clear()
        self.webhook = dict(params)
        return _WithDescription(True, "Webhook was set")

    def _api_deleteWebhook(self, params: dict) -> _WithDescription:
        if params.get("drop_pending_updates"):
            self._pending.clear()
        was_set, self.webhook = bool(self.webhook), {}
        return _WithDescription(True, "Webhook was deleted" if was_set else "Webhook is already deleted")

    def _api_getWebhookInfo(self, params: dict) -> dict:
        info: dict[str, Any] = {
            "url": self.webhook.get("url", ""),
            "has_custom_certificate": "certificate" in self.webhook,
            "pending_update_count": len(self._pending),
        }
        for key in ("max_connections", "allowed_updates", "ip_address"):
            if key in self.webhook:
                info[key] = self.webhook[key]
        return info

    async def _get_updates(self, params: dict, request: _Request) -> list[dict]:
        if self.webhook:
            raise ApiError(409, CONFLICT_WEBHOOK)
        if self._poll is not None:
            # Telegram answers the older request with 409 and serves the newer one
            self._poll.terminated = True
            self._notify(None)
        offset = params.get("offset", 0)
        if offset > 0:
            while self._pending and self._pending[0]["update_id"] < offset:
                self._pending.popleft()
        elif offset < 0:
            while len(self._pending) > -offset:
                self._pending.popleft()
        if "allowed_updates" in params:
            self._allowed_updates = frozenset(params["allowed_updates"]) or None
        limit = min(max(params.get("limit", 100), 1), 100)
        deadline = time.monotonic() + max(params.get("timeout", 0), 0)
        self._poll = request
        self._notify(None)  # wakes wait_for_poller
        try:
            while True:
                if request.terminated:
                    raise ApiError(409, CONFLICT_POLL)
                updates = self._deliverable(limit)
                remaining = deadline - time.monotonic()
                if updates or remaining <= 0 or self._stopping or request.disconnected:
                    return updates
                await self._wait_changed(remaining)
        finally:
            if self._poll is request:
                self._poll = None

    def _deliverable(self, limit: int) -> list[dict]:
        """Up to `limit` pending updates of allowed types; updates of other types are dropped like Telegram."""
        allowed = self._allowed_updates
        self._pending = kept = deque(
            update
            for update in self._pending
            if (_update_kind(update) in allowed if allowed else _update_kind(update) not in DEFAULT_EXCLUDED_UPDATES)
        )
        return [_clone(update) for update in itertools.islice(kept, limit)]

    def _resolve_chat(self, chat_id: int | str) -> dict:
        if isinstance(chat_id, str):
            for chat in self._chats.values():
                if chat.get("username") and f"@{chat['username']}".lower() == chat_id.lower():
                    return chat
            raise bad_request("chat not found")
        if chat_id in self._chats:
            return self._chats[chat_id]
        if self.known_chats_only or chat_id == 0:
            raise bad_request("chat not found")
        if chat_id > 0:
            chat = {"id": chat_id, "type": "private", "first_name": "User"}
        else:
            chat = {"id": chat_id, "type": "supergroup" if chat_id < -1_000_000_000_000 else "group", "title": "Group"}
        self._chats[chat_id] = chat
        return chat

    def _message(self, chat_id: int, message_id: int) -> dict | None:
        return self._messages.get(chat_id, {}).get(message_id)

    def _api_sendMessage(self, params: dict) -> dict:
        chat = self._resolve_chat(params["chat_id"])
        text, entities = message_text(params["text"], params.get("parse_mode"), params.get("entities"))
        reply_to = None
        if reply := params.get("reply_parameters"):
            target = reply.get("chat_id", chat["id"])
            reply_chat = self._resolve_chat(target)["id"] if target != chat["id"] else chat["id"]
            reply_to = self._message(reply_chat, reply["message_id"])
            if reply_to is None and not reply.get("allow_sending_without_reply"):
                raise bad_request("message to be replied not found")
        markup = params.get("reply_markup")
        message = self._store_message(
            chat,
            self._bot_user(),
            text,
            entities,
            reply_to=reply_to,
            # only inline keyboards belong to the message; reply keyboards are client state
            reply_markup=markup if markup and "inline_keyboard" in markup else None,
        )
        self._per_chat[chat["id"]] += 1
        self._sent += 1
        now = time.monotonic()
        self._last_second.append(now)
        while now - self._last_second[0] >= 1.0:
            self._last_second.popleft()
        self._peak = max(self._peak, len(self._last_second))
        self._notify(ServerEvent("message", chat["id"], _clone(message)))
        return message

    def _editable(self, params: dict) -> dict | None:
        """The bot message an edit targets; None for inline messages, which this server does not track."""
        if "chat_id" not in params and "message_id" not in params and "inline_message_id" in params:
            return None
        if "chat_id" not in params:
            raise bad_request("chat_id is empty")
        if "message_id" not in params:
            raise bad_request("message identifier is not specified")
        chat = self._resolve_chat(params["chat_id"])
        message = self._message(chat["id"], params["message_id"])
        if message is None:
            raise bad_request("message to edit not found")
        if not message["from"]["is_bot"]:
            raise bad_request("message can't be edited")
        return message

    def _api_editMessageText(self, params: dict) -> dict | bool:
        message = self._editable(params)
        if "text" not in params:
            raise bad_request("rich messages are not supported by the test server")
        text, entities = message_text(params["text"], params.get("parse_mode"), params.get("entities"))
        if message is None:
            self._edited += 1
            return True
        markup = params.get("reply_markup")
        if (
            text == message["text"]
            and entities == message.get("entities", [])
            and markup == message.get("reply_markup")
        ):
            raise bad_request(NOT_MODIFIED)
        message["text"] = text
        _set_optional(message, "entities", entities)
        # like Telegram, an edit without reply_markup removes the inline keyboard
        _set_optional(message, "reply_markup", markup)
        return self._edited_message(message)

    def _api_editMessageReplyMarkup(self, params: dict) -> dict | bool:
        message = self._editable(params)
        if message is None:
            self._edited += 1
            return True
        markup = params.get("reply_markup")
        if markup == message.get("reply_markup"):
            raise bad_request(NOT_MODIFIED)
        _set_optional(message, "reply_markup", markup)
        return self._edited_message(message)

    def _edited_message(self, message: dict) -> dict:
        message["edit_date"] = int(time.time())
        self._edited += 1
        self._notify(ServerEvent("edit", message["chat"]["id"], _clone(message)))
        return message

    def _api_deleteMessage(self, params: dict) -> bool:
        chat = self._resolve_chat(params["chat_id"])
        message = self._messages.get(chat["id"], {}).pop(params["message_id"], None)
        if message is None:
            raise bad_request("message to delete not found")
        self._notify(ServerEvent("delete", chat["id"], message))
        return True

    def _answer_query(self, kind: str, query_id: str, params: dict, answers: dict[str, dict]) -> bool:
        if self._open_queries.get(query_id) != kind:
            raise bad_request(QUERY_INVALID)
        del self._open_queries[query_id]
        answers[query_id] = params
        return True

    def _api_answerCallbackQuery(self, params: dict) -> bool:
        return self._answer_query("callback", params["callback_query_id"], params, self.callback_answers)

    def _api_answerInlineQuery(self, params: dict) -> bool:
        return self._answer_query("inline", params["inline_query_id"], params, self.inline_answers)

    @staticmethod
    def _commands_key(params: Mapping[str, Any]) -> tuple[str, str]:
        scope = params.get("scope") or {"type": "default"}
        return json.dumps(scope, sort_keys=True), params.get("language_code", "")

    def _api_setMyCommands(self, params: dict) -> bool:
        self._commands[self._commands_key(params)] = params["commands"]
        return True

    def _api_deleteMyCommands(self, params: dict) -> bool:
        self._commands.pop(self._commands_key(params), None)
        return True

    def _api_getMyCommands(self, params: dict) -> list[dict]:
        return self._commands.get(self._commands_key(params), [])

    def _api_sendChatAction(self, params: dict) -> bool:
        chat = self._resolve_chat(params["chat_id"])
        self.chat_actions.append((chat["id"], params["action"]))
        return True

    def _api_setChatMenuButton(self, params: dict) -> bool:
        self.menu_buttons[params.get("chat_id")] = params.get("menu_button", {"type": "default"})
        return True

    def _api_getChat(self, params: dict) -> dict:
        chat = self._resolve_chat(params["chat_id"])
        gifts = ("unlimited_gifts", "limited_gifts", "unique_gifts", "premium_subscription", "gifts_from_channels")
        return {
            **chat,
            "accent_color_id": 0,
            "max_reaction_count": 11,
            "accepted_gift_types": dict.fromkeys(gifts, False),
        }

    # --- what a Telegram user does ------------------------------------------------------------------------

    def user_message(
        self,
        chat_id: int,
        text: str,
        *,
        user_id: int | None = None,
        chat_type: str = "private",
        first_name: str = "Test",
        username: str | None = None,
        reply_to_message_id: int | None = None,
    ) -> dict:
        """A user writes `text` in the chat; returns the Update queued for getUpdates."""
        user = self._user(chat_id, user_id, chat_type, first_name, username)
        chat = self._user_chat(chat_id, chat_type, user)
        reply_to = None
        if reply_to_message_id is not None:
            reply_to = self._message(chat_id, reply_to_message_id)
            if reply_to is None:
                raise ValueError(f"chat {chat_id} has no message {reply_to_message_id} to reply to")
        message = self._store_message(chat, user, text, user_entities(text), reply_to=reply_to)
        return self._queue_update("message", message)

    def edit_user_message(self, chat_id: int, message_id: int, text: str) -> dict:
        """The user edits their message; returns the edited_message Update."""
        message = self._message(chat_id, message_id)
        if message is None or message["from"]["is_bot"]:
            raise ValueError(f"chat {chat_id} has no user message {message_id}")
        message["text"] = text
        _set_optional(message, "entities", user_entities(text))
        message["edit_date"] = int(time.time())
        return self._queue_update("edited_message", message)

    def press_button(
        self,
        chat_id: int,
        message_id: int,
        callback_data: str,
        *,
        user_id: int | None = None,
        check_button: bool = True,
    ) -> dict:
        """The user presses an inline button of a bot message; returns the callback_query Update.
        check_button=False sends callback_data no button carries (what a modified client could do)."""
        message = self._message(chat_id, message_id)
        if message is None or not message["from"]["is_bot"]:
            raise ValueError(f"chat {chat_id} has no bot message {message_id}")
        buttons = [b for row in message.get("reply_markup", {}).get("inline_keyboard", []) for b in row]
        if check_button and not any(b.get("callback_data") == callback_data for b in buttons):
            offered = [b.get("callback_data") for b in buttons if "callback_data" in b]
            raise ValueError(f"message {message_id} has no button with callback_data {callback_data!r}: {offered}")
        chat = self._chats[chat_id]
        if user_id is None:
            if chat["type"] != "private":
                raise ValueError("user_id is required to press a button in a group")
            user_id = chat_id
        user = self._users.get(user_id) or self._user(user_id, None, "private", "Test", None)
        query_id = self._new_query_id("callback")
        query = {
            "id": query_id,
            "from": user,
            "message": message,
            "chat_instance": str(abs(chat_id) * 7919 % 10**15),
            "data": callback_data,
        }
        return self._queue_update("callback_query", query)

    def inline_query(self, user_id: int, query: str, *, offset: str = "", chat_type: str | None = None) -> dict:
        """The user types `@bot query` in any chat; returns the inline_query Update."""
        user = self._users.get(user_id) or self._user(user_id, None, "private", "Test", None)
        inline = {"id": self._new_query_id("inline"), "from": user, "query": query, "offset": offset}
        if chat_type is not None:
            inline["chat_type"] = chat_type
        return self._queue_update("inline_query", inline)

    def inline_results(self, query_id: str) -> list[dict] | None:
        """The results the bot answered an inline query with (None while unanswered)."""
        answer = self.inline_answers.get(query_id)
        return _clone(answer["results"]) if answer else None

    def _new_query_id(self, kind: str) -> str:
        query_id = str(4_000_000_000_000_000 + next(self._query_ids) * 7_919)
        self._open_queries[query_id] = kind
        return query_id

    def _user(self, chat_id: int, user_id: int | None, chat_type: str, first_name: str, username: str | None) -> dict:
        if chat_type == "private":
            if chat_id <= 0 or user_id not in (None, chat_id):
                raise ValueError("in a private chat the chat id is the user's id (a positive number)")
            user_id = chat_id
        elif chat_type in ("group", "supergroup"):
            if chat_id >= 0 or user_id is None:
                raise ValueError("group chats have negative ids and need the user_id of who writes")
        else:
            raise ValueError(f"unsupported chat_type {chat_type!r}")
        user = {"id": user_id, "is_bot": False, "first_name": first_name, "language_code": "en"}
        if username:
            user["username"] = username
        self._users[user_id] = user
        return user

    def _user_chat(self, chat_id: int, chat_type: str, user: dict) -> dict:
        chat = self._chats.get(chat_id)
        if chat is not None and chat["type"] != chat_type:
            raise ValueError(f"chat {chat_id} is a {chat['type']} chat, not {chat_type}")
        if chat_type == "private":
            chat = {"id": chat_id, "type": "private", "first_name": user["first_name"]}
            if "username" in user:
                chat["username"] = user["username"]
        elif chat is None:
            chat = {"id": chat_id, "type": chat_type, "title": f"Test {chat_type} {-chat_id}"}
        self._chats[chat_id] = chat
        return chat

    def _store_message(
        self,
        chat: dict,
        sender: dict,
        text: str,
        entities: list[dict],
        *,
        reply_to: dict | None = None,
        reply_markup: dict | None = None,
    ) -> dict:
        message_id = self._next_message_id.get(chat["id"], 1)
        self._next_message_id[chat["id"]] = message_id + 1
        message: dict[str, Any] = {"message_id": message_id, "from": dict(sender), "chat": dict(chat)}
        message["date"] = int(time.time())
        if reply_to is not None:
            message["reply_to_message"] = {k: v for k, v in reply_to.items() if k != "reply_to_message"}
        message["text"] = text
        _set_optional(message, "entities", entities)
        _set_optional(message, "reply_markup", reply_markup)
        self._messages.setdefault(chat["id"], {})[message_id] = message
        return message

    def _queue_update(self, kind: str, payload: dict) -> dict:
        update = {"update_id": next(self._update_ids), kind: _clone(payload)}
        self.updates.append(update)
        self._pending.append(update)
        chat = payload.get("chat") or payload.get("message", {}).get("chat") or {}
        self._notify(ServerEvent("update", chat.get("id"), _clone(update)))
        return _clone(update)

    # --- what the bot did ---------------------------------------------------------------------------------

    def sent_messages(self, chat_id: int) -> list[dict]:
        """The bot's messages in the chat, in order, as they are now (after edits; deleted ones gone)."""
        return [_clone(m) for m in self._messages.get(chat_id, {}).values() if m["from"]["is_bot"]]

    def chat_log(self, chat_id: int) -> list[dict]:
        """Every message of the chat (user's and bot's) in order, as they are now."""
        return [_clone(m) for m in self._messages.get(chat_id, {}).values()]

    def chats(self) -> list[dict]:
        return [_clone(chat) for chat in self._chats.values()]

    @property
    def my_commands(self) -> list[dict]:
        """The commands set for the default scope and no language."""
        return _clone(self._commands.get(self._commands_key({}), []))

    @property
    def pending_updates(self) -> list[dict]:
        """Updates queued and not yet confirmed by a getUpdates offset."""
        return _clone(list(self._pending))

    @property
    def stats(self) -> ServerStats:
        """A snapshot of the delivery counters."""
        return ServerStats(
            sent=self._sent,
            edited=self._edited,
            too_many_requests=self._too_many,
            errors=self._errors,
            per_chat=dict(self._per_chat),
            peak_per_second=self._peak,
        )

    async def wait_for_call(
        self,
        method: str,
        predicate: Callable[[ApiCall], bool] | None = None,
        timeout: float = 5.0,
        since: int | None = None,
    ) -> ApiCall:
        """The first call of `method` (any spelling) matching `predicate` recorded at index >= since
        (default: from now on), waiting up to `timeout` seconds for it."""
        start = len(self.calls) if since is None else since
        wanted = method.lower()

        def find() -> ApiCall | None:
            nonlocal start
            for call in self.calls[start:]:
                if call.method.lower() == wanted and (predicate is None or predicate(call)):
                    return call
            start = len(self.calls)
            return None

        return await self._wait_for(find, timeout, f"no matching {method} call")

    async def wait_for_message(self, chat_id: int, timeout: float = 5.0, since: int = 0) -> dict:
        """The bot's message number `since` (0-based) in the chat: pass len(sent_messages(chat_id)) to wait
        for the next one."""

        def find() -> dict | None:
            messages = self.sent_messages(chat_id)
            return messages[since] if len(messages) > since else None

        return await self._wait_for(find, timeout, f"no bot message #{since} in chat {chat_id}")

    @property
    def polling(self) -> bool:
        """Whether a getUpdates long poll is waiting for updates right now."""
        return self._poll is not None

    async def wait_for_poller(self, timeout: float = 5.0) -> None:
        """Return once the bot has a getUpdates long poll waiting (so the next update reaches it at once)."""
        await self._wait_for(lambda: True if self.polling else None, timeout, "no getUpdates long poll")

    async def _wait_for(self, find: Callable[[], _T | None], timeout: float, what: str) -> _T:
        deadline = time.monotonic() + timeout
        while (found := find()) is None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                recent = [(c.method, c.ok, c.description) for c in self.calls[-5:]]
                raise TimeoutError(f"{what} within {timeout}s; last calls: {recent}")
            await self._wait_changed(remaining)
        return found

    # --- change notification (listeners and long-poll pages) ------------------------------------------------

    def add_listener(self, callback: Callable[[ServerEvent], None]) -> Callable[[], None]:
        """Call `callback` (synchronously, in the loop) for every event; returns a function removing it."""
        self._listeners.append(callback)
        return lambda: self._listeners.remove(callback) if callback in self._listeners else None

    @property
    def version(self) -> int:
        """Increases whenever anything changes (a call, an update, a message)."""
        return self._version

    async def wait_for_change(self, version: int, timeout: float) -> int:
        """Return the current version as soon as it differs from `version`, or after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while self._version == version and (remaining := deadline - time.monotonic()) > 0:
            await self._wait_changed(remaining)
        return self._version

    async def _wait_changed(self, timeout: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._changed.wait(), timeout)

    def _notify(self, event: ServerEvent | None) -> None:
        self._version += 1
        self._changed.set()
        self._changed = asyncio.Event()
        if event is None:
            return
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception:
                log.exception("a Bot API server listener failed")

    # --- failure injection --------------------------------------------------------------------------------

    def block_chat(self, chat_id: int) -> None:
        """The user blocked the bot: sends to the chat fail with 403."""
        self._blocked.add(chat_id)

    def unblock_chat(self, chat_id: int) -> None:
        self._blocked.discard(chat_id)

    def deactivate_chat(self, chat_id: int) -> None:
        self._deactivated.add(chat_id)

    def chat_not_found(self, chat_id: int) -> None:
        self._not_found.add(chat_id)

    def throttle_chat(self, chat_id: int, retry_after: int = 1, times: int = 1) -> None:
        """The next `times` sends to the chat get 429 Too Many Requests with parameters.retry_after."""
        error = _InjectedError(429, f"Too Many Requests: retry after {retry_after}", retry_after=retry_after)
        self._injected.setdefault(chat_id, deque()).extend([error] * times)

    def fail_chat(self, chat_id: int, status: int = 500, times: int = 1, description: str | None = None) -> None:
        """The next `times` sends to the chat fail with HTTP `status` (500 Internal Server Error by default)."""
        try:
            phrase = description or HTTPStatus(status).phrase
        except ValueError:
            phrase = "Error"
        self._injected.setdefault(chat_id, deque()).extend([_InjectedError(status, phrase)] * times)


def _clone(value: Any) -> Any:
    """A deep copy of JSON-like data (much faster than copy.deepcopy, which matters in broadcast benchmarks)."""
    if type(value) is dict:
        return {k: _clone(v) for k, v in value.items()}
    if type(value) is list:
        return [_clone(v) for v in value]
    return value


def _set_optional(message: dict[str, Any], key: str, value: object) -> None:
    if value:
        message[key] = value
    else:
        message.pop(key, None)


def _update_kind(update: Mapping[str, Any]) -> str:
    return next(key for key in update if key != "update_id")


def _chat_of(params: Mapping[str, Any]) -> int | None:
    chat_id = params.get("chat_id")
    return chat_id if isinstance(chat_id, int) else None


def _request_parameters(request: tornado.httputil.HTTPServerRequest) -> dict[str, str | UploadedFile]:
    """The request's parameters as strings (JSON bodies converted the way Telegram reads them) and files."""
    raw: dict[str, str | UploadedFile] = {}
    try:
        for name, values in request.query_arguments.items():
            raw[name] = values[-1].decode("utf-8")
        content_type = request.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if content_type == "application/json":
            if request.body.strip():
                try:
                    body = json.loads(request.body)
                except ValueError:
                    raise bad_request("can't parse JSON encoded request") from None
                if not isinstance(body, dict):
                    raise bad_request("JSON request body must be an object")
                for name, value in body.items():
                    if (form_value := as_form_value(value)) is not None:
                        raw[name] = form_value
        else:
            for name, values in request.body_arguments.items():
                raw[name] = values[-1].decode("utf-8")
            for name, files in request.files.items():
                part = files[-1]
                raw[name] = UploadedFile(part.filename, part.content_type, len(part.body))
    except UnicodeDecodeError:
        raise bad_request("strings must be encoded in UTF-8") from None
    return raw


def _log_request(handler: tornado.web.RequestHandler) -> None:
    # the path carries the bot token: log the method name only
    name = handler.request.path.rsplit("/", 1)[-1]
    log.debug("%s %s -> %d", handler.request.method, name, handler.get_status())


class _JsonHandler(tornado.web.RequestHandler):
    def reply(self, status: int, body: Mapping[str, Any]) -> None:
        try:
            reason = HTTPStatus(status).phrase
        except ValueError:
            reason = "Error"
        self.set_status(status, reason=reason)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(body, ensure_ascii=False))

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        self.reply(status_code, {"ok": False, "error_code": status_code, "description": self._reason})

    def log_exception(
        self, typ: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        # tornado's default logs the request URI, which carries the bot token. (tornado passes sys.exc_info():
        # the exception carries the same type and traceback.)
        log.error("error serving a Bot API request: %r", value, exc_info=value)


class _BotApiHandler(_JsonHandler):
    def initialize(self, server: BotApiServer) -> None:
        self.server = server
        self.in_flight = _Request()

    async def get(self, token: str, method: str) -> None:
        try:
            raw = _request_parameters(self.request)
        except ApiError as error:
            self.server._record(method, {}, error=error)
            self.reply(error.code, error.response())
            return
        status, body = await self.server.serve(token, method, raw, self.in_flight)
        if not self.in_flight.disconnected:
            self.reply(status, body)

    async def post(self, token: str, method: str) -> None:
        await self.get(token, method)

    def on_connection_close(self) -> None:
        self.in_flight.disconnected = True
        self.server._notify(None)


class _NotFoundHandler(_JsonHandler):
    def prepare(self) -> None:
        self.reply(404, {"ok": False, "error_code": 404, "description": "Not Found"})
