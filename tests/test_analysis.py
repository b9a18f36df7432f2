"""eoslib.analysis: the claim-check definitions on hand-made traces, and gd_probe on a quadratic."""

import math

import numpy as np
import pytest
import torch
from torch import nn

from eoslib import analysis
from eoslib.losses import mse

from device_params import DEVICES


class FakeRun:
    def __init__(self, losses, steps, sharpness, threshold):
        self.train_loss, self.sharpness_steps, self.sharpness = losses, steps, sharpness
        self.threshold, self.extras = threshold, {"step_sharpness": [s - 1 for s in sharpness]}


def test_summary_definitions():
    losses = [8.0, 6.0, 4.0, 5.0, 2.0, 3.0, 1.0, 0.5]
    run = FakeRun(losses, [0, 2, 4, 6], [1.0, 2.0, 2.2, 1.9], threshold=2.0)
    s = analysis.edge_summary(run)
    assert s.crossing == 2  # first measured step with sharpness >= 2/η (equality counts)
    assert s.median_ratio == pytest.approx(1.0)  # median of (1.0, 1.1, 0.95)
    assert s.increases == 2  # 4 → 5 and 2 → 3, both at t >= 2
    assert s.drop_from_crossing == pytest.approx(4.0 / 0.5)
    assert s.drop_overall == pytest.approx(16.0)
    assert (s.peak_sharpness, s.peak_step, s.final_sharpness) == (2.2, 4, 1.9)
    assert "crosses at step 2" in str(s)


def test_summary_never_crossed_and_extras():
    run = FakeRun([2.0, 1.0], [0, 1], [1.0, 1.5], threshold=2.0)
    s = analysis.edge_summary(run)
    assert s.crossing is None and math.isnan(s.median_ratio) and s.increases == 0
    assert analysis.edge_summary(run, metric="step_sharpness").peak_sharpness == 0.5
    with pytest.raises(ValueError):
        analysis.median_ratio_after([0, 1], [1.0, 1.0], 1.0, start=5)
    with pytest.raises(ValueError):
        analysis.loss_drop([1.0], start=3)


@pytest.mark.parametrize("device", DEVICES)
def test_gd_probe_on_a_quadratic(device):
    # Linear model + MSE: H = XᵀX/n = diag(1, 4) everywhere, λ_max = 4; η = 0.4 puts 1/η < λ_max < 2/η.
    torch.manual_seed(0)
    model = nn.Linear(2, 1, bias=False).double().to(device)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[1.0, 1.0]], dtype=torch.float64))
    x = (torch.tensor([[1.0, 0.0], [0.0, 2.0]], dtype=torch.float64) * math.sqrt(2.0)).to(device)
    y = torch.zeros(2, 1, dtype=torch.float64, device=device)
    probe = analysis.gd_probe(model, mse, x, y, lr=0.4, steps=6, tol=1e-10)
    assert np.allclose(probe.sharpness, 4.0) and np.allclose(probe.mid_sharpness, 4.0)
    assert probe.sign_flips() == 1.0  # factor 1 − ηλ = −0.6 along the top eigenvector
    w2 = 1.0 * (-0.6) ** np.arange(6)  # closed form of the sharp coordinate
    assert np.allclose(np.abs(probe.projection), np.abs(-0.4 * 4.0 * w2))
    assert all(1.0 - 1e-9 <= s <= 4.0 + 1e-9 for s in probe.step_sharpness)
    assert probe.threshold == pytest.approx(5.0)
    assert model.weight[0, 1].item() == pytest.approx((-0.6) ** 6)
    assert probe.loss[0] == pytest.approx(0.5 * (1.0 + 4.0))  # ½ wᵀHw with w = (1, 1)


def test_return_step_finds_the_comeback_after_a_collapse():
    from eoslib.analysis import return_step

    steps = [0, 10, 20, 30, 40]
    assert return_step(steps, [50.0, 40.0, 45.0, 51.0, 49.0], 50.0) == (10, 30)  # catapult, then back
    assert return_step(steps, [50.0, 40.0, 45.0, 48.0, 49.0], 50.0) == (10, None)  # never back
    assert return_step(steps, [5.0, 6.0, 50.0, 51.0, 49.0], 50.0) == (0, 20)  # starts below: the usual crossing
    assert return_step(steps, [60.0, 55.0, 51.0, 50.0, 52.0], 50.0) == (None, None)  # never below


