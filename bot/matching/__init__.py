"""The matching layer: pure question -> `Answer`, over an index built once per knowledge snapshot.

Owns: `textnorm` (tokens, transliteration, years), `reading` (fact texts -> index units), `matcher` (the
index and `answer`), `loading` (knowledge and index loaded together).
May import: `bot.knowledge`, `bot.config`. Never imports presentation, store, delivery, telegram or playground.
"""
