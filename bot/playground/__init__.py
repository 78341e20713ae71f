"""The playground: `make run` without a token, and the local Bot API server the tests use.

Owns: `botapi_server` (a Bot API server on 127.0.0.1 that validates every request against the bundled spec),
`botapi_validate` (that validation, pure), `runner` (server + the real bot as a subprocess + the web chat page
in `static/`), and `data/` (the spec subset and its licence).
May import: `bot.config` only; it runs the bot as a separate process, as Telegram would see it. Nothing in
the product imports the playground.
"""
