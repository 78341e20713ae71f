"""The Telegram layer: the python-telegram-bot application and everything that talks to users.

Owns: `app` (builds the `Application`, shared services in `bot_data`, the `run` and `send-digest` commands),
`handlers` (questions, commands, buttons, inline mode, errors), `subscriptions` (/subscribe, /digest,
/senddigest, /stats and the yearly job), `reload` (live knowledge edits), `updatelog` (one line per update),
`http` (the aiohttp request backend).
May import every layer below it: knowledge, matching, presentation, store, delivery, config. Never playground.
"""
