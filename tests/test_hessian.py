"""Tests of eoslib.hessian against independent references (dense Hessians, closed forms).

All in float64 on tiny models, so that the only error left is the algorithm's:
tolerances of 1e-8..1e-10 are ~1e5 × machine epsilon times the condition of the
few-hundred-dimensional problems, far below any real bug's footprint.
"""

import copy
import math

import pytest
import torch
from torch import nn

from eoslib.hessian import (batch_curvatures, batch_sharpness, dense_hessian, directional_sharpness, flat_params, hvp_operator,
                            lanczos, power_iteration, preconditioned_sharpness, sharpness, sharpness_gradient,
                            top_eigenpairs, unflatten)

from device_params import DEVICES

torch.set_num_threads(1)
F64 = torch.float64


def mse(f, y):
    """The book's MSE: ½‖f − y‖² summed over outputs, averaged over examples."""
    return 0.5 * ((f - y) ** 2).sum(dim=1).mean()


def make_mlp(seed=0, d=5, width=8, out=3, device="cpu"):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)  # tests only: nn.Linear draws from the global stream
        return nn.Sequential(nn.Linear(d, width), nn.Tanh(), nn.Linear(width, width), nn.Tanh(),
                             nn.Linear(width, out)).to(F64).to(device)


def make_cnn(seed=0, batch_norm=False, device="cpu"):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        layers = [nn.Conv2d(2, 4, 3, padding=1), nn.Tanh()]
        layers += [nn.BatchNorm2d(4)] if batch_norm else []
        layers += [nn.MaxPool2d(2), nn.Conv2d(4, 4, 3, padding=1), nn.Tanh(), nn.Flatten(), nn.Linear(4 * 3 * 3, 3)]
        return nn.Sequential(*layers).to(F64).to(device)


def data(n, shape, out=3, seed=1, device="cpu"):
    g = torch.Generator().manual_seed(seed)  # drawn on the CPU: the same numbers on every device
    return (torch.randn(n, *shape, generator=g, dtype=F64).to(device),
            torch.randn(n, out, generator=g, dtype=F64).to(device))


def rel(a, b):
    return abs(float(a) - float(b)) / abs(float(b))


@pytest.mark.parametrize("build,shape", [(make_mlp, (5,)), (make_cnn, (2, 6, 6))])
@pytest.mark.parametrize("device", DEVICES)
def test_top_eigenvalues_match_dense_hessian(build, shape, device):
    model = build(device=device)
    x, y = data(40, shape, device=device)
    H = dense_hessian(model, mse, x, y)
    exact = torch.linalg.eigvalsh(H).flip(0)
    r = top_eigenpairs(model, mse, x, y, k=3, tol=1e-12, max_iter=300, chunk_size=16)
    assert r.converged
    for got, want in zip(r.values, exact[:3]):
        assert rel(got, want) <= 1e-8
    assert rel(sharpness(model, mse, x, y, tol=1e-12, max_iter=300), exact[0]) <= 1e-8
    # Ritz vectors are eigenvectors: ‖Hv − λv‖ small relative to λ
    assert float((H @ r.vectors[0] - r.values[0] * r.vectors[0]).norm()) <= 1e-6 * float(exact[0])


@pytest.mark.parametrize("device", DEVICES)
def test_quadratic_with_known_spectrum(device):
    # linear least squares: L(w) = ½‖Xw − y‖²/n has Hessian XᵀX/n = Q diag(λ) Qᵀ by construction
    d = 30
    lam = torch.cat([torch.tensor([10.0, 9.0, 4.0], dtype=F64), torch.linspace(-2.0, 3.0, d - 3, dtype=F64)])
    Q, _ = torch.linalg.qr(torch.randn(d, d, generator=torch.Generator().manual_seed(0), dtype=F64))
    lam, Q = lam.to(device), Q.to(device)
    X = math.sqrt(d) * torch.diag(lam.abs().sqrt()) @ Q.T  # rows of X, n = d
    sign = lam.sign()  # per-example weights make negative eigenvalues possible
    model = nn.Linear(d, 1, bias=False).to(F64).to(device)
    loss = lambda f, s: 0.5 * (s[:, :1] * f ** 2).sum(dim=1).mean()  # noqa: E731
    r = top_eigenpairs(model, loss, X, sign[:, None], k=3, tol=1e-12)
    assert torch.allclose(r.values, lam[:3], rtol=1e-10)
    cos = (r.vectors @ Q[:, :3]).diagonal().abs()
    assert torch.allclose(cos, torch.ones(3, dtype=F64), atol=1e-8)
    # the plain-matrix API on the same spectrum
    A = Q @ torch.diag(lam) @ Q.T
    assert torch.allclose(lanczos(lambda v: A @ v, d, k=2, tol=1e-12, device=device).values, lam[:2], rtol=1e-10)


