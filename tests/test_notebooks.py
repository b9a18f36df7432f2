"""Hygiene of the chapters: stored stripped, Colab-ready, listed in the toc, and complete.

Every chapter notebook must
- store no outputs, execution counts or widget state (fix: ``make strip``);
- start with a code cell that installs eoslib only inside Colab and is a no-op elsewhere;
- be listed in _toc.yml (and every toc entry must exist);
- contain a claim check (a code cell with ``assert``), exercises with solutions, and a {cite};
- start with the math-macro cell generated from _config.yml (fix: ``make strip``), then a
  labelled title, ``(label)=`` then ``# Title``;
- set torch's thread count from the book settings if it imports torch.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "chapters").glob("*.ipynb"))
IDS = [p.name for p in NOTEBOOKS]


def _strip_tool():
    """The strip script (.ci/strip_notebooks.py), which also generates the macro cell."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("strip_notebooks", ROOT / ".ci" / "strip_notebooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def read(path: Path):
    return nbformat.read(path, as_version=4)


def code_cells(nb):
    return [c for c in nb.cells if c.cell_type == "code"]


def markdown(nb) -> str:
    return "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")


def toc_files() -> list[str]:
    def walk(node):
        if isinstance(node, dict):
            for key, value in node.items():
                if key in ("file", "root"):
                    yield value
                else:
                    yield from walk(value)
        elif isinstance(node, list):
            for item in node:
                yield from walk(item)

    return list(walk(yaml.safe_load((ROOT / "_toc.yml").read_text())))


def test_there_are_chapters():
    assert NOTEBOOKS, "no notebooks in chapters/"


def test_toc_entries_exist():
    for entry in toc_files():
        candidates = [ROOT / entry] + [ROOT / f"{entry}{ext}" for ext in (".md", ".ipynb")]
        assert any(c.is_file() for c in candidates), f"_toc.yml lists {entry!r}, which does not exist"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_stripped(path):
    nb = read(path)
    assert "widgets" not in nb.metadata, f"{path.name} stores widget state: run `make strip`"
    for i, cell in enumerate(code_cells(nb)):
        assert not cell.outputs, f"{path.name}: code cell {i} stores outputs: run `make strip`"
        assert cell.execution_count is None, f"{path.name}: code cell {i} has an execution count: run `make strip`"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_first_code_cell_installs_only_in_colab(path, monkeypatch):
    source = code_cells(read(path))[0].source
    assert '"google.colab" in sys.modules' in source and "pip" in source, \
        f"{path.name}: the first code cell must install eoslib only when 'google.colab' is in sys.modules"
    tree = ast.parse(source)
    for node in tree.body:          # nothing runs at top level except imports and the Colab guard
        assert isinstance(node, (ast.Import, ast.ImportFrom, ast.If)), \
            f"{path.name}: first cell runs {ast.dump(node)[:60]} outside the Colab guard"

    def no_subprocess(*args, **kwargs):
        raise AssertionError(f"{path.name}: the first cell started a process outside Colab: {args}")

    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    monkeypatch.setattr(subprocess, "run", no_subprocess)
    monkeypatch.setattr(subprocess, "check_call", no_subprocess)
    exec(compile(source, path.name, "exec"), {"__name__": "__colab_check__"})


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_listed_in_toc(path):
    assert f"chapters/{path.stem}" in toc_files(), f"add `- file: chapters/{path.stem}` to _toc.yml"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_chapter_structure(path):
    nb = read(path)
    first = nb.cells[1]
    assert first.cell_type == "markdown" and re.match(r"\(\S+\)=\s*\n# \S", first.source), \
        f"{path.name}: must start with a labelled title, `(label)=` then `# Title`"
    assert any(re.search(r"^\s*assert\b", c.source, re.M) for c in code_cells(nb)), \
        f"{path.name}: no claim check (a code cell with an assert)"
    text = markdown(nb)
    assert "{exercise}" in text, f"{path.name}: no exercises ({{exercise}} directive)"
    assert "{solution" in text, f"{path.name}: exercises have no solutions"
    assert "{cite" in text, f"{path.name}: no {{cite}} reference"
    code = "\n".join(c.source for c in code_cells(nb))
    if re.search(r"^\s*import torch|^\s*from torch", code, re.M):
        assert "set_num_threads(S.threads)" in code, \
            f"{path.name}: imports torch but does not call torch.set_num_threads(S.threads)"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_math_macros_match_the_book_config(path):
    """Jupyter and Colab don't read _config.yml: the first cell defines its macros, hidden in the book."""
    tool = _strip_tool()
    cell = read(path).cells[0]
    assert cell.get("id") == tool.MACRO_CELL_ID and cell.cell_type == "markdown", \
        f"{path.name}: the first cell must be the macro cell: run `make strip`"
    assert cell.source == tool.macro_source(), f"{path.name}: macro cell differs from _config.yml: run `make strip`"
    assert "remove-cell" in cell.metadata.get("tags", []), f"{path.name}: the macro cell must be tagged remove-cell"
    assert "\\newcommand{\\lmax}{\\lambda_{\\max}}" in cell.source


def test_cited_keys_exist():
    keys = set(re.findall(r"^@\w+\{([^,]+),", (ROOT / "references.bib").read_text(), re.M))
    sources = [markdown(read(p)) for p in NOTEBOOKS] + [p.read_text() for p in (ROOT / "chapters").glob("*.md")]
    cited = {k.strip() for s in sources for group in re.findall(r"\{cite(?::\w+)?\}`([^`]+)`", s)
             for k in group.split(",")}
    assert cited <= keys, f"cited but not in references.bib: {sorted(cited - keys)}"
