"""eoslib.optim: PyTorch's optimizers obey the book's thresholds on a quadratic."""

import math

import pytest
import torch

from eoslib.optim import adam_preconditioner, make_optimizer, stability_threshold


def _final_distance(name: str, lr: float, curvature: float, momentum: float = 0.0, steps: int = 1000) -> float:
    """|θ_T| after running the real torch optimizer on L(θ) = ½ λ θ² from θ₀ = 1 (float64)."""
    theta = torch.nn.Parameter(torch.tensor([1.0], dtype=torch.float64))
    opt = make_optimizer(name, [theta], lr, momentum=momentum)
    for _ in range(steps):
        opt.zero_grad()
        (0.5 * curvature * theta.pow(2).sum()).backward()
        opt.step()
    return theta.abs().item()


@pytest.mark.parametrize("name,momentum", [("gd", 0.0), ("heavy_ball", 0.9), ("nesterov", 0.9), ("heavy_ball", 0.5),
                                           ("nesterov", 0.3), ("sgd", 0.7)])
def test_threshold_separates_convergence_from_divergence(name, momentum):
    lr = 0.01
    threshold = stability_threshold(name, lr, momentum)
    assert _final_distance(name, lr, 0.98 * threshold, momentum) < 1e-6
    far = _final_distance(name, lr, 1.02 * threshold, momentum)
    assert far > 1e6 or math.isinf(far) or math.isnan(far)


def test_threshold_values():
    assert stability_threshold("gd", 0.1) == pytest.approx(20.0)
    assert stability_threshold("heavy_ball", 0.1, 0.9) == pytest.approx(38.0)
    assert stability_threshold("nesterov", 0.1, 0.9) == pytest.approx(38.0 / 2.8)
    assert stability_threshold("adam", 0.1, beta1=0.9) == pytest.approx(380.0)


def test_thresholds_have_one_definition():
    """optim maps optimizers onto eoslib.quadratic's formulas; SGD with momentum is heavy ball."""
    from eoslib import quadratic

    for name, method, beta in [("gd", "gd", 0.0), ("sgd", "gd", 0.0), ("heavy_ball", "heavy_ball", 0.7),
                               ("sgd", "heavy_ball", 0.7), ("gd", "heavy_ball", 0.7), ("nesterov", "nesterov", 0.7)]:
        assert stability_threshold(name, 0.05, beta) == quadratic.threshold(method, 0.05, beta)
    assert set(quadratic.METHODS) <= set(__import__("eoslib.optim", fromlist=["OPTIMIZERS"]).OPTIMIZERS)


def test_bad_settings_raise():
    for args in [("gd", 0.0), ("gd", -1.0), ("lbfgs", 0.1)]:
        with pytest.raises(ValueError):
            stability_threshold(*args)
    with pytest.raises(ValueError, match="momentum"):
        stability_threshold("heavy_ball", 0.1, 1.0)
    with pytest.raises(ValueError, match="needs momentum"):
        make_optimizer("nesterov", [torch.nn.Parameter(torch.zeros(1))], 0.1)


def test_adam_preconditioner_is_bias_corrected_root_second_moment():
    theta = torch.nn.Parameter(torch.tensor([1.0, -2.0], dtype=torch.float64))
    opt = make_optimizer("adam", [theta], 0.01, beta2=0.99, eps=1e-8)
    with pytest.raises(ValueError, match="step first"):
        adam_preconditioner(opt, [theta])
    grads = []
    for _ in range(3):
        opt.zero_grad()
        (theta.pow(2).sum()).backward()
        grads.append(theta.grad.clone())
        opt.step()
    v = sum(0.99 ** (2 - i) * 0.01 * g**2 for i, g in enumerate(grads))
    expected = (v / (1 - 0.99**3)).sqrt() + 1e-8
    assert torch.allclose(adam_preconditioner(opt, [theta]), expected, rtol=1e-12)
