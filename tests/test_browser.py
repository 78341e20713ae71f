"""The playground page in headless Chromium: what a person sees and clicks.

One test drives the real `python -m bot playground` (real bot, real matcher): a question and its answer, a
"did you mean" button and the fact it shows, /subscribe from the commands menu, a question containing HTML,
and screenshots in test-output/test_browser/. The other runs the server in-process and plays the bot itself,
to check how every kind of message entity, button and edit is rendered.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from browser_support import (
    OUTPUT_DIR,
    answerable_fact,
    chromium_context,
    did_you_mean_question,
    running_playground,
)
from playwright.async_api import Locator, Page, expect

from bot.playground.botapi_server import BotApiServer
from bot.playground.runner import PLAYGROUND_TOKEN, PLAYGROUND_USER_ID, playground_routes
from bot.presentation.telegram_text import button_text

SCREENSHOTS = OUTPUT_DIR / "test_browser"
BOT_REPLY_TIMEOUT = 30_000  # ms; the bot subprocess answers in well under a second once it runs
HOSTILE = '<script>window.pwned = 1</script><img src=x onerror="window.pwned = 2"> <b>bold?</b>'


@pytest.fixture
async def page() -> AsyncIterator[Page]:
    async with chromium_context() as context:
        page = await context.new_page()
        page.set_default_timeout(15_000)
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        yield page
        assert not errors, f"JavaScript errors on the page: {errors}"


async def ask(page: Page, text: str) -> None:
    await page.get_by_role("textbox", name="Message").fill(text)
    await page.get_by_role("textbox", name="Message").press("Enter")


def bot_bubbles(page: Page) -> Locator:
    return page.locator(".msg.bot")


async def test_a_conversation_with_the_real_bot(page, tmp_path):
    from bot.store.database import open_store

    question, fact = answerable_fact()
    unsure, suggestions = did_you_mean_question()
    database = tmp_path / "bot.sqlite3"
    async with running_playground(database) as run:
        await page.goto(run.url)
        await expect(page).to_have_title("Playground · China–Russia facts bot")
        # the menu button is enabled once the bot has registered its commands: the bot is up
        await expect(page.get_by_role("button", name="Commands menu")).to_be_enabled(timeout=BOT_REPLY_TIMEOUT)

        await ask(page, question)
        await expect(page.locator(".msg.user").last).to_contain_text(question)
        answer = bot_bubbles(page).last
        await expect(answer.locator("strong").first).to_have_text(fact.title, timeout=BOT_REPLY_TIMEOUT)

        await ask(page, unsure)
        declined = bot_bubbles(page).last
        first_choice = declined.get_by_role("button", name=button_text(suggestions[0].title), exact=True)
        await expect(first_choice).to_be_visible(timeout=BOT_REPLY_TIMEOUT)
        count = await bot_bubbles(page).count()
        await first_choice.click()
        await expect(bot_bubbles(page)).to_have_count(count + 1, timeout=BOT_REPLY_TIMEOUT)
        await expect(bot_bubbles(page).last.locator("strong").first).to_have_text(suggestions[0].title)
        await page.screenshot(path=str(SCREENSHOTS / "did-you-mean-mobile.png"))

        await page.get_by_role("button", name="Commands menu").click()
        subscribe = page.get_by_role("menuitem", name="/subscribe")
        await expect(subscribe).to_be_visible()
        count = await bot_bubbles(page).count()
        await subscribe.click()
        await expect(page.locator(".msg.user .text").last).to_have_text("/subscribe")
        await expect(bot_bubbles(page)).to_have_count(count + 1, timeout=BOT_REPLY_TIMEOUT)

        count = await bot_bubbles(page).count()
        await ask(page, HOSTILE)
        await expect(bot_bubbles(page)).to_have_count(count + 1, timeout=BOT_REPLY_TIMEOUT)
        mine = page.locator(".msg.user").last.locator(".text")
        await expect(mine).to_have_text(HOSTILE)  # shown as the text it is
        assert await mine.locator("script, img, b").count() == 0
        assert await page.evaluate("window.pwned") is None

        await page.set_viewport_size({"width": 1100, "height": 900})
        await page.screenshot(path=str(SCREENSHOTS / "conversation-desktop.png"))
    store = await open_store(database)
    try:
        assert await store.is_subscribed(PLAYGROUND_USER_ID), "/subscribe from the menu recorded nothing"
    finally:
        await store.close()


# --- rendering, with the test as the bot ----------------------------------------------------------------------


@pytest.fixture
async def server() -> AsyncIterator[tuple[BotApiServer, httpx.AsyncClient]]:
    srv = BotApiServer(accepted_token=PLAYGROUND_TOKEN)
    srv.add_handlers(playground_routes(srv))
    await srv.start("127.0.0.1", 0)
    try:
        async with httpx.AsyncClient(base_url=f"{srv.url}/bot{PLAYGROUND_TOKEN}", timeout=30) as bot:
            yield srv, bot
    finally:
        await srv.stop()


async def call(bot: httpx.AsyncClient, method: str, **params: object) -> dict:
    body = (await bot.post(f"/{method}", json=params)).json()
    assert body["ok"], body
    return body["result"]


RICH = (
    "<b>Bold</b> <i>italic</i> <u>under</u> <s>struck</s> <code>x = 1</code> "
    '<a href="https://example.org/source">the source</a> <a href="javascript:alert(1)">bad link</a> '
    '<tg-spoiler>secret</tg-spoiler>\n<blockquote>"A quote", said <b>someone</b>.</blockquote>\n'
    "<blockquote expandable>Line one\nLine two\nLine three\nLine four\nLine five</blockquote>\n"
    '<pre><code class="language-python">print("hi")</code></pre>\nThe end &lt;b&gt;'
)


async def test_entities_buttons_and_edits_are_rendered_like_telegram(page, server):
    srv, bot = server
    await page.goto(srv.url)
    keyboard = {
        "inline_keyboard": [
            [{"text": "Next page", "callback_data": "page:2"}],
            [{"text": "Read the article", "url": "https://example.org/article"}],
        ]
    }
    sent = await call(bot, "sendMessage", chat_id=PLAYGROUND_USER_ID, text=RICH, parse_mode="HTML")
    await call(bot, "sendMessage", chat_id=PLAYGROUND_USER_ID, text="Page 1 of 2", reply_markup=keyboard)

    rich = page.locator(f'[data-message-id="{sent["message_id"]}"] .text')
    await expect(rich.locator("strong").first).to_have_text("Bold")
    await expect(rich.locator("em")).to_have_text("italic")
    await expect(rich.locator("u")).to_have_text("under")
    await expect(rich.locator("s")).to_have_text("struck")
    await expect(rich.locator(":scope > code")).to_have_text("x = 1")
    link = rich.get_by_role("link", name="the source")
    await expect(link).to_have_attribute("href", "https://example.org/source")
    await expect(link).to_have_attribute("rel", "noopener noreferrer")
    await expect(rich.get_by_text("bad link")).not_to_have_attribute("href", "javascript:alert(1)")
    assert await rich.locator("a[href^='javascript']").count() == 0
    spoiler = rich.locator(".spoiler")
    await expect(spoiler).to_have_text("secret")
    await expect(spoiler).not_to_have_class("spoiler revealed")
    await spoiler.click()
    await expect(spoiler).to_have_class("spoiler revealed")
    quote = rich.locator("blockquote:not(.expandable)")
    await expect(quote).to_have_text('"A quote", said someone.')
    await expect(quote.locator("strong")).to_have_text("someone")
    expandable = rich.locator("blockquote.expandable")
    await expect(expandable).to_have_class("expandable collapsed")
    await expandable.get_by_role("button", name="Show more").click()
    await expect(expandable).to_have_class("expandable")
    await expect(rich.locator("pre code")).to_have_text('print("hi")')
    await expect(rich).to_contain_text("The end <b>")

    # a callback button reaches the bot; a URL button is a link; an edit replaces the bubble in place
    paged = page.locator(".msg.bot").last
    await paged.get_by_role("button", name="Next page").click()
    [update] = await call(bot, "getUpdates", timeout=10)
    query = update["callback_query"]
    assert query["data"] == "page:2" and query["from"]["id"] == PLAYGROUND_USER_ID
    await expect(paged.get_by_role("link", name="Read the article")).to_have_attribute(
        "href", "https://example.org/article"
    )
    message_id = query["message"]["message_id"]
    await call(bot, "answerCallbackQuery", callback_query_id=query["id"], text="Loading page 2")
    await expect(page.get_by_role("status").filter(has_text="Loading page 2")).to_be_visible()
    await call(bot, "editMessageText", chat_id=PLAYGROUND_USER_ID, message_id=message_id, text="Page 2 of 2")
    edited = page.locator(f'[data-message-id="{message_id}"]')
    await expect(edited.locator(".text")).to_have_text("Page 2 of 2")
    await expect(edited.locator(".meta")).to_contain_text("edited")
    await expect(edited.get_by_role("button")).to_have_count(0)  # an edit without a keyboard removes it
    await expect(page.locator(".msg")).to_have_count(2)
    assert await page.locator(".msg").last.get_attribute("data-message-id") == str(message_id)
    await page.screenshot(path=str(SCREENSHOTS / "entities.png"), full_page=True)


async def test_slash_offers_the_bots_commands_and_replies_quote_the_question(page, server):
    srv, bot = server
    commands = [
        {"command": "subscribe", "description": "Get the yearly digest"},
        {"command": "sources", "description": "The articles"},
        {"command": "start", "description": "Welcome"},
    ]
    await call(bot, "setMyCommands", commands=commands)
    await page.goto(srv.url)
    box = page.get_by_role("textbox", name="Message")
    await box.fill("/s")
    menu = page.get_by_role("menu", name="Bot commands")
    await expect(menu.get_by_role("menuitem")).to_have_count(3)
    await box.press_sequentially("u")
    await expect(menu.get_by_role("menuitem")).to_have_count(1)
    await menu.get_by_role("menuitem", name="/subscribe Get the yearly digest").click()
    await expect(menu).to_be_hidden()

    [update] = await call(bot, "getUpdates", timeout=10)
    assert update["message"]["text"] == "/subscribe"
    assert update["message"]["entities"] == [{"type": "bot_command", "offset": 0, "length": 10}]
    await expect(page.locator(".typing")).to_be_visible()  # until the bot answers
    await call(
        bot,
        "sendMessage",
        chat_id=PLAYGROUND_USER_ID,
        text="Subscribed. Try /sources",
        entities=[{"type": "bot_command", "offset": 16, "length": 8}],
        reply_parameters={"message_id": update["message"]["message_id"]},
    )
    reply = page.locator(".msg.bot").last
    await expect(reply.locator(".reply-header")).to_contain_text("You/subscribe")
    await expect(page.locator(".typing")).to_be_hidden()
    await reply.get_by_role("button", name="/sources").click()  # a command in a reply can be tapped
    [update] = await call(bot, "getUpdates", offset=update["update_id"] + 1, timeout=10)
    assert update["message"]["text"] == "/sources"
