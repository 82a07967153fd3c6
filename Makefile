# Two commands set up everything on a fresh machine:
#   make serve   install, then run the service on its embedded defaults
#   make test    install with the dev tools, then run the whole test suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: serve test install install-dev lint bench

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

install: $(BIN)/python
	$(BIN)/pip install -q -e .

install-dev: $(BIN)/python
	$(BIN)/pip install -q -e '.[dev]'

serve: install
	$(BIN)/intake-hub migrate
	$(BIN)/intake-hub serve

test: install-dev
	./scripts/test-deps
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy src
	$(BIN)/lint-imports
	$(BIN)/pytest

bench: install-dev
	$(BIN)/python bench/web_load.py
