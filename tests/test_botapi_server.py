"""The offline Bot API server: driven by python-telegram-bot's real `Bot` and by raw HTTP, it answers like Telegram,
rejects what Telegram rejects (with Telegram's descriptions), long-polls, injects failures, and its own objects
conform to the bundled spec. The validation functions are also tested directly."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from telegram import (
    Bot,
    BotCommand,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InlineQueryResultArticle,
    InputTextMessageContent,
    Update,
)
from telegram.error import BadRequest, Conflict, Forbidden, InvalidToken, NetworkError, RetryAfter
from telegram.ext import Application, CommandHandler

from bot.playground.botapi_server import BotApiServer, user_entities
from bot.playground.botapi_validate import (
    CHAT_ACTIONS,
    SPEC_PATH,
    ApiError,
    EntityParseError,
    SpecMismatch,
    check_bot_commands,
    check_callback_data,
    check_inline_results,
    check_rules,
    check_value,
    load_spec,
    message_text,
    parse_html,
    validate_request,
)

TOKEN = "123456:TEST"
ROOT = Path(__file__).resolve().parent.parent
SPEC = load_spec()
USER = 1001


@pytest.fixture
async def server() -> AsyncIterator[BotApiServer]:
    server = BotApiServer()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
async def bot(server: BotApiServer) -> AsyncIterator[Bot]:
    async with Bot(TOKEN, base_url=server.base_url) as bot:
        yield bot


@pytest.fixture
async def http(server: BotApiServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=f"{server.base_url}{TOKEN}/") as client:
        yield client


def keyboard(*data: str) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup([[InlineKeyboardButton(f"button {d}", callback_data=d)] for d in data])


def conforms(type_name: str, value: object) -> None:
    """Raise SpecMismatch unless the value is a valid instance of the spec type."""
    check_value(SPEC, [type_name], value)


# --- bundled spec -------------------------------------------------------------------------------------------


def test_bundled_spec_has_the_methods_and_every_type_they_reach() -> None:
    data = json.loads(SPEC_PATH.read_text(encoding="utf-8"))
    assert SPEC_PATH.is_relative_to(ROOT / "bot" / "playground" / "data")
    assert data["version"] == "Bot API 10.1"
    wanted = [
        *("getMe", "logOut", "close", "deleteWebhook", "setWebhook", "getWebhookInfo", "getUpdates", "sendMessage"),
        *("editMessageText", "editMessageReplyMarkup", "deleteMessage", "answerCallbackQuery", "answerInlineQuery"),
        *("setMyCommands", "deleteMyCommands", "getMyCommands", "sendChatAction", "setChatMenuButton", "getChat"),
    ]
    assert list(data["methods"]) == wanted
    referenced = set()
    for entry in [*data["methods"].values(), *data["types"].values()]:
        expressions = [t for f in entry.get("fields", []) for t in f["types"]]
        expressions += entry.get("returns", []) + entry.get("subtypes", [])
        referenced |= {e.removeprefix("Array of ").removeprefix("Array of ") for e in expressions}
    missing = referenced - set(data["types"]) - {"Integer", "String", "Boolean", "Float"}
    assert not missing
    readme = (ROOT / "bot" / "playground" / "data" / "README.md").read_text(encoding="utf-8")
    for needle in ("Bot API 10.1", "160fd99", "PaulSonOfLars/telegram-bot-api-spec", "MIT"):
        assert needle in readme
    assert "MIT License" in (ROOT / "bot" / "playground" / "data" / "LICENSE-botapi-spec").read_text(encoding="utf-8")


def test_documented_chat_actions_are_the_ones_accepted() -> None:
    action = next(f for f in SPEC.method("sendChatAction").fields.values() if f.name == "action")
    for value in CHAT_ACTIONS:
        assert f" {value} " in action.description
    check_rules("sendChatAction", {"chat_id": 1, "action": "typing"})
    with pytest.raises(ApiError, match=r"^Bad Request: wrong parameter action in request$"):
        check_rules("sendChatAction", {"chat_id": 1, "action": "thinking"})


# --- pure validation ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "description"),
    [
        ({"text": "hi"}, "Bad Request: chat_id is empty"),
        ({"chat_id": "1"}, "Bad Request: message text is empty"),
        (
            {"chat_id": "1", "text": "hi", "colour": "red"},
            'Bad Request: unknown parameter "colour" for method sendMessage',
        ),
        ({"chat_id": "1", "text": "hi", "disable_notification": "maybe"}, 'parameter "disable_notification" must be'),
        ({"chat_id": "1", "text": "hi", "reply_markup": "{"}, "Bad Request: can't parse reply_markup JSON object"),
        (
            {"chat_id": "1", "text": "hi", "reply_markup": '{"inline_keyboard": [[{"text": "a", "callback": "x"}]]}'},
            "field reply_markup.inline_keyboard[0][0].callback is not a field of InlineKeyboardButton",
        ),
        (
            {"chat_id": "1", "text": "hi", "reply_markup": '{"inline_keyboard": [[{"callback_data": "x"}]]}'},
            "field reply_markup.inline_keyboard[0][0].text is required in InlineKeyboardButton",
        ),
        (
            {
                "chat_id": "1",
                "text": "hi",
                "reply_markup": '{"inline_keyboard": [[{"text": "a", "callback_data": 5}]]}',
            },
            "field reply_markup.inline_keyboard[0][0].callback_data must be a String",
        ),
        (
            {"chat_id": "1", "text": "hi", "reply_parameters": '{"message_id": "7"}'},
            "field reply_parameters.message_id must be an Integer",
        ),
        (
            {"chat_id": "1", "text": "hi", "link_preview_options": '{"is_disabled": 1}'},
            "field link_preview_options.is_disabled must be a Boolean",
        ),
    ],
)
def test_requests_are_checked_against_the_spec(raw: dict, description: str) -> None:
    with pytest.raises(ApiError) as error:
        validate_request(SPEC, "sendMessage", raw)
    assert error.value.code == 400
    assert description in error.value.description


def test_parameters_decode_to_spec_types_and_method_names_ignore_case() -> None:
    method, params = validate_request(
        SPEC,
        "SENDMESSAGE",
        {
            "chat_id": "-100123",
            "text": "hi",
            "disable_notification": "true",
            "reply_parameters": '{"message_id": 3, "allow_sending_without_reply": true}',
        },
    )
    assert method == "sendMessage"
    assert params == {
        "chat_id": -100123,
        "text": "hi",
        "disable_notification": True,
        "reply_parameters": {"message_id": 3, "allow_sending_without_reply": True},
    }
    assert validate_request(SPEC, "sendMessage", {"chat_id": "@channel", "text": "x"})[1]["chat_id"] == "@channel"
    with pytest.raises(ApiError) as error:
        validate_request(SPEC, "sendMessages", {})
    assert (error.value.code, error.value.description) == (404, "Not Found")


def test_union_types_report_the_alternative_the_value_was_meant_to_be() -> None:
    article = {"type": "article", "id": "1", "title": "t", "input_message_content": {"message_text": "x"}}
    conforms("InlineQueryResult", article)
    with pytest.raises(SpecMismatch, match=r"^title: is required in InlineQueryResultArticle$"):
        conforms("InlineQueryResult", {k: v for k, v in article.items() if k != "title"})
    with pytest.raises(SpecMismatch, match=r"^input_message_content\.message_text: must be a String$"):
        conforms("InlineQueryResult", {**article, "input_message_content": {"message_text": 5}})
    with pytest.raises(SpecMismatch, match=r"^input_message_content: must be an InputTextMessageContent or an "):
        conforms("InlineQueryResult", {**article, "input_message_content": {"message_txt": "x"}})
    conforms("BotCommandScope", {"type": "chat", "chat_id": 5})
    with pytest.raises(SpecMismatch):
        conforms("BotCommandScope", {"type": "everywhere"})


def test_html_is_parsed_into_text_and_entities_with_utf16_offsets() -> None:
    text, entities = parse_html(
        '🇨🇳 <b>bold <i>both</i></b> &lt;&amp;&gt;&quot;&#39;&#x41; <a href="https://e.org/?a=1&amp;b=2">link</a>\n'
        '<pre><code class="language-python">x = 1</code></pre><blockquote expandable>q</blockquote>'
        '<span class="tg-spoiler">s</span><tg-spoiler>t</tg-spoiler><u>u</u><s>s</s><code>c</code>'
        '<tg-emoji emoji-id="5368324170671202286">👍</tg-emoji>'
    )
    assert text == "🇨🇳 bold both <&>\"'A link\nx = 1qstusc👍"
    flag = 4  # two regional indicators, each a surrogate pair
    assert entities == [
        {"type": "bold", "offset": flag + 1, "length": 9},
        {"type": "italic", "offset": flag + 6, "length": 4},
        {"type": "text_link", "offset": flag + 18, "length": 4, "url": "https://e.org/?a=1&b=2"},
        {"type": "pre", "offset": flag + 23, "length": 5, "language": "python"},
        {"type": "expandable_blockquote", "offset": flag + 28, "length": 1},
        {"type": "spoiler", "offset": flag + 29, "length": 1},
        {"type": "spoiler", "offset": flag + 30, "length": 1},
        {"type": "underline", "offset": flag + 31, "length": 1},
        {"type": "strikethrough", "offset": flag + 32, "length": 1},
        {"type": "code", "offset": flag + 33, "length": 1},
        {"type": "custom_emoji", "offset": flag + 34, "length": 2, "custom_emoji_id": "5368324170671202286"},
    ]
    for entity in entities:
        conforms("MessageEntity", entity)


@pytest.mark.parametrize(
    ("markup", "error"),
    [
        ("<p>x</p>", 'Unsupported start tag "p" at byte offset 0'),
        ("<b>x", 'Can\'t find end tag corresponding to start tag "b"'),
        ("<b><i>x</b></i>", 'Unmatched end tag at byte offset 7, expected "</i>", found "</b>"'),
        ("x</b>", "Unexpected end tag at byte offset 1"),
        ("1 < 2", "Character '<' must be escaped as &lt; at byte offset 2"),
        ("Q&A", "Character '&' must be escaped as &amp; at byte offset 1"),
        ("&nbsp;", "Character '&' must be escaped"),
        ("<b", "Unclosed start tag at byte offset 0"),
        ('<span class="red">x</span>', 'Tag "span" must have class "tg-spoiler"'),
        ('<b style="x">x</b>', 'Unsupported attribute "style" in the tag "b"'),
        ("<a>x</a>", 'Tag "a" must have a non-empty attribute "href"'),
        ('<a href="x>y</a>', "Unclosed start tag"),
        ('<code class="python">x</code>', 'Tag "code" may only have class "language-<name>"'),
        ("<tg-emoji>x</tg-emoji>", 'Tag "tg-emoji" must have a numeric attribute "emoji-id"'),
        ("é<u>", "Can't find end tag"),
        ("é <x>", 'Unsupported start tag "x" at byte offset 3'),
        ("line<br>next", 'Unsupported start tag "br" at byte offset 4'),
        ('<a href="https://e.org/?a=1&b=2">x</a>', 'Bad character reference in attribute "href"'),
    ],
)
def test_malformed_html_is_rejected(markup: str, error: str) -> None:
    with pytest.raises(EntityParseError) as raised:
        parse_html(markup)
    assert error in str(raised.value)
    with pytest.raises(ApiError, match=r"^Bad Request: can't parse entities: "):
        message_text(markup, "HTML", None)


def test_message_text_limits_count_visible_utf16_units_after_trimming() -> None:
    assert message_text("  <b> hi </b>\n", "HTML", None) == ("hi", [{"type": "bold", "offset": 0, "length": 2}])
    assert message_text("x" * 4096, None, None)[0] == "x" * 4096
    assert message_text("<b>" + "x" * 4096 + "</b>", "html", None)[0] == "x" * 4096
    for too_long in ("x" * 4097, "😀" * 2049, "&amp;" * 4097):
        with pytest.raises(ApiError, match=r"^Bad Request: message is too long$"):
            message_text(too_long, "HTML", None)
    for empty in ("", "   \n", "<b> </b>", "<i></i>"):
        with pytest.raises(ApiError, match=r"^Bad Request: message text is empty$"):
            message_text(empty, "HTML", None)
    with pytest.raises(ApiError, match="unsupported parse_mode"):
        message_text("x", "BBCode", None)


def test_button_bot_command_and_inline_result_limits() -> None:
    check_callback_data("x" * 64)
    check_callback_data("я" * 32)  # 64 bytes
    for bad in ("", "x" * 65, "я" * 33):
        with pytest.raises(ApiError, match=r"^Bad Request: BUTTON_DATA_INVALID$"):
            check_callback_data(bad)
    check_bot_commands([{"command": "year_2024", "description": "d" * 256}])
    for command, description, error in [
        ("Start", "d", "BOT_COMMAND_INVALID"),
        ("/start", "d", "BOT_COMMAND_INVALID"),
        ("x" * 33, "d", "BOT_COMMAND_INVALID"),
        ("", "d", "BOT_COMMAND_INVALID"),
        ("start", "", "BOT_COMMAND_DESCRIPTION_INVALID"),
        ("start", "d" * 257, "BOT_COMMAND_DESCRIPTION_INVALID"),
    ]:
        with pytest.raises(ApiError, match=f"^Bad Request: {error}$"):
            check_bot_commands([{"command": command, "description": description}])

    def article(result_id: str, text: str = "x") -> dict:
        return {"type": "article", "id": result_id, "title": "t", "input_message_content": {"message_text": text}}

    check_inline_results([article(str(i)) for i in range(50)])
    for results, error in [
        ([article(str(i)) for i in range(51)], "RESULTS_TOO_MUCH"),
        ([article("x" * 65)], "RESULT_ID_INVALID"),
        ([article("")], "RESULT_ID_INVALID"),
        ([article("a"), article("a")], "RESULT_ID_DUPLICATE"),
        ([article("a", " ")], "message text is empty"),
    ]:
        with pytest.raises(ApiError, match=f"^Bad Request: {error}$"):
            check_inline_results(results)


def test_inline_keyboard_rules() -> None:
    def send(*buttons: dict) -> None:
        check_rules("sendMessage", {"chat_id": 1, "text": "x", "reply_markup": {"inline_keyboard": [list(buttons)]}})

    send({"text": "a", "callback_data": "x"}, {"text": "b", "url": "https://example.org"})
    with pytest.raises(ApiError, match="Text buttons are unallowed in the inline keyboard"):
        send({"text": "a"})
    with pytest.raises(ApiError, match="exactly one of"):
        send({"text": "a", "callback_data": "x", "url": "https://example.org"})
    with pytest.raises(ApiError, match=r"^Bad Request: BUTTON_URL_INVALID$"):
        send({"text": "a", "url": "example org"})
    with pytest.raises(ApiError, match=r"^Bad Request: BUTTON_DATA_INVALID$"):
        send({"text": "a", "callback_data": "x" * 65})


def test_user_entities_mark_commands_and_mentions() -> None:
    text = "/year@china_russia_facts_bot 2024 ask @china_russia_facts_bot, mail a@b.cc or 1/2"
    assert user_entities(text) == [
        {"type": "bot_command", "offset": 0, "length": 28},
        {"type": "mention", "offset": 38, "length": 23},
    ]


# --- the server driven by python-telegram-bot ----------------------------------------------------------------


async def test_get_me_and_messages_are_real_telegram_objects(server: BotApiServer, bot: Bot) -> None:
    me = await bot.get_me()
    assert (me.id, me.is_bot, me.username, me.supports_inline_queries) == (123456, True, server.bot_username, True)
    question = server.user_message(USER, "hello")["message"]
    first = await bot.send_message(
        USER,
        "<b>Trade</b> grew &amp; <i>rose</i>",
        parse_mode="HTML",
        reply_markup=keyboard("f:1"),
        reply_to_message_id=question["message_id"],
    )
    second = await bot.send_message(USER, "plain")
    assert (first.message_id, second.message_id) == (question["message_id"] + 1, question["message_id"] + 2)
    assert first.text == "Trade grew & rose"
    assert [(e.type, e.offset, e.length) for e in first.entities] == [("bold", 0, 5), ("italic", 13, 4)]
    assert first.from_user.id == me.id and first.chat.id == USER and first.date is not None
    assert first.reply_markup == keyboard("f:1")
    assert first.reply_to_message.text == "hello"
    assert [m["text"] for m in server.sent_messages(USER)] == ["Trade grew & rose", "plain"]
    assert [m["text"] for m in server.chat_log(USER)] == ["hello", "Trade grew & rose", "plain"]
    assert server.sent_messages(USER + 1) == []
    assert server.invalid_calls == []


async def test_edits_change_the_current_state_and_unchanged_edits_fail(server: BotApiServer, bot: Bot) -> None:
    sent = await bot.send_message(USER, "one", reply_markup=keyboard("a"))
    edited = await bot.edit_message_text(
        "<b>two</b>", USER, sent.message_id, parse_mode="HTML", reply_markup=keyboard("b")
    )
    assert (edited.text, edited.edit_date is not None, edited.reply_markup) == ("two", True, keyboard("b"))
    assert server.sent_messages(USER)[0]["reply_markup"] == keyboard("b").to_dict()
    with pytest.raises(BadRequest, match=r"(?i)message is not modified"):
        await bot.edit_message_text("<b>two</b>", USER, sent.message_id, parse_mode="HTML", reply_markup=keyboard("b"))
    await bot.edit_message_text("two", USER, sent.message_id)  # no markup: the keyboard goes, like on Telegram
    assert "reply_markup" not in server.sent_messages(USER)[0]
    await bot.edit_message_reply_markup(USER, sent.message_id, reply_markup=keyboard("c"))
    assert server.sent_messages(USER)[0]["reply_markup"] == keyboard("c").to_dict()
    with pytest.raises(BadRequest, match=r"(?i)message to edit not found"):
        await bot.edit_message_text("x", USER, 999)
    assert await bot.delete_message(USER, sent.message_id) is True
    assert server.sent_messages(USER) == []
    with pytest.raises(BadRequest, match=r"(?i)message to delete not found"):
        await bot.delete_message(USER, sent.message_id)
    assert [c.description for c in server.invalid_calls] == [
        "Bad Request: message is not modified: specified new message content and reply markup are exactly the same "
        "as a current content and reply markup of the message",
        "Bad Request: message to edit not found",
        "Bad Request: message to delete not found",
    ]


async def test_invalid_requests_get_telegram_errors_and_are_recorded(server: BotApiServer, bot: Bot) -> None:
    cases = [
        (bot.send_message(USER, "<b>bold", parse_mode="HTML"), "can't parse entities: Can't find end tag"),
        (bot.send_message(USER, "x" * 4097), "message is too long"),
        (bot.send_message(USER, "<i> </i>", parse_mode="HTML"), "message text is empty"),
        (bot.send_message(USER, "x", reply_markup=keyboard("x" * 65)), "BUTTON_DATA_INVALID"),
        (bot.set_my_commands([BotCommand("Year", "by year")]), "BOT_COMMAND_INVALID"),
        (bot.send_chat_action(USER, "dancing"), "wrong parameter action in request"),
        (bot.answer_callback_query("123"), "query is too old and response timeout expired or query ID is invalid"),
        (bot.send_message(USER, "x", reply_to_message_id=77), "message to be replied not found"),
    ]
    for request, _ in cases:
        with pytest.raises(BadRequest):
            await request
    assert [c.error_code for c in server.invalid_calls] == [400] * len(cases)
    for call, (_, description) in zip(server.invalid_calls, cases, strict=True):
        assert call.description.startswith("Bad Request: ") and description in call.description
    assert server.sent_messages(USER) == [] and server.my_commands == []


async def test_raw_http_errors_match_telegram(server: BotApiServer, http: httpx.AsyncClient) -> None:
    response = await http.post("sendMessage", data={"chat_id": "1", "text": "hi", "parse_mod": "HTML"})
    assert response.status_code == 400
    assert response.json() == {
        "ok": False,
        "error_code": 400,
        "description": 'Bad Request: unknown parameter "parse_mod" for method sendMessage',
    }
    response = await http.get("getStuff")
    assert (response.status_code, response.json()["description"]) == (404, "Not Found")
    response = await http.post(f"{server.base_url}not-a-token/getMe")
    assert (response.status_code, response.json()["description"]) == (404, "Not Found")
    response = await http.get(f"{server.url}/elsewhere")
    assert (response.status_code, response.json()["description"]) == (404, "Not Found")
    response = await http.get("deleteMessage", params={"chat_id": "1", "message_id": "x"})
    assert response.json()["description"] == 'Bad Request: parameter "message_id" must be an Integer'
    response = await http.get("getMe")
    assert response.status_code == 200 and response.json()["result"]["is_bot"] is True
    assert [c.method for c in server.invalid_calls] == ["sendMessage", "getStuff", "getMe", "deleteMessage"]


async def test_a_wrong_token_is_unauthorized() -> None:
    server = BotApiServer(accepted_token="111:RIGHT")
    await server.start()
    try:
        async with Bot("111:RIGHT", base_url=server.base_url) as bot:
            assert (await bot.get_me()).id == 111
        with pytest.raises(InvalidToken):
            async with Bot("111:WRONG", base_url=server.base_url):
                pass
    finally:
        await server.stop()


async def test_form_multipart_and_json_bodies_decode_identically(server: BotApiServer, http: httpx.AsyncClient) -> None:
    markup = {"inline_keyboard": [[{"text": "Más → info", "callback_data": "f:1"}]]}
    form = {
        "chat_id": str(USER),
        "text": "<b>Hello</b> мир 🌏",
        "parse_mode": "HTML",
        "disable_notification": "true",
        "reply_markup": json.dumps(markup),
    }
    typed = {**form, "chat_id": USER, "disable_notification": True, "reply_markup": markup}
    responses = [
        await http.post("sendMessage", data=form),  # what PTB sends: JSON-encoded values in a form
        await http.post("sendMessage", files={name: (None, value) for name, value in form.items()}),  # multipart
        await http.post("sendMessage", json=typed),
        await http.post("sendMessage", json=form),  # JSON-serialized values inside JSON read the same way
    ]
    assert [r.status_code for r in responses] == [200] * 4
    results = [{k: v for k, v in r.json()["result"].items() if k not in ("message_id", "date")} for r in responses]
    assert results == [results[0]] * 4
    assert results[0]["text"] == "Hello мир 🌏"
    assert results[0]["entities"] == [{"type": "bold", "offset": 0, "length": 5}]
    assert results[0]["reply_markup"] == markup
    decoded = [c.params for c in server.calls]
    assert decoded == [decoded[0]] * 4
    assert decoded[0] == {**typed, "text": "<b>Hello</b> мир 🌏"}


async def test_uploaded_files_are_input_files(server: BotApiServer, http: httpx.AsyncClient) -> None:
    response = await http.post("setWebhook", files={"certificate": ("c.pem", b"---")}, data={"url": "https://e.org/h"})
    assert response.json() == {"ok": True, "result": True, "description": "Webhook was set"}
    assert server.calls[-1].params["certificate"].filename == "c.pem"
    assert (await http.get("getWebhookInfo")).json()["result"]["has_custom_certificate"] is True
    response = await http.post("sendMessage", files={"text": ("t.txt", b"hi")}, data={"chat_id": "1"})
    assert response.json()["description"] == 'Bad Request: parameter "text" must be a String, not an uploaded file'


async def test_get_updates_long_polls_and_honours_offset(server: BotApiServer, bot: Bot) -> None:
    assert await bot.get_updates(timeout=0) == ()
    waiting = asyncio.create_task(bot.get_updates(timeout=30, read_timeout=40))
    await server.wait_for_poller()
    assert not waiting.done()
    queued = server.user_message(USER, "/start")
    updates = await asyncio.wait_for(waiting, 5)  # well before the 30 s poll timeout
    assert [u.update_id for u in updates] == [queued["update_id"]]
    assert updates[0].message.text == "/start" and updates[0].message.entities[0].type == "bot_command"
    second = server.user_message(USER, "next")
    again = await bot.get_updates(timeout=0)  # not confirmed yet: both again
    assert [u.update_id for u in again] == [queued["update_id"], second["update_id"]]
    assert [u.update_id for u in await bot.get_updates(offset=second["update_id"], limit=1)] == [second["update_id"]]
    assert await bot.get_updates(offset=second["update_id"] + 1, timeout=1) == ()
    assert server.pending_updates == []


async def test_allowed_updates_filter_and_negative_offset(server: BotApiServer, bot: Bot) -> None:
    sent = await bot.send_message(USER, "q", reply_markup=keyboard("a"))
    server.user_message(USER, "one")
    server.press_button(USER, sent.message_id, "a")
    server.user_message(USER, "two")
    updates = await bot.get_updates(allowed_updates=["message"])
    assert [u.message.text for u in updates] == ["one", "two"]  # the callback query is dropped
    assert [u.message.text for u in await bot.get_updates(offset=-1, allowed_updates=[])] == ["two"]


async def test_a_second_poller_terminates_the_first_with_conflict(server: BotApiServer, bot: Bot) -> None:
    first = asyncio.create_task(bot.get_updates(timeout=30, read_timeout=40))
    await server.wait_for_poller()
    other_instance = Bot(TOKEN, base_url=server.base_url)
    second = asyncio.create_task(other_instance.get_updates(timeout=30, read_timeout=40))
    with pytest.raises(Conflict, match="terminated by other getUpdates request"):
        await asyncio.wait_for(first, 5)
    server.user_message(USER, "hi")
    assert [u.message.text for u in await asyncio.wait_for(second, 5)] == ["hi"]
    await other_instance.shutdown()
    assert [c.error_code for c in server.calls if c.method == "getUpdates"] == [409, None]
    assert server.invalid_calls == []


async def test_webhook_switches_off_get_updates(server: BotApiServer, bot: Bot) -> None:
    server.user_message(USER, "queued")
    assert await bot.set_webhook("https://bot.example.org/hook", secret_token="abc") is True
    info = await bot.get_webhook_info()
    assert (info.url, info.pending_update_count) == ("https://bot.example.org/hook", 1)
    with pytest.raises(Conflict, match="can't use getUpdates method while webhook is active"):
        await bot.get_updates()
    with pytest.raises(BadRequest, match=r"(?i)an https url must be provided"):
        await bot.set_webhook("http://bot.example.org/hook")
    assert await bot.delete_webhook(drop_pending_updates=True) is True
    assert (await bot.get_webhook_info()).url == ""
    assert await bot.get_updates() == ()


async def test_buttons_callback_answers_and_inline_queries(server: BotApiServer, bot: Bot) -> None:
    sent = await bot.send_message(USER, "pick", reply_markup=keyboard("f:1", "f:2"))
    raw = server.press_button(USER, sent.message_id, "f:2")
    update = Update.de_json(raw, bot)
    assert update.callback_query.data == "f:2" and update.callback_query.message.message_id == sent.message_id
    with pytest.raises(ValueError, match="no button with callback_data 'f:3'"):
        server.press_button(USER, sent.message_id, "f:3")
    forged = server.press_button(USER, sent.message_id, "f:3", check_button=False)
    assert forged["callback_query"]["data"] == "f:3"
    assert await bot.answer_callback_query(update.callback_query.id, text="Shown") is True
    assert server.callback_answers[update.callback_query.id]["text"] == "Shown"
    with pytest.raises(BadRequest, match=r"(?i)query is too old"):  # answered already
        await bot.answer_callback_query(update.callback_query.id)
    with pytest.raises(BadRequest, match=r"(?i)message_too_long"):
        await bot.answer_callback_query(forged["callback_query"]["id"], text="x" * 201)

    query = Update.de_json(server.inline_query(USER, "trade 2023"), bot).inline_query
    assert (query.query, query.offset, query.from_user.id) == ("trade 2023", "", USER)
    results = [
        InlineQueryResultArticle(str(i), f"Fact {i}", InputTextMessageContent(f"<b>Fact</b> {i}", parse_mode="HTML"))
        for i in range(3)
    ]
    assert await bot.answer_inline_query(query.id, results, cache_time=0, is_personal=True) is True
    assert [r["title"] for r in server.inline_results(query.id)] == ["Fact 0", "Fact 1", "Fact 2"]
    too_many = [InlineQueryResultArticle(str(i), "t", InputTextMessageContent("x")) for i in range(51)]
    other = server.inline_query(USER, "x")["inline_query"]["id"]
    with pytest.raises(BadRequest, match=r"(?i)results_too_much"):
        await bot.answer_inline_query(other, too_many)
    assert server.inline_results(other) is None


async def test_commands_chat_actions_menu_button_and_get_chat(server: BotApiServer, bot: Bot) -> None:
    commands = [BotCommand("start", "Start"), BotCommand("year", "Facts of a year")]
    assert await bot.set_my_commands(commands) is True
    assert server.my_commands == [c.to_dict() for c in commands]
    assert await bot.get_my_commands() == tuple(commands)
    assert await bot.delete_my_commands() is True and server.my_commands == []
    assert await bot.send_chat_action(USER, "typing") is True
    assert server.chat_actions == [(USER, "typing")]
    assert await bot.set_chat_menu_button() is True
    server.user_message(-5, "hi group", user_id=USER, chat_type="group")
    chat = await bot.get_chat(-5)
    assert (chat.id, chat.type) == (-5, "group")
    with pytest.raises(BadRequest, match=r"(?i)chat not found"):
        await bot.get_chat("@nobody")
    assert await bot.log_out() is True and await bot.close() is True


async def test_group_messages_need_a_user_and_known_chats_only() -> None:
    server = BotApiServer(known_chats_only=True)
    with pytest.raises(ValueError, match="user_id"):
        server.user_message(-5, "hi", chat_type="group")
    with pytest.raises(ValueError, match="private chat"):
        server.user_message(-5, "hi")
    update = server.user_message(-5, "/year@china_russia_facts_bot 2024", user_id=7, chat_type="supergroup")
    assert update["message"]["chat"]["type"] == "supergroup" and update["message"]["from"]["id"] == 7
    await server.start()
    try:
        async with Bot(TOKEN, base_url=server.base_url) as bot:
            await bot.send_message(-5, "ok")
            with pytest.raises(BadRequest, match=r"(?i)chat not found"):
                await bot.send_message(99, "nobody wrote from here")
    finally:
        await server.stop()


@pytest.mark.filterwarnings("ignore:.*retry_after.*")  # PTB's own deprecation notice inside RetryAfter
async def test_injected_failures(server: BotApiServer, bot: Bot) -> None:
    server.block_chat(1)
    server.deactivate_chat(2)
    server.chat_not_found(3)
    server.throttle_chat(4, retry_after=3, times=2)
    server.fail_chat(5, status=500)
    with pytest.raises(Forbidden, match="bot was blocked by the user"):
        await bot.send_message(1, "x")
    with pytest.raises(Forbidden, match="user is deactivated"):
        await bot.send_message(2, "x")
    with pytest.raises(BadRequest, match=r"(?i)chat not found"):
        await bot.send_message(3, "x")
    for _ in range(2):
        with pytest.raises(RetryAfter):
            await bot.send_message(4, "x")
        assert (server.calls[-1].error_code, server.calls[-1].retry_after) == (429, 3)
    assert (await bot.send_message(4, "third time")).text == "third time"
    with pytest.raises(NetworkError, match="Internal Server Error"):
        await bot.send_message(5, "x")
    await bot.send_message(5, "recovered")
    server.unblock_chat(1)
    await bot.send_message(1, "back")
    assert server.invalid_calls == []  # injected failures are answers, not invalid requests
    stats = server.stats
    assert (stats.sent, stats.too_many_requests, stats.errors) == (3, 2, 6)
    assert stats.per_chat == {4: 1, 5: 1, 1: 1} and stats.duplicates == {}


async def test_global_rate_limit_answers_429_with_retry_after() -> None:
    server = BotApiServer(rate_limit=2)
    await server.start()
    try:
        async with httpx.AsyncClient(base_url=f"{server.base_url}{TOKEN}/") as http:
            answers = [(await http.post("sendMessage", data={"chat_id": "1", "text": "x"})) for _ in range(3)]
    finally:
        await server.stop()
    assert [a.status_code for a in answers] == [200, 200, 429]
    assert answers[2].json() == {
        "ok": False,
        "error_code": 429,
        "description": "Too Many Requests: retry after 1",
        "parameters": {"retry_after": 1},
    }
    assert (server.stats.sent, server.stats.too_many_requests, server.stats.peak_per_second) == (2, 1, 2)


async def test_waiting_helpers_and_listeners(server: BotApiServer, bot: Bot) -> None:
    events = []
    remove = server.add_listener(events.append)
    version = server.version
    waiting = asyncio.create_task(server.wait_for_message(USER, since=len(server.sent_messages(USER))))
    changed = asyncio.create_task(server.wait_for_change(version, timeout=5))
    call = asyncio.create_task(server.wait_for_call("sendmessage", lambda c: c.params["text"] == "second"))
    await bot.send_message(USER, "first")
    await bot.send_message(USER, "second")
    assert (await waiting)["text"] == "first"
    assert await changed > version
    assert (await call).params == {"chat_id": USER, "text": "second"}
    assert (await server.wait_for_call("sendMessage", since=0)).params["text"] == "first"
    with pytest.raises(TimeoutError, match="no matching getChat call"):
        await server.wait_for_call("getChat", timeout=0.05)
    assert [e.kind for e in events if e.kind == "message"] == ["message", "message"]
    assert [e.data.method for e in events if e.kind == "call"] == ["sendMessage", "sendMessage"]
    remove()
    server.user_message(USER, "unheard")
    assert all(e.kind != "update" for e in events)
    assert await server.wait_for_change(server.version, timeout=0.05) == server.version


async def test_everything_the_server_produces_conforms_to_the_spec(
    server: BotApiServer, http: httpx.AsyncClient
) -> None:
    def result(response: httpx.Response) -> object:
        assert response.status_code == 200, response.text
        return response.json()["result"]

    conforms("User", result(await http.get("getMe")))
    server.user_message(USER, "/start @china_russia_facts_bot", username="tester", first_name="Ann")
    group = server.user_message(-100777, "hi", user_id=USER, chat_type="supergroup")
    sent = result(
        await http.post(
            "sendMessage",
            json={
                "chat_id": -100777,
                "text": "<b>a</b> <a href='https://e.org'>b</a>",
                "parse_mode": "HTML",
                "reply_parameters": {"message_id": group["message"]["message_id"]},
                "reply_markup": {"inline_keyboard": [[{"text": "x", "callback_data": "x"}]]},
            },
        )
    )
    conforms("Message", sent)
    edited = result(
        await http.post("editMessageText", json={"chat_id": -100777, "message_id": sent["message_id"], "text": "c"})
    )
    conforms("Message", edited)
    server.edit_user_message(USER, 1, "edited")
    server.press_button(-100777, sent["message_id"], "x", user_id=USER, check_button=False)
    server.inline_query(USER, "q", offset="10", chat_type="sender")
    for update in result(await http.get("getUpdates")):
        conforms("Update", update)
    conforms("ChatFullInfo", result(await http.get("getChat", params={"chat_id": USER})))
    conforms("WebhookInfo", result(await http.get("getWebhookInfo")))
    assert server.invalid_calls == []


async def test_the_token_never_reaches_the_logs(caplog: pytest.LogCaptureFixture) -> None:
    secret = "987654:SECRETsecretSECRET"
    caplog.set_level(logging.DEBUG)
    server = BotApiServer()
    await server.start()
    try:
        async with Bot(secret, base_url=server.base_url) as bot:
            await bot.send_message(1, "x")
            with pytest.raises(BadRequest):
                await bot.send_message(1, "<b>", parse_mode="HTML")
    finally:
        await server.stop()
    ours = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith(("bot", "tornado")))
    assert "POST sendMessage -> 400" in ours and "invalid Bot API call sendMessage" in ours
    assert "SECRETsecret" not in ours


async def test_a_polling_application_talks_to_the_server(server: BotApiServer) -> None:
    async def start(update: Update, context: object) -> None:
        await update.message.reply_html(f"<b>Hello</b>, {update.effective_user.first_name}!")

    application = Application.builder().token(TOKEN).base_url(server.base_url).build()
    application.add_handler(CommandHandler("start", start))
    async with application:
        await application.start()
        await application.updater.start_polling(poll_interval=0, timeout=1)
        server.user_message(USER, "/start", first_name="Ann")
        reply = await server.wait_for_message(USER)
        await application.updater.stop()
        await application.stop()
    assert reply["text"] == "Hello, Ann!" and reply["entities"] == [{"type": "bold", "offset": 0, "length": 5}]
    assert server.pending_updates == []  # the updater confirmed what it handled
    assert server.invalid_calls == []
