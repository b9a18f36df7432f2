# The book in two commands (see README.md):
#   make book   set up .venv if needed, execute every chapter, render _build/html
#   make test   same set-up, then unit tests + nbval on every chapter + a strict book build
# CI (.ci/run, .github/workflows/book.yml) runs `make test` and nothing else.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

# PYTHON: interpreter that creates .venv (3.11 tested); JOBS: pytest-xdist workers;
# CELL_TIMEOUT: seconds per notebook cell (as in _config.yml); WIDGET_RUNS: headless
# executions of each widget explorer (tests/test_widgets_headless.py).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.eoslib-installed
JOBS ?= 2
CELL_TIMEOUT ?= 300
WIDGET_RUNS ?= 30
BUILD_FLAGS ?= -W -n --keep-going

# Chapters call torch.set_num_threads(S.threads) (default 1); passive OpenMP waiting
# stops idle threads from spinning on small shared machines.
export OMP_WAIT_POLICY ?= PASSIVE
export PYDEVD_DISABLE_FILE_VALIDATION := 1
export EOSLIB_WIDGET_RUNS := $(WIDGET_RUNS)

# Never stale: experiment results are cached (eoslib.cache) in a folder that `make book`
# and `make test` empty first, so a change to eoslib can never surface as an old cached
# result; within one run, nbval fills it and the book build reuses it. Downloads (opt-in
# datasets) stay in the user's cache.
BOOK_CACHE := $(CURDIR)/.cache/eoslib-build
export EOSLIB_CACHE := $(BOOK_CACHE)
export EOSLIB_DATA ?= $(HOME)/.cache/eoslib/data

.PHONY: help book test venv fresh-cache unit strict-build strip clean

help:
	@echo "make book   - set up .venv, execute all chapters, build _build/html"
	@echo "make test   - set up .venv, unit tests + nbval on chapters + strict book build"
	@echo "make strip  - strip outputs and execution counts from chapters/*.ipynb"
	@echo "make clean  - remove _build"

# Set-up: create .venv if missing, install the pinned toolchain and eoslib (editable).
# The stamp makes repeat runs instant until requirements.txt or pyproject.toml change.
$(STAMP): requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -r requirements.txt -e .
	touch $@

venv: $(STAMP)

# Always from an empty _build/: an incremental build would keep outputs of pages
# whose source did not change, even when eoslib did.
book: $(STAMP) fresh-cache
	rm -rf _build
	$(VENV)/bin/jupyter-book build .
	@echo "Book: $(CURDIR)/_build/html/index.html"

test: $(STAMP) fresh-cache unit strict-build

fresh-cache:
	rm -rf $(BOOK_CACHE)

# Unit tests (tests/), doctests (eoslib/) and nbval on every notebook in chapters/, in one
# pytest run; tests/conftest.py prints each notebook's duration against its budget.
unit: $(STAMP)
	$(PY) -m pytest tests eoslib chapters -p no:cacheprovider \
	  --doctest-modules --nbval-lax --nbval-current-env --nbval-cell-timeout=$(CELL_TIMEOUT) \
	  -n $(JOBS) --dist loadfile --durations=0 --durations-min=1.0

strict-build: $(STAMP)
	rm -rf _build
	$(VENV)/bin/jupyter-book build . $(BUILD_FLAGS)
	@echo "Strict build passed (zero warnings): $(CURDIR)/_build/html/index.html"

strip: $(STAMP)
	$(PY) .ci/strip_notebooks.py chapters/*.ipynb

clean:
	rm -rf _build $(BOOK_CACHE)
