"""Slides per part of the book, made from the chapters' own figures (``make slides``).

Reads the executed notebooks of the last book build (``_build/jupyter_execute``) and writes
one 16:9 PDF per part of _toc.yml that has chapters (``_build/html/slides/part-N.pdf``) and an
index page (``_build/html/slides/index.html``), published with the site. Each part starts with
a title slide, each chapter with a slide of its title and sections; then every figure the
chapter drew, in order, under the title of the section it belongs to, with the chapter and
the web address of the section as a footer. The figures are the build's PNGs as they are:
what the slides show is what the book showed.

Usage: python tools/make_slides.py [--out _build/html/slides]   (after `make book`)
"""

from __future__ import annotations

import argparse
import base64
import html
import io
import re
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.image as mpimg  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import nbformat  # noqa: E402
import yaml  # noqa: E402
from matplotlib.backends.backend_pdf import PdfPages  # noqa: E402

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
import make_notebooks  # noqa: E402

PAGE = (13.333, 7.5)  # inches, 16:9
GREEK = {r"\eta": "η", r"\lambda": "λ", r"\lmax": "λ_max", r"\beta": "β", r"\theta": "θ", r"\tau": "τ",
         r"\alpha": "α", r"\Hess": "∇²L", r"\grad": "∇L", r"\max": "max", r"\sigma": "σ", r"\kappa": "κ"}


def plain(text: str) -> str:
    """A heading or title without Markdown and TeX: what a slide can print as text."""
    text = re.sub(r"\{[\w:-]+\}`([^`<]*?)(?:\s*<[^>]*>)?`", r"\1", text)  # roles → their text
    for tex, uni in sorted(GREEK.items(), key=lambda kv: -len(kv[0])):
        text = text.replace(tex, uni)
    text = re.sub(r"\\[a-zA-Z]+", "", text).replace("$", "").replace("{", "").replace("}", "")
    return re.sub(r"[*_`]", "", text).strip()


def parts(root: Path = ROOT) -> list[tuple[str, list[tuple[str, int | None]]]]:
    """(caption, [(page, chapter number)]) of every part with notebook chapters."""
    toc = yaml.safe_load((root / "_toc.yml").read_text())
    numbers = dict(make_notebooks.toc_pages(root))
    found = []
    caption = ""
    for part in toc.get("parts", []):
        chapters = [(c["file"], numbers.get(c["file"])) for c in part.get("chapters", [])
                    if "file" in c and (root / f"{c['file']}.ipynb").exists()]
        if part.get("caption"):
            caption = part["caption"]
        elif found and found[-1][0] == caption:  # a part without caption continues the one above
            found[-1][1].extend(chapters)
            continue
        if chapters:
            found.append((caption, chapters))
    return found


def figures(executed: Path) -> tuple[str, list[str], list[tuple[str, bytes]]]:
    """(title, section titles, [(section title, PNG bytes)]) of an executed notebook."""
    nb = nbformat.read(executed, as_version=4)
    title, sections, found, section = "", [], [], ""
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            if "remove-cell" in cell.metadata.get("tags", []):
                continue
            for level, text in re.findall(r"^(#{1,3}) (.+)$", cell.source, re.M):
                if level == "#" and not title:
                    title = plain(text)
                elif level == "##":
                    section = plain(text)
                    sections.append(section)
                elif level == "###":
                    section = plain(text)
        elif "remove-output" not in cell.metadata.get("tags", []):
            for output in cell.get("outputs", []):
                png = output.get("data", {}).get("image/png")
                if png:
                    found.append((section or title, base64.b64decode(png)))
    return title, sections, found


def _text_slide(pdf, lines: list[tuple[str, float, str]], footer: str = "") -> None:
    fig = plt.figure(figsize=PAGE)
    for text, y, style in lines:
        size = {"title": 34, "subtitle": 22, "item": 18}[style]
        fig.text(0.07, y, text, fontsize=size, weight="bold" if style == "title" else "normal",
                 va="top", wrap=True)
    if footer:
        fig.text(0.07, 0.04, footer, fontsize=11, color="0.4")
    pdf.savefig(fig)
    plt.close(fig)


def _figure_slide(pdf, heading: str, png: bytes, footer: str) -> None:
    fig = plt.figure(figsize=PAGE)
    fig.text(0.05, 0.95, heading, fontsize=24, weight="bold", va="top")
    image = mpimg.imread(io.BytesIO(png), format="png")
    h, w = image.shape[:2]
    box_w, box_h = 0.9, 0.78  # fraction of the page for the figure
    scale = min(box_w * PAGE[0] / w, box_h * PAGE[1] / h)
    fw, fh = w * scale / PAGE[0], h * scale / PAGE[1]
    ax = fig.add_axes([(1 - fw) / 2, 0.09 + (box_h - fh) / 2, fw, fh])
    ax.imshow(image, interpolation="none")  # the PNG itself, not resampled
    ax.axis("off")
    fig.text(0.05, 0.03, footer, fontsize=11, color="0.4")
    pdf.savefig(fig, dpi=200)
    plt.close(fig)


def build(out: Path, root: Path = ROOT) -> list[Path]:
    executed_dir = root / "_build" / "jupyter_execute"
    if not executed_dir.is_dir():
        raise SystemExit("make_slides: error: no _build/jupyter_execute; run `make book` first")
    out.mkdir(parents=True, exist_ok=True)
    site = make_notebooks.site_url(root)
    written, rows = [], []
    for k, (caption, chapters) in enumerate(parts(root), start=1):
        path = out / f"part-{k}.pdf"
        count = 0
        with PdfPages(path) as pdf:
            _text_slide(pdf, [(f"Part {k}", 0.62, "subtitle"), (caption, 0.54, "title"),
                              ("Gradient descent at the edge of stability", 0.38, "subtitle")],
                        footer=f"{site}  ·  text and figures CC-BY-4.0")
            for page, number in chapters:
                executed = executed_dir / f"{page}.ipynb"
                if not executed.exists():
                    raise SystemExit(f"make_slides: error: {executed} is missing; run `make book` first")
                title, sections, figs = figures(executed)
                items = [(f"•  {s}", 0.66 - 0.065 * i, "item") for i, s in enumerate(sections[:8])]
                _text_slide(pdf, [(f"Chapter {number}" if number else "", 0.88, "subtitle"), (title, 0.8, "title")]
                            + items, footer=f"{site}{page}.html")
                for section, png in figs:
                    _figure_slide(pdf, section, png, f"Chapter {number}: {title}  ·  {site}{page}.html")
                    count += 1
            info = pdf.infodict()
            info["Title"] = f"Gradient descent at the edge of stability, part {k}: {caption}"
            info["Author"] = "The eos-book authors (CC-BY-4.0)"
        written.append(path)
        rows.append(f'<li><a href="{path.name}">Part {k}: {html.escape(caption)}</a> '
                    f'({len(chapters)} chapters, {count} figures)</li>')
    (out / "index.html").write_text(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        "<title>Slides: Gradient descent at the edge of stability</title></head><body>"
        "<h1>Slides</h1><p>One PDF per part, made from the figures of the last book build "
        "(text and figures CC-BY-4.0).</p><ul>" + "".join(rows) + "</ul></body></html>\n")
    return written


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "_build" / "html" / "slides"), help="output folder")
    args = parser.parse_args(argv)
    for path in build(Path(args.out)):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
