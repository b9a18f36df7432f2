"""eoslib.models and eoslib.losses: shapes, determinism, conventions."""

import pytest
import torch

from eoslib.losses import accuracy, cross_entropy, get_loss, mse
from eoslib.models import INPUTS, MODELS, LayerNorm, count_parameters, make_model, num_parameters

SHAPES = {"fc-tanh": ((1, 8, 8), 10), "fc-relu": ((64,), 10), "fc-elu": ((64,), 3), "cnn-relu": ((1, 8, 8), 10),
          "cnn-bn-relu": ((3, 32, 32), 10), "deep-linear": ((20,), 20)}


@pytest.mark.parametrize("name", sorted(SHAPES))
def test_output_shape_and_seeded_init(name):
    shape, k = SHAPES[name]
    x = torch.randn(5, *shape, generator=torch.Generator().manual_seed(0))
    a, b = make_model(name, shape, k, seed=7), make_model(name, shape, k, seed=7)
    assert a(x).shape == (5, k)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    assert count_parameters(name, shape, k) == num_parameters(a)  # counted without allocating
    if num_parameters(a) > 2:
        c = make_model(name, shape, k, seed=8)
        assert any(not torch.equal(p, q) for p, q in zip(a.parameters(), c.parameters()))


def test_global_rng_is_untouched():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    make_model("fc-tanh", (64,), 10, seed=0)
    assert torch.equal(torch.rand(3), expected)


def test_paper_sizes():
    assert num_parameters(make_model("fc-tanh", (3, 32, 32), 10)) == 3072 * 200 + 200 + 200 * 200 + 200 + 2010
    cnn = make_model("cnn-relu", (3, 32, 32), 10)
    assert num_parameters(cnn) == (3 * 9 * 32 + 32) + (32 * 9 * 32 + 32) + (32 * 8 * 8 * 10 + 10)
    assert num_parameters(make_model("deep-linear", (50,), 50)) == 21 * 50 * 50


def test_transformer_is_causal():
    m = make_model("transformer", (8,), 11, seed=0, dtype=torch.float64)
    x = torch.randint(0, 11, (2, 8), generator=torch.Generator().manual_seed(0))
    y = x.clone()
    y[:, 5:] = (y[:, 5:] + 1) % 11  # change the future
    assert m(x).shape == (2, 8, 11)
    assert torch.allclose(m(x)[:, :5], m(y)[:, :5]) and not torch.allclose(m(x)[:, 5:], m(y)[:, 5:])


def test_layer_norm_matches_torch_and_has_exact_second_derivatives():
    ln = LayerNorm(6).double()
    x = torch.randn(4, 6, dtype=torch.float64, requires_grad=True)
    ref = torch.nn.functional.layer_norm(x, (6,), ln.weight, ln.bias, ln.eps)
    assert torch.allclose(ln(x), ref, atol=1e-12)
    assert torch.autograd.gradgradcheck(lambda z: ln(z).pow(3).sum(), (x,))


def test_unknown_names_list_valid_ones():
    with pytest.raises(ValueError, match="valid: fc-tanh"):
        make_model("resnet", (64,), 10)
    with pytest.raises(ValueError, match="valid: mse, ce"):
        get_loss("hinge")
    with pytest.raises(ValueError, match="needs image inputs"):
        make_model("cnn-relu", (64,), 10)
    assert set(MODELS) == set(SHAPES) | {"transformer"} == set(INPUTS)


def test_mse_is_half_sum_over_outputs_mean_over_examples():
    f = torch.tensor([[1.0, 2.0, 0.0], [0.0, 0.0, 0.0]])
    y = torch.tensor([[0.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    assert mse(f, y).item() == pytest.approx((0.5 * 5 + 0.5 * 1) / 2)
    assert mse(f, torch.tensor([0, 2])).item() == pytest.approx(mse(f, torch.tensor([[1.0, 0, 0], [0, 0, 1.0]])).item())
    seq = torch.randn(2, 3, 4)
    labels = torch.randint(0, 4, (2, 3))
    assert cross_entropy(seq, labels).item() == pytest.approx(
        torch.nn.functional.cross_entropy(seq.reshape(6, 4), labels.reshape(6)).item())
    assert accuracy(torch.eye(3), torch.tensor([0, 1, 0])) == pytest.approx(2 / 3)


def test_deep_linear_xavier_init_keeps_the_signal_scale():
    x = torch.randn(512, 50, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    xavier = make_model("deep-linear", (50,), 50, width=50, depth=20, seed=0, dtype=torch.float64)
    default = make_model("deep-linear", (50,), 50, width=50, depth=20, seed=0, dtype=torch.float64, init="default")
    ratio = lambda m: (m(x).norm() / x.norm()).item()  # noqa: E731
    assert 0.2 < ratio(xavier) < 5  # 21 layers of variance-preserving maps
    assert ratio(default) < 3 ** -10 * 10  # PyTorch's default shrinks by about √3 per layer
    with pytest.raises(ValueError, match="valid: xavier, default"):
        make_model("deep-linear", (50,), 50, init="orthogonal")


def test_transformer_parameter_count_without_allocation():
    m = make_model("transformer", (16,), 40, width=32, depth=2, heads=4)
    assert count_parameters("transformer", (16,), 40, width=32, depth=2, heads=4) == num_parameters(m)
