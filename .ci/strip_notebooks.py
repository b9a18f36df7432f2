"""Strip outputs, execution counts and saved widget state from notebooks, in place.

Usage: python .ci/strip_notebooks.py chapters/*.ipynb   (or: make strip)
tests/test_notebooks.py fails on any notebook that is not stripped.
"""

import sys

import nbformat


def strip(path: str) -> bool:
    """Strip one notebook; return True if it changed."""
    nb = nbformat.read(path, as_version=4)
    before = nbformat.writes(nb)
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
