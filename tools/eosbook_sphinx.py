"""The book's own Sphinx extension (loaded by _config.yml: ``sphinx.local_extensions``).

1. Citations: sphinxcontrib-bibtex's author-year style with round brackets,
   ``(Cohen et al., 2021)`` and ``Cohen et al. (2021)``, registered as ``author_year_round``,
   and a bibliography style ``authoryear`` whose entry labels read the same
   ("Cohen et al., 2021"; tools/eosbook_bib.py makes the label for the book and the notebooks).
2. Colab buttons open the generated notebooks (tools/make_notebooks.py, published by CI on
   the ``notebooks`` branch), not the MyST sources, which Colab shows as raw text.
3. Clean consoles: no duplicated sphinx-thebe script, a defined colour mode (light).
4. ``{claim-checks}``: a table of each chapter's claim checks (the lines that
   ``eoslib.claims.check`` prints, starting with ✓ or ✗) read from the executed notebooks of
   this build (``_build/jupyter_execute``), for the status page; ``{notebook-table}``: every
   chapter's generated notebooks (Colab and download links), for the instructors' page.
5. The proof index lists "Theorem 1.1 (title)" grouped by kind, not raw labels.
6. The book's stylesheet, tools/static/eosbook.css (code column width, equations on phones).
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

from docutils import nodes
from sphinx.util.docutils import SphinxDirective

sys.path.insert(0, str(Path(__file__).resolve().parent))
import eosbook_bib  # noqa: E402
import make_notebooks  # noqa: E402

# --- 1. citations ------------------------------------------------------------------------------


def _register_bibtex_styles() -> None:
    import pybtex.plugin
    import sphinxcontrib.bibtex.plugin
    from pybtex.style.formatting.plain import Style as PlainStyle
    from sphinxcontrib.bibtex.style.referencing import BracketStyle
    from sphinxcontrib.bibtex.style.referencing.author_year import AuthorYearReferenceStyle

    def round_brackets() -> BracketStyle:
        return BracketStyle(left="(", right=")")

    @dataclass
    class RoundAuthorYear(AuthorYearReferenceStyle):
        bracket_parenthetical: BracketStyle = field(default_factory=round_brackets)
        bracket_textual: BracketStyle = field(default_factory=round_brackets)
        bracket_author: BracketStyle = field(default_factory=round_brackets)
        bracket_label: BracketStyle = field(default_factory=round_brackets)
        bracket_year: BracketStyle = field(default_factory=round_brackets)

    class AuthorYearStyle(PlainStyle):
        default_label_style = eosbook_bib.AuthorYearLabelStyle

    sphinxcontrib.bibtex.plugin.register_plugin("sphinxcontrib.bibtex.style.referencing",
                                                "author_year_round", RoundAuthorYear, force=True)
    pybtex.plugin.register_plugin("pybtex.style.formatting", "authoryear", AuthorYearStyle, force=True)


# --- 2. Colab buttons ----------------------------------------------------------------------------


def _rewrite(obj, new_url: str) -> None:
    if isinstance(obj, dict):
        if str(obj.get("url", "")).startswith("https://colab.research.google.com"):
            obj["url"] = new_url
        for value in obj.values():
            _rewrite(value, new_url)
    elif isinstance(obj, list):
        for value in obj:
            _rewrite(value, new_url)


def colab_buttons(app, pagename, templatename, context, doctree) -> None:
    if (Path(app.srcdir) / f"{pagename}.ipynb").exists():
        _rewrite(context.get("header_buttons", []), make_notebooks.colab_url(pagename, root=Path(app.srcdir)))


def dedupe_scripts(app, pagename, templatename, context, doctree) -> None:
    """Each script once: sphinx-thebe adds its inline config twice ('THEBE_JS_URL has already
    been declared', an uncaught error in every page's console)."""
    seen, kept = set(), []
    for js in context.get("script_files", []):
        key = (getattr(js, "filename", None) or "",  # None and "" both mean an inline script
               tuple(sorted((k, str(v)) for k, v in getattr(js, "attributes", {}).items())))
        if key not in seen:
            seen.add(key)
            kept.append(js)
    if "script_files" in context:
        context["script_files"][:] = kept


def add_stylesheet_folder(app, config) -> None:
    """Serve tools/static/ (eosbook.css) with the theme's static files."""
    config.html_static_path = [*config.html_static_path, str(Path(__file__).resolve().parent / "static")]


