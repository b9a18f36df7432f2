"""Generate plain Jupyter/Colab notebooks from the book's MyST notebooks (``make notebooks``).

The chapters are MyST notebooks: their markdown uses directives (admonitions, sphinx-proof
definitions and theorems, sphinx-exercise exercises and gated solutions), roles
(``{cite:t}``, ``{ref}``, ``{prf:ref}``, ``{eq}``, ``{numref}``, ``{glue:}``) and labelled
equations, which only the HTML build understands: Jupyter and Colab show them as raw text.
This script writes, for every chapter in _toc.yml,

- ``OUT/chapters/NN_name.ipynb``: the same notebook in plain Markdown + ``$…$`` math —
  admonitions as headed blocks, definitions/theorems/exercises as headed sections numbered as
  in the web book, citations as "(Cohen et al., 2021)" with the chapter's reference list at
  the end, cross-references as links into the web book, labelled equations with ``\\tag``,
  solutions (text and code) in collapsed ``<details>`` blocks; the math-macro cell is kept;
- ``OUT/student/NN_name.ipynb``: the same without the solutions (an empty cell after each
  exercise instead);

plus ``OUT/index.json`` (every label, its page, anchor and number: tests compare it with the
built HTML) and ``OUT/student-notebooks.zip``. No code cell is changed except the install cell,
which can pin another tag or commit (``--ref``; CI passes the commit it built). Values of
``{glue:}`` roles are taken from the executed notebooks of the last book build
(``_build/jupyter_execute``) when present.

Usage: python tools/make_notebooks.py [--out _build/html/notebooks] [--ref COMMIT]

Why not a Sphinx builder: QuantEcon's sphinx-tojupyter (0.6) was tried on these chapters with
jupyter-book 1.0 / myst-nb 1.4 / Sphinx 7.4: it turns the code cells of .ipynb sources into
Markdown code blocks, renders exercise titles garbled ("##  (Title)Exercise 4.1"), leaves
solutions open, drops the install cell and links citations to a local bibliography notebook.
The book uses a small, fixed set of MyST features, so a converter of ~600 lines that fails
loudly on anything it does not know is simpler to keep right.
"""

from __future__ import annotations

import argparse
import copy
import json
import re
import sys
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
import yaml

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
import eosbook_bib  # noqa: E402

PROOF_KINDS = {"definition", "theorem", "lemma", "proposition", "corollary", "remark", "example",
               "conjecture", "axiom", "criterion", "assumption", "observation", "property", "algorithm",
               "notation"}
ADMONITIONS = {"admonition", "note", "tip", "hint", "important", "warning", "caution", "attention",
               "danger", "error", "seealso"}
IGNORED_DIRECTIVES = {"bibliography", "tableofcontents", "contents"}


class ConversionError(ValueError):
    """A MyST construct the converter does not know (it would show as raw text in Jupyter)."""


# --- configuration -------------------------------------------------------------------------

