"""The bot end to end: the real Application polls the local Bot API server over HTTP, as it would Telegram.

Each test acts as a user (a message, an edit, a button press, an inline query) and checks what the user would
see in the chat; the `botapi` fixture fails any test in which the bot sent a request the Bot API spec rejects
(a bad parse, an over-long message, an oversized callback_data, ...). Expected texts are derived from the
knowledge base and the renderer, not copied into the tests.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import re
import time

import pytest

from bot.matching.matcher import Answer, answer
from bot.presentation.render import DECLINE, answer_html, fact_html, format_date, years
from bot.presentation.telegram_text import visible_length, visible_text
from bot.telegram import handlers
from bot.telegram.app import BOT_COMMANDS

USER = 4242
GROUP, MEMBER = -100500, 777


async def say(srv, chat_id: int, text: str, *, timeout: float = 5.0, **kwargs) -> dict:
    """Send `text` as a user and return the bot's next message in that chat."""
    before = len(srv.sent_messages(chat_id))
    srv.user_message(chat_id, text, **kwargs)
    return await srv.wait_for_message(chat_id, since=before, timeout=timeout)


async def press(srv, chat_id: int, message: dict, data: str, *, check_button: bool = True, **kwargs) -> dict:
    """Press a button and return the bot's answerCallbackQuery call for it."""
    update = srv.press_button(chat_id, message["message_id"], data, check_button=check_button, **kwargs)
    query_id = update["callback_query"]["id"]
    return await srv.wait_for_call("answerCallbackQuery", lambda c: c.params["callback_query_id"] == query_id)


async def settle(srv, chat_id: int) -> None:
    """Let the bot finish with what it has been sent: updates are handled in order, so /help is answered last."""
    since = len(srv.calls)
    srv.user_message(chat_id, "/help")
    await srv.wait_for_call(
        "sendMessage", lambda c: c.params["chat_id"] == chat_id and "How to use me" in c.params["text"], since=since
    )


def buttons(message: dict) -> list[dict]:
    return [b for row in message.get("reply_markup", {}).get("inline_keyboard", []) for b in row]


def expected_text(index, knowledge, question: str) -> str:
    return visible_text(answer_html(answer(index, question, datetime.date.today()), knowledge)).strip()


# --- start-up and commands -------------------------------------------------------------------------------------


async def test_commands_are_registered_for_the_menu(botapi, bot_app):
    names = [c["command"] for c in botapi.my_commands]
    assert names[: len(BOT_COMMANDS)] == [name for name, _ in BOT_COMMANDS]
    assert {"start", "help", "ask", "year", "timeline", "quote", "sources", "about"} <= set(names)
    assert all(c["description"] for c in botapi.my_commands)


async def test_start_offers_three_example_questions_that_are_answered(botapi, bot_app, knowledge):
    welcome = await say(botapi, USER, "/start")
    assert "Hello" in welcome["text"]
    examples = buttons(welcome)
    assert len(examples) == 3
    for button in examples:
        before = len(botapi.sent_messages(USER))
        call = await press(botapi, USER, welcome, button["callback_data"])
        assert call.ok
        reply = await botapi.wait_for_message(USER, since=before)
        assert not reply["text"].startswith(DECLINE), button["text"]
        assert "Source: " in reply["text"]


async def test_help_about_sources_and_timeline(botapi, bot_app, knowledge):
    help_text = (await say(botapi, USER, "/help"))["text"]
    for command in ("/ask", "/year", "/timeline", "/quote", "/sources", "/about"):
        assert command in help_text
    assert f"@{botapi.bot_username}" in help_text
    about = (await say(botapi, USER, "/about"))["text"]
    assert f"Facts: {len(knowledge.facts)}" in about
    sources = (await say(botapi, USER, "/sources"))["text"]
    for article in knowledge.articles.values():
        assert article.outlet in sources and article.title in sources
    assert "undated" in sources  # articles without a printed date say so
    timeline = (await say(botapi, USER, "/timeline"))["text"]
    for year in years(knowledge):
        assert re.search(rf"^{year}$", timeline, re.MULTILINE), year


