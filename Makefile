# The book in two commands (see README.md):
#   make book   set up .venv if needed, execute every chapter, render _build/html, then the
#               Jupyter/Colab notebooks and the slides published with it
#   make test   same set-up, then unit tests + nbval on every chapter + a strict book build,
#               the notebooks and slides, and the browser suite on the built HTML
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

# Browser suite (tests/test_browser.py): Debian's chromium, Playwright for Python (in
# requirements.txt) and a local MathJax 3 (npm), so that no test needs the internet.
BROWSER_DIR := .cache/browser
BROWSER_STAMP := $(BROWSER_DIR)/.installed
MATHJAX_VERSION := 3.2.2
# GPU check (tools/gpu_check.py): runs with the system Python on a machine without Jupyter.
GPU_CHECK_ARGS ?=

.PHONY: help book test venv fresh-cache unit strict-build strip clean notebooks slides browser browser-setup gpu-check

help:
	@echo "make book   - set up .venv, execute all chapters, build _build/html"
	@echo "make test   - set up .venv, unit tests + nbval on chapters + strict book build"
	@echo "make notebooks - Jupyter/Colab notebooks (and student versions) in _build/html/notebooks"
	@echo "make slides - slides per part from the last build's figures, in _build/html/slides"
	@echo "make browser - the browser suite on the built book (after make book)"
	@echo "make gpu-check - unit tests and every chapter on CUDA at paper scale (GPU_CHECK_ARGS=...)"
	@echo "make strip  - strip outputs and execution counts from chapters/*.ipynb"
	@echo "make clean  - remove _build"

# Set-up: create .venv if missing, install the pinned toolchain and eoslib (editable).
# The stamp makes repeat runs instant until requirements.txt or pyproject.toml change.
# (The distribution was once named `eoslib`: uninstall that editable install first.)
$(STAMP): requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip uninstall -y -q eoslib 2>/dev/null || true
	$(PY) -m pip install -r requirements.txt -e .
	touch $@

venv: $(STAMP)

# Always from an empty _build/: an incremental build would keep outputs of pages
# whose source did not change, even when eoslib did.
book: $(STAMP) fresh-cache
	rm -rf _build
	$(VENV)/bin/jupyter-book build .
	$(MAKE) --no-print-directory notebooks slides
	@echo "Book: $(CURDIR)/_build/html/index.html"

test: $(STAMP) fresh-cache unit strict-build notebooks slides browser

fresh-cache:
	rm -rf $(BOOK_CACHE)

# Unit tests (tests/), doctests (eoslib/) and nbval on every notebook in chapters/, in one
# pytest run; tests/conftest.py prints each notebook's duration against its budget.
unit: $(STAMP)
	$(PY) -m pytest tests eoslib chapters -p no:cacheprovider \
	  --doctest-modules --nbval-lax --nbval-current-env --nbval-cell-timeout=$(CELL_TIMEOUT) \
	  -n $(JOBS) --dist loadfile --durations=0 --durations-min=1.0 -m "not browser"

strict-build: $(STAMP)
	rm -rf _build
	$(VENV)/bin/jupyter-book build . $(BUILD_FLAGS)
	@echo "Strict build passed (zero warnings): $(CURDIR)/_build/html/index.html"

# Plain notebooks for Jupyter and Colab (and student versions without solutions), generated
# from the MyST chapters; NOTEBOOK_REF pins the install cell to a tag or commit (CI: the commit).
NOTEBOOK_REF ?=
notebooks: $(STAMP)
	$(PY) tools/make_notebooks.py $(if $(NOTEBOOK_REF),--ref $(NOTEBOOK_REF))

slides: $(STAMP)
	$(PY) tools/make_slides.py

# Debian's chromium (root: apt-get; elsewhere sudo), or Playwright's own Chromium on Ubuntu
# (where `chromium` is a snap); MathJax from npm for offline pages.
browser-setup: $(BROWSER_STAMP)
$(BROWSER_STAMP): $(STAMP)
	@if ! command -v chromium >/dev/null; then \
	  if grep -qi ubuntu /etc/os-release 2>/dev/null; then $(PY) -m playwright install --with-deps chromium; \
	  else $$( [ "$$(id -u)" = 0 ] || echo sudo ) apt-get update -qq && \
	       DEBIAN_FRONTEND=noninteractive $$( [ "$$(id -u)" = 0 ] || echo sudo ) apt-get install -y -qq chromium; \
	  fi; fi
	mkdir -p $(BROWSER_DIR)
	npm install --prefix $(BROWSER_DIR) --no-save --no-audit --no-fund mathjax@$(MATHJAX_VERSION)
	touch $@

# The browser suite on the built HTML, then the generated notebooks checked against it.
browser: $(STAMP) browser-setup
	EOS_BROWSER_REQUIRED=1 $(PY) -m pytest tests/test_browser.py tests/test_make_notebooks.py \
	  -p no:cacheprovider -m browser -q

gpu-check:
	$(PYTHON) tools/gpu_check.py $(GPU_CHECK_ARGS)

strip: $(STAMP)
	$(PY) .ci/strip_notebooks.py chapters/*.ipynb

clean:
	rm -rf _build $(BOOK_CACHE) $(BROWSER_DIR)
