"""eoslib.data: preprocessing, shapes, offline sets, and CIFAR-10 on a fake torchvision folder."""

import pickle

import numpy as np
import pytest
import torch

from eoslib.data import load_dataset, load_text, tokenize


def test_digits_is_standardised_with_training_statistics():
    full = load_dataset("digits")  # the whole 1,500-example training split
    x = full.inputs.reshape(len(full), -1).double()
    # every non-constant feature has mean 0 and std 1 over the training split (float32 storage: 1e-5)
    std = x.std(dim=0, unbiased=False)
    varying = std > 0.5
    assert varying.sum() >= 60  # 64 pixels, a few are constant 0 in the corners
    assert x.mean(dim=0).abs().max() < 1e-5
    assert torch.allclose(std[varying], torch.ones_like(std[varying]), atol=1e-5)
    first = load_dataset("digits", 100)
    assert torch.equal(first.inputs, full.inputs[:100])  # "first n" convention


def test_targets_follow_the_loss():
    mse, ce = load_dataset("digits", 50, loss="mse"), load_dataset("digits", 50, loss="ce")
    assert mse.targets.shape == (50, 10) and torch.equal(mse.targets.argmax(1), mse.labels)
    assert torch.equal(ce.targets, ce.labels) and ce.targets.dtype == torch.long


def test_bad_requests_raise_one_line_value_errors():
    for kwargs in [dict(name="mnist"), dict(name="digits", n=1501), dict(name="digits", n=0),
                   dict(name="digits", loss="hinge"), dict(name="chebyshev", loss="ce")]:
        with pytest.raises(ValueError) as err:
            load_dataset(**kwargs)
        assert "\n" not in str(err.value)


def test_synthetic_is_seeded_and_splits_share_the_teacher():
    a, b = load_dataset("synthetic", 200, seed=1), load_dataset("synthetic", 200, seed=1)
    assert torch.equal(a.inputs, b.inputs) and torch.equal(a.labels, b.labels)
    assert not torch.equal(a.inputs, load_dataset("synthetic", 200, seed=2).inputs)
    test = load_dataset("synthetic", 200, seed=1, split="test")
    assert not torch.equal(test.inputs, a.inputs)
    assert len(set(a.labels.tolist())) == 10


def test_chebyshev_matches_the_polynomial():
    d = load_dataset("chebyshev", 20, degree=3, dtype=torch.float64)
    x = d.inputs[:, 0]
    assert torch.allclose(d.targets[:, 0], 4 * x**3 - 3 * x, atol=1e-12)  # T_3
    assert x[0] == -1 and x[-1] == 1


def test_linear_dataset_has_orthogonal_design():
    d = load_dataset("linear", 100, dim=10, dtype=torch.float64)
    gram = d.inputs.T @ d.inputs / 100
    assert torch.allclose(gram, torch.eye(10, dtype=torch.float64), atol=1e-10)


def test_text_windows_are_shifted_by_one():
    d = load_text(20, context=16, vocab=40)
    assert d.inputs.shape == (20, 16) and d.n_out == 40
    assert torch.equal(d.inputs[:, 1:], d.labels[:, :-1])
    assert "pydoc" in d.description
    tokens, symbols = tokenize("the cat the dog the", level="word", vocab=3)
    assert symbols == ["<unk>", "cat", "the"] and tokens == [2, 1, 2, 0, 2]


def _write_fake_cifar(root, n_per_batch=20, seed=0):
    """A CIFAR-10 folder in torchvision's on-disk format: pickled dicts with uint8 rows of 3·32·32 values."""
    g = np.random.default_rng(seed)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    batches = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        data = g.integers(0, 256, size=(n_per_batch, 3072), dtype=np.uint8)
        labels = g.integers(0, 10, size=n_per_batch).tolist()
        batches[name] = (data, labels)
        with open(folder / name, "wb") as f:
            pickle.dump({"data": data, "labels": labels}, f)
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({"label_names": [f"class{i}" for i in range(10)]}, f)
    return batches


def test_cifar10_on_a_fake_torchvision_folder(tmp_path, monkeypatch):
    import torchvision

    batches = _write_fake_cifar(tmp_path)
    # The fake files cannot match CIFAR-10's published MD5 sums; everything else is torchvision's real loader.
    monkeypatch.setattr(torchvision.datasets.CIFAR10, "_check_integrity", lambda self: True)
    monkeypatch.setattr(torchvision.datasets.cifar, "check_integrity", lambda path, md5=None: True)
    d = load_dataset("cifar10", 30, root=tmp_path, dtype=torch.float64)
    assert d.inputs.shape == (30, 3, 32, 32) and d.targets.shape == (30, 10)
    train = np.concatenate([batches[f"data_batch_{i}"][0] for i in range(1, 6)]).astype(np.float64) / 255
    mean, std = train.mean(0), train.std(0)
    first = (batches["data_batch_1"][0][0].astype(np.float64) / 255 - mean) / std
    assert np.allclose(d.inputs[0].numpy().reshape(-1), first)  # channel-first, standardised per feature
    assert d.labels[:20].tolist() == batches["data_batch_1"][1]
    with pytest.raises(ValueError, match="outside 1..100"):
        load_dataset("cifar10", 101, root=tmp_path)


def test_missing_cifar10_names_the_alternatives(tmp_path):
    with pytest.raises(ValueError, match="alternatives: digits") as err:
        load_dataset("cifar10", 10, root=tmp_path)
    assert "\n" not in str(err.value)
