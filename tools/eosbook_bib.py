"""Author-year labels for the book's bibliography, shared by the HTML book and the notebooks.

The HTML book cites ``(Cohen et al., 2021)`` (sphinxcontrib-bibtex, author-year style with
round brackets, registered in tools/eosbook_sphinx.py) and its bibliography page labels each
entry the same way; the generated notebooks (tools/make_notebooks.py) write the same
citations as plain text. One function makes the label, so the three always agree.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from pybtex.database import parse_file
from pybtex.richtext import Text
from pybtex.style.labels import BaseLabelStyle


def _last(person) -> str:
    """A person's last name as printed: 'von Neumann', braces removed."""
    return " ".join(str(Text.from_latex(p)) for p in person.prelast_names + person.last_names)


def authors_text(entry) -> str:
    """'Cohen', 'Cohen and Kaur', or 'Cohen et al.' (editors when there are no authors)."""
    people = entry.persons.get("author") or entry.persons.get("editor") or []
    names = [_last(p) for p in people]
    if not names:
        return str(entry.fields.get("organization", entry.fields.get("title", "Anonymous")))
    if len(names) == 1:
        return names[0]
    if len(names) == 2:
        return f"{names[0]} and {names[1]}"
    return f"{names[0]} et al."


def labels(entries) -> dict[str, tuple[str, str]]:
    """key → (authors, year), with 2021a/2021b when two entries would read the same."""
    base = {key: (authors_text(e), str(e.fields.get("year", "n.d."))) for key, e in entries.items()}
    groups = defaultdict(list)
    for key, value in base.items():
        groups[value].append(key)
    result = dict(base)
    for (authors, year), keys in groups.items():
        if len(keys) > 1:
            for i, key in enumerate(sorted(keys)):
                result[key] = (authors, year + "abcdefghijklmnopqrstuvwxyz"[i])
    return result


def label(entry, all_labels: dict[str, tuple[str, str]] | None = None) -> str:
    """The bibliography label of one entry: 'Cohen et al., 2021'."""
    authors, year = (all_labels or {}).get(entry.key, (authors_text(entry), str(entry.fields.get("year", ""))))
    return f"{authors}, {year}"


class AuthorYearLabelStyle(BaseLabelStyle):
    """pybtex label style: 'Cohen et al., 2021' (disambiguated over the entries it is given)."""

    def format_labels(self, sorted_entries):
        sorted_entries = list(sorted_entries)
        table = labels({e.key: e for e in sorted_entries})
        for entry in sorted_entries:
            yield label(entry, table)


def load(bib: str | Path):
    """The entries of a .bib file (a pybtex BibliographyData)."""
    return parse_file(str(bib), bib_format="bibtex")


def formatted_entries(bib: str | Path, keys) -> list[tuple[str, str]]:
    """(label, markdown text) of each cited key, formatted by pybtex's plain style, sorted by label."""
    from pybtex.style.formatting.plain import Style

    data = load(bib)
    table = labels(data.entries)
    wanted = [k for k in dict.fromkeys(keys) if k in data.entries]
    style = Style()
    out = []
    for key in wanted:
        entry = data.entries[key]
        text = style.format_entry(label(entry, table), entry).text.render_as("markdown")
        out.append((label(entry, table), text))
    return sorted(out, key=lambda item: item[0].lower())