def light_mode(app, config) -> None:
    """A defined colour mode: without one, pydata-sphinx-theme logs 'Got invalid theme mode' as an
    error in every page's console (the figures are drawn for a light background)."""
    context = dict(config.html_context or {})
    context.setdefault("default_mode", "light")  # pydata-sphinx-theme reads it from html_context
    config.html_context = context


# --- 3. claim checks -------------------------------------------------------------------------------


class claim_checks_node(nodes.General, nodes.Element):
    pass


class ClaimChecks(SphinxDirective):
    """``{claim-checks}``: replaced by a table once every chapter has been executed."""

    def run(self):
        return [claim_checks_node()]


def claim_lines(executed: Path) -> list[tuple[str, str]]:
    """(mark, text) of every ✓/✗ line in a notebook's stream outputs (:func:`eoslib.claims.read_lines`)."""
    import nbformat
    from eoslib.claims import read_lines

    return [(line[0], line[1:].strip())
            for cell in nbformat.read(executed, as_version=4).cells for output in cell.get("outputs", [])
            if output.get("output_type") == "stream" for line in read_lines(output.get("text", ""))]


def _table(rows: list[list], header: list[str]) -> nodes.table:
    table = nodes.table(classes=["claim-checks"])
    group = nodes.tgroup(cols=len(header))
    table += group
    for _ in header:
        group += nodes.colspec(colwidth=1)
    head = nodes.thead()
    group += head
    row = nodes.row()
    for text in header:
        row += nodes.entry("", nodes.paragraph(text=text))
    head += row
    body = nodes.tbody()
    group += body
    for cells in rows:
        row = nodes.row()
        for cell in cells:
            entry = nodes.entry()
            entry += cell if isinstance(cell, nodes.Node) else nodes.paragraph(text=str(cell))
            row += entry
        body += row
    return table


def resolve_claim_checks(app, doctree, docname) -> None:
    placeholders = list(doctree.findall(claim_checks_node))
    if not placeholders:
        return
    executed_dir = Path(app.outdir).parent / "jupyter_execute"
    rows, details = [], []
    for page, number in make_notebooks.toc_pages(Path(app.srcdir)):
        executed = executed_dir / f"{page}.ipynb"
        if not (Path(app.srcdir) / f"{page}.ipynb").exists():
            continue
        title = app.env.titles.get(page)
        name = f"{number}. {title.astext()}" if title is not None and number else page
        ref = nodes.reference("", name, internal=True,
                              refuri=app.builder.get_relative_uri(docname, page))
        if not executed.exists():
            rows.append([nodes.paragraph("", "", ref), "not executed", "", ""])
            continue
        lines = claim_lines(executed)
        passed = sum(mark == "✓" for mark, _ in lines)
        margins = [float(m) for _, text in lines for m in re.findall(r"margin\s+(-?[\d.]+)\s*%", text)]
        rows.append([nodes.paragraph("", "", ref), passed, len(lines) - passed,
                     f"{min(margins):.1f}%" if margins else "–"])
        if lines:
            section = nodes.container(classes=["claim-check-lines"])
            section += nodes.paragraph("", "", nodes.strong(text=name))
            section += nodes.literal_block(text="\n".join(f"{m} {t}" for m, t in lines))
            details.append(section)
    for node in placeholders:
        node.replace_self([_table(rows, ["Chapter", "✓ passed", "✗ failed", "smallest margin"])] + details)


# --- 4. the notebooks' table ---------------------------------------------------------------------


