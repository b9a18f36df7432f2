"""The generated Jupyter/Colab notebooks (tools/make_notebooks.py), the slides and the GPU check.

Unit tests convert the chapters into a temporary folder and check the Markdown a notebook
front end will see. Tests marked ``browser`` need the built book (``make browser`` runs them
after the build): every link into the web book must hit an existing page and anchor, the
numbers (Definition 4.1, (4.1), Exercise 4.1) must be the web book's, and a generated notebook
rendered as Jupyter renders it (CommonMark + MathJax, tools/render_notebook.py) must show no
raw MyST, no MathJax error, and folded solutions.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import gpu_check  # noqa: E402
import make_notebooks  # noqa: E402

HTML = ROOT / "_build" / "html"
RAW_MYST = re.compile(r"\{[\w:-]+\}`|^\s*(```+|:::+)\s*\{|^:(label|class|name):|^\([\w-]+\)=\s*$", re.M)


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    out = tmp_path_factory.mktemp("notebooks")
    result = make_notebooks.build(out, ref="0123abc")
    return out, result


def chapter_sources():
    return [ROOT / f"{page}.ipynb" for page, _ in make_notebooks.toc_pages() if (ROOT / f"{page}.ipynb").exists()]


def markdown_of(nb) -> str:
    return "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")


def test_every_chapter_has_a_full_and_a_student_notebook(generated):
    out, result = generated
    for source in chapter_sources():
        for folder in ("chapters", "student"):
            nbformat.validate(nbformat.read(out / folder / source.name, as_version=4))
    assert (out / "student-notebooks.zip").stat().st_size > 0


@pytest.mark.parametrize("source", chapter_sources(), ids=lambda p: p.stem)
def test_no_raw_myst_and_the_set_up_cells(generated, source):
    out, _ = generated
    for folder in ("chapters", "student"):
        nb = nbformat.read(out / folder / source.name, as_version=4)
        raw = [m.group(0) for c in nb.cells if c.cell_type == "markdown" for m in RAW_MYST.finditer(c.source)]
        assert not raw, f"{folder}/{source.name}: raw MyST left: {raw[:3]}"
        strip = make_notebooks._strip_tool()
        assert nb.cells[0].source == strip.macro_source(), "the math-macro cell must come first, unchanged"
        first_code = next(c for c in nb.cells if c.cell_type == "code")
        assert first_code.source == strip.install_source("0123abc"), "the install cell must pin --ref"
        assert re.match(r"# \d+\. \S", nb.cells[1].source), "a numbered title, as in the web book"


@pytest.mark.parametrize("source", chapter_sources(), ids=lambda p: p.stem)
def test_solutions_folded_in_full_version_and_absent_from_student_version(generated, source):
    out, _ = generated
    text = source.read_text(encoding="utf-8")
    n_solutions = text.count("{solution-start}") + len(re.findall(r"\{solution\}", text))
    n_exercises = text.count("{exercise}")
    full = markdown_of(nbformat.read(out / "chapters" / source.name, as_version=4))
    student_nb = nbformat.read(out / "student" / source.name, as_version=4)
    student = markdown_of(student_nb)
    assert full.count("<details>") == n_solutions and full.count("<summary><b>Solution to Exercise") == n_solutions
    assert "Solution to" not in student and "<details>" not in student
    headings = re.findall(r"^### Exercise \d+\.\d+", full, re.M)
    assert len(headings) == n_exercises and re.findall(r"^### Exercise \d+\.\d+", student, re.M) == headings
    assert student.count("*Your answer:*") == n_exercises
    # no solution code leaks into the student version's code cells
    solution_code = re.findall(r"```python\n(.*?)\n```", full, re.S)
    student_code = "\n".join(c.source for c in student_nb.cells if c.cell_type == "code")
    assert not [s for s in solution_code if s.strip() and s.strip() in student_code]


@pytest.mark.parametrize("source", chapter_sources(), ids=lambda p: p.stem)
def test_citations_author_year_with_the_list_at_the_end(generated, source):
    out, _ = generated
    nb = nbformat.read(out / "chapters" / source.name, as_version=4)
    text = markdown_of(nb)
    if "{cite" not in source.read_text(encoding="utf-8"):
        return
    assert re.search(r"\([A-Z][^()]+(?: et al\.| and [A-Z]\w+)?, \d{4}[a-z]?\)|[A-Z]\w+(?: et al\.)? \(\d{4}[a-z]?\)", text)
    last = nb.cells[-1].source
    assert last.startswith("## Works cited") and re.search(r"^- \*\*[A-Z].*, \d{4}[a-z]?\.\*\* ", last, re.M)


def test_code_cells_are_the_sources_code_cells(generated):
    """Only the install cell changes; every other code cell outside solutions is copied as it is."""
    out, _ = generated
    for source in chapter_sources():
        src = nbformat.read(source, as_version=4)
        gen = nbformat.read(out / "chapters" / source.name, as_version=4)
        gen_code = [c.source for c in gen.cells if c.cell_type == "code"][1:]
        src_code = [c.source for c in src.cells if c.cell_type == "code"][1:]
        assert all(code in src_code for code in gen_code), f"{source.name}: a code cell was changed"


def test_unknown_constructs_fail_loudly(tmp_path):
    index = make_notebooks.Index()
    conv = make_notebooks.Converter(index, ROOT / "references.bib")
    with pytest.raises(make_notebooks.ConversionError, match="unknown role"):
        conv.roles("see {term}`sharpness`")
    with pytest.raises(make_notebooks.ConversionError, match="unknown directive"):
        conv.nodes(make_notebooks.parse("```{mermaid}\ngraph\n```"), student=False)
    with pytest.raises(make_notebooks.ConversionError, match="not in references.bib"):
        conv.roles("{cite}`nobody2099`")
    assert conv.roles("`{cite}` is a role; {cite:p}`cohen2021gradient`") == \
        "`{cite}` is a role; (Cohen et al., 2021)"


def test_glue_values_come_from_the_executed_notebooks(tmp_path):
    """myst-nb stores glue(..., display=False) under a MIME prefix named in the output's metadata."""
    executed = tmp_path / "_build" / "jupyter_execute" / "chapters"
    executed.mkdir(parents=True)
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("glue('ch4-cross', ...)")
    cell.outputs = [nbformat.v4.new_output("display_data", data={"application/papermill.record/text/plain": "240"},
                                           metadata={"scrapbook": {"name": "ch4-cross",
                                                                   "mime_prefix": "application/papermill.record/"}})]
    nb.cells = [cell]
    nbformat.write(nb, executed / "04_x.ipynb")
    assert make_notebooks.glue_values(tmp_path) == {"ch4-cross": "240"}
    conv = make_notebooks.Converter(make_notebooks.Index(), ROOT / "references.bib", {"ch4-cross": "240"})
    assert conv.roles("crosses at step {glue:}`ch4-cross`") == "crosses at step 240"
    assert "computed when the notebook runs" in conv.roles("{glue:text}`ch9-missing`")


