"""Hygiene of the chapters: stored stripped, Colab-ready, listed in the toc, and complete.

Every chapter notebook must
- store no outputs, execution counts or widget state (fix: ``make strip``);
- have as first code cell the generated install cell (``make strip``): a no-op where eoslib
  imports, else it installs a pinned release on top of the installed torch;
- be listed in _toc.yml (and every toc entry must exist);
- contain a claim check (a code cell with ``assert``), exercises with solutions, and a {cite};
- start with the math-macro cell generated from _config.yml (fix: ``make strip``), then a
  labelled title, ``(label)=`` then ``# Title``;
- set torch's thread count from the book settings if it imports torch.
"""

from __future__ import annotations

import re
import subprocess
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
def test_first_code_cell_is_the_generated_install_cell(path):
    tool = _strip_tool()
    cell = code_cells(read(path))[0]
    assert cell.get("id") == tool.INSTALL_CELL_ID and cell.source == tool.install_source(), \
        f"{path.name}: the first code cell must be the generated install cell: run `make strip`"
    assert "remove-cell" in cell.metadata.get("tags", []), f"{path.name}: the install cell must be tagged remove-cell"


def _run_install_cell(monkeypatch, eoslib_found: bool, pip_returncode: int = 0):
    """Execute the generated install cell with eoslib present or missing and pip replaced by a recorder."""
    import importlib.util

    calls = []

    def fake_run(cmd, **kwargs):
        calls.append(cmd)
        return subprocess.CompletedProcess(cmd, pip_returncode, "", "ERROR: No matching distribution found\n")

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: real_find_spec(name, *a) if eoslib_found or name != "eoslib" else None)
    monkeypatch.setattr(subprocess, "run", fake_run)
    monkeypatch.setattr(subprocess, "check_call", fake_run)
    exec(compile(_strip_tool().install_source(), "install-cell", "exec"), {"__name__": "__install_check__"})
    return calls


def test_install_cell_does_nothing_where_eoslib_imports(monkeypatch):
    assert _run_install_cell(monkeypatch, eoslib_found=True) == []


def test_install_cell_installs_a_pinned_release_and_keeps_torch(monkeypatch, capsys):
    import importlib.metadata

    (cmd,) = _run_install_cell(monkeypatch, eoslib_found=False)
    requirement = next(arg for arg in cmd if " @ " in arg)
    name, url = requirement.split(" @ ")
    tool = _strip_tool()
    assert name == "eos-book[widgets]" and url == f"{tool.repository_url()}/archive/{tool.release_ref()}.zip"
    assert re.fullmatch(r"v\d+\.\d+\.\d+", tool.release_ref()), "pin a release tag, not a branch"
    assert f"torch=={importlib.metadata.version('torch')}" in cmd, "the installed torch must be pinned"
    assert "eoslib installed." in capsys.readouterr().out


def test_install_cell_fails_with_one_clear_line(monkeypatch):
    with pytest.raises(SystemExit) as failure:
        _run_install_cell(monkeypatch, eoslib_found=False, pip_returncode=1)
    message = str(failure.value)
    assert "\n" not in message and "could not be installed" in message and "pip install" in message
    assert "No matching distribution found" in message


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_listed_in_toc(path):
    assert f"chapters/{path.stem}" in toc_files(), f"add `- file: chapters/{path.stem}` to _toc.yml"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_chapter_structure(path):
    nb = read(path)
    first = nb.cells[1]
    assert first.cell_type == "markdown" and re.match(r"\(\S+\)=\s*\n# \S", first.source), \
        f"{path.name}: must start with a labelled title, `(label)=` then `# Title`"
    assert any(re.search(r"^\s*(assert\b|check\()", c.source, re.M) for c in code_cells(nb)), \
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


def test_every_exercise_is_rated_for_instructors():
    """chapters/instructors/exercises.md gives time and difficulty of every exercise in the toc."""
    table = (ROOT / "chapters" / "instructors" / "exercises.md").read_text()
    rated = set(re.findall(r"^\| \{ref\}`([^`]+)`", table, re.M))
    labels = {m for p in NOTEBOOKS if f"chapters/{p.stem}" in toc_files()
              for m in re.findall(r"\{exercise\}[^\n]*\n:label: (\S+)", markdown(read(p)))}
    assert labels <= rated, f"add rows to chapters/instructors/exercises.md for {sorted(labels - rated)}"
