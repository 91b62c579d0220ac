# Two commands for a fresh machine:  make run   and   make test
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test setup setup-test lint clean loadtest bench screenshots

run: setup
	$(BIN)/votesvc serve

test: setup-test lint
	$(BIN)/pytest --cov

# Refresh the README's screenshots in docs/screenshots/ (test runs write theirs to a temp dir).
screenshots: setup-test
	VOTESVC_SCREENSHOTS_DIR=$(CURDIR)/docs/screenshots $(BIN)/pytest -m browser -k screenshots

lint:
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy votesvc tests loadtest

setup: $(VENV)/.installed
	@bash deploy/system-packages.sh run

setup-test: $(VENV)/.installed
	@bash deploy/system-packages.sh test

# Ops rehearsal: a bounded locust campaign night on loopback, then a check that the
# ledgers hold exactly the 201s locust saw, no error, vote p99 <= LOADTEST_P99_MS (loadtest/README.md).
loadtest: setup $(VENV)/.installed-load
	loadtest/run.sh

# The vote-path benchmark; writes its section of BENCHMARKS.md (wrk, redis-benchmark: root once).
bench: $(VENV)/.installed
	@bash deploy/system-packages.sh bench
	$(BIN)/python -m loadtest.bench

$(VENV)/.installed-load: $(VENV)/.installed
	$(BIN)/pip install -q --disable-pip-version-check -e '.[dev,load]'
	touch $@

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -e '.[dev]'
	touch $@

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
