"""Claim checks: the book's assertions, printed with their value, criterion and margin.

Every experiment in the book ends with a *claim check*: a measured number and the
range the chapter claims for it. :func:`check` prints one line per claim,

    ✓ median λ_max·η/2 after crossing = 1.012   criterion [0.95, 1.1]   margin 6.5%

and raises ``AssertionError`` (one readable line) when the value is outside the
range or was not measured at all (``None`` or NaN). The *margin* is the distance
to the nearest bound relative to that bound, ``(x − lo)/|lo|`` or
``(hi − x)/|hi|``: a claim that passes with a margin of a few percent sits at a
knife edge and is not a robust statement about the phenomenon.

:func:`glue` hands a number to the book's text (myst-nb's ``glue``) so prose
quotes the reader's own run; outside a book build (Jupyter, Colab) it does
nothing visible.

Every printed line starts with ✓ (holds) or ✗ (fails), so the claim checks of a
build can be collected from the executed notebooks' outputs (the book's status page).
"""

from __future__ import annotations

import math
import re
import textwrap
from dataclasses import dataclass

WIDTH = 88  # characters of the book's code column: printed lines are wrapped to it


@dataclass(frozen=True)
class Claim:
    """One checked claim: ``low ≤ value ≤ high`` (a missing bound is ±∞)."""

    name: str
    value: float | None
    low: float | None
    high: float | None

    @property
    def measured(self) -> bool:
        return self.value is not None and not (isinstance(self.value, float) and math.isnan(self.value))

    @property
    def holds(self) -> bool:
        if not self.measured:
            return False
        return (self.low is None or self.value >= self.low) and (self.high is None or self.value <= self.high)

    @property
    def margin(self) -> float:
        """Distance to the nearest bound, relative to it (negative when violated); inf with no bound.

        Against a bound of 0 the distance is absolute (see :meth:`margin_text`).
        """
        if not self.measured:
            return -math.inf
        gaps = []
        if self.low is not None:
            gaps.append((self.value - self.low) / (abs(self.low) or 1.0))
        if self.high is not None:
            gaps.append((self.high - self.value) / (abs(self.high) or 1.0))
        return min(gaps, default=math.inf)

    def margin_text(self) -> str:
        """The margin as printed: a percentage, or an absolute distance against a bound of 0."""
        bounds = [b for b in (self.low, self.high) if b is not None]
        nearest = min(bounds, key=lambda b: abs(self.value - b))
        return f"margin {self.margin:.3g} (absolute)" if nearest == 0 else f"margin {self.margin:.1%}"

    def criterion(self) -> str:
        if self.low is not None and self.high is not None:
            return f"[{self.low:.4g}, {self.high:.4g}]"
        if self.low is not None:
            return f"≥ {self.low:.4g}"
        return f"≤ {self.high:.4g}"

    def __str__(self) -> str:
        value = f"{self.value:.4g}" if self.measured else "not measured"
        mark = "✓" if self.holds else "✗"
        margin = self.margin_text() if self.measured else ""
        # a wrapped line breaks between the parts, never inside "= value", "criterion …" or "margin …"
        parts = [f"= {value}", f"criterion {self.criterion()}", margin]
        line = f"{mark} {self.name} " + "   ".join(p.replace(" ", "\xa0") for p in parts if p)
        return textwrap.fill(line, WIDTH, subsequent_indent="    ", break_long_words=False).replace("\xa0", " ")

    def _ipython_display_(self) -> None:
        """A cell ending in ``check(...)`` shows the printed line only, not the object again."""


def check(name: str, value, *, low: float | None = None, high: float | None = None) -> Claim:
    """Print and assert the claim ``low ≤ value ≤ high``.

    Args:
        name: what was measured, as the reader should read it.
        value: the measured number (``None`` or NaN: not measured, the claim fails).
        low, high: the claimed range; give at least one.

    Returns:
        The :class:`Claim` (when it holds).

    >>> round(check("sign flips", 0.9, low=0.75).margin, 3)
    ✓ sign flips = 0.9   criterion ≥ 0.75   margin 20.0%
    0.2
    >>> check("ratio", None, low=0.8)
    Traceback (most recent call last):
    ...
    AssertionError: ratio was not measured (criterion ≥ 0.8)
    """
    if low is None and high is None:
        raise ValueError("a claim needs a lower or an upper bound")
    if value is not None:
        value = float(value)
    claim = Claim(name, value, None if low is None else float(low), None if high is None else float(high))
    print(claim)
    if not claim.measured:
        raise AssertionError(f"{name} was not measured (criterion {claim.criterion()})")
    if not claim.holds:
        raise AssertionError(f"{name} = {value:.4g} is outside the claimed {claim.criterion()}")
    return claim


class _Text(str):
    """A string that Jupyter displays without quotes (so ``{glue:}`name``` reads as plain text)."""

    def __repr__(self) -> str:
        return str(self)

    def _repr_pretty_(self, printer, cycle) -> None:  # IPython's text/plain
        printer.text(str(self))


_CLAIM_START = re.compile(r"\s*[✓✗]\s")
_CLAIM_END = re.compile(r"margin (-?[\d.]+|-?inf)(%| \(absolute\))|not measured.*criterion \S")


def read_lines(text: str) -> list[str]:
    """The claim lines in printed output, each unwrapped into one line (the inverse of ``str(Claim)``).

    A claim line starts with ✓ or ✗; a wrapped one continues on lines indented by four
    spaces until it is complete (its margin is printed, or "not measured" and its criterion),
    so indented output printed right after a claim is not taken for part of it.

    >>> read_lines("✓ a = 1   criterion ≤ 2\\n    margin 50.0%\\n    a table row\\n✗ b = 3   criterion ≤ 2   margin -50.0%")
    ['✓ a = 1   criterion ≤ 2 margin 50.0%', '✗ b = 3   criterion ≤ 2   margin -50.0%']
    """
    claims: list[str] = []
    open_claim = False
    for line in text.splitlines():
        if _CLAIM_START.match(line):
            claims.append(line.strip())
        elif open_claim and line.startswith("    ") and line.strip():
            claims[-1] += " " + line.strip()
        else:
            open_claim = False
            continue
        open_claim = not _CLAIM_END.search(claims[-1])
    return claims


def glue(name: str, value, fmt: str = "{:.3g}") -> str:
    """Give ``value`` (formatted with ``fmt``) to the book's text as ``{glue:}`name```; return the text.

    In a book build this is myst-nb's ``glue(name, text, display=False)``; elsewhere
    (Jupyter, Colab, where myst-nb is not installed) it only returns the text.

    >>> glue("demo", 0.123456)
    '0.123'
    """
    text = fmt.format(value) if value is not None else "n/a"
    try:
        from myst_nb import glue as _glue
    except ImportError:  # Colab / plain Jupyter: the prose shows the placeholder, the cell output the value
        return text
    _glue(name, _Text(text), display=False)
    return text