# --- questions -------------------------------------------------------------------------------------------------


async def test_private_question_is_answered_with_its_source(botapi, bot_app, knowledge, index):
    question = "how much was trade in 2023"
    reply = await say(botapi, USER, question)
    result = answer(index, question, datetime.date.today())
    fact = result.facts[0]
    assert fact.kind == "trade" and fact.year == 2023
    assert reply["text"] == expected_text(index, knowledge, question)
    figure = re.search(r"\$\d[\d.,]* (?:billion|trillion)", fact.text)
    assert figure and figure.group(0) in reply["text"]
    article = knowledge.article(fact)
    assert f"Source: {article.outlet}, {format_date(article.published) or 'undated'}" in reply["text"]
    assert {"type": "bold", "offset": 0, "length": len(fact.title)} in reply["entities"]


async def test_declined_question_offers_did_you_mean_buttons_that_show_the_fact(botapi, bot_app, knowledge, index):
    candidates = ["what about the olympics in 2030", "olympics 2030", "gas pipeline price", "new heights in 2030"]
    question = next(
        (q for q in candidates if (a := answer(index, q, datetime.date.today())) and not a.answered and a.suggestions),
        None,
    )
    if question is None:
        pytest.fail(f"none of {candidates} is declined with suggestions any more; pick another near miss")
    reply = await say(botapi, USER, question)
    assert reply["text"].startswith(DECLINE)
    assert "Did you mean:" in reply["text"]
    offered = buttons(reply)
    suggestions = answer(index, question, datetime.date.today()).suggestions
    assert [b["text"] for b in offered] == [s.title for s in suggestions[: handlers.MAX_SUGGESTION_BUTTONS]]
    before = len(botapi.sent_messages(USER))
    call = await press(botapi, USER, reply, offered[0]["callback_data"])
    assert call.ok
    shown = await botapi.wait_for_message(USER, since=before)
    assert shown["text"] == visible_text(fact_html(suggestions[0], knowledge)).strip()


async def test_out_of_scope_question_is_declined_honestly(botapi, bot_app):
    reply = await say(botapi, USER, "What is the capital of France?")
    assert reply["text"].startswith(DECLINE)
    assert "Source:" not in reply["text"]


async def test_declined_questions_reach_the_unanswered_hook(botapi, bot_app):
    recorded = []

    async def hook(result, chat_id):
        recorded.append((result.question, result.answered, chat_id))

    bot_app.bot_data[handlers.ON_UNANSWERED] = hook
    await say(botapi, USER, "What is the capital of France?")
    await say(botapi, USER, "When did Putin visit Beijing?")
    assert recorded == [("What is the capital of France?", False, USER)]


async def test_list_answers_are_numbered_with_sources(botapi, bot_app, knowledge, index):
    question = "what happened in 2024"
    result = answer(index, question, datetime.date.today())
    assert result.is_list
    before = len(botapi.sent_messages(USER))
    botapi.user_message(USER, question)
    await settle(botapi, USER)
    parts = botapi.sent_messages(USER)[before:-1]
    text = "\n".join(p["text"] for p in parts)
    for number, fact in enumerate(result.facts, 1):
        assert f"{number}. {fact.title}" in text
    assert text.count("Source: ") >= len(result.facts)
    assert all(len(p["text"]) <= 4096 for p in parts)


