"""China–Russia New Year exchange facts bot.

Layers, lowest first; a package imports only from layers below it (held by the import-linter contract in
pyproject.toml, run by `make test`):

    config (bot/config.py)     typed settings, imported by all
    knowledge                  fact format, articles, loading and validation      (pure)
    matching                   question -> Answer                                  (pure)
    presentation               Answer/facts -> Telegram HTML, Telegram's limits    (pure)
    store                      the database                                        (I/O)
    delivery                   digest composition, schedule (pure); broadcast      (I/O)
    telegram                   the PTB application and handlers                    (I/O)
    cli, ask, __main__         the command line
    playground                 local Bot API server and web page (tests, `make run` without a token)
"""
