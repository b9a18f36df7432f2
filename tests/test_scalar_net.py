"""Tests of eoslib.scalar_net: closed forms against finite differences and autograd, and the exact identities."""

import numpy as np
import pytest
import torch

from eoslib import scalar_net as sn

RNG = np.random.default_rng(0)
A, B = RNG.uniform(-2.5, 2.5, 50), RNG.uniform(-2.5, 2.5, 50)


def _torch_loss(model):
    def f(p):
        r = p[0] * p[1] - 1 if model == "scalar" else (p[0] * p[1]) ** 2 - 1
        return 0.5 * r**2 if model == "scalar" else 0.25 * r**2
    return f


@pytest.mark.parametrize("model", sn.MODELS)
def test_gradient_and_hessian_match_autograd(model):
    ga, gb = sn.gradient(A, B, model)
    haa, hab, hbb = sn.hessian(A, B, model)
    for i in range(len(A)):
        p = torch.tensor([A[i], B[i]], dtype=torch.float64)
        g = torch.autograd.functional.jacobian(_torch_loss(model), p)
        h = torch.autograd.functional.hessian(_torch_loss(model), p)
        np.testing.assert_allclose([ga[i], gb[i]], g.numpy(), rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose([[haa[i], hab[i]], [hab[i], hbb[i]]], h.numpy(), rtol=1e-12, atol=1e-10)
        assert sn.sharpness(A[i], B[i], model) == pytest.approx(np.linalg.eigvalsh(h.numpy())[-1], rel=1e-12)


def test_sharpness_on_the_minimum_set():
    a = np.linspace(0.3, 4.0, 20)
    np.testing.assert_allclose(sn.sharpness(a, 1 / a), a**2 + 1 / a**2, rtol=1e-12)
    np.testing.assert_allclose(sn.gfs_sharpness(a, 1 / a), a**2 + 1 / a**2, rtol=1e-12)
    np.testing.assert_allclose(sn.sharpness(a, 1 / a, "minimalist"), 2 * (a**2 + 1 / a**2), rtol=1e-12)
    np.testing.assert_allclose(sn.gfs_sharpness(a, 1 / a, "minimalist"), 2 * (a**2 + 1 / a**2), rtol=1e-12)


@pytest.mark.parametrize("model", sn.MODELS)
def test_gd_imbalance_identity_is_exact(model):
    lr = 0.3
    a1, b1 = sn.gd_step(A, B, lr, model)
    np.testing.assert_allclose(sn.imbalance(a1, b1), sn.imbalance_factor(A, B, lr, model) * sn.imbalance(A, B),
                               rtol=1e-10, atol=1e-10)


def test_residual_recursion_is_exact():
    lr = 0.2
    a1, b1 = sn.gd_step(A, B, lr)
    np.testing.assert_allclose(sn.residual(a1, b1), sn.residual(A, B) * sn.residual_factor(A, B, lr),
                               rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("model", sn.MODELS)
def test_gradient_flow_conserves_imbalance_and_lands_on_gfs_minimum(model):
    a0, b0 = np.array([2.0, 0.3, 1.5]), np.array([0.2, 1.1, -0.4])
    flow = sn.gradient_flow(a0, b0, time=60.0, n_steps=6000, model=model)
    np.testing.assert_allclose(sn.imbalance(flow.a, flow.b), np.broadcast_to(sn.imbalance(a0, b0), flow.a.shape),
                               atol=1e-8)
    np.testing.assert_allclose(flow.sharpness()[-1], sn.gfs_sharpness(a0, b0, model), rtol=1e-8)
    if model == "scalar":
        a_star, b_star = sn.gf_limit(a0, b0)
        np.testing.assert_allclose(flow.a[-1], a_star, atol=1e-8)
        np.testing.assert_allclose(flow.b[-1], b_star, atol=1e-8)


def test_gfs_sharpness_decreases_when_lr_times_residual_is_small():
    lr = 0.1
    traj = sn.gd(np.linspace(0.5, 5, 25)[:, None], np.linspace(0.05, 1.5, 25)[None, :], lr, 400)
    S, r = traj.gfs_sharpness(), traj.residual()
    ok = np.abs(lr * r[:-1]) <= np.sqrt(2)
    increase = np.diff(S, axis=0)
    assert np.all(increase[ok & np.isfinite(increase)] <= 1e-12)


def test_gd_converges_below_two_over_lr_and_diverged_runs_are_nan():
    lr = 0.2
    traj = sn.gd(np.linspace(0.5, 6, 30)[:, None], np.linspace(0.05, 2, 30)[None, :], lr, 3000)
    conv = traj.converged
    assert conv.any() and (~conv).any()
    final = sn.sharpness(traj.a[-1], traj.b[-1])
    assert np.all(final[conv] <= 2 / lr)
    assert np.all(np.isnan(traj.a[-1][~conv]) | (sn.loss(traj.a[-1], traj.b[-1]) >= 1e-12)[~conv])


def test_bifurcation_shapes_and_small_lr_converges():
    lrs, products, final = sn.bifurcation([0.05, 0.1], 2.0, 0.3, steps=2000, keep=8)
    assert products.shape == (2, 8) and final.shape == (2,)
    np.testing.assert_allclose(products, 1.0, atol=1e-8)


def test_unknown_model_raises():
    with pytest.raises(ValueError, match="valid"):
        sn.loss(1.0, 1.0, "deep")
