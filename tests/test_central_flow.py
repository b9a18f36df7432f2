"""Tests of eoslib.central_flow: the Σ solver, third derivatives, the projected step, the flow."""

import numpy as np
import pytest
import torch
from torch import nn

from eoslib import central_flow as cf
from eoslib import hessian
from eoslib.losses import mse
from eoslib.selfstab import sharpening_terms
from eoslib.train import TrainConfig, build, train


def tiny_problem(seed=0, n=40, width=6):
    """A small tanh MLP in float64 on random data: P = 4·width + width + ... (a few dozen parameters)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, generator=g, dtype=torch.float64)
    y = torch.randn(n, 2, generator=g, dtype=torch.float64)
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(3, width), nn.Tanh(), nn.Linear(width, 2)).double()
    return model, x, y


def random_instance(rng, k, p=12):
    vecs = rng.standard_normal((k, k, p))
    vecs = (vecs + vecs.transpose(1, 0, 2)) / 2
    gram = np.einsum("ijp,klp->ijkl", vecs, vecs)
    b = rng.standard_normal((k, k))
    return gram, (b + b.T) / 2, vecs


# ---------------------------------------------------------------- solve_sigma


def test_one_variable_is_two_alpha_over_beta():
    assert cf.solve_sigma(np.full((1, 1, 1, 1), 4.0), np.array([[-3.0]]))[0, 0] == pytest.approx(1.5)
    assert cf.solve_sigma(np.full((1, 1, 1, 1), 4.0), np.array([[3.0]]))[0, 0] == 0.0  # α < 0: no oscillation


def test_decoupled_problem_is_a_componentwise_lcp():
    # orthogonal families with G_ij = 0 off the diagonal: Σ is diagonal, Σ_ii = max(0, −2 b_ii / ‖G_ii‖²)
    gram = np.zeros((3, 3, 3, 3))
    for i, n2 in enumerate([1.0, 2.0, 5.0]):
        gram[i, i, i, i] = n2
    b = np.diag([-1.0, 0.5, -2.0])
    sigma = cf.solve_sigma(gram, b)
    assert np.allclose(sigma, np.diag([2.0, 0.0, 0.8]), atol=1e-8)


@pytest.mark.parametrize("k", [2, 3, 4])
def test_random_instances_satisfy_complementarity(k):
    rng = np.random.default_rng(k)
    for _ in range(5):
        gram, b, _ = random_instance(rng, k)
        sigma = cf.solve_sigma(gram, b)
        assert cf.sigma_residual(gram, b, sigma) < 1e-6


def test_solution_minimises_the_velocity_norm():
    # Σ minimises ‖c + ½ GΣ‖² over PSD Σ, with b = D(c): no random PSD matrix does better
    rng = np.random.default_rng(7)
    _, _, vecs = random_instance(rng, 3, p=20)
    c = rng.standard_normal(20)
    b = np.einsum("ijp,p->ij", vecs, c)
    gram = np.einsum("ijp,klp->ijkl", vecs, vecs)
    sigma = cf.solve_sigma(gram, b)

    def norm(s):
        return np.linalg.norm(c + 0.5 * np.einsum("ij,ijp->p", s, vecs))

    best = norm(sigma)
    for _ in range(500):
        a = rng.standard_normal((3, 3)) * rng.uniform(0, 2)
        assert norm(a @ a.T) >= best - 1e-9
        w, v = np.linalg.eigh(sigma + 0.05 * (a + a.T))  # nearby PSD matrices
        assert norm((v * np.clip(w, 0, None)) @ v.T) >= best - 1e-9


def test_solver_rejects_bad_input():
    with pytest.raises(ValueError, match="need b"):
        cf.solve_sigma(np.zeros((2, 2, 2, 2)), np.zeros((3, 3)))
    with pytest.raises(ValueError, match="finite"):
        cf.solve_sigma(np.full((1, 1, 1, 1), np.nan), np.zeros((1, 1)))


# ---------------------------------------------------------------- third derivatives


def test_pair_gradients_match_sharpness_gradient_and_polarisation():
    model, x, y = tiny_problem()
    u = hessian.top_eigenpairs(model, mse, x, y, 2, tol=1e-10).vectors
    pairs = cf.pair_gradients(model, mse, x, y, u)
    for i in range(2):
        assert torch.allclose(pairs[i, i], hessian.sharpness_gradient(model, mse, x, y, u[i]), atol=1e-10)
    polar = (hessian.sharpness_gradient(model, mse, x, y, u[0] + u[1])
             - hessian.sharpness_gradient(model, mse, x, y, u[0] - u[1])) / 4
    assert torch.allclose(pairs[0, 1], polar, atol=1e-10)
    assert torch.equal(pairs[0, 1], pairs[1, 0])


def test_pair_gradient_matches_finite_differences_of_the_dense_hessian():
    model, x, y = tiny_problem(seed=1)
    g = torch.Generator().manual_seed(3)
    u, v = torch.randn(2, hessian.flat_params(model).numel(), generator=g, dtype=torch.float64)
    pairs = cf.pair_gradients(model, mse, x, y, torch.stack([u, v]))
    theta = hessian.flat_params(model)
    d = torch.randn(theta.numel(), generator=g, dtype=torch.float64)
    h = 1e-5

    def uhv(t):
        cf._set_flat(model, t)
        return float(u @ hessian.dense_hessian(model, mse, x, y) @ v)

    fd = (uhv(theta + h * d) - uhv(theta - h * d)) / (2 * h)
    cf._set_flat(model, theta)
    assert float(pairs[0, 1] @ d) == pytest.approx(fd, rel=1e-6)


# ---------------------------------------------------------------- the projected step


def test_step_at_the_edge_uses_two_alpha_over_beta():
    # at a point with S = 2/η exactly, the Σ of a short central-flow step is 2α/β (two code paths agree)
    config = TrainConfig(model="fc-tanh", n=40, lr=0.6, steps=1, width=16, dtype="float64")
    start, data = build(config)
    x, y = data.inputs, data.targets
    model = _at(start, cf.gradient_descent(start, mse, x, y, 0.6, 20).params[-1])  # a point that sharpens
    terms = sharpening_terms(model, mse, x, y, tol=1e-12)
    lr = 2 / terms.sharpness
    geom = cf.critical_geometry(model, mse, x, y, lr, k=2, window=0.0, tol=1e-12)
    assert list(geom.critical) == [0]
    _, sigma = cf.projected_step(geom, lr, dt=1e-3)
    assert terms.alpha > 0  # this point sharpens: a nonzero σ² is predicted
    assert sigma[0, 0] == pytest.approx(terms.predicted_x2, rel=1e-6)


def test_step_keeps_the_linearised_critical_block_below_threshold():
    model, x, y = tiny_problem(seed=3)
    top = hessian.top_eigenpairs(model, mse, x, y, 3, tol=1e-12).values
    lr = 2 / float(top[1]) * 0.999  # λ_1 and λ_2 both at or above 2/η
    for newton in (False, True):
        geom = cf.critical_geometry(model, mse, x, y, lr, k=3, window=0.01, tol=1e-12)
        c = len(geom.critical)
        assert c == 2
        delta, sigma = cf.projected_step(geom, lr, dt=1.0, newton=newton)
        block = np.diag(geom.values[geom.critical]) + np.einsum(
            "ijp,p->ij", geom.pairs.numpy(), delta.numpy())
        assert np.linalg.eigvalsh(block).max() <= 2 / lr * (1 + 1e-9)
        assert np.linalg.eigvalsh(sigma).min() >= -1e-12 and np.trace(sigma) > 0
        if newton:  # ⟨∇L(w + Δ), u_i⟩ = 0 to first order: ⟨g, u_i⟩ + λ_i⟨Δ, u_i⟩ = 0
            u = geom.vectors[geom.critical]
            resid = u @ geom.grad + torch.as_tensor(geom.values[geom.critical]) * (u @ delta)
            assert resid.abs().max() < 1e-10 * geom.grad.norm()


def test_no_critical_eigenvalue_gives_a_gradient_step():
    model, x, y = tiny_problem()
    geom = cf.critical_geometry(model, mse, x, y, lr=1e-3, k=2)
    delta, sigma = cf.projected_step(geom, 1e-3, dt=0.5)
    assert sigma.shape == (0, 0)
    assert torch.allclose(delta, -0.5e-3 * geom.grad)


# ---------------------------------------------------------------- integration


def test_gradient_descent_path_matches_the_training_loop():
    config = TrainConfig(model="fc-tanh", n=30, lr=0.3, steps=15, sharpness_every=0, width=8, dtype="float64")
    model, data = build(config)
    path = cf.gradient_descent(model, mse, data.inputs, data.targets, 0.3, 15)
    run = train(config, progress=False)
    assert np.allclose(path.loss[:15], run.train_loss, rtol=1e-12)
    assert torch.allclose(path.params[-1], hessian.flat_params(run.model), atol=1e-12)
    assert torch.equal(path.params[0], hessian.flat_params(model))  # the model was not changed


def test_central_flow_holds_the_sharpness_at_the_threshold():
    # a small MLP that sharpens past 2/η: gradient descent overshoots 2/η, the central flow stays at it
    config = TrainConfig(model="fc-tanh", n=40, lr=0.6, steps=1, width=16, dtype="float64")
    model, data = build(config)
    x, y = data.inputs, data.targets
    flow = cf.central_flow(model, mse, x, y, 0.6, 60, dt=0.5, k=4, tol=1e-8)
    ratio = flow.sharpness * 0.6 / 2
    reach = int(np.argmax(ratio >= 1 - 1e-4))
    assert 0 < reach < 50, "the flow should reach the edge in this window"
    assert np.abs(ratio[reach:] - 1).max() < 1e-3  # held there (a plain Euler step would drift)
    assert np.all(flow.sigma_trace[:reach - 1] == 0) and np.all(flow.sigma_trace[reach + 1:] > 0)
    gd = cf.gradient_descent(model, mse, x, y, 0.6, 60)
    peak = max(hessian.sharpness(_at(model, p), mse, x, y) for p in gd.params[reach::5])
    assert peak * 0.6 / 2 > 1.02  # GD itself does not stay below 2/η


def _at(model, theta):
    import copy

    clone = copy.deepcopy(model)
    cf._set_flat(clone, theta)
    return clone


def test_centered_mean():
    assert cf.centered_mean([1.0, 2.0, 3.0, 4.0, 5.0], 1).tolist() == [2.0, 3.0, 4.0]
    with pytest.raises(ValueError, match="half_width"):
        cf.centered_mean([1.0, 2.0], 1)


def test_bad_arguments():
    model, x, y = tiny_problem()
    with pytest.raises(ValueError, match="dt"):
        cf.central_flow(model, mse, x, y, 0.1, 2, dt=0.3)
    with pytest.raises(ValueError, match="k="):
        cf.central_flow(model, mse, x, y, 0.1, 2, k=1)
