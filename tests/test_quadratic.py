"""eoslib.quadratic: simulation vs closed form, thresholds, and PyTorch's SGD as an independent reference."""

import numpy as np
import pytest
import torch

from eoslib import quadratic

METHODS_BETA = [("gd", 0.0), ("heavy_ball", 0.5), ("heavy_ball", 0.9), ("nesterov", 0.5), ("nesterov", 0.9)]


def random_spd(d: int, seed: int, low: float = 0.5, high: float = 10.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    Q, _ = np.linalg.qr(rng.standard_normal((d, d)))
    lam = np.sort(rng.uniform(low, high, d))
    lam[-1] = high
    return (Q * lam) @ Q.T


@pytest.mark.parametrize("lr", [0.05, 0.15, 0.19, 0.21])
def test_gd_matches_closed_form(lr):
    A = random_spd(5, seed=0)
    theta0 = np.random.default_rng(1).standard_normal(5)
    simulated = quadratic.run(A, theta0, lr=lr, steps=60).thetas
    closed = quadratic.gd_closed_form(A, theta0, lr=lr, steps=60)
    np.testing.assert_allclose(simulated, closed, rtol=1e-9, atol=1e-12)


def test_each_eigendirection_is_multiplied_by_one_minus_lr_lambda():
    A = random_spd(4, seed=2)
    lam, Q = np.linalg.eigh(A)
    lr = 0.15
    thetas = quadratic.run(A, np.ones(4), lr=lr, steps=3).thetas
    coords = thetas @ Q
    np.testing.assert_allclose(coords[1:] / coords[:-1], np.broadcast_to(quadratic.multiplier(lr, lam), (3, 4)))


def test_losses_are_half_theta_a_theta():
    A = random_spd(3, seed=3)
    traj = quadratic.run(A, [1.0, 2.0, 3.0], lr=0.05, steps=5)
    expected = [0.5 * t @ A @ t for t in traj.thetas]
    np.testing.assert_allclose(traj.losses, expected)


@pytest.mark.parametrize("method,beta", METHODS_BETA)
@pytest.mark.parametrize("lr", [0.01, 0.1, 1.0])
def test_converges_below_and_diverges_above_threshold(method, beta, lr):
    limit = quadratic.threshold(method, lr, beta)
    A = np.diag([0.1 * limit, 0.5 * limit, 1.0])       # the sharpest direction is set below
    for factor, converges in ((0.98, True), (1.02, False)):
        A[2, 2] = factor * limit
        final = quadratic.run(A, np.ones(3), lr=lr, steps=3000, method=method, beta=beta).losses[-1]
        if converges:
            assert final < 1e-10, (method, beta, lr, final)
        else:
            assert not final < 1e10, (method, beta, lr, final)


@pytest.mark.parametrize("method,beta", METHODS_BETA)
def test_spectral_radius_is_one_at_threshold(method, beta):
    lr = 0.1
    limit = quadratic.threshold(method, lr, beta)
    assert quadratic.spectral_radius(lr, 0.98 * limit, method, beta) < 1
    assert quadratic.spectral_radius(lr, limit, method, beta) == pytest.approx(1.0, abs=1e-9)
    assert quadratic.spectral_radius(lr, 1.02 * limit, method, beta) > 1


@pytest.mark.parametrize("method,beta", METHODS_BETA)
def test_run_matches_iteration_matrix(method, beta):
    lr, lam, steps = 0.1, 7.0, 12
    thetas = quadratic.run(lam, 1.0, lr=lr, steps=steps, method=method, beta=beta).thetas[:, 0]
    M = quadratic.iteration_matrix(lr, lam, method, beta)
    state = np.array([1.0]) if method == "gd" else np.array([1.0, 0.0])
    for t in range(steps + 1):
        assert thetas[t] == pytest.approx(state[0], rel=1e-12, abs=1e-14)
        state = M @ state


@pytest.mark.parametrize("method,beta", [("heavy_ball", 0.9), ("nesterov", 0.9), ("gd", 0.0)])
def test_matches_torch_sgd(method, beta):
    """Independent reference: torch.optim.SGD (float64) on the same quadratic."""
    A = random_spd(4, seed=4)
    theta0 = np.array([1.0, -2.0, 0.5, 3.0])
    lr, steps = 0.05, 25
    ours = quadratic.run(A, theta0, lr=lr, steps=steps, method=method, beta=beta).thetas
    theta = torch.tensor(theta0, dtype=torch.float64, requires_grad=True)
    At = torch.tensor(A, dtype=torch.float64)
    opt = torch.optim.SGD([theta], lr=lr, momentum=beta, nesterov=method == "nesterov")
    for t in range(steps):
        opt.zero_grad()
        (0.5 * theta @ At @ theta).backward()
        opt.step()
        np.testing.assert_allclose(theta.detach().numpy(), ours[t + 1], rtol=1e-10, atol=1e-12)


def test_momentum_with_beta_zero_is_gd():
    A = random_spd(3, seed=5)
    gd = quadratic.run(A, np.ones(3), lr=0.1, steps=20).thetas
    for method in ("heavy_ball", "nesterov"):
        np.testing.assert_allclose(quadratic.run(A, np.ones(3), lr=0.1, steps=20, method=method).thetas, gd)


def test_thresholds():
    assert quadratic.gd_threshold(0.01) == pytest.approx(200.0)
    assert quadratic.heavy_ball_threshold(0.1, 0.9) == pytest.approx(38.0)
    assert quadratic.nesterov_threshold(0.1, 0.9) == pytest.approx(38.0 / 2.8)
    assert quadratic.threshold("heavy_ball", 0.1, 0.0) == pytest.approx(quadratic.gd_threshold(0.1))


def test_unknown_method_lists_valid_ones():
    with pytest.raises(ValueError, match="gd, heavy_ball, nesterov"):
        quadratic.run(1.0, 1.0, lr=0.1, steps=1, method="adam")


def test_rejects_non_symmetric_matrix():
    with pytest.raises(ValueError, match="symmetric"):
        quadratic.run([[1.0, 2.0], [0.0, 1.0]], [1.0, 1.0], lr=0.1, steps=1)


def test_step_size_and_momentum_are_checked_once():
    for call in [lambda: quadratic.threshold("gd", 0.0), lambda: quadratic.threshold("gd", -1.0),
                 lambda: quadratic.threshold("heavy_ball", 0.1, 1.0), lambda: quadratic.run(1.0, 1.0, 0.0, 3),
                 lambda: quadratic.threshold("nesterov", float("nan"), 0.5)]:
        with pytest.raises(ValueError, match="step size|momentum"):
            call()
