"""Tests of eoslib.selfstab: the reduced 2-D dynamics, α and β of a network, stable GD."""

import copy

import numpy as np
import pytest
import torch
from torch import nn

from eoslib import central_flow as cf
from eoslib import hessian
from eoslib import selfstab as ss
from eoslib.losses import mse
from eoslib.train import TrainConfig, build


# ---------------------------------------------------------------- the 2-D model


@pytest.mark.parametrize("alpha,beta,lr", [(0.05, 2.0, 0.1), (0.3, 7.0, 0.05), (0.1, 1.0, 0.1)])
def test_time_average_identity_is_exact(alpha, beta, lr):
    x, y = ss.reduced_dynamics(1e-3, -0.2, alpha, beta, lr, 777)
    t = len(x) - 1
    lhs = np.mean(x[:-1] ** 2)
    rhs = 2 * alpha / beta - 2 * (y[-1] - y[0]) / (lr * beta * t)
    assert lhs == pytest.approx(rhs, rel=1e-10, abs=1e-14)


def upward_crossings(y):
    return np.flatnonzero((y[:-1] < 0) & (y[1:] >= 0)) + 1


def test_every_cycle_averages_two_alpha_over_beta():
    # cycles between upward zero-crossings of y: y returns to ≈ 0, so ⟨x²⟩ over a cycle is 2α/β
    # to within the one-step boundary term (≈ 1/cycle length), whatever the cycle's size
    alpha, beta, lr = 0.05, 2.0, 0.1
    x, y = ss.reduced_dynamics(0.01, 0.0, alpha, beta, lr, 3000)
    up = upward_crossings(y)
    assert len(up) >= 6
    ratios = [np.mean(x[a:b] ** 2) / (2 * alpha / beta) for a, b in zip(up[:-1], up[1:])]
    assert np.abs(np.array(ratios) - 1).max() < 0.01
    # while x² itself ranges over orders of magnitude within a cycle
    assert (x[up[0]:up[1]] ** 2).max() > 100 * (x[up[0]:up[1]] ** 2).min()
    assert np.abs(lr * y).max() < 0.2
    # a weaker cubic term (β/100) gives oscillations 10× larger, still averaging 2α/β
    x, y = ss.reduced_dynamics(0.01, 0.0, alpha, beta / 100, lr, 3000)
    up = upward_crossings(y)
    assert np.mean(x[up[0]:up[1]] ** 2) == pytest.approx(200 * alpha / beta, rel=0.01)


def test_orbits_follow_the_conserved_quantity():
    alpha, beta, lr = 0.05, 2.0, 0.01
    x, y = ss.reduced_dynamics(0.1, 0.0, alpha, beta, lr, 6000)
    up = upward_crossings(y)
    e = ss.conserved_quantity(x[up[0]:up[1]], y[up[0]:up[1]], alpha, beta)
    assert np.ptp(e) < 0.01 * np.abs(e).mean()
    naive = (y ** 2 + x ** 2)[up[0]:up[1]]  # not conserved: varies by far more
    assert np.ptp(naive) > 10 * np.ptp(e)
    x2_min = 2 * alpha / beta  # E is smallest at y = 0, x² = 2α/β
    assert ss.conserved_quantity(np.sqrt(x2_min), 0.0, alpha, beta) < ss.conserved_quantity(
        np.sqrt(1.1 * x2_min), 0.0, alpha, beta)


def test_reduced_dynamics_rejects_bad_input():
    with pytest.raises(ValueError, match="beta > 0"):
        ss.reduced_dynamics(0.1, 0.0, 1.0, 0.0, 0.1, 10)


# ---------------------------------------------------------------- on a network


class Product(nn.Module):
    """f(x) = a·b·x: the two-layer scalar network, loss ½(ab − 1)² on the single point x = 1."""

    def __init__(self, a, b):
        super().__init__()
        self.a = nn.Parameter(torch.tensor(a, dtype=torch.float64))
        self.b = nn.Parameter(torch.tensor(b, dtype=torch.float64))

    def forward(self, x):
        return self.a * self.b * x


def test_sharpening_terms_match_a_closed_form():
    # L = ½(ab − 1)²: ∇L = (ab − 1)(b, a), H = [[b², 2ab − 1], [2ab − 1, a²]];
    # S = λ_max(H) and ∇S by finite differences of the closed-form eigenvalue
    a, b = 1.3, 0.4
    x, y = torch.ones(1, 1, dtype=torch.float64), torch.ones(1, 1, dtype=torch.float64)
    terms = ss.sharpening_terms(Product(a, b), mse, x, y, tol=1e-12)

    def s(a, b):
        return np.linalg.eigvalsh(np.array([[b * b, 2 * a * b - 1], [2 * a * b - 1, a * a]])).max()

    h = 1e-6
    grad_s = np.array([(s(a + h, b) - s(a - h, b)) / (2 * h), (s(a, b + h) - s(a, b - h)) / (2 * h)])
    grad_l = (a * b - 1) * np.array([b, a])
    assert terms.sharpness == pytest.approx(s(a, b), rel=1e-10)
    assert terms.alpha == pytest.approx(-grad_l @ grad_s, rel=1e-6)
    assert terms.beta == pytest.approx(grad_s @ grad_s, rel=1e-6)
    assert terms.predicted_x2 == pytest.approx(max(0.0, 2 * terms.alpha / terms.beta))


@pytest.fixture(scope="module")
def edge_run():
    """A small tanh MLP on digits that reaches 2/η within 80 steps (float64)."""
    config = TrainConfig(model="fc-tanh", n=40, lr=0.6, steps=1, width=16, dtype="float64")
    model, data = build(config)
    gd = cf.gradient_descent(model, mse, data.inputs, data.targets, 0.6, 80)
    stable = ss.stable_gd(model, mse, data.inputs, data.targets, 0.6, 80, k=4, tol=1e-8)
    return model, data, gd, stable


def test_stable_gd_is_gd_until_the_edge_then_stays_below_it(edge_run):
    model, data, gd, stable = edge_run
    first = int(np.argmax(stable.n_critical > 0))
    assert 5 < first < 60
    for t in range(first):  # no critical eigenvalue yet: the same steps as GD
        assert torch.allclose(stable.params[t], gd.params[t], atol=1e-12)
    assert stable.sharpness.max() * 0.6 / 2 < 1 + 1e-3
    gd_sharp = [hessian.sharpness(_at(model, p), mse, data.inputs, data.targets) for p in gd.params[first::4]]
    assert max(gd_sharp) * 0.6 / 2 > 1.02  # GD overshoots 2/η; stable GD does not


def test_oscillation_measures_displacement_along_critical_vectors(edge_run):
    _, _, gd, stable = edge_run
    x2, pred = ss.oscillation(stable.params, stable)
    assert np.all(x2 < 1e-20)  # stable GD against itself: no displacement
    x2, pred = ss.oscillation(gd.params, stable)
    crit = stable.n_critical > 0
    assert np.all(x2[~crit] == 0) and np.all(pred[~crit] == 0)
    assert x2[crit].max() > 0 and pred[crit].max() > 0
    t = int(np.flatnonzero(crit)[-1])
    u = stable.vectors[t]
    assert x2[t] == pytest.approx(float(((u @ (gd.params[t] - stable.params[t])) ** 2).sum()))
    with pytest.raises(ValueError, match="keep_vectors"):
        ss.oscillation(gd.params, gd)


def _at(model, theta):
    clone = copy.deepcopy(model)
    cf._set_flat(clone, theta)
    return clone
