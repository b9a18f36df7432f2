"""Figures of the book: every function returns a :class:`matplotlib.figure.Figure`, never calls show.

**The rule.** A figure used by two chapters, or by a widget, lives here; a one-off
figure lives in its chapter, in a ``hide-input`` cell built from :func:`new_figure`,
:data:`COLORS` and :func:`threshold_line`.

Figures are built with :func:`new_figure` (a plain ``Figure``, not pyplot), so they
never leak into pyplot's global state and are shown exactly once: as a cell's
value, with ``display(fig)``, or saved with ``fig.savefig``. The shared look
lives in :data:`STYLE` (fonts sized to stay legible when a two- or three-panel
figure is shown at phone width; PNGs at 200 dpi for print), and every colour comes
from :data:`COLORS`, where each entry has one meaning throughout the book.

Sections follow the chapters. Functions take what the library returns (runs,
trajectories, probes) and draw what is there: a missing value (a run that never
crossed, a ``None`` from a JSON record) is left out, never an error.

Notation shared with the book: η step size, λ curvature (an eigenvalue of the
Hessian ∇²L), λ_max the sharpness, 2/η the GD stability threshold.
"""

from __future__ import annotations

import math
from typing import Sequence

import matplotlib as mpl
import numpy as np
from matplotlib.figure import Figure

from eoslib import quadratic


# ----------------------------------------------------------- style and helpers

STYLE = {
    "figure.dpi": 100,
    "savefig.dpi": 200,
    "savefig.bbox": "tight",
    "font.size": 11,
    "axes.titlesize": 11,
    "axes.labelsize": 11,
    "xtick.labelsize": 10,
    "ytick.labelsize": 10,
    "legend.fontsize": 9,
    "figure.titlesize": 12,
    "legend.frameon": False,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "lines.linewidth": 1.6,
    "image.cmap": "viridis",
}

#: Colours, each with one meaning throughout the book.
COLORS = {
    "gd": "#1f77b4",               # gradient descent (chapters 1, 8: GD iterates)
    "heavy_ball": "#ff7f0e",       # heavy-ball momentum
    "nesterov": "#2ca02c",         # Nesterov momentum
    "flow": "#7f7f7f",             # gradient flow, contours and other reference curves
    "threshold": "#000000",        # stability thresholds such as 2/η (dashed)
    "start": "#000000",            # starting points θ_0 (stars) and the set of minima
    "alarm": "#d62728",            # something going wrong: a loss increase, no convergence
    "lambda_max": "#9467bd",       # the top Hessian eigenvalue in a spectrum
    "lambda_min": "#8c564b",       # the bottom Hessian eigenvalue in a spectrum
    "lanczos": "#17becf",          # the Lanczos eigensolver
    "power_iteration": "#bcbd22",  # the power-iteration eigensolver
    "gfs": "#e377c2",              # the gradient-flow-solution sharpness (chapter 8)
    "sequence": ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b"),  # runs 1, 2, 3, ...
}

#: Display names of the optimizers in :mod:`eoslib.quadratic`.
METHOD_LABELS = {"gd": "GD", "heavy_ball": "heavy ball", "nesterov": "Nesterov"}

PANEL_SIZE = (3.4, 2.8)  # inches per panel (width, height)


class BookFigure(Figure):
    """A ``Figure`` that Jupyter displays as PNG even when pyplot was never imported."""

    def _repr_png_(self) -> bytes:
        return to_png(self)


def to_png(fig: Figure, dpi: float | None = None) -> bytes:
    """Render a figure to PNG bytes in the book's style (``dpi`` defaults to STYLE's)."""
    import io

    buffer = io.BytesIO()
    with mpl.rc_context(STYLE):
        fig.savefig(buffer, format="png", dpi=dpi or STYLE["savefig.dpi"])
    return buffer.getvalue()


