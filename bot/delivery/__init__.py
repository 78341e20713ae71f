"""The delivery layer: the yearly New Year exchange digest, when it is due, and its broadcast.

Owns: `digest` (pure composition of a year's digest from facts; `digest` command), `schedule` (pure
scheduling arithmetic: next run, missed-run grace) and `broadcast` (resumable, idempotent, rate-limited
sending through a PTB `Bot` given to it, with its state in the store).
May import: `bot.knowledge`, `bot.presentation`, `bot.store`, `bot.config`. Never imports `bot.telegram`
or `bot.playground`: the Telegram layer wires delivery into the running bot, not the other way round.
"""
