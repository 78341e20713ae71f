# Two entry points: `make run` (the bot; the local playground when no token is set) and `make test`.
# Both create .venv on first use and reuse it; it is rebuilt when pyproject.toml changes.
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: run test lint validate bench clean

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# With a token: the real bot against Telegram. Without one: the local playground (own Bot API server,
# the real bot pointed at it, and a web chat page).
run: $(STAMP)
	@if [ -n "$$TELEGRAM_BOT_TOKEN" ]; then exec $(PY) -m bot run; else exec $(PY) -m bot playground; fi

test: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m pytest

validate: $(STAMP)
	$(PY) -m bot validate

bench: $(STAMP)
	$(PY) -m benchmarks.matching
	$(PY) -m benchmarks.broadcast

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