def new_figure(ncols: int = 1, nrows: int = 1, panel_size: tuple[float, float] = PANEL_SIZE,
               squeeze: bool = True, **subplot_kw):
    """A constrained-layout :class:`BookFigure` in the book's style and its axes.

    Args:
        ncols, nrows: grid of panels.
        panel_size: (width, height) of one panel in inches.
        squeeze: as in ``Figure.subplots``; False always returns a 2-D array of axes.
        **subplot_kw: passed to ``Figure.subplots`` (e.g. ``sharey=True``).

    Returns:
        ``(fig, axes)``: axes is one ``Axes`` for a single panel (with ``squeeze``), else an array.
    """
    with mpl.rc_context(STYLE):
        fig = BookFigure(figsize=(panel_size[0] * ncols, panel_size[1] * nrows), layout="constrained")
        axes = fig.subplots(nrows, ncols, squeeze=squeeze, **subplot_kw)
    return fig, axes


def threshold_line(ax, value: float, label: str | None = r"$2/\eta$", orientation: str = "h") -> None:
    """Dashed line marking a stability threshold (horizontal ``"h"`` or vertical ``"v"``)."""
    draw = ax.axhline if orientation == "h" else ax.axvline
    draw(value, color=COLORS["threshold"], linestyle="--", linewidth=1.0, label=label)


def _positive(values) -> np.ndarray:
    """Replace non-positive / non-finite values by NaN so that log axes skip them."""
    values = np.asarray(values, dtype=np.float64)
    return np.where(np.isfinite(values) & (values > 0), values, np.nan)


def _sequence(i: int) -> str:
    """Colour of the i-th run in a figure (:data:`COLORS` ``["sequence"]``, cycled)."""
    return COLORS["sequence"][i % len(COLORS["sequence"])]


def _finite(value) -> bool:
    """True for a finite number; False for None, NaN, ±inf."""
    return value is not None and isinstance(value, (int, float, np.number)) and math.isfinite(value)


def _floats(values) -> np.ndarray:
    """``values`` as a float64 array, ``None`` (a JSON null) becoming NaN."""
    return np.array([np.nan if v is None else v for v in values], dtype=np.float64)


# ----------------------------------------------------------- chapter 1: the GD explorer (widget twin)

def plot_gd_explorer(lr: float = 0.1, curvature: float = 15.0, method: str = "gd", beta: float = 0.9,
                     steps: int = 40, theta0: float = 1.0) -> Figure:
    """One optimizer on the 1-D quadratic L(θ) = ½λθ²: iterates on the parabola and the loss curve.

    The static counterpart of :func:`eoslib.widgets.gd_explorer` (same defaults).

    Args:
        lr: step size η.
        curvature: λ.
        method: ``"gd"``, ``"heavy_ball"`` or ``"nesterov"`` (see :mod:`eoslib.quadratic`).
        beta: momentum β (ignored by GD).
        steps: number of steps T.
        theta0: θ_0.
    """
    traj = quadratic.run(curvature, theta0, lr=lr, steps=steps, method=method, beta=beta)
    thetas, losses = traj.thetas[:, 0], traj.losses
    limit = quadratic.threshold(method, lr, beta)
    stable = curvature < limit
    fig, (ax_path, ax_loss) = new_figure(ncols=2)
    color = COLORS[method]

    extent = 2.0 * abs(theta0)
    grid = np.linspace(-extent, extent, 201)
    ax_path.plot(grid, 0.5 * curvature * grid**2, color=COLORS["flow"], linewidth=1.0)
    shown = np.abs(thetas) <= extent
    ax_path.plot(thetas[shown], losses[shown], "o-", color=color, markersize=3, linewidth=0.8)
    ax_path.set_xlim(-extent, extent)
    ax_path.set_ylim(-0.05 * curvature * extent**2, 0.55 * curvature * extent**2)
    ax_path.set_xlabel(r"$\theta$")
    ax_path.set_ylabel(r"$L(\theta) = \frac{1}{2}\lambda\theta^2$")
    ax_path.set_title(f"{METHOD_LABELS[method]}: " + ("converges" if stable else "diverges"))

    ax_loss.semilogy(_positive(losses), "o-", color=color, markersize=2.5)
    ax_loss.set_xlabel("step $t$")
    ax_loss.set_ylabel(r"loss $L(\theta_t)$")
    ax_loss.set_title(rf"$\lambda = {curvature:g}$, threshold ${limit:.3g}$ ($\eta={lr:g}$"
                      + (rf", $\beta={beta:g}$)" if method != "gd" else ")"))
    return fig


