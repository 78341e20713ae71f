# Two entry points: `make run` (the bot; the local playground when no token is set) and `make test`.
# Both create .venv on first use and reuse it. `make run` installs only what running needs: the pinned runtime
# dependencies from requirements.lock, then the project (editable). `make test` adds the `dev` extra (pytest, ruff,
# mypy, import-linter, playwright). Each stamp is redone when pyproject.toml or requirements.lock changes.
VENV      := .venv
PY        := $(VENV)/bin/python
RUN_STAMP := $(VENV)/.installed-run
DEV_STAMP := $(VENV)/.installed-dev

.PHONY: run test validate bench lock clean

$(RUN_STAMP): pyproject.toml requirements.lock
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet --require-hashes -r requirements.lock
	$(PY) -m pip install --quiet -e .
	touch $@

$(DEV_STAMP): $(RUN_STAMP)
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

# With a token: the real bot against Telegram. Without one: the local playground (own Bot API server,
# the real bot pointed at it, and a web chat page).
run: $(RUN_STAMP)
	@if [ -n "$$TELEGRAM_BOT_TOKEN" ]; then exec $(PY) -m bot run; else exec $(PY) -m bot playground; fi

# Lint, format, types, import layers (the contracts in pyproject.toml), then the tests.
test: $(DEV_STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy
	$(VENV)/bin/lint-imports
	$(PY) -m pytest

validate: $(RUN_STAMP)
	$(PY) -m bot validate

bench: $(RUN_STAMP)
	$(PY) -m benchmarks.matching
	$(PY) -m benchmarks.broadcast

# Regenerates requirements.lock (runtime dependencies only, pinned, with hashes) from pyproject.toml, using pip-tools
# in a throwaway venv. It resolves against PyPI alone with Python 3.11, as the Dockerfile installs it, so local pip
# settings (mirrors, find-links, constraints) do not leak into the file. Existing pins are kept where still allowed;
# `make lock PIP_COMPILE_ARGS=--upgrade` moves every pin to the newest allowed release.
LOCK_PYTHON ?= python3.11
PIP_TOOLS   := pip-tools==7.6.2
lock:
	set -e; tools=$$(mktemp -d); trap 'rm -rf "$$tools"' EXIT; \
	$(LOCK_PYTHON) -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11) and "make lock: LOCK_PYTHON must be Python 3.11, the Dockerfile base")'; \
	$(LOCK_PYTHON) -m venv "$$tools"; \
	"$$tools/bin/pip" install --quiet '$(PIP_TOOLS)'; \
	env -u PIP_FIND_LINKS -u PIP_CONSTRAINT -u PIP_INDEX_URL -u PIP_EXTRA_INDEX_URL PIP_CONFIG_FILE=/dev/null \
	  CUSTOM_COMPILE_COMMAND='make lock' "$$tools/bin/pip-compile" --quiet --generate-hashes --strip-extras \
	  --allow-unsafe --no-emit-index-url --no-emit-find-links $(PIP_COMPILE_ARGS) \
	  --output-file requirements.lock pyproject.toml

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache .import_linter_cache
