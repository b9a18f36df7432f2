"""Book-wide pytest hooks: a per-notebook duration table and a summary of book checks.

nbval runs one test item per notebook cell; the table below adds up the setup, call
and teardown time of a notebook's items (the kernel starts in the first item's setup),
so each chapter's execution time is visible in every CI log next to its budget.
Tests report extra lines with ``record_property("summary", "...")``.

Tests that import torchvision (the optional ``cifar`` extra) skip where it is not installed,
e.g. in a Colab-like environment with only ``pip install eos-book``.
"""

from __future__ import annotations

import importlib.util
import inspect
from collections import defaultdict

import pytest

NOTEBOOK_BUDGET_S = 120.0  # each chapter executes in at most this many seconds


OPTIONAL_MODULES = ("torchvision",)  # extras: tests that import them skip without them


def pytest_collection_modifyitems(config, items):
    missing = [m for m in OPTIONAL_MODULES if importlib.util.find_spec(m) is None]
    for item in items:
        function = getattr(item, "function", None)
        if not missing or function is None:
            continue
        try:
            source = inspect.getsource(function)
        except (OSError, TypeError):
            continue
        for module in missing:
            if f"import {module}" in source or f"importorskip(\"{module}\")" in source:
                item.add_marker(pytest.mark.skip(reason=f"needs {module} (pip install 'eos-book[cifar]')"))


@pytest.fixture(scope="session")
def browser():
    """One headless Chromium for the session (tests/test_browser.py, tests/test_make_notebooks.py)."""
    playwright = pytest.importorskip("playwright.sync_api")
    from test_browser import CHROMIUM_FLAGS, chromium_path

    with playwright.sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_FLAGS)
        yield b
        b.close()


def _reports(terminalreporter):
    for reports in terminalreporter.stats.values():
        for report in reports:
            if hasattr(report, "nodeid") and getattr(report, "when", None) in ("setup", "call", "teardown"):
                yield report


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    durations: dict[str, float] = defaultdict(float)
    summaries: list[str] = []
    for report in _reports(terminalreporter):
        path = report.nodeid.split("::")[0]
        if path.endswith(".ipynb"):
            durations[path] += report.duration
        if report.when == "call":
            summaries += [value for key, value in report.user_properties if key == "summary"]
    if durations:
        terminalreporter.section(f"notebook durations (budget {NOTEBOOK_BUDGET_S:.0f} s each)")
        for path, seconds in sorted(durations.items()):
            flag = "  OVER BUDGET" if seconds > NOTEBOOK_BUDGET_S else ""
            terminalreporter.write_line(f"{seconds:8.1f} s  {path}{flag}")
        terminalreporter.write_line(f"{sum(durations.values()):8.1f} s  total")
    if summaries:
        terminalreporter.section("book checks")
        for line in summaries:
            terminalreporter.write_line(line)
