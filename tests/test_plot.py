"""eoslib.plot: every figure draws from what the library returns, and a missing value never raises."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest

from eoslib import plot


def _run(lr=0.1, n=50, crossed=True, threshold=None):
    steps = list(range(0, n, 10))
    sharp = [(2 / lr) * (0.8 + 0.1 * i) if crossed else 1.0 for i in range(len(steps))]
    return SimpleNamespace(config=SimpleNamespace(lr=lr), train_loss=[1.0 / (t + 1) for t in range(n)],
                           sharpness_steps=steps, sharpness=sharp, extras={"step_sharpness": sharp},
                           threshold=2 / lr if threshold is None else threshold)


def _texts(fig):
    return [t.get_text() for ax in fig.axes for t in ax.texts + [ax.title]]


def test_shared_figures_draw_runs():
    runs = [_run(0.1), _run(0.2)]
    for fig in [plot.plot_runs(runs), plot.plot_runs(runs, metric="step_sharpness"),
                plot.plot_edge_ratio(runs, band=(0.95, 1.1)), plot.plot_edge_ratio(runs, time="flow")]:
        assert len(plot.to_png(fig)) > 1000


def test_missing_values_are_left_out_not_raised():
    """None crossings, JSON nulls, a NaN threshold, a metric a run did not record: drawn without them."""
    nulls = _run()
    nulls.train_loss[3] = None
    nulls.sharpness[1] = None
    nan_thr = _run(threshold=math.nan)
    plot.to_png(plot.plot_runs([nulls, nan_thr], metric="batch_sharpness"))
    plot.to_png(plot.plot_edge_ratio([nulls, nan_thr], band=(0.95, 1.1)))


def test_colours_have_one_meaning_and_figures_use_only_them():
    import inspect
    import re

    source = inspect.getsource(plot)
    body = source[source.index("class BookFigure"):]
    assert not re.search(r"#[0-9a-fA-F]{6}", body), "hex colours outside COLORS"
    assert not re.search(r"""["'][a-z]?[kbgrcmy]\*?["']""", body.replace('"o-"', "").replace('"s-"', "")
                         .replace('"^-"', "").replace('"x"', "").replace('"*"', "")), "single-letter colours"
    # black is the neutral ink of thresholds (dashed lines) and starting points (stars); every
    # other colour carries one meaning
    single = [v for v in plot.COLORS.values() if isinstance(v, str) and v != "#000000"]
    assert len(set(single)) == len(single), "two meanings share one colour"
    assert plot.STYLE["savefig.dpi"] >= 200


@pytest.mark.parametrize("name", ["plot_gd_explorer", "plot_scalar_explorer"])
def test_figures_with_defaults_render(name):
    assert len(plot.to_png(getattr(plot, name)())) > 1000