def test_gpu_check_runs_a_notebook_as_a_script(tmp_path):
    nb = nbformat.v4.new_notebook()
    install = nbformat.v4.new_code_cell("raise SystemExit('the install cell must be skipped')")
    install.id = "eos-install"
    nb.cells = [install,
                nbformat.v4.new_code_cell("%matplotlib inline\nimport matplotlib.pyplot as plt\nfig = plt.figure()\n"
                                          "display(fig)\ndisplay('shown')"),
                nbformat.v4.new_code_cell("from eoslib.claims import check\ncheck('answer', 42, low=40)"),
                nbformat.v4.new_code_cell("check('wrong', 1.0, high=0.5)")]
    path = tmp_path / "99_demo.ipynb"
    nbformat.write(nb, path)
    assert "%matplotlib" not in gpu_check.to_script(path).replace("# %matplotlib", "")
    env = {**__import__("os").environ, "PYTHONPATH": str(ROOT), "EOSLIB_DEVICE": "cpu"}
    r = gpu_check.run_chapter(path, env, timeout=120)
    assert r["status"] == "FAILED" and r["passed"] == 1 and r["failed"] == 1
    assert "cell 3" in r["failure"] and "AssertionError" in r["failure"]
    assert r["claims"][0].startswith("✓ answer = 42")
    assert "99_demo" in gpu_check.table([r])


