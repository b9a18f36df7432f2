"""Tests of eoslib.catapult: the uv model's exact two-variable dynamics and its three regimes."""

import numpy as np
import pytest

from eoslib import catapult


def test_parameters_follow_the_exact_f_lambda_map():
    # f' = f(1 − ηλ + η²f²/m), λ' = λ + (ηf²/m)(ηλ − 4), with |f| = sqrt(2L)
    m = 300
    r = catapult.uv_runs([1.3, 3.0, 4.5], width=m, steps=25, seed=4)
    for i in range(3):
        f2, lam, lr = 2 * r.loss[i], r.ntk[i], r.lr[i]
        ok = np.isfinite(f2[1:])
        with np.errstate(invalid="ignore"):  # inf after the divergence of the last run
            pred_f2 = f2[:-1] * (1 - lr * lam[:-1] + lr ** 2 * f2[:-1] / m) ** 2
            pred_lam = lam[:-1] + lr * f2[:-1] / m * (lr * lam[:-1] - 4)
        assert np.allclose(pred_f2[ok], f2[1:][ok], rtol=1e-9)
        assert np.allclose(pred_lam[ok], lam[1:][ok], rtol=1e-9)


def test_step_sizes_are_relative_to_the_initial_kernel():
    r = catapult.uv_runs([1.0, 2.5], width=100, steps=3, seed=1)
    assert np.allclose(r.lr * r.ntk[:, 0], [1.0, 2.5])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_three_regimes(seed):
    grid = [0.7, 1.7, 2.3, 3.0, 3.7, 4.3, 5.5]
    r = catapult.uv_runs(grid, width=2000, steps=400, seed=seed)
    assert [catapult.regime(r, i) for i in range(len(grid))] == ["lazy"] * 2 + ["catapult"] * 3 + ["divergent"] * 2
    cat = slice(2, 5)
    assert np.all(r.loss[cat].max(axis=1) > 2 * r.loss[cat, 0])  # the spike
    assert np.all(r.lr[cat] * r.ntk[cat, -1] < 2)  # lands below the threshold


def test_an_unfinished_run_is_unclear():
    r = catapult.uv_runs([3.0], width=1000, steps=3, seed=0)  # still climbing after 3 steps
    assert catapult.regime(r, 0) == "unclear"


def test_bad_input():
    with pytest.raises(ValueError, match="positive"):
        catapult.uv_runs([0.0, 1.0])