# ----------------------------------------------------------- chapters 4-9: training runs at the edge of stability

def plot_runs(runs: Sequence, labels: Sequence[str] | None = None, *, metric: str = "sharpness",
              title: str | None = None, show_threshold: bool = True, loss_scale: str = "log") -> Figure:
    """The standard edge-of-stability figure: train loss and sharpness against step.

    Left: the training loss of each run (log scale by default). Right: the
    recorded ``metric`` (``"sharpness"`` or a key of ``run.extras``) with a
    dashed line, in the run's colour, at the run's stability threshold
    (2/η for GD). Works for any objects with the fields of
    :class:`eoslib.train.Run` (``train_loss``, ``sharpness_steps``, ``sharpness``,
    ``extras``, ``threshold``); missing values (``None``, a metric a run did not
    record, a non-finite threshold) are left out of the figure, never an error.

    Args:
        runs: the runs, drawn in :data:`COLORS` ``["sequence"]`` order.
        labels: legend entries; default ``η = <lr>`` from each run's config.
        metric: which measurement to plot on the right.
        title: figure title.
        show_threshold: draw each run's threshold.
        loss_scale: ``"log"`` or ``"linear"``.

    Returns:
        The figure.
    """
    fig, (ax_loss, ax_sharp) = new_figure(ncols=2)
    labels = labels or [f"η = {r.config.lr:g}" for r in runs]
    for i, (run, label) in enumerate(zip(runs, labels)):
        color = _sequence(i)
        loss = _floats(run.train_loss)
        ax_loss.plot(np.arange(len(loss)), _positive(loss) if loss_scale == "log" else loss, color=color,
                     label=label)
        values = _floats(run.sharpness if metric == "sharpness" else run.extras.get(metric, []))
        ax_sharp.plot(np.asarray(run.sharpness_steps)[: len(values)], values, color=color, label=label)
        if show_threshold and _finite(run.threshold):
            ax_sharp.axhline(run.threshold, color=color, linestyle="--", linewidth=1.0)
    ax_loss.set(xlabel="step", ylabel="train loss", yscale=loss_scale)
    ax_sharp.set(xlabel="step", ylabel=metric.replace("_", " "))
    ax_sharp.legend(title="dashed: threshold" if show_threshold else None)
    if title:
        fig.suptitle(title)
    return fig


def plot_edge_ratio(runs: Sequence, labels: Sequence[str] | None = None, *,
                    band: tuple[float, float] | None = None, time: str = "step", title: str | None = None) -> Figure:
    """Sharpness in units of each run's threshold, λ_max/threshold (λ_max·η/2 for GD), against step or time.

    A run at the edge of stability settles at 1 (dashed) whatever its step size, so runs
    with different η share one axis. ``band`` shades the interval a chapter's claim check
    accepts (e.g. the median after crossing).

    Args:
        runs: objects with the fields of :class:`eoslib.train.Run`.
        labels: legend entries; default ``η = <lr>``.
        band: (low, high) interval to shade, or None.
        time: ``"step"`` (x = t) or ``"flow"`` (x = ηt, the gradient-flow time).
        title: axes title.

    Returns:
        The figure.
    """
    if time not in ("step", "flow"):
        raise ValueError(f"unknown time axis {time!r}; valid: step, flow")
    fig, ax = new_figure(panel_size=(4.6, 3.0))
    labels = labels or [f"η = {r.config.lr:g}" for r in runs]
    if band is not None:
        ax.axhspan(*band, color=COLORS["flow"], alpha=0.15, linewidth=0, label=f"[{band[0]:g}, {band[1]:g}]")
    for i, (run, label) in enumerate(zip(runs, labels)):
        values = _floats(run.sharpness)
        x = np.asarray(run.sharpness_steps, dtype=np.float64)[: len(values)]
        x = x * run.config.lr if time == "flow" else x
        ratio = values / run.threshold if _finite(run.threshold) else np.full(len(values), np.nan)
        ax.plot(x, ratio, color=_sequence(i), label=label)
    threshold_line(ax, 1.0, label=r"$\lambda_{\max}$ = threshold")
    ax.set(xlabel="step $t$" if time == "step" else r"time $\eta t$", ylabel=r"$\lambda_{\max}$ / threshold",
           title=title)
    ax.legend()
    return fig


