"""Widgets never stall headless execution, and every explorer matches its static figure.

ipywidgets' ``interact`` stalls headless notebook execution in about 5% of runs
(jupyter/nbclient#312), which would make the book build flaky. eoslib's explorers
avoid it (plain widgets + ``observe`` + ``Image``); this test proves it by executing
a notebook that builds and drives every explorer in :data:`eoslib.widgets.EXPLORERS`
headlessly ``EOSLIB_WIDGET_RUNS`` times (default 30; ``make test WIDGET_RUNS=...``),
each in a fresh kernel with a short per-cell timeout, and asserting zero stalls.
"""

from __future__ import annotations

import inspect
import os
import time

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

from eoslib import plot, widgets

RUNS = int(os.environ.get("EOSLIB_WIDGET_RUNS", "30"))
CELL_TIMEOUT_S = 120  # generous: a stall hangs forever, a slow shared CPU must not count as one

# Each run: build every explorer, display it (comm messages to the frontend) and move its
# first control once (a redraw from an observe callback). Every control is exercised once,
# in-process, by test_every_control_updates_the_figure.
DRIVE = '''from eoslib import widgets
for name, build in widgets.EXPLORERS.items():
    box = build()
    display(box)
    control = next(iter(box.controls.values()))
    before = bytes(box.image.value)
    control.value = control.max
    assert bytes(box.image.value) != before, name
print("drove", len(widgets.EXPLORERS), "explorers")'''


def drive_notebook():
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(DRIVE)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


def test_explorers_never_stall_headless(record_property):
    stalls, errors, seconds = [], [], []
    for run in range(RUNS):
        nb = drive_notebook()
        start = time.perf_counter()
        try:
            NotebookClient(nb, timeout=CELL_TIMEOUT_S, kernel_name="python3", startup_timeout=120).execute()
        except (CellTimeoutError, DeadKernelError, TimeoutError) as e:
            stalls.append((run, type(e).__name__))
        except CellExecutionError as e:
            errors.append((run, str(e)[-300:]))
        seconds.append(time.perf_counter() - start)
    record_property("summary", f"widgets: {RUNS} headless runs of {len(widgets.EXPLORERS)} explorer(s): "
                               f"{len(stalls)} stalls, {len(errors)} errors, {sum(seconds):.0f} s "
                               f"(max {max(seconds):.1f} s per run)")
    assert not errors, errors[0]
    assert not stalls, f"{len(stalls)}/{RUNS} headless runs stalled: {stalls}"


@pytest.mark.parametrize("name", sorted(widgets.EXPLORERS))
def test_every_control_updates_the_figure(name):
    box = widgets.EXPLORERS[name]()
    assert bytes(box.image.value).startswith(b"\x89PNG")
    for control in box.controls.values():
        before = bytes(box.image.value)
        if hasattr(control, "max"):
            control.value = control.max if control.value != control.max else control.min
        else:
            control.value = next(v for _, v in control.options if v != control.value)
        assert bytes(box.image.value) != before, (name, control.description)


def test_gd_explorer_defaults_match_static_figure():
    """The book shows plot.plot_gd_explorer() at its defaults; the widget must start there."""
    static = inspect.signature(plot.plot_gd_explorer).parameters
    live = inspect.signature(widgets.gd_explorer).parameters
    for name in live:
        assert live[name].default == static[name].default, name
    box = widgets.gd_explorer()
    for name, control in box.controls.items():
        assert control.value == static[name].default, name


def test_gd_explorer_figure_renders():
    fig = plot.plot_gd_explorer()
    assert fig._repr_png_().startswith(b"\x89PNG")
