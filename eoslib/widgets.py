"""Optional ipywidgets explorers: sliders wired to a pure :mod:`eoslib.plot` function.

ipywidgets is imported lazily, inside the functions, so ``import eoslib.widgets``
works without it. Each explorer is built from plain widgets connected with
``observe`` and shows the figure as a PNG in an ``ipywidgets.Image``; it never
uses ``interact``/``interactive`` (which can stall headless notebook execution,
jupyter/nbclient#312) nor an ``Output`` widget. Every explorer has a static
twin in :mod:`eoslib.plot` with the same defaults, which the book shows so that
it reads without a kernel.

Register new explorers in :data:`EXPLORERS`: tests/test_widgets_headless.py builds
and drives every entry headlessly many times.
"""

from __future__ import annotations

from eoslib import plot, quadratic

DPI = 80  # resolution of live figures: lower than the book's, so that sliders stay responsive


def _explorer(controls: dict, draw, describe):
    """Wire ``controls`` (name → widget) to a figure and a status line, with ``observe``.

    ``draw(values)`` returns a Figure and ``describe(values)`` a short HTML string, where
    ``values`` maps each control's name to its value. Returns a ``VBox`` with attributes
    ``controls`` and ``image``.
    """
    import ipywidgets as w

    image, status = w.Image(format="png"), w.HTML()

    def redraw(_change=None) -> None:
        values = {name: control.value for name, control in controls.items()}
        image.value = plot.to_png(draw(values), dpi=DPI)
        status.value = describe(values)

    for control in controls.values():
        control.observe(redraw, names="value")
    redraw()
    box = w.VBox([w.HBox([w.VBox(list(controls.values())), status]), image])
    box.controls, box.image = controls, image
    return box


def gd_explorer(lr: float = 0.1, curvature: float = 15.0, method: str = "gd", beta: float = 0.9,
                steps: int = 40):
    """Sliders for η, λ, β and a method menu driving :func:`eoslib.plot.plot_gd_explorer`.

    Move λ across 1/η (sign flips start) and 2/η (divergence); switch to momentum
    to see the threshold move to (2 + 2β)/η (heavy ball) or (2 + 2β)/((1 + 2β)η) (Nesterov).

    Returns:
        An ``ipywidgets.VBox``; ``box.controls`` maps parameter names to their widgets
        and ``box.image`` is the ``Image`` showing the current figure.
    """
    import ipywidgets as w

    style = {"description_width": "initial"}
    layout = w.Layout(width="320px")
    controls = {
        "lr": w.FloatSlider(value=lr, min=0.01, max=0.3, step=0.005, readout_format=".3f",
                            description="step size η", style=style, layout=layout),
        "curvature": w.FloatSlider(value=curvature, min=0.5, max=50.0, step=0.5,
                                   description="curvature λ", style=style, layout=layout),
        "method": w.Dropdown(options=[(plot.METHOD_LABELS[m], m) for m in quadratic.METHODS], value=method,
                             description="method", style=style, layout=layout),
        "beta": w.FloatSlider(value=beta, min=0.0, max=0.99, step=0.01, description="momentum β",
                              style=style, layout=layout),
    }

    def describe(values: dict) -> str:
        limit = quadratic.threshold(values["method"], values["lr"], values["beta"])
        return (f"threshold = {limit:.3g}, λ/threshold = {values['curvature'] / limit:.3f}"
                f" (2/η = {quadratic.gd_threshold(values['lr']):.3g})")

    return _explorer(controls, lambda values: plot.plot_gd_explorer(steps=steps, **values), describe)


def scalar_net_explorer(lr: float = 0.1, a0: float = 4.6, b0: float = 0.2, steps: int = 200,
                        model: str = "scalar"):
    """Sliders for η and the start (a₀, b₀) driving :func:`eoslib.plot.plot_scalar_explorer`.

    GD on the two-layer scalar network L(a, b) = ½(ab − 1)² (or the minimalist
    example): move η or the start until the GFS sharpness √((a₀² − b₀²)² + 4)
    exceeds 2/η and watch GD oscillate, shrink a² − b² and land below 2/η.

    Returns:
        An ``ipywidgets.VBox``; ``box.controls`` maps parameter names to their widgets
        and ``box.image`` is the ``Image`` showing the current figure.
    """
    import ipywidgets as w

    from eoslib import scalar_net

    style = {"description_width": "initial"}
    layout = w.Layout(width="320px")
    controls = {
        "lr": w.FloatSlider(value=lr, min=0.01, max=0.4, step=0.005, readout_format=".3f",
                            description="step size η", style=style, layout=layout),
        "a0": w.FloatSlider(value=a0, min=0.1, max=6.0, step=0.05, description="start a₀", style=style,
                            layout=layout),
        "b0": w.FloatSlider(value=b0, min=0.05, max=6.0, step=0.05, description="start b₀", style=style,
                            layout=layout),
        "model": w.Dropdown(options=[("scalar net ½(ab−1)²", "scalar"), ("minimalist ¼(x²y²−1)²", "minimalist")],
                            value=model, description="loss", style=style, layout=layout),
    }

    def describe(values: dict) -> str:
        gfs = float(scalar_net.gfs_sharpness(values["a0"], values["b0"], values["model"]))
        return (f"2/η = {2 / values['lr']:.3g}, GFS sharpness at the start = {gfs:.3g}"
                f" ({'above' if gfs > 2 / values['lr'] else 'below'} 2/η)")

    return _explorer(controls, lambda values: plot.plot_scalar_explorer(steps=steps, **values), describe)


#: Every explorer, by name (the headless stall test iterates over this).
EXPLORERS = {"gd_explorer": gd_explorer, "scalar_net_explorer": scalar_net_explorer}