@pytest.mark.parametrize("device", DEVICES)
def test_hvp_is_symmetric_and_methods_agree(device):
    model, (x, y) = make_mlp(device=device), data(30, (5,), device=device)
    g = torch.Generator().manual_seed(3)
    P = flat_params(model).numel()
    u, v = torch.randn(P, generator=g, dtype=F64).to(device), torch.randn(P, generator=g, dtype=F64).to(device)
    op = hvp_operator(model, mse, x, y, chunk_size=7)
    assert abs(float(u @ op(v) - v @ op(u))) <= 1e-12 * float(u.norm() * op(v).norm())
    ref = op(v)
    for kw in [dict(method="forward_over_reverse"), dict(reuse_graph=False), dict(chunk_size=None)]:
        kw = {"chunk_size": 7, **kw}
        assert torch.allclose(hvp_operator(model, mse, x, y, **kw)(v), ref, rtol=1e-10, atol=1e-12), kw
    assert torch.allclose(ref, dense_hessian(model, mse, x, y) @ v, rtol=1e-10, atol=1e-12)
    assert op.n_calls == 4 and op.dim == P


@pytest.mark.parametrize("device", DEVICES)
def test_measuring_changes_nothing(device):
    model, (x, y) = make_cnn(batch_norm=True, device=device), data(24, (2, 6, 6), device=device)
    before = copy.deepcopy(model.state_dict())
    sharpness(model, mse, x, y, chunk_size=8)
    for name, t in model.state_dict().items():
        assert torch.equal(t, before[name]), name
    assert all(p.grad is None for p in model.parameters())


@pytest.mark.parametrize("device", DEVICES)
def test_batch_norm_uses_per_chunk_statistics(device):
    model, (x, y) = make_cnn(batch_norm=True, device=device), data(24, (2, 6, 6), device=device)
    H8 = dense_hessian(model, mse, x, y, chunk_size=8)
    lam8 = sharpness(model, mse, x, y, chunk_size=8, tol=1e-12, max_iter=500)
    assert rel(lam8, torch.linalg.eigvalsh(H8)[-1]) <= 1e-8
    assert rel(lam8, sharpness(model, mse, x, y, tol=1e-12, max_iter=500)) > 1e-3  # a different loss
    v = torch.randn(H8.shape[0], generator=torch.Generator().manual_seed(2), dtype=F64).to(device)
    fwd = hvp_operator(model, mse, x, y, chunk_size=8, method="forward_over_reverse")
    assert torch.allclose(fwd(v), H8 @ v, rtol=1e-10, atol=1e-12)
    model.eval()  # running statistics: chunking no longer matters
    assert rel(sharpness(model, mse, x, y, chunk_size=8, tol=1e-12, max_iter=500),
               sharpness(model, mse, x, y, tol=1e-12, max_iter=500)) <= 1e-8


@pytest.mark.parametrize("device", DEVICES)
def test_float32_agrees_with_float64(device):
    model, (x, y) = make_mlp(width=32, device=device), data(64, (5,), device=device)
    lam64 = sharpness(model, mse, x, y, tol=1e-10)
    lam32 = sharpness(copy.deepcopy(model).float(), mse, x.float(), y.float())  # default tol=1e-3
    assert rel(lam32, lam64) <= 1e-3


@pytest.mark.parametrize("device", DEVICES)
def test_warm_start_same_answer_fewer_products(device):
    model, (x, y) = make_mlp(width=32, device=device), data(64, (5,), device=device)
    first = top_eigenpairs(model, mse, x, y, tol=1e-6)
    g = torch.autograd.grad(mse(model(x), y), list(model.parameters()))
    with torch.no_grad():  # one small GD step moves the Hessian a little
        for p, gi in zip(model.parameters(), g):
            p -= 0.1 * gi
    cold = top_eigenpairs(model, mse, x, y, tol=1e-6)
    warm = top_eigenpairs(model, mse, x, y, tol=1e-6, v0=first.vectors[0])
    assert rel(warm.values[0], cold.values[0]) <= 1e-5
    assert warm.n_hvp < cold.n_hvp


def test_power_iteration_returns_largest_magnitude_with_sign():
    A = torch.diag(torch.tensor([2.0, 1.0, 0.5, -5.0], dtype=F64))
    Q, _ = torch.linalg.qr(torch.randn(4, 4, generator=torch.Generator().manual_seed(0), dtype=F64))
    A = Q @ A @ Q.T
    r = power_iteration(lambda v: A @ v, 4, tol=1e-12)
    assert r.converged and abs(float(r.values[0]) + 5.0) <= 1e-8
    assert abs(float(power_iteration(lambda v: A @ v, 4, tol=1e-12, shift=-5.0).values[0]) - 2.0) <= 1e-8
    assert abs(float(lanczos(lambda v: A @ v, 4, tol=1e-12).values[0]) - 2.0) <= 1e-10


