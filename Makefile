# Lifeline: two commands do all the set-up.  `make run`  and  `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# Offline install: `make wheelhouse WHEELS=dir` (online) fills dir with every wheel Lifeline needs;
# `make install WHEELS=dir` then installs from it alone, no package index.
WHEELS ?=
PIP_FROM := $(if $(WHEELS),--no-index --find-links $(abspath $(WHEELS)))
# The packaged protocol library's index, built once here so a first start has nothing to embed.
PREBUILT := protocols/prebuilt-index/built-from.json
LIBRARY  := $(shell find protocols/library -type f -name '*.md') protocols/documents.py

.PHONY: install run test lint fmt bench doctor clean wheelhouse

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(if $(WHEELS),,$(BIN)/pip install --quiet --upgrade pip)
	$(BIN)/pip install --quiet $(PIP_FROM) -e '.[dev]'
	touch $(STAMP)

# Incremental: after a library edit only the changed documents are embedded again.
$(PREBUILT): $(STAMP) $(LIBRARY)
	$(BIN)/python -m protocols.prebuilt

install: $(STAMP) $(PREBUILT)

## Every wheel for an install without internet (run while online): make wheelhouse WHEELS=dir
wheelhouse: $(STAMP)
	$(BIN)/pip wheel --quiet --wheel-dir $(abspath $(or $(WHEELS),wheelhouse)) \
		'.[dev]' 'setuptools>=69' pip

## Run the gateway on embedded defaults: SQLite + simulated modem + local drill homeserver under var/.
run: install
	$(BIN)/lifeline --config config/drill.toml run

## The whole test suite (real Synapse, real libGammu dummy modem, real SQLite/chromadb, Ollama stand-in).
test: install
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

doctor: install
	$(BIN)/lifeline --config config/drill.toml doctor

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache protocols/prebuilt-index