# --- against the built book ----------------------------------------------------------------------

def _built():
    if not (HTML / "index.html").exists():
        if __import__("os").environ.get("EOS_BROWSER_REQUIRED"):
            pytest.fail("no built book in _build/html")
        pytest.skip("no built book in _build/html")


@pytest.mark.browser
def test_links_into_the_web_book_resolve():
    _built()
    notebooks = sorted((HTML / "notebooks" / "chapters").glob("*.ipynb"))
    assert notebooks, "no generated notebooks in _build/html/notebooks (make notebooks)"
    site = make_notebooks.site_url()
    ids: dict[str, set] = {}
    bad = []
    for path in notebooks:
        for url in re.findall(r"\]\((" + re.escape(site) + r"[^)\s]+)\)", path.read_text(encoding="utf-8")):
            page, _, anchor = url[len(site):].partition("#")
            file = HTML / page
            if page not in ids:
                ids[page] = set(re.findall(r'\sid="([^"]+)"', file.read_text(encoding="utf-8"))) if file.exists() else None
            if ids[page] is None or (anchor and anchor not in ids[page]):
                bad.append(url)
    assert not bad, f"links into the web book that do not resolve: {sorted(set(bad))[:5]}"


@pytest.mark.browser
def test_numbers_match_the_web_book():
    _built()
    index = json.loads((HTML / "notebooks" / "index.json").read_text())
    wrong = []
    for label, t in index.items():
        if not re.search(r"\d", t["text"]):
            continue  # section titles
        page = (HTML / f"{t['page']}.html").read_text(encoding="utf-8")
        m = re.search(r'id="' + re.escape(t["anchor"]) + r'"', page)
        number = re.search(r"\d+(\.\d+)*", t["text"]).group(0)
        around = re.sub(r"<[^>]+>", "", page[m.start():m.start() + 1500]) if m else ""
        if not m or number not in around[:400]:
            wrong.append((label, t["text"]))
    assert not wrong, f"numbers that differ from the web book: {wrong[:5]}"


@pytest.mark.browser
@pytest.mark.parametrize("folder", ["chapters", "student"])
def test_generated_notebook_renders_in_a_browser(folder, tmp_path, browser):
    """The generated chapter 4, rendered as Jupyter renders Markdown, in headless Chromium."""
    _built()
    import render_notebook
    import test_browser

    name = "04_edge_of_stability.ipynb"
    page_html = tmp_path / "nb.html"
    page_html.write_text(render_notebook.render(HTML / "notebooks" / folder / name), encoding="utf-8")
    shots = ROOT / "_build" / "screenshots"
    shots.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(viewport={"width": 1000, "height": 900})
    tab = context.new_page()
    refused = []
    tab.route("**/*", test_browser._route(page_html.as_uri().rsplit("/", 1)[0], refused))
    tab.goto(page_html.as_uri(), wait_until="load")
    r = tab.evaluate("""async () => { await MathJax.startup.promise;
            const clone = document.body.cloneNode(true);
            clone.querySelectorAll('mjx-container, pre, code').forEach(e => e.remove());
            return {errors: document.querySelectorAll('mjx-merror').length,
                    math: document.querySelectorAll('mjx-container').length,
                    open: [...document.querySelectorAll('details')].filter(d => d.open).length,
                    details: document.querySelectorAll('details').length,
                    text: clone.innerText}; }""")
    tab.screenshot(path=str(shots / f"notebook-{folder}-04.png"), full_page=False)
    context.close()
    assert r["errors"] == 0 and r["math"] > 50, r["errors"]
    assert not refused, refused
    assert r["open"] == 0 and (r["details"] > 0) == (folder == "chapters")
    assert not re.search(r"\{[\w:-]+\}`|:::|\\lmax|\$", r["text"]), "raw MyST or TeX in the rendered notebook"