@pytest.mark.parametrize("device", DEVICES)
def test_directional_preconditioned_and_batch_sharpness_match_dense(device):
    model, (x, y) = make_mlp(device=device), data(30, (5,), device=device)
    H = dense_hessian(model, mse, x, y)
    g = torch.Generator().manual_seed(5)
    v = torch.randn(H.shape[0], generator=g, dtype=F64).to(device)
    assert rel(directional_sharpness(model, mse, x, y, v, chunk_size=9), v @ H @ v / (v @ v)) <= 1e-10
    d = torch.rand(H.shape[0], generator=g, dtype=F64).to(device) + 0.1
    want = torch.linalg.eigvalsh(H / torch.outer(d.sqrt(), d.sqrt()))[-1]
    assert rel(preconditioned_sharpness(model, mse, x, y, d, tol=1e-12, max_iter=500), want) <= 1e-8
    # batch sharpness: recompute each minibatch term from a dense minibatch Hessian
    params = list(model.parameters())
    gen, terms = torch.Generator().manual_seed(7), []
    for _ in range(3):
        idx = torch.randperm(30, generator=gen)[:10]
        gb = torch.cat([t.reshape(-1) for t in torch.autograd.grad(mse(model(x[idx]), y[idx]), params)])
        terms.append(float(gb @ dense_hessian(model, mse, x[idx], y[idx]) @ gb / (gb @ gb)))
    assert rel(batch_sharpness(model, mse, x, y, 10, n_batches=3, seed=7), sum(terms) / 3) <= 1e-10


def test_flat_params_roundtrip():
    model = make_mlp()
    theta = flat_params(model)
    assert all(torch.equal(a, p) for a, p in zip(unflatten(theta, model), model.parameters()))


def test_bad_input_raises_one_line_value_error():
    model, (x, y) = make_mlp(), data(10, (5,))
    P = flat_params(model).numel()
    cases = {
        "non-scalar loss": lambda: sharpness(model, lambda f, t: ((f - t) ** 2).mean(dim=1), x, y),
        "empty data": lambda: sharpness(model, mse, x[:0], y[:0]),
        "k > P": lambda: top_eigenpairs(model, mse, x, y, k=P + 1),
        "unknown method": lambda: hvp_operator(model, mse, x, y, method="magic"),
        "batch too big": lambda: batch_sharpness(model, mse, x, y, 11),
        "bad precond": lambda: preconditioned_sharpness(model, mse, x, y, -torch.ones(P, dtype=F64)),
        "mismatched data": lambda: sharpness(model, mse, x, y[:5]),
    }
    for name, call in cases.items():
        with pytest.raises(ValueError) as err:
            call()
        assert "\n" not in str(err.value), name
    with torch.no_grad():
        model[0].weight[0, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        sharpness(model, mse, x, y)


@pytest.mark.parametrize("build,shape", [(make_mlp, (5,)), (make_cnn, (2, 6, 6))])
@pytest.mark.parametrize("device", DEVICES)
def test_sharpness_gradient_matches_finite_differences(build, shape, device):
    """∇S = ∇(uᵀHu) against central differences of λ_max along random directions.

    S(θ) = λ_max(θ) is smooth where the top eigenvalue is simple, with dS/dθ·d = uᵀ(∇³L[d])u;
    central differences with step h = 1e-4 in float64 are accurate to O(h²) ≈ 1e-8 relative
    to the curvature scale, so a 1e-5 relative tolerance is a strict test.
    """
    model = build(device=device)
    x, y = data(40, shape, device=device)
    res = top_eigenpairs(model, mse, x, y, k=2, tol=1e-13, max_iter=300)
    assert float(res.values[0] - res.values[1]) > 1e-3 * float(res.values[0])  # simple top eigenvalue
    grad_s = sharpness_gradient(model, mse, x, y, res.vectors[0], chunk_size=16)
    theta = flat_params(model).clone()
    g = torch.Generator().manual_seed(3)
    h = 1e-4
    for _ in range(3):
        d = torch.randn(theta.shape, generator=g, dtype=F64).to(device)
        d /= d.norm()
        values = []
        for sign in (1, -1):
            with torch.no_grad():
                for p, v in zip(model.parameters(), unflatten(theta + sign * h * d, model)):
                    p.copy_(v)
            values.append(sharpness(model, mse, x, y, tol=1e-14, max_iter=300, v0=res.vectors[0]))
        fd = (values[0] - values[1]) / (2 * h)
        assert abs(float(grad_s @ d) - fd) <= 1e-5 * float(res.values[0])


@pytest.mark.parametrize("device", DEVICES)
def test_batch_sharpness_takes_both_averages_from_batch_curvatures(device):
    model, (x, y) = make_mlp(device=device), data(40, (5,), device=device)
    ghg, gg = batch_curvatures(model, mse, x, y, 8, n_batches=6, seed=4)
    assert ghg.shape == gg.shape == (6,) and (gg > 0).all()
    assert batch_sharpness(model, mse, x, y, 8, n_batches=6, seed=4) == pytest.approx((ghg / gg).mean(), rel=1e-12)
    assert batch_sharpness(model, mse, x, y, 8, n_batches=6, seed=4, average="means") == \
        pytest.approx(ghg.mean() / gg.mean(), rel=1e-12)
    full_ghg, full_gg = batch_curvatures(model, mse, x, y, 40, n_batches=1)  # B = all data: gᵀHg/‖g‖² exactly
    g = torch.cat([t.reshape(-1) for t in torch.autograd.grad(mse(model(x), y), list(model.parameters()))])
    assert full_ghg[0] / full_gg[0] == pytest.approx(directional_sharpness(model, mse, x, y, g), rel=1e-10)
