"""Render a notebook to one HTML page the way a notebook front end shows it (no Jupyter needed).

Markdown cells go through CommonMark + GFM tables (markdown-it-py) with ``$…$`` and ``$$…$$``
kept out of the Markdown parser, as Jupyter does, and are typeset by MathJax 3 in the browser;
raw HTML (``<details>``) passes through. Code cells are shown as input boxes. The notebook's
own first cell must define the book's macros (``\\newcommand``): nothing else does here, as in
Colab. Used by tests/test_make_notebooks.py (the generated notebooks in headless Chromium) and
to look at a notebook::

    python tools/render_notebook.py _build/html/notebooks/chapters/04_edge_of_stability.ipynb out.html

The page loads MathJax from ``MATHJAX_URL`` (the CDN; the tests route it to a local copy).
"""

from __future__ import annotations

import argparse
import html
import sys
from pathlib import Path

import nbformat
from markdown_it import MarkdownIt
from mdit_py_plugins.dollarmath import dollarmath_plugin

MATHJAX_URL = "https://cdn.jsdelivr.net/npm/mathjax@3/es5/tex-mml-chtml.js"

STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; max-width: 980px;
       margin: 0 auto; padding: 12px; line-height: 1.5; color: #1f1f1f; }
.cell { margin: 10px 0; } .md { padding: 2px 10px; overflow-x: auto; }
.code { display: flex; gap: 8px; } .prompt { color: #307fc1; font-family: monospace; min-width: 4.5em; }
.code pre { flex: 1; background: #f5f5f5; border: 1px solid #e0e0e0; padding: 8px; margin: 0;
            overflow-x: auto; font-size: 13px; }
blockquote { border-left: 4px solid #d0d7de; margin: 0.5em 0; padding: 0 1em; color: #333; }
details { border: 1px solid #d0d7de; border-radius: 4px; padding: 4px 10px; }
table { border-collapse: collapse; } td, th { border: 1px solid #ccc; padding: 2px 8px; }
"""


def _math(content: str, info: dict) -> str:
    text = html.escape(content)
    return f"\\[{text}\\]" if info.get("display_mode") else f"\\({text}\\)"


def markdown_renderer() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": True}).enable("table")
    dollarmath_plugin(md, allow_labels=False, allow_digits=False, renderer=_math)
    return md


def render(notebook: str | Path, mathjax_url: str = MATHJAX_URL) -> str:
    nb = nbformat.read(notebook, as_version=4)
    md = markdown_renderer()
    cells = []
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            cells.append(f'<div class="cell md">{md.render(cell.source)}</div>')
        elif cell.cell_type == "code":
            hidden = cell.metadata.get("jupyter", {}).get("source_hidden")
            body = "<pre>…</pre>" if hidden else f"<pre>{html.escape(cell.source)}</pre>"
            cells.append(f'<div class="cell code"><div class="prompt">[ ]:</div>{body}</div>')
    title = html.escape(Path(notebook).stem)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title><style>{STYLE}</style>
<script>MathJax = {{tex: {{inlineMath: [['\\\\(', '\\\\)']], displayMath: [['\\\\[', '\\\\]']],
  processEscapes: true, tags: 'none'}}, options: {{ignoreHtmlClass: 'tex2jax_ignore'}}}};</script>
<script defer src="{mathjax_url}"></script></head>
<body>{''.join(cells)}</body></html>
"""


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebook")
    parser.add_argument("out", help="HTML file to write")
    args = parser.parse_args(argv)
    Path(args.out).write_text(render(args.notebook), encoding="utf-8")
    print(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
