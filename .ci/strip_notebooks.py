"""Strip outputs, execution counts and saved widget state from notebooks, in place,
and keep each notebook's math-macro cell in sync with _config.yml.

Usage: python .ci/strip_notebooks.py chapters/*.ipynb   (or: make strip)
tests/test_notebooks.py fails on any notebook that is not stripped or not in sync.

The book's macros (\\lmax, \\Hess, ...) are defined once, in _config.yml, where the
HTML book reads them. Jupyter and Colab never read _config.yml, so each notebook
starts with a markdown cell of ``\\newcommand``s generated from it, tagged
``remove-cell`` so that the book does not show it.
"""

import sys
from pathlib import Path

import nbformat
import yaml

CONFIG = Path(__file__).resolve().parents[1] / "_config.yml"
MACRO_CELL_ID = "eos-macros"


def macro_source(config: Path = CONFIG) -> str:
    """The markdown of the macro cell, generated from the mathjax3 macros of ``_config.yml``."""
    macros = yaml.safe_load(config.read_text())["sphinx"]["config"]["mathjax3_config"]["tex"]["macros"]
    lines = []
    for name, body in macros.items():
        if isinstance(body, list):
            lines.append(f"\\newcommand{{\\{name}}}[{body[1]}]{{{body[0]}}}")
        else:
            lines.append(f"\\newcommand{{\\{name}}}{{{body}}}")
    return ("<!-- Math macros for Jupyter and Colab, generated from _config.yml by `make strip`; "
            "hidden in the book. -->\n$$\n" + "\n".join(lines) + "\n$$")


def sync_macros(nb) -> None:
    """Insert or update the macro cell as the notebook's first cell."""
    cell = nbformat.v4.new_markdown_cell(macro_source(), metadata={"tags": ["remove-cell"]})
    cell.id = MACRO_CELL_ID
    if nb.cells and nb.cells[0].get("id") == MACRO_CELL_ID:
        nb.cells[0] = cell
    else:
        nb.cells.insert(0, cell)


def strip(path: str) -> bool:
    """Strip one notebook; return True if it changed."""
    nb = nbformat.read(path, as_version=4)
    before = nbformat.writes(nb)
    sync_macros(nb)
    nb.metadata.pop("widgets", None)
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
        cell.metadata.pop("collapsed", None)
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    after = nbformat.writes(nb)
    if after != before:
        with open(path, "w", encoding="utf-8") as f:
            f.write(after)
    return after != before


if __name__ == "__main__":
    for path in sys.argv[1:]:
        print(("stripped   " if strip(path) else "unchanged  ") + path)