async def test_a_reply_longer_than_telegram_allows_is_sent_in_parts(botapi, bot_app, knowledge, monkeypatch):
    every_fact = Answer("everything", True, knowledge.facts, 90.0, (), is_list=True)
    assert visible_length(answer_html(every_fact, knowledge)) > 4096
    monkeypatch.setattr(handlers, "answer", lambda index, question, today: every_fact)
    before = len(botapi.sent_messages(USER))
    botapi.user_message(USER, "everything")
    await settle(botapi, USER)
    parts = botapi.sent_messages(USER)[before:-1]
    assert len(parts) >= 2
    assert all(len(p["text"].encode("utf-16-le")) // 2 <= 4096 for p in parts)
    text = "\n".join(p["text"] for p in parts)
    for number, fact in enumerate(knowledge.facts, 1):
        assert f"{number}. {fact.title} — " in text
    # cut between lines: each part begins and ends with a whole line of the full reply
    lines = set(visible_text(answer_html(every_fact, knowledge)).split("\n"))
    assert all(p["text"].split("\n")[0] in lines and p["text"].split("\n")[-1] in lines for p in parts)


async def test_edited_question_is_answered_again_in_reply_to_the_edit(botapi, bot_app, knowledge, index):
    first = await say(botapi, USER, "what is the weather in Paris")
    assert first["text"].startswith(DECLINE)
    asked = [m for m in botapi.chat_log(USER) if not m["from"]["is_bot"]][-1]
    before = len(botapi.sent_messages(USER))
    botapi.edit_user_message(USER, asked["message_id"], "When did Putin visit Beijing?")
    second = await botapi.wait_for_message(USER, since=before)
    assert second["text"] == expected_text(index, knowledge, "When did Putin visit Beijing?")
    assert second["reply_to_message"]["message_id"] == asked["message_id"]
    assert botapi.sent_messages(USER)[before - 1]["text"] == first["text"]  # the first reply is left alone


# --- groups ----------------------------------------------------------------------------------------------------


async def test_groups_get_answers_only_when_the_bot_is_addressed(botapi, bot_app, knowledge, index):
    question = "When did Putin visit Beijing?"
    expected = expected_text(index, knowledge, question)
    before = len(botapi.sent_messages(GROUP))
    botapi.user_message(GROUP, question, user_id=MEMBER, chat_type="supergroup")  # people talking: ignored
    botapi.user_message(GROUP, "/foo", user_id=MEMBER, chat_type="supergroup")  # maybe another bot's command
    mentioned = await say(botapi, GROUP, f"@{botapi.bot_username} {question}", user_id=MEMBER, chat_type="supergroup")
    assert len(botapi.sent_messages(GROUP)) == before + 1
    assert mentioned["text"] == expected
    assert mentioned["reply_to_message"]["text"].endswith(question)  # quotes who it answers

    via_ask = await say(botapi, GROUP, f"/ask {question}", user_id=MEMBER, chat_type="supergroup")
    assert via_ask["text"] == expected
    addressed = await say(
        botapi, GROUP, f"/ask@{botapi.bot_username} {question}", user_id=MEMBER, chat_type="supergroup"
    )
    assert addressed["text"] == expected

    follow_up = "how much was trade in 2023"
    replied = await say(
        botapi,
        GROUP,
        follow_up,
        user_id=MEMBER,
        chat_type="supergroup",
        reply_to_message_id=via_ask["message_id"],
    )
    assert replied["text"] == expected_text(index, knowledge, follow_up)
    unknown = await say(botapi, GROUP, f"/foo@{botapi.bot_username}", user_id=MEMBER, chat_type="supergroup")
    assert "I don't know the command /foo" in unknown["text"]


# --- /year, /quote ---------------------------------------------------------------------------------------------


async def test_year_is_paginated_with_buttons(botapi, bot_app, knowledge):
    busiest = max(years(knowledge), key=lambda y: len([f for f in knowledge.facts if f.year == y]))
    count = len([f for f in knowledge.facts if f.year == busiest])
    pages = -(-count // handlers.YEAR_PAGE_SIZE)
    assert pages > 1, "the busiest year should need more than one page"
    first = await say(botapi, USER, f"/year {busiest}")
    assert first["text"].startswith(f"{busiest}: {count} facts")
    assert f"page 1 of {pages}" in first["text"]
    assert [b["callback_data"] for b in buttons(first)] == [f"y:{busiest}:1"]
    seen = set()
    message = first
    for page in range(1, pages):
        call = await press(botapi, USER, message, f"y:{busiest}:{page}")
        assert call.ok
        await botapi.wait_for_call(
            "editMessageText",
            since=0,
            predicate=lambda c, p=page: f"of {pages}" in c.params["text"] and f"page {p + 1} " in c.params["text"],
        )
        message = botapi.sent_messages(USER)[-1]
        assert message["message_id"] == first["message_id"]  # edited in place
        seen.update(re.findall(r"^\d+\. (.+) — ", message["text"], re.MULTILINE))
    assert [b["text"] for b in buttons(message)] == ["◀ Previous"]
    seen.update(re.findall(r"^\d+\. (.+) — ", first["text"], re.MULTILINE))
    assert seen == {f.title for f in knowledge.facts if f.year == busiest}


@pytest.mark.parametrize("argument", ["abc", "", "20245", "2024 2025", "<b>"])
async def test_year_with_a_bad_argument_explains_the_usage(botapi, bot_app, argument):
    reply = await say(botapi, USER, f"/year {argument}".strip())
    assert reply["text"].startswith("Usage: /year YYYY")


async def test_year_without_facts_says_which_years_have_them(botapi, bot_app, knowledge):
    reply = await say(botapi, USER, "/year 1850")
    assert "no facts dated 1850" in reply["text"]
    assert ", ".join(str(y) for y in years(knowledge)) in reply["text"]


async def test_quote_by_person_and_another_quote_button(botapi, bot_app, knowledge):
    putin = knowledge.entities["vladimir-putin"].name
    reply = await say(botapi, USER, "/quote Putin")
    assert reply["text"].split("\n")[2] == f"{putin}:"
    assert "Source: " in reply["text"]
    quote_entities = [e for e in reply["entities"] if e["type"] == "blockquote"]
    assert len(quote_entities) == 1
    shown = await say(botapi, USER, "/quote")
    assert [e["type"] for e in shown["entities"]].count("blockquote") == 1
    (another,) = buttons(shown)
    assert another["text"] == "Another quote"
    before_text = shown["text"]
    call = await press(botapi, USER, shown, another["callback_data"])
    assert call.ok
    await botapi.wait_for_call("editMessageText")
    edited = botapi.sent_messages(USER)[-1]
    assert edited["message_id"] == shown["message_id"] and edited["text"] != before_text


async def test_quote_nobody_said_is_a_clear_message_with_the_query_escaped(botapi, bot_app):
    reply = await say(botapi, USER, "/quote <script>&*_[`")
    assert "I have no quote about “<script>&*_[`”" in reply["text"]


# --- inline mode -----------------------------------------------------------------------------------------------


async def test_inline_query_offers_matching_facts(botapi, bot_app, knowledge, index):
    update = botapi.inline_query(USER, "trade 2023")
    query_id = update["inline_query"]["id"]
    call = await botapi.wait_for_call("answerInlineQuery", lambda c: c.params["inline_query_id"] == query_id)
    assert call.ok
    results = call.params["results"]
    assert 1 <= len(results) <= 10
    best = answer(index, "trade 2023", datetime.date.today()).facts[0]
    assert results[0]["title"] == best.title
    assert results[0]["input_message_content"]["message_text"] == fact_html(best, knowledge)
    assert len({r["id"] for r in results}) == len(results)

    update = botapi.inline_query(USER, "")
    query_id = update["inline_query"]["id"]
    call = await botapi.wait_for_call("answerInlineQuery", lambda c: c.params["inline_query_id"] == query_id)
    assert [r["id"] for r in call.params["results"]] == [
        f.id for f in sorted(knowledge.exchange_facts(), key=lambda f: f.date, reverse=True)
    ][:10]


async def test_inline_query_with_no_match_offers_the_private_chat(botapi, bot_app):
    update = botapi.inline_query(USER, "zzqx qqq")
    query_id = update["inline_query"]["id"]
    call = await botapi.wait_for_call("answerInlineQuery", lambda c: c.params["inline_query_id"] == query_id)
    assert call.ok and call.params["results"] == []
    assert call.params["button"]["start_parameter"] == "inline"


# --- bad input -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["   ", "\n\t \n"])
async def test_blank_message_gets_a_hint(botapi, bot_app, text):
    reply = await say(botapi, USER, text)
    assert reply["text"].startswith("Ask me a question in words")
    assert handlers.EXAMPLES[0] in reply["text"]


@pytest.mark.parametrize(
    "question",
    [
        "<script>alert(1)</script> & *_[ trade 2023?",
        "how much was <b>trade</b> in 2023 &amp; *why*_[]()~`>#+-=|{}.!",
        "🇨🇳🤝🇷🇺",
        "🤝 When did Putin visit Beijing? 🐼",
        "Когда Путин был в Пекине?",
    ],
)
async def test_markup_and_emoji_in_questions_never_break_a_reply(botapi, bot_app, knowledge, index, question):
    reply = await say(botapi, USER, question)
    assert reply["text"] == expected_text(index, knowledge, question)


async def test_a_4096_character_message_is_answered(botapi, bot_app, knowledge, index):
    question = ("how much was trade in 2023 " * 200)[:4096]
    assert len(question) == 4096
    reply = await say(botapi, USER, question)
    assert reply["text"] == expected_text(index, knowledge, question)


async def test_unknown_command_gets_a_helpful_reply(botapi, bot_app):
    reply = await say(botapi, USER, "/frobnicate now")
    assert reply["text"].startswith("I don't know the command /frobnicate")
    assert "/help" in reply["text"]


async def test_ask_without_a_question_explains_the_usage(botapi, bot_app):
    reply = await say(botapi, USER, "/ask")
    assert reply["text"].startswith("Usage: /ask <question>")


@pytest.mark.parametrize(
    "data", ["garbage", "f:no-such-fact", "i:99999", "e:9", "y:1850:0", "y:2024:999", "q:<x>", "x" * 64, "f:"]
)
async def test_forged_callback_data_is_answered_gracefully(botapi, bot_app, data):
    welcome = await say(botapi, USER, "/start")
    call = await press(botapi, USER, welcome, data, check_button=False)
    assert call.ok
    assert call.params.get("text") == handlers.STALE_BUTTON
    still = await say(botapi, USER, "/about")  # and the bot carries on
    assert still["text"].startswith("About")


async def test_an_exception_in_a_handler_gives_an_apology_and_is_logged(botapi, bot_app, monkeypatch, caplog):
    def broken(index, question, today):
        raise RuntimeError("matching exploded <details>")

    monkeypatch.setattr(handlers, "answer", broken)
    with caplog.at_level(logging.ERROR, logger="bot.telegram.handlers"):
        reply = await say(botapi, USER, "When did Putin visit Beijing?")
    assert reply["text"] == handlers.APOLOGY
    record = next(r for r in caplog.records if r.getMessage().startswith("error while handling update"))
    assert f"chat {USER} (private)" in record.getMessage()
    assert record.exc_info and "matching exploded" in str(record.exc_info[1])
    assert "When did Putin" not in record.getMessage()  # the question text is not logged by default


@pytest.mark.parametrize("where", ["before", "after"])
async def test_an_exception_in_a_button_handler_answers_the_press_once(botapi, bot_app, knowledge, monkeypatch, where):
    def broken(*args):
        raise RuntimeError("rendering exploded")

    # "before": /year pages fail before the press is answered; "after": the fact fails once it is acknowledged
    target = "year_pages" if where == "before" else "fact_html"
    year = max(years(knowledge), key=lambda y: len([f for f in knowledge.facts if f.year == y]))
    first = await say(botapi, USER, f"/year {year}")
    declined = await say(botapi, USER, "what about the olympics in 2030")
    monkeypatch.setattr(handlers if where == "before" else handlers.render, target, broken)
    message, data = (first, f"y:{year}:1") if where == "before" else (declined, buttons(declined)[0]["callback_data"])
    before = len(botapi.sent_messages(USER))
    update = botapi.press_button(USER, message["message_id"], data)
    apology = await botapi.wait_for_message(USER, since=before)
    assert apology["text"] == handlers.APOLOGY
    query_id = update["callback_query"]["id"]
    answers = [
        c for c in botapi.calls if c.method == "answerCallbackQuery" and c.params["callback_query_id"] == query_id
    ]
    assert len(answers) == 1 and answers[0].ok
    assert answers[0].params.get("text") == (handlers.APOLOGY if where == "before" else None)


async def test_typing_is_shown_while_an_answer_takes_long(botapi, bot_app, monkeypatch):
    real = handlers.answer

    def slow(index, question, today):
        time.sleep(0.8)
        return real(index, question, today)

    monkeypatch.setattr(handlers, "answer", slow)
    reply = await say(botapi, USER, "When did Putin visit Beijing?")
    typing_calls = [c for c in botapi.calls if c.method == "sendChatAction" and c.params["chat_id"] == USER]
    assert [c.params["action"] for c in typing_calls] == ["typing"]
    sent = next(
        c for c in botapi.calls if isinstance(c.result, dict) and c.result.get("message_id") == reply["message_id"]
    )
    assert typing_calls[0].at < sent.at


async def test_quick_answers_do_not_send_typing(botapi, bot_app):
    await say(botapi, USER, "/year 2021")
    await say(botapi, USER, "When did Putin visit Beijing?")
    assert not [c for c in botapi.calls if c.method == "sendChatAction"]


async def test_a_throttled_reply_is_retried_after_retry_after(botapi, bot_app):
    botapi.throttle_chat(USER, retry_after=1, times=1)
    reply = await say(botapi, USER, "When did Putin visit Beijing?", timeout=8)
    assert "Putin" in reply["text"]
    assert any(c.error_code == 429 for c in botapi.calls)


async def test_a_user_who_blocked_the_bot_does_not_stop_it(botapi, bot_app, caplog):
    blocked = 5150
    botapi.block_chat(blocked)
    with caplog.at_level(logging.INFO, logger="bot.telegram.handlers"):
        botapi.user_message(blocked, "When did Putin visit Beijing?")
        await botapi.wait_for_call("sendMessage", lambda c: c.params["chat_id"] == blocked and c.error_code == 403)
        reply = await say(botapi, USER, "/about")
    assert reply["text"].startswith("About")
    sends = [c for c in botapi.calls if c.method == "sendMessage" and c.params["chat_id"] == blocked]
    assert len(sends) == 1  # no apology attempted to a chat that cannot receive it
    assert any("cannot reach the user" in r.getMessage() for r in caplog.records)


async def test_many_users_at_once_all_get_their_answer(botapi, bot_app, knowledge, index):
    users = range(9001, 9021)
    for user in users:
        botapi.user_message(user, "When did Putin visit Beijing?")
    expected = expected_text(index, knowledge, "When did Putin visit Beijing?")
    replies = await asyncio.gather(*(botapi.wait_for_message(u, timeout=10) for u in users))
    assert all(r["text"] == expected for r in replies)


# --- pure helpers ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "chat_type", "replied", "expected"),
    [
        ("when did putin visit", "private", False, "when did putin visit"),
        ("when did putin visit", "supergroup", False, None),
        ("when did putin visit", "group", True, "when did putin visit"),
        ("@Facts_Bot, when did putin visit", "group", False, "when did putin visit"),
        ("hey @facts_bot when did putin visit?", "supergroup", False, "hey   when did putin visit?"),
        ("@facts_botx when did putin visit", "group", False, None),  # someone else's bot
    ],
)
def test_which_group_messages_are_questions_for_the_bot(text, chat_type, replied, expected):
    question = handlers.addressed_question(text, chat_type, "facts_bot", replied)
    assert (question.split() if question else question) == (expected.split() if expected else expected)