class notebooks_node(nodes.General, nodes.Element):
    pass


class NotebookTable(SphinxDirective):
    """``{notebook-table}``: every chapter with its generated notebooks (Colab and download)."""

    def run(self):
        return [notebooks_node()]


def resolve_notebook_tables(app, doctree, docname) -> None:
    placeholders = list(doctree.findall(notebooks_node))
    if not placeholders:
        return
    root = Path(app.srcdir)
    depth = docname.count("/")
    rows = []
    for page, number in make_notebooks.toc_pages(root):
        if not (root / f"{page}.ipynb").exists():
            continue
        title = app.env.titles.get(page)
        name = f"{number}. {title.astext()}" if title is not None and number else page
        cells = [nodes.paragraph("", "", nodes.reference("", name, internal=True,
                                                          refuri=app.builder.get_relative_uri(docname, page)))]
        for student in (False, True):
            folder = "student" if student else "chapters"
            download = "../" * depth + f"notebooks/{folder}/{Path(page).name}.ipynb"
            para = nodes.paragraph()
            para += nodes.reference("", "Colab", refuri=make_notebooks.colab_url(page, student, root))
            para += nodes.Text(" · ")
            para += nodes.reference("", ".ipynb", refuri=download, classes=["notebook-download"])
            cells.append(para)
        rows.append(cells)
    for node in placeholders:
        node.replace_self(_table(rows, ["Chapter", "with solutions", "student version"]))


# --- 5. the proof index ----------------------------------------------------------------------------


def record_proof_titles(app, doctree) -> None:
    """Keep each sphinx-proof directive's title (the proof index shows it instead of the label)."""
    titles = app.env.__dict__.setdefault("eos_proof_titles", {})
    for node in doctree.findall(lambda n: isinstance(n, nodes.Element) and "countertype" in n.attributes):
        if node.get("label"):
            title = (node.get("title") or "").strip()
            titles[node["label"]] = title[1:-1].strip() if title.startswith("(") and title.endswith(")") else title


def proof_index_entries(self, docnames=None):
    """sphinx-proof's index, readable: 'Theorem 1.1 (Stability of GD on a quadratic)', grouped by kind."""
    from collections import defaultdict

    env = self.domain.env
    titles = getattr(env, "eos_proof_titles", {})
    groups = defaultdict(list)
    for label, v in getattr(env, "proof_list", {}).items():
        if v["realtype"] == "proof":
            continue
        number = env.toc_fignumbers.get(v["docname"], {}).get(v["countertype"], {}).get(label, ())
        kind = v["realtype"].title()
        title = titles.get(label, "")
        name = f"{kind} {'.'.join(map(str, number))}".strip() + (f" ({title})" if title else "")
        page = env.titles[v["docname"]].astext() if v["docname"] in env.titles else v["docname"]
        groups[f"{kind}s"].append((tuple(number), (name, 0, v["docname"], label, "", "", page)))
    content = [(kind, [entry for _, entry in sorted(entries)]) for kind, entries in sorted(groups.items())]
    return content, True


def setup(app):
    from sphinx_proof.domain import ProofIndex

    ProofIndex.generate = proof_index_entries
    ProofIndex.localname = "Index of definitions, theorems and lemmas"
    app.connect("doctree-read", record_proof_titles)
    app.add_node(notebooks_node)
    app.add_directive("notebook-table", NotebookTable)
    app.connect("doctree-resolved", resolve_notebook_tables)
    _register_bibtex_styles()
    app.add_node(claim_checks_node)
    app.add_directive("claim-checks", ClaimChecks)
    app.connect("doctree-resolved", resolve_claim_checks)
    app.connect("html-page-context", colab_buttons, priority=900)
    app.connect("html-page-context", dedupe_scripts, priority=900)
    app.connect("config-inited", light_mode)
    app.connect("config-inited", add_stylesheet_folder)
    app.add_css_file("eosbook.css")
    return {"parallel_read_safe": True, "parallel_write_safe": True, "version": "1"}
