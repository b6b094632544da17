# Lifeline: two commands do all the set-up.  `make run`  and  `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install run test lint fmt bench doctor clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

## Run the gateway on embedded defaults: SQLite + simulated modem + local drill homeserver under var/.
run: $(STAMP)
	$(BIN)/lifeline --config config/drill.toml run

## The whole test suite (real Synapse, real libGammu dummy modem, real SQLite/chromadb, Ollama stand-in).
test: $(STAMP)
	$(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

fmt: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: $(STAMP)
	$(BIN)/python bench/run_all.py

doctor: $(STAMP)
	$(BIN)/lifeline --config config/drill.toml doctor

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
