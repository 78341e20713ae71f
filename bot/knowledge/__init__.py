"""The knowledge layer: the fact format, the source articles, loading and validating the YAML base.

Owns: `model` (the pydantic fact/entity/file format, source of knowledge/schema.json), `corpus` (article files
and verbatim matching), `facts` (loading with line numbers, every validation rule, `Knowledge`, and the
`validate`/`facts`/`schema` commands), `collector` (one garbage-collector pause over a big load).
May import: `bot.config` only. Never imports matching, presentation, store, delivery, telegram or playground.
"""
