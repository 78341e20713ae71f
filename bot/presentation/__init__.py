"""The presentation layer: pure rendering of answers, facts and views to Telegram HTML and plain text.

Owns: `render` (answers, facts, timelines, sources, quotes as HTML; the plain text derived from it) and
`telegram_text` (Telegram's limits as pure text functions: splitting HTML under 4,096 characters, pages,
callback_data encoding). Pure: no network, no database, no clock.
May import: `bot.knowledge`, `bot.matching` (the `Answer` it renders), `bot.config`.
"""