def _strip_tool():
    import importlib.util

    spec = importlib.util.spec_from_file_location("strip_notebooks", ROOT / ".ci" / "strip_notebooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def repository_url(root: Path = ROOT) -> str:
    return yaml.safe_load((root / "_config.yml").read_text())["repository"]["url"].rstrip("/")


def site_url(root: Path = ROOT) -> str:
    """The web book's address, GitHub Pages of the repository: https://ORG.github.io/REPO/."""
    org, repo = repository_url(root).split("github.com/")[1].split("/")[:2]
    return f"https://{org}.github.io/{repo}/"


NOTEBOOK_BRANCH = "notebooks"  # the branch CI publishes the generated notebooks to (for Colab)


def colab_url(page: str, student: bool = False, root: Path = ROOT) -> str:
    """Colab link of a generated notebook, e.g. page 'chapters/04_edge_of_stability'."""
    org_repo = repository_url(root).split("github.com/")[1]
    name = Path(page).name + ".ipynb"
    folder = "student" if student else "chapters"
    return f"https://colab.research.google.com/github/{org_repo}/blob/{NOTEBOOK_BRANCH}/{folder}/{name}"


def toc_pages(root: Path = ROOT) -> list[tuple[str, int | None]]:
    """(page, chapter number or None) in toc order; numbered parts count on across parts."""
    toc = yaml.safe_load((root / "_toc.yml").read_text())
    pages = [(toc["root"], None)]
    number = 0
    for part in toc.get("parts", []):
        for chapter in part.get("chapters", []):
            if "file" not in chapter:
                continue
            if part.get("numbered"):
                number += 1
                pages.append((chapter["file"], number))
            else:
                pages.append((chapter["file"], None))
            pages += [(s["file"], None) for s in chapter.get("sections", []) if "file" in s]
    return pages


# --- parsing -------------------------------------------------------------------------------

FENCE_OPEN = re.compile(r"^(?P<indent> {0,3})(?P<fence>`{3,}|:{3,})(?P<info>.*)$")
DIRECTIVE_INFO = re.compile(r"^\{(?P<name>[\w:-]+)\}\s*(?P<arg>.*)$")


@dataclass
class Directive:
    name: str
    arg: str
    options: dict
    body: list = field(default_factory=list)  # parsed nodes


@dataclass
class CodeFence:
    text: str  # the whole fence, verbatim


def parse(text: str) -> list:
    """Split MyST markdown into text chunks (str), code fences and directives (recursively)."""
    lines = text.split("\n")
    nodes, buf, i = [], [], 0
    while i < len(lines):
        m = FENCE_OPEN.match(lines[i])
        if not m:
            buf.append(lines[i])
            i += 1
            continue
        fence, info = m.group("fence"), m.group("info").strip()
        close = re.compile(rf"^ {{0,3}}{re.escape(fence[0])}{{{len(fence)},}}\s*$")
        j = i + 1
        while j < len(lines) and not close.match(lines[j]):
            j += 1
        body = lines[i + 1:j]
        if buf:
            nodes.append("\n".join(buf))
            buf = []
        d = DIRECTIVE_INFO.match(info)
        if d:
            options, k = {}, 0
            if body[:1] == ["---"]:  # YAML options block
                end = body.index("---", 1)
                options = yaml.safe_load("\n".join(body[1:end])) or {}
                k = end + 1
            else:
                while k < len(body) and re.match(r"^:[\w-]+:", body[k]):
                    key, _, value = body[k][1:].partition(":")
                    options[key] = value.strip()
                    k += 1
            nodes.append(Directive(d.group("name"), d.group("arg").strip(), options, parse("\n".join(body[k:]))))
        else:
            nodes.append(CodeFence("\n".join(lines[i:j + 1])))
        i = j + 1
    if buf:
        nodes.append("\n".join(buf))
    return nodes


# --- pass 1: labels and numbers ---------------------------------------------------------------

@dataclass
class Target:
    page: str  # e.g. chapters/04_edge_of_stability
    anchor: str  # HTML id in the web book
    text: str  # link text: "Definition 4.1", "(4.1)", "Fig. 4.1" or a section title
    title: str = ""  # the directive's own title, if any


LABELLED_MATH = re.compile(r"\$\$(?P<body>.+?)\$\$[ \t]*\((?P<label>[^()\s]+)\)", re.S)
TARGET_LINE = re.compile(r"^\((?P<label>[^()\s]+)\)=\s*$", re.M)


def _kind(name: str) -> str:
    return name.split(":", 1)[1] if name.startswith("prf:") else name


class Index:
    """Every label of the book: page, HTML anchor, numbered link text."""

    def __init__(self, root: Path = ROOT):
        self.root = root
        self.targets: dict[str, Target] = {}
        self.pages = toc_pages(root)
        self.titles: dict[str, str] = {}
        for page, number in self.pages:
            self._scan_page(page, number)

    def markdown_cells(self, page: str) -> list[str]:
        path = self.root / f"{page}.ipynb"
        if path.exists():
            return [c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "markdown"]
        return [(self.root / f"{page}.md").read_text()]

    def _scan_page(self, page: str, number: int | None) -> None:
        counters: dict[str, int] = {}

        def numbered(kind: str) -> str:
            counters[kind] = counters.get(kind, 0) + 1
            return f"{number}.{counters[kind]}" if number else str(counters[kind])

        def walk(nodes):
            for node in nodes:
                if isinstance(node, str):
                    self._scan_text(page, node, numbered, number)
                elif isinstance(node, Directive):
                    kind = _kind(node.name)
                    label = node.options.get("label") or node.options.get("name")
                    if node.name.startswith("prf:") and kind != "proof" or kind == "exercise":
                        text = f"{kind.capitalize()} {numbered(kind)}"
                    elif kind in ("figure", "glue:figure") and label:
                        text = f"Fig. {numbered('figure')}"
                    elif kind == "math" and label:
                        text = f"({numbered('equation')})"
                    else:
                        text = node.arg or label or ""
                    if label:
                        anchor = f"equation-{label}" if kind == "math" else label
                        self.targets[label] = Target(page, anchor, text, node.arg)
                    walk(node.body)

        path = self.root / f"{page}.ipynb"
        if path.exists():
            for cell in nbformat.read(path, as_version=4).cells:
                if cell.cell_type == "markdown":
                    walk(parse(cell.source))
                else:
                    fig = cell.metadata.get("mystnb", {}).get("figure", {})
                    if fig.get("name"):
                        self.targets[fig["name"]] = Target(page, fig["name"], f"Fig. {numbered('figure')}")
        else:
            walk(parse((self.root / f"{page}.md").read_text()))

    def _scan_text(self, page, text, numbered, number) -> None:
        for m in TARGET_LINE.finditer(text):
            rest = text[m.end():].lstrip("\n")
            heading = re.match(r"^#+\s+(.*)", rest)
            title = heading.group(1).strip() if heading else m.group("label")
            self.targets[m.group("label")] = Target(page, m.group("label"), title)
            if heading and rest.startswith("# "):
                self.titles[page] = title
        if page not in self.titles:
            h1 = re.search(r"^# (.+)$", text, re.M)
            if h1:
                self.titles[page] = h1.group(1).strip()
        for m in LABELLED_MATH.finditer(text):
            self.targets[m.group("label")] = Target(page, f"equation-{m.group('label')}",
                                                    f"({numbered('equation')})")

    def url(self, label: str) -> str:
        t = self.target(label)
        return f"{site_url(self.root)}{t.page}.html#{t.anchor}"

    def target(self, label: str) -> Target:
        if label not in self.targets:
            raise ConversionError(f"unknown label {label!r}")
        return self.targets[label]


# --- pass 2: conversion --------------------------------------------------------------------

ROLE = re.compile(r"\{(?P<role>[\w:+-]+)\}`(?P<content>[^`]+)`")
ROLE_OR_CODE = re.compile(r"\{(?P<role>[\w:+-]+)\}`(?P<content>[^`]+)`|(?P<ticks>`+)[^`].*?(?P=ticks)", re.S)


class Converter:
    def __init__(self, index: Index, bib: Path, glue: dict[str, str] | None = None):
        self.index = index
        self.bib_data = eosbook_bib.load(bib)
        self.bib_labels = eosbook_bib.labels(self.bib_data.entries)
        self.glue = glue or {}
        self.cited: list[str] = []
        self.page = ""
        self.number: int | None = None

    # roles
    def _cite(self, role: str, keys: str) -> str:
        parts = []
        for key in [k.strip() for k in keys.split(",") if k.strip()]:
            if key not in self.bib_labels:
                raise ConversionError(f"{self.page}: {{cite}} key {key!r} is not in references.bib")
            self.cited.append(key)
            parts.append(self.bib_labels[key])
        kind = role.split(":", 1)[1] if ":" in role else "p"
        if kind in ("t", "ts"):
            return ", ".join(f"{a} ({y})" for a, y in parts)
        if kind == "author":
            return ", ".join(a for a, _ in parts)
        if kind == "year":
            return ", ".join(y for _, y in parts)
        if kind in ("p", "ps"):
            return "(" + "; ".join(f"{a}, {y}" for a, y in parts) + ")"
        raise ConversionError(f"{self.page}: unknown citation role {{{role}}}")

    def _ref(self, role: str, content: str) -> str:
        explicit = re.match(r"^(?P<text>.*?)\s*<(?P<label>[^<>]+)>$", content, re.S)
        text, label = (explicit.group("text"), explicit.group("label")) if explicit else (None, content.strip())
        if role == "doc":
            page = str((Path(self.page).parent / label).as_posix()) if not label.startswith("/") else label[1:]
            page = re.sub(r"[^/]+/\.\./", "", page)
            return f"[{text or self.index.titles.get(page, page)}]({site_url(self.index.root)}{page}.html)"
        target = self.index.target(label)
        if role == "numref" and text and "%s" in text:
            text = text.replace("%s", target.text.split(" ", 1)[-1])
        if text is None:
            text = target.text
        return f"[{text}]({self.index.url(label)})"

    def _glue(self, content: str) -> str:
        name, _, fmt = content.partition(":")
        if name not in self.glue:
            return f"*[`{name}`, computed when the notebook runs]*"
        value = self.glue[name]
        if fmt:
            try:
                return format(float(value), fmt)
            except ValueError:
                pass
        return value

    def roles(self, text: str) -> str:
        def replace(m):
            role, content = m.group("role"), m.group("content")
            if role.startswith("cite"):
                return self._cite(role, content)
            if role in ("ref", "prf:ref", "numref", "doc"):
                return self._ref(role, content)
            if role == "eq":
                return f"[{self.index.target(content).text}]({self.index.url(content)})"
            if role in ("glue", "glue:", "glue:text", "glue:md"):
                return self._glue(content)
            if role == "math":
                return f"${content}$"
            if role in ("sub", "sup"):
                return f"<{role}>{content}</{role}>"
            if role == "abbr":
                return re.sub(r"\s*\(.*\)$", "", content)
            raise ConversionError(f"{self.page}: unknown role {{{role}}} (`{content}`)")

        # roles, and inline code spans kept untouched, matched left to right
        def token(m):
            return replace(m) if m.group("role") else m.group(0)

        return ROLE_OR_CODE.sub(token, text)

    # text blocks
    def text(self, text: str) -> str:
        text = TARGET_LINE.sub("", text)
        if self.number:
            text = re.sub(r"^# (?!\d)(.+)$", lambda m: f"# {self.number}. {m.group(1)}", text, count=1, flags=re.M)

        def tag(m):
            number = self.index.target(m.group("label")).text.strip("()")
            return f"$${m.group('body').rstrip()} \\tag{{{number}}}\n$$"

        text = LABELLED_MATH.sub(tag, text)
        return self.roles(text)

    def nodes(self, nodes: list, student: bool) -> str:
        parts = []
        for node in nodes:
            if isinstance(node, str):
                parts.append(self.text(node))
            elif isinstance(node, CodeFence):
                parts.append(node.text)
            else:
                parts.append(self.directive(node, student))
        return "\n".join(parts)

    def directive(self, d: Directive, student: bool) -> str:
        kind = _kind(d.name)
        body = self.nodes(d.body, student).strip("\n")
        label = d.options.get("label") or d.options.get("name")
        classes = str(d.options.get("class", "")).split()
        if d.name in ADMONITIONS:
            title = self.roles(d.arg) if d.name == "admonition" and d.arg else d.name.capitalize()
            if d.name == "seealso":
                title = "See also"
            if "dropdown" in classes:
                return f"<details>\n<summary><b>{title}</b></summary>\n\n{body}\n\n</details>"
            return quote(f"**{title}**\n\n{body}")
        if d.name.startswith("prf:") and kind == "proof":
            return f"*Proof.* {body}\n\n<div align=\"right\">∎</div>"
        if d.name.startswith("prf:") and kind in PROOF_KINDS or kind == "exercise":
            number = self.index.target(label).text if label else kind.capitalize()
            title = f" ({self.roles(d.arg)})" if d.arg else ""
            level = "###" if kind == "exercise" else "####"
            return f"{level} {number}{title}\n\n" + (quote(body) if kind != "exercise" else body)
        if kind == "solution":  # a non-gated solution: one directive
            return "" if student else details(f"Solution to {self._exercise_title(d.arg)}", body)
        if kind == "math":
            tag = f" \\tag{{{self.index.target(label).text.strip('()')}}}" if label else ""
            return f"$$\n{body}{tag}\n$$"
        if kind == "dropdown":
            return details(self.roles(d.arg) or "Details", body)
        if kind in ("margin", "sidebar", "epigraph", "topic"):
            return quote(f"**{self.roles(d.arg)}**\n\n{body}" if d.arg else body)
        if kind in ("glue:figure", "figure"):
            caption = f"*{self.index.target(label).text if label else 'Figure'}: {body}*" if body else ""
            return f"{caption}\n\n*(The figure is drawn by the code above when you run it.)*"
        if kind in IGNORED_DIRECTIVES:
            return ""
        raise ConversionError(f"{self.page}: unknown directive {{{d.name}}}")

    def _exercise_title(self, label: str) -> str:
        t = self.index.target(label.strip())
        return t.text + (f" ({self.roles(t.title)})" if t.title else "")

    # notebooks
    def notebook(self, page: str, number: int | None, student: bool, install: str) -> nbformat.NotebookNode:
        self.page, self.number, self.cited = page, number, []
        strip = _strip_tool()
        src = nbformat.read(self.index.root / f"{page}.ipynb", as_version=4)
        out = nbformat.v4.new_notebook(metadata={"kernelspec": src.metadata.get("kernelspec", {
            "name": "python3", "display_name": "Python 3", "language": "python"}),
            "language_info": {"name": "python"}, "colab": {"provenance": [], "toc_visible": True}})
        solution: list[str] | None = None
        exercise, seen_code = "", False
        for i, cell in enumerate(src.cells):
            tags = cell.metadata.get("tags", [])
            if cell.cell_type == "code":
                first_code, seen_code = not seen_code, True
                if cell.get("id") == strip.INSTALL_CELL_ID or first_code and strip._is_install_cell(cell):
                    new = nbformat.v4.new_code_cell(install)
                elif solution is not None:
                    solution.append(f"```python\n{cell.source.strip()}\n```")
                    continue
                else:
                    new = nbformat.v4.new_code_cell(cell.source)
                    if {"hide-input", "remove-input"} & set(tags):
                        new.metadata["jupyter"] = {"source_hidden": True}
                new.id = cell.get("id", new.id)
                out.cells.append(new)
                fig = cell.metadata.get("mystnb", {}).get("figure", {})
                if fig.get("caption"):
                    number_text = self.index.target(fig["name"]).text if fig.get("name") else "Figure"
                    out.cells.append(nbformat.v4.new_markdown_cell(f"*{number_text}: {self.text(fig['caption'])}*"))
                continue
            if "remove-cell" in tags and i > 0:
                continue
            if i == 0:  # the math-macro cell, generated from _config.yml (as `make strip` does)
                new = nbformat.v4.new_markdown_cell(strip.macro_source())
                new.id = cell.get("id", new.id)
                out.cells.append(new)
                continue
            for piece in split_solutions(cell.source):
                if isinstance(piece, Directive) and piece.name == "solution-start":
                    solution, exercise = [], piece.arg
                elif isinstance(piece, Directive) and piece.name == "solution-end":
                    if not student:
                        out.cells.append(nbformat.v4.new_markdown_cell(
                            details(f"Solution to {self._exercise_title(exercise)}", "\n\n".join(solution))))
                    solution = None
                elif solution is not None:
                    solution.append(self.nodes(parse(piece), student).strip())
                else:
                    md = self.nodes(parse(piece), student).strip()
                    if md:
                        out.cells.append(nbformat.v4.new_markdown_cell(md))
                        if student and "{exercise}" in piece:
                            out.cells.append(nbformat.v4.new_markdown_cell("*Your answer:*"))
                            out.cells.append(nbformat.v4.new_code_cell(""))
            if i == 1 and len(out.cells) > 1 and out.cells[-1].cell_type == "markdown":
                title, _, rest = out.cells[-1].source.partition("\n")
                out.cells[-1].source = f"{title}\n\n{self.banner(page, student)}\n{rest}"
        if solution is not None:
            raise ConversionError(f"{page}: a solution-start without solution-end")
        if self.cited:
            entries = eosbook_bib.formatted_entries(self.index.root / "references.bib", self.cited)
            lines = [f"- **{lab}.** {plain(text)}" for lab, text in entries]
            out.cells.append(nbformat.v4.new_markdown_cell("## Works cited\n\n" + "\n".join(lines)))
        for k, c in enumerate(out.cells):  # ids: keep the source's where we kept a cell, else unique
            c.id = c.get("id") or f"gen-{k}"
        ids = [c.id for c in out.cells]
        for k, c in enumerate(out.cells):
            if ids.count(c.id) > 1 or not re.fullmatch(r"[a-zA-Z0-9-_]{1,64}", c.id):
                c.id = f"gen-{k}"
        return out

    def banner(self, page: str, student: bool) -> str:
        web = f"{site_url(self.index.root)}{page}.html"
        version = "Student version (no solutions). " if student else ""
        return (f"*{version}A chapter of* Gradient descent at the edge of stability "
                f"([web version]({web}) · [open in Colab]({colab_url(page, student, self.index.root)})). "
                "*Run the cells in order: the first code cell installs the book's library if it is missing.*")


def split_solutions(source: str) -> list:
    """A markdown cell as text pieces and solution-start / solution-end directives, in order."""
    pieces, buf = [], []
    for node in parse(source):
        if isinstance(node, Directive) and node.name in ("solution-start", "solution-end"):
            if buf:
                pieces.append(unparse(buf))
                buf = []
            pieces.append(node)
        else:
            buf.append(node)
    if buf:
        pieces.append(unparse(buf))
    return pieces


def unparse(nodes: list) -> str:
    """Back to MyST text (for pieces of a cell split around solution markers)."""
    out = []
    for node in nodes:
        if isinstance(node, str):
            out.append(node)
        elif isinstance(node, CodeFence):
            out.append(node.text)
        else:
            opts = "".join(f":{k}: {v}\n" for k, v in node.options.items())
            body = unparse(node.body)
            fence = "`" * (max([len(f) for f in re.findall(r"`{3,}", body)] + [2]) + 1)
            out.append(f"{fence}{{{node.name}}} {node.arg}\n{opts}\n{body}\n{fence}")
    return "\n".join(out)


def quote(text: str) -> str:
    return "\n".join(("> " + line).rstrip() for line in text.split("\n"))


def details(summary: str, body: str) -> str:
    return f"<details>\n<summary><b>{summary}</b> (click to show)</summary>\n\n{body.strip()}\n\n</details>"


def plain(markdown_text: str) -> str:
    text = " ".join(markdown_text.split())
    return re.sub(r"\\([\\`*_{}\[\]()#+\-.!:])", r"\1", text)


def glue_values(root: Path = ROOT) -> dict[str, str]:
    """``glue`` values (their text/plain) stored in the executed notebooks of the last book build.

    myst-nb's ``glue(name, value, display=False)`` writes a display output whose metadata
    ``scrapbook`` names it, with its MIME keys prefixed by ``scrapbook.mime_prefix``.
    """
    values = {}
    for path in sorted((root / "_build" / "jupyter_execute").rglob("*.ipynb")):
        for cell in nbformat.read(path, as_version=4).cells:
            for output in cell.get("outputs", []):
                scrapbook = output.get("metadata", {}).get("scrapbook", {})
                text = output.get("data", {}).get(scrapbook.get("mime_prefix", "") + "text/plain")
                if scrapbook.get("name") and text is not None:
                    values[scrapbook["name"]] = text.strip("'\"")
    return values


def build(out: Path, ref: str | None = None, root: Path = ROOT) -> dict:
    """Write the notebooks (full and student), index.json and student-notebooks.zip under ``out``."""
    index = Index(root)
    conv = Converter(index, root / "references.bib", glue_values(root))
    install = _strip_tool().install_source(ref)
    written = []
    for page, number in index.pages:
        if not (root / f"{page}.ipynb").exists():
            continue
        for student in (False, True):
            nb = conv.notebook(page, number, student, install)
            nbformat.validate(nb)
            path = out / ("student" if student else "chapters") / f"{Path(page).name}.ipynb"
            path.parent.mkdir(parents=True, exist_ok=True)
            nbformat.write(nb, path)
            written.append(path)
    (out / "index.json").write_text(json.dumps(
        {label: {"page": t.page, "anchor": t.anchor, "text": t.text} for label, t in index.targets.items()},
        indent=1, ensure_ascii=False))
    with zipfile.ZipFile(out / "student-notebooks.zip", "w", zipfile.ZIP_DEFLATED) as z:
        for path in written:
            if path.parent.name == "student":
                z.write(path, f"eos-book-student/{path.name}")
    return {"notebooks": written, "labels": len(index.targets)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "_build" / "html" / "notebooks"),
                        help="output folder (default _build/html/notebooks, published with the site)")
    parser.add_argument("--ref", default=None, help="tag or commit the install cell pins (default v<version>)")
    args = parser.parse_args(argv)
    try:
        result = build(Path(args.out), args.ref)
    except ConversionError as error:
        print(f"make_notebooks: error: {error}", file=sys.stderr)
        return 2
    print(f"{len(result['notebooks'])} notebooks ({result['labels']} labels) in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
