"""The storage layer: the database (SQLAlchemy async; SQLite by default).

Owns: `database` (subscribers, the delivery log, question counts, unanswered questions, the broadcast lock)
and `unanswered` (grouping recorded questions by similarity for the `unanswered` command).
May import: `bot.config`. Never imports knowledge, matching, presentation, delivery, telegram or playground.
"""