def _quadratic_model(eigenvalues, n_out=1):
    """A bias-free linear model whose MSE loss ½‖Wx‖²/n on the rows of √(n·diag(λ)) has Hessian diag(λ)."""
    lam = torch.tensor(eigenvalues, dtype=torch.float64)
    d = len(eigenvalues)
    x = torch.diag((d * lam).sqrt())  # n = d examples: (1/n) XᵀX = diag(λ)
    model = nn.Linear(d, n_out, bias=False).double()
    return model, x, torch.zeros(d, n_out, dtype=torch.float64)


def test_two_step_view_on_a_hand_computed_two_cycle():
    """L = ½θᵀAθ with A = diag(2/η, 1): θ_0 = e_1 is an exact 2-cycle (θ_1 = −e_1).

    By hand: the curvature along the step is ⟨A(θ_1 − θ_0), θ_1 − θ_0⟩/‖θ_1 − θ_0‖² = 2/η,
    and M = (I − ηA)² = diag(1, (1 − η)²) has spectral radius exactly 1.
    """
    lr = 0.4
    model, x, y = _quadratic_model([2 / lr, 1.0, 0.3, 0.1, 0.05])
    theta0 = torch.zeros(5, dtype=torch.float64)
    theta0[0] = 1.0
    with torch.no_grad():
        model.weight.copy_(theta0[None])
    probe = analysis.gd_probe(model, mse, x, y, lr=lr, steps=4, tol=1e-10, keep_params=True)
    assert torch.allclose(probe.params[1], -theta0) and torch.allclose(probe.params[2], theta0)
    assert probe.step_curvature == pytest.approx([2 / lr] * 3, rel=1e-12)
    assert probe.sign_flips() == 1.0
    assert np.allclose(probe.cosines(), 1.0)
    rho = analysis.two_step_radius(model, mse, x, y, lr, probe.params[0], probe.params[1], tol=1e-10)
    assert rho == pytest.approx(1.0, abs=1e-8)


@pytest.mark.parametrize("device", DEVICES)
def test_two_step_radius_matches_the_dense_product(device):
    """Two different Hessians (two models): ρ((I − ηH_1)(I − ηH_0)) against numpy on the dense matrices."""
    torch.manual_seed(0)
    lr = 0.5
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2)).double().to(device)
    x, y = torch.randn(20, 3, dtype=torch.float64).to(device), torch.randn(20, 2, dtype=torch.float64).to(device)
    from eoslib import hessian

    theta0 = hessian.flat_params(model).clone()
    theta1 = theta0 + 0.3 * torch.randn_like(theta0)
    dense = []
    for theta in (theta0, theta1):
        analysis._set_params(model, theta)
        dense.append(hessian.dense_hessian(model, mse, x, y).cpu().numpy())
    eye = np.eye(len(theta0))
    expected = np.abs(np.linalg.eigvals((eye - lr * dense[1]) @ (eye - lr * dense[0]))).max()
    got = analysis.two_step_radius(model, mse, x, y, lr, theta0, theta1, tol=1e-12)
    assert got == pytest.approx(expected, rel=1e-8)


def test_step_curvature_rejects_a_zero_step():
    t = torch.ones(3)
    with pytest.raises(ValueError, match="coincide"):
        analysis.step_curvature(t, t, t, t)


def test_step_ratios_and_at_params_on_the_two_cycle():
    """A = diag(4, 1), η = 0.5, θ_0 = e_1: every step reverses the previous one exactly (ratio −1)."""
    lr = 0.5
    model, x, y = _quadratic_model([4.0, 1.0])
    e1 = torch.tensor([1.0, 0.0], dtype=torch.float64)
    with torch.no_grad():
        model.weight.copy_(e1[None])
    probe = analysis.gd_probe(model, mse, x, y, lr=lr, steps=4, tol=1e-10, keep_params=True)
    assert probe.step_ratios() == pytest.approx([-1.0, -1.0], abs=1e-12)
    clone = analysis.at_params(model, probe.params[1])  # θ_1 = −e_1, while the model ends at θ_4 = e_1
    assert torch.allclose(clone.weight.detach().reshape(-1), -e1, atol=1e-12)
    assert torch.allclose(model.weight.detach().reshape(-1), e1, atol=1e-12)
    with pytest.raises(ValueError, match="keep_params"):
        analysis.gd_probe(model, mse, x, y, lr=lr, steps=3).step_ratios()
