"""Figures of the book: every function returns a :class:`matplotlib.figure.Figure`, never calls show.

**The rule.** A figure used by two chapters, or by a widget, lives here; a one-off
figure lives in its chapter, in a ``hide-input`` cell built from :func:`new_figure`,
:data:`COLORS` and :func:`threshold_line`. Functions below marked *one-off* are used
by a single chapter and move into it.

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

# ----------------------------------------------------------- chapter 1: gradient descent on quadratics

# one-off (chapter 1 only): moves into its chapter
def plot_quadratic_1d(products: Sequence[float] = (0.5, 1.5, 1.9, 2.1), steps: int = 25,
                      theta0: float = 1.0) -> Figure:
    """GD iterates θ_t on the 1-D quadratic L(θ) = ½λθ² for several values of ηλ.

    θ_t = (1 − ηλ)^t θ_0: monotone for ηλ < 1, sign-flipping and shrinking for
    1 < ηλ < 2, sign-flipping and growing for ηλ > 2.

    Args:
        products: values of ηλ, one panel each.
        steps: number of GD steps T.
        theta0: θ_0.
    """
    fig, axes = new_figure(ncols=len(products), panel_size=(2.6, 2.4), squeeze=False, sharey=True)
    for ax, p in zip(axes[0], products):
        thetas = quadratic.run(p, theta0, lr=1.0, steps=steps).thetas[:, 0]
        ax.plot(thetas, "o-", color=COLORS["gd"], markersize=3)
        ax.axhline(0.0, color=COLORS["flow"], linewidth=0.8)
        ax.set_title(rf"$\eta\lambda = {p:g}$, factor ${1 - p:+.2f}$")
        ax.set_xlabel("step $t$")
        ax.set_ylim(-2.0 * abs(theta0), 2.0 * abs(theta0))
    axes[0, 0].set_ylabel(r"$\theta_t$")
    return fig


# one-off (chapter 1 only): moves into its chapter
def plot_quadratic_2d(curvatures: tuple[float, float] = (1.0, 10.0), lrs: Sequence[float] = (0.08, 0.18, 0.205),
                      theta0: tuple[float, float] = (2.0, 1.0), steps: int = 30) -> Figure:
    """GD trajectories on contour plots of L(θ) = ½(λ_1θ_1² + λ_2θ_2²), one panel per step size.

    Args:
        curvatures: (λ_1, λ_2), the Hessian's eigenvalues (axis-aligned).
        lrs: step sizes η, one panel each; compare 2/η with λ_max = max(λ_1, λ_2).
        theta0: θ_0.
        steps: number of GD steps T.
    """
    A = np.diag(np.asarray(curvatures, dtype=np.float64))
    lam_max = float(max(curvatures))
    fig, axes = new_figure(ncols=len(lrs), panel_size=(3.0, 2.8), squeeze=False)
    extent = 1.4 * max(abs(theta0[0]), abs(theta0[1]))
    grid = np.linspace(-extent, extent, 201)
    X, Y = np.meshgrid(grid, grid)
    Z = 0.5 * (curvatures[0] * X**2 + curvatures[1] * Y**2)
    for ax, lr in zip(axes[0], lrs):
        thetas = quadratic.run(A, theta0, lr=lr, steps=steps).thetas
        ax.contour(X, Y, Z, levels=np.geomspace(Z.max() * 1e-3, Z.max(), 12), colors=COLORS["flow"],
                   linewidths=0.6)
        ax.plot(thetas[:, 0], thetas[:, 1], "o-", color=COLORS["gd"], markersize=2.5, linewidth=1.0)
        ax.plot(*theta0, "*", color=COLORS["start"], markersize=8)
        ax.set_xlim(-extent, extent)
        ax.set_ylim(-extent, extent)
        ax.set_aspect("equal")
        regime = "converges" if lam_max < quadratic.gd_threshold(lr) else "diverges"
        ax.set_title(rf"$\eta={lr:g}$, $2/\eta={2 / lr:.3g}$: {regime}")
        ax.set_xlabel(rf"$\theta_1$ ($\lambda_1={curvatures[0]:g}$)")
        ax.grid(False)
    axes[0, 0].set_ylabel(rf"$\theta_2$ ($\lambda_2={curvatures[1]:g}$)")
    return fig


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


# one-off (chapter 1 only): moves into its chapter
def plot_momentum_preview(lr: float = 0.1, betas: Sequence[float] = tuple(np.linspace(0.0, 0.95, 40)),
                          beta: float = 0.9, steps: int = 400) -> Figure:
    """Left: the largest stable curvature of GD, heavy ball and Nesterov against β.
    Right: |θ_t| at 0.98× and 1.02× each method's threshold (β = ``beta``) on a 1-D quadratic.

    Args:
        lr: step size η.
        betas: momentum values for the left panel.
        beta: momentum for the right panel.
        steps: number of steps T in the right panel.
    """
    betas = np.asarray(betas, dtype=np.float64)
    fig, (ax_thr, ax_run) = new_figure(ncols=2)
    for method in quadratic.METHODS:
        ax_thr.plot(betas, [quadratic.threshold(method, lr, b) for b in betas], color=COLORS[method],
                    label=METHOD_LABELS[method])
    ax_thr.set_xlabel(r"momentum $\beta$")
    ax_thr.set_ylabel(r"largest stable curvature $\lambda$")
    ax_thr.set_title(rf"stability thresholds, $\eta = {lr:g}$")
    ax_thr.legend()

    for method in quadratic.METHODS:
        b = 0.0 if method == "gd" else beta
        limit = quadratic.threshold(method, lr, b)
        for factor, style in ((0.98, "-"), (1.02, ":")):
            thetas = quadratic.run(factor * limit, 1.0, lr=lr, steps=steps, method=method, beta=b).thetas[:, 0]
            ax_run.semilogy(_positive(np.abs(thetas)), style, color=COLORS[method], linewidth=1.0,
                            label=METHOD_LABELS[method] if factor < 1 else None)
    ax_run.set_xlabel("step $t$")
    ax_run.set_ylabel(r"$|\theta_t|$")
    ax_run.set_title(rf"$\beta={beta:g}$: 0.98× (solid), 1.02× (dotted) threshold")
    ax_run.legend(loc="upper left")
    return fig

# ----------------------------------------------------------- chapter 2: sharpness, the spectrum and eigensolvers

# one-off (chapter 2 only): moves into its chapter
def plot_spectrum_and_solvers(eigenvalues, hvps_lanczos, err_lanczos, hvps_power, err_power,
                              tol: float = 1e-3) -> Figure:
    """Left: the dense Hessian's spectrum. Right: relative error of λ_max against Hessian-vector products.

    Args:
        eigenvalues: all eigenvalues of the (dense) Hessian.
        hvps_lanczos, err_lanczos: products m and |θ_m − λ_max|/λ_max of Lanczos' top Ritz value.
        hvps_power, err_power: the same for power iteration's Rayleigh quotient.
        tol: accuracy level drawn as a dotted line.
    """
    ev = np.sort(np.asarray(eigenvalues, dtype=np.float64))
    fig, (ax_spec, ax_err) = new_figure(ncols=2, panel_size=(4.0, 3.1))
    ax_spec.hist(ev, bins=80, color=COLORS["flow"], log=True)
    ax_spec.axvline(ev[-1], color=COLORS["lambda_max"], linewidth=1.0, label=rf"$\lambda_{{\max}} = {ev[-1]:.3f}$")
    ax_spec.axvline(ev[0], color=COLORS["lambda_min"], linewidth=1.0, label=rf"$\lambda_{{\min}} = {ev[0]:.3f}$")
    ax_spec.set(xlabel="eigenvalue of $\\nabla^2 L$", ylabel="count", title=f"dense Hessian, P = {len(ev)}")
    ax_spec.legend()
    ax_err.semilogy(hvps_lanczos, _positive(err_lanczos), "o-", markersize=2.5, color=COLORS["lanczos"], label="Lanczos")
    ax_err.semilogy(hvps_power, _positive(err_power), "-", color=COLORS["power_iteration"], label="power iteration")
    ax_err.axhline(tol, color=COLORS["threshold"], linestyle=":", linewidth=1.0, label=f"{tol:g}")
    ax_err.set(xlabel="Hessian-vector products", ylabel=r"relative error of $\lambda_{\max}$",
               title="accuracy against cost")
    ax_err.legend()
    return fig

# ----------------------------------------------------------- chapter 3: progressive sharpening and gradient flow

# one-off (chapter 3 only): moves into its chapter
def plot_sharpening(paths, labels, *, title: str | None = None) -> Figure:
    """Train loss and sharpness against time τ = t·η for runs or recorded paths.

    Each entry is a :class:`eoslib.train.Run` (``train_loss``, ``sharpness_steps``,
    ``sharpness``, ``config.lr``) or a :class:`eoslib.flow.Trajectory` (its ``run``).
    """
    fig, (ax_loss, ax_sharp) = new_figure(ncols=2)
    for i, (p, label) in enumerate(zip(paths, labels)):
        run = getattr(p, "run", p)
        lr, values = run.config.lr, _floats(run.sharpness)
        loss = _floats(run.train_loss)
        ax_loss.semilogy(np.arange(len(loss)) * lr, _positive(loss), color=_sequence(i), label=label)
        ax_sharp.plot(np.asarray(run.sharpness_steps, dtype=np.float64)[: len(values)] * lr, values,
                      color=_sequence(i), label=label)
    ax_loss.set(xlabel=r"time $\tau = t\eta$", ylabel="train loss")
    ax_sharp.set(xlabel=r"time $\tau = t\eta$", ylabel=r"sharpness $\lambda_{\max}$")
    ax_sharp.legend()
    if title:
        fig.suptitle(title)
    return fig


# one-off (chapter 3 only): moves into its chapter
def plot_sharpening_grid(groups: dict) -> Figure:
    """One panel per factor: sharpness against time τ for each value of the factor.

    Args:
        groups: ``{factor name: [(label, run), ...]}`` with :class:`eoslib.train.Run` objects.
    """
    fig, axes = new_figure(ncols=len(groups), panel_size=(3.2, 2.8), squeeze=False, sharey=True)
    for ax, (name, entries) in zip(axes[0], groups.items()):
        for i, (label, run) in enumerate(entries):
            times = np.asarray(run.sharpness_steps) * run.config.lr
            ax.plot(times, run.sharpness, "o-", markersize=2.5, color=_sequence(i), label=label)
        ax.set(xlabel=r"time $\tau = t\eta$", title=name)
        ax.legend()
    axes[0, 0].set_ylabel(r"sharpness $\lambda_{\max}$")
    return fig


# one-off (chapter 3 only): moves into its chapter
def plot_flow_vs_gd(flow_path, gd_paths, distances, crossings) -> Figure:
    """Left: sharpness against time for the gradient-flow proxy and GD runs, with their 2/η.
    Right: distance ‖θ_GD(τ) − θ_flow(τ)‖ / ‖θ_flow(τ) − θ_0‖, with each run's crossing time.

    Args:
        flow_path: the small-η path; gd_paths: larger-η paths.
        distances: one ``(times, dist)`` pair per GD path (:func:`eoslib.flow.distances`).
        crossings: time at which each GD run's sharpness first reached its 2/η (None: never;
            no line is drawn).
    """
    fig, (ax_sharp, ax_dist) = new_figure(ncols=2)
    ax_sharp.plot(flow_path.times, flow_path.sharpness, color=COLORS["flow"], linewidth=2.5,
                  label=rf"flow proxy, $\eta = {flow_path.run.config.lr:g}$")
    for i, (p, (t, d), tc) in enumerate(zip(gd_paths, distances, crossings)):
        color = _sequence(i)
        lr = p.run.config.lr
        ax_sharp.plot(p.times, p.sharpness, color=color, label=rf"GD, $\eta = {lr:g}$")
        ax_sharp.axhline(2 / lr, color=color, linestyle="--", linewidth=1.0)
        ax_dist.plot(t, d, color=color, label=rf"$\eta = {lr:g}$")
        if _finite(tc):
            ax_dist.axvline(tc, color=color, linestyle=":", linewidth=1.0)
    ax_sharp.set(xlabel=r"time $\tau = t\eta$", ylabel=r"sharpness $\lambda_{\max}$",
                 title=r"dashed: $2/\eta$")
    ax_sharp.legend()
    ax_dist.set(xlabel=r"time $\tau = t\eta$", ylabel="relative distance to the flow proxy",
                title=r"dotted: sharpness reaches $2/\eta$")
    ax_dist.legend()
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


def plot_normalized_sharpness(runs: Sequence, labels: Sequence[str] | None = None, *,
                              band: tuple[float, float] = (0.95, 1.10), time: str = "step",
                              title: str | None = None) -> Figure:
    """:func:`plot_edge_ratio` with the band shaded by default (the old name, kept while chapters switch)."""
    return plot_edge_ratio(runs, labels, band=band, time=time, title=title)

# ----------------------------------------------------------- chapter 4: the oscillation

# one-off (chapter 4 only): moves into its chapter
def plot_loss_window(runs: Sequence, starts: Sequence[int | None], length: int = 60,
                     labels: Sequence[str] | None = None) -> Figure:
    """The training loss on a window of ``length`` steps after ``starts[i]`` (one panel per run),
    with the steps where the loss went *up* marked in :data:`COLORS` ``["alarm"]``.

    A start of ``None`` (e.g. a run that never crossed its threshold) shows the run's
    last ``length`` steps, and the panel's title says so.
    """
    fig, axes = new_figure(ncols=len(runs), panel_size=(2.8, 2.5), squeeze=False)
    labels = labels or [f"η = {r.config.lr:g}" for r in runs]
    for i, (ax, run, start, label) in enumerate(zip(axes[0], runs, starts, labels)):
        losses = _floats(run.train_loss)
        first = max(0, len(losses) - length) if start is None else int(start)
        t = np.arange(first, min(first + length, len(losses)))
        loss = losses[t]
        ax.plot(t, loss, "-", color=_sequence(i), linewidth=1.0)
        up = np.flatnonzero(np.diff(loss) > 0) + 1
        ax.plot(t[up], loss[up], "o", color=COLORS["alarm"], markersize=3, label="loss went up")
        ax.set(xlabel="step $t$", title=label if start is not None else f"{label} (never crossed: last steps)")
    axes[0, 0].set_ylabel(r"train loss $L(\theta_t)$")
    axes[0, 0].legend()
    return fig


# one-off (chapter 4 only): moves into its chapter
def plot_probe(probe) -> Figure:
    """The oscillation recorded by :func:`eoslib.analysis.gd_probe`.

    Left: the step's component along the top Hessian eigenvector,
    ⟨θ_{t+1} − θ_t, u_t⟩ (sign flips = oscillation). Right: the sharpness at the
    iterates θ_t, at the midpoints (θ_t + θ_{t+1})/2, and the curvature along
    the gradient gᵀHg/‖g‖², against 2/η.
    """
    fig, (ax_p, ax_s) = new_figure(ncols=2)
    t = np.arange(len(probe.projection))
    ax_p.axhline(0.0, color=COLORS["flow"], linewidth=0.8)
    ax_p.plot(t, probe.projection, "o-", color=COLORS["gd"], markersize=3, linewidth=0.8)
    ax_p.set(xlabel="step $t$", ylabel=r"$\langle \theta_{t+1} - \theta_t, u_t \rangle$",
             title="step along the top eigenvector $u_t$")
    ax_s.plot(t, probe.sharpness, "o-", color=COLORS["sequence"][0], markersize=3, label=r"$\lambda_{\max}$ at $\theta_t$")
    ax_s.plot(t, probe.mid_sharpness, "s-", color=COLORS["sequence"][1], markersize=3,
              label=r"$\lambda_{\max}$ at $(\theta_t+\theta_{t+1})/2$")
    ax_s.plot(t, probe.step_sharpness, "^-", color=COLORS["sequence"][2], markersize=3,
              label=r"$g^\top H g / \|g\|^2$ at $\theta_t$")
    threshold_line(ax_s, probe.threshold)
    ax_s.set(xlabel="step $t$", ylabel="curvature", title="curvatures vs $2/\\eta$")
    ax_s.legend(fontsize=7)
    return fig

# ----------------------------------------------------------- chapter 8: the two-layer scalar network

def _scalar_plane(ax, extent: float, model: str = "scalar") -> None:
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


# one-off (chapter 8 only): moves into its chapter
def plot_scalar_phase_portrait(lr: float = 0.1, inits: Sequence[tuple[float, float]] = ((4.3, 0.25), (4.9, 0.2), (1.0, 3.2)),
                               steps: int = 300, model: str = "scalar") -> Figure:
    """GD against gradient flow on the two-layer scalar network L(a, b) = ½(ab − 1)².

    Left: the (a, b) plane with the minima ab = 1 (black), gradient-flow paths
    (the hyperbolas a² − b² = const, dotted), GD iterates (dots) and the
    gradient-flow solution of each start (star). Right: the sharpness
    λ_max(∇²L(θ_t)) (thin) and the GFS sharpness S(θ_t) = √((a² − b²)² + 4)
    (thick) along GD, with 2/η dashed.

    Args:
        lr: step size η.
        inits: starting points (a_0, b_0).
        steps: GD steps T.
        model: ``"scalar"`` or ``"minimalist"`` (see :mod:`eoslib.scalar_net`).
    """
    from eoslib import scalar_net

    fig, (ax_plane, ax_sharp) = new_figure(ncols=2, panel_size=(4.0, 3.4))
    extent = 1.15 * max(max(abs(a), abs(b)) for a, b in inits)
    _scalar_plane(ax_plane, extent, model)
    for i, (a0, b0) in enumerate(inits):
        color = COLORS["sequence"][i % len(COLORS["sequence"])]
        traj = scalar_net.gd(a0, b0, lr, steps, model)
        ax_plane.plot(traj.a, traj.b, "o-", color=color, markersize=2, linewidth=0.4)
        a_star, b_star = scalar_net.gf_limit(a0, b0, model)
        ax_plane.plot(a_star, b_star, "*", color=color, markersize=10, markeredgecolor=COLORS["start"])
        ax_sharp.plot(traj.sharpness(), color=color, linewidth=0.6, alpha=0.6)
        ax_sharp.plot(traj.gfs_sharpness(), color=color, linewidth=2.0, label=f"start ({a0:g}, {b0:g})")
    threshold_line(ax_sharp, 2 / lr)
    ax_plane.set(xlabel="$a$", ylabel="$b$", title=rf"GD ($\eta={lr:g}$) vs gradient flow")
    ax_sharp.set(xlabel="step $t$", ylabel="sharpness",
                 title="thick: GFS sharpness $S(\\theta_t)$; thin: $\\lambda_{\\max}$")
    ax_sharp.legend(fontsize=7)
    return fig


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
    _scalar_plane(ax_plane, extent, model)
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


# one-off (chapter 8 only): moves into its chapter
def plot_scalar_bifurcation(lrs, inits: dict, steps: int = 3000) -> Figure:
    """Where GD ends, as a function of η: one panel per model.

    For each step size η, GD runs ``steps`` steps from a fixed start; the panel
    shows the sharpness of the limit times η/2 (1 is the edge of stability,
    dashed), the start's GFS sharpness times η/2 (grey: where gradient flow
    would land), and a cross at the top where GD did not converge. Below
    η = 2/S(θ_0) GD lands where gradient flow does; above it the limit splits
    off from the grey line: this is the bifurcation.

    Args:
        lrs: step sizes η.
        inits: ``{model: (a0, b0)}`` for the models of :mod:`eoslib.scalar_net`.
        steps: GD steps per run.
    """
    from eoslib import scalar_net

    lrs = np.asarray(lrs, dtype=np.float64)
    fig, axes = new_figure(ncols=len(inits), panel_size=(4.0, 3.0), squeeze=False)
    for ax, (model, (a0, b0)) in zip(axes[0], inits.items()):
        _, products, final = scalar_net.bifurcation(lrs, a0, b0, steps, 8, model)
        converged = np.all(np.abs(np.nan_to_num(products, nan=np.inf) - 1) < 1e-6, axis=1)
        ax.plot(lrs[converged], final[converged] * lrs[converged] / 2, ".", color=COLORS["gd"], markersize=3,
                label="limit of GD")
        ax.plot(lrs[~converged], np.full((~converged).sum(), 1.5), "x", color=COLORS["alarm"], markersize=3,
                label="no convergence")
        ax.plot(lrs, scalar_net.gfs_sharpness(a0, b0, model) * lrs / 2, color=COLORS["flow"],
                label="gradient-flow solution")
        threshold_line(ax, 1.0, label=r"$2/\eta$")
        ax.set(xlabel=r"step size $\eta$", ylabel=r"sharpness $\times\,\eta/2$", ylim=(0.0, 1.6),
               title=f"{model}: start ({a0:g}, {b0:g})")
        ax.legend(fontsize=7, loc="lower right")
    return fig
