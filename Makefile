# Two entry points (see README): `make demo` and `make test`. Everything they need is installed
# here, from PyPI and Maven Central, so a fresh clone works on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DEMO_EXECUTIONS ?= 20000

.PHONY: setup demo test lint bench clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

setup: $(BIN)/.installed
	scripts/install-browser

# generate and record a demo history, learn from it (exit 5 = the gate kept the current
# champion, fine for a demo), then ask for recommendations and a risk prediction
demo: setup
	$(BIN)/ign demo --executions $(DEMO_EXECUTIONS)
	$(BIN)/ign train || [ $$? -eq 5 ]
	$(BIN)/ign deploy recommendations -e production -r project,database
	$(BIN)/ign deploy predict -e production -s direct -r project,database -c '{"backup_enabled": false}'

test: setup
	scripts/run-tests

lint: setup
	$(BIN)/ruff check src tests benchmarks scripts
	$(BIN)/lint-imports
	$(BIN)/mypy

bench: setup
	$(BIN)/python benchmarks/ingest_benchmark.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache build dist src/*.egg-info