# ----------------------------------------------------------- chapter 8: the two-layer scalar network

def scalar_plane(ax, extent: float, model: str = "scalar") -> None:
    """Draw the minimum set (solid) and gradient-flow paths a² − b² = c (dotted) on the (a, b) plane."""
    from eoslib import scalar_net

    grid = np.linspace(-0.2, extent, 301)
    A, B = np.meshgrid(grid, grid)
    ax.contour(A, B, scalar_net.imbalance(A, B), levels=np.linspace(-extent**2, extent**2, 25),
               colors=COLORS["flow"], linewidths=0.5, linestyles=":")
    ax.contour(A, B, scalar_net.residual(A, B, model), levels=[0.0], colors=COLORS["start"], linewidths=1.2)
    ax.set_xlim(-0.2, extent)
    ax.set_ylim(-0.2, extent)
    ax.set_aspect("equal")
    ax.grid(False)


def plot_scalar_explorer(lr: float = 0.1, a0: float = 4.6, b0: float = 0.2, steps: int = 200,
                         model: str = "scalar") -> Figure:
    """One GD run on the scalar network (or the minimalist example): path, loss and sharpness.

    The static twin of :func:`eoslib.widgets.scalar_net_explorer` (same defaults).
    Left: the path in the (a, b) plane. Middle: the loss. Right: the sharpness,
    the GFS sharpness and 2/η.
    """
    from eoslib import scalar_net

    traj = scalar_net.gd(a0, b0, lr, steps, model)
    fig, (ax_plane, ax_loss, ax_sharp) = new_figure(ncols=3, panel_size=(3.3, 3.0))
    extent = 1.3 * max(abs(a0), abs(b0), 1.5)
    scalar_plane(ax_plane, extent, model)
    ax_plane.plot(traj.a, traj.b, "o-", color=COLORS["gd"], markersize=2, linewidth=0.5)
    ax_plane.plot(a0, b0, "*", color=COLORS["start"], markersize=8)
    ax_plane.set(xlabel="$a$", ylabel="$b$")
    ax_loss.semilogy(_positive(scalar_net.loss(traj.a, traj.b, model)), color=COLORS["gd"])
    ax_loss.set(xlabel="step $t$", ylabel="loss")
    ax_sharp.plot(traj.sharpness(), color=COLORS["gd"], linewidth=0.8, label=r"$\lambda_{\max}$")
    ax_sharp.plot(traj.gfs_sharpness(), color=COLORS["gfs"], linewidth=2.0, label="GFS sharpness")
    threshold_line(ax_sharp, 2 / lr)
    ax_sharp.set(xlabel="step $t$", ylabel="sharpness")
    ax_sharp.legend()
    status = "converged" if bool(traj.converged) else "did not converge"
    final = float(scalar_net.sharpness(traj.a[-1], traj.b[-1], model))
    fig.suptitle(rf"$\eta={lr:g}$, start $({a0:g}, {b0:g})$: {status}"
                 + (rf", final sharpness $= {final * lr / 2:.3f} \times 2/\eta$" if bool(traj.converged) else ""))
    return fig
