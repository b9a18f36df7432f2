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
                   dict(name="digits", loss="hinge"), dict(name="linear", loss="ce")]:
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
    pytest.importorskip("torchvision")  # without it the error names the missing extra instead
    with pytest.raises(ValueError, match="alternatives: digits") as err:
        load_dataset("cifar10", 10, root=tmp_path)
    assert "\n" not in str(err.value)


def test_cifar10_statistics_are_computed_once_and_stored(tmp_path, monkeypatch):
    """The per-feature statistics come from all training images once, then from the stored file."""
    import torchvision

    from eoslib import data as data_module

    _write_fake_cifar(tmp_path, n_per_batch=30, seed=3)
    monkeypatch.setattr(torchvision.datasets.CIFAR10, "_check_integrity", lambda self: True)
    monkeypatch.setattr(torchvision.datasets.cifar, "check_integrity", lambda path, md5=None: True)
    data_module._CIFAR_STATS.clear()
    first = load_dataset("cifar10", 12, root=tmp_path, dtype=torch.float64)
    stored = tmp_path / "cifar10-train-stats.npz"
    assert stored.exists()
    data_module._CIFAR_STATS.clear()  # a fresh process: the statistics come from the file
    calls = []
    monkeypatch.setattr(data_module, "_cifar10_statistics",
                        lambda *a, _f=data_module._cifar10_statistics: calls.append(1) or _f(*a))
    again = load_dataset("cifar10", 12, root=tmp_path, dtype=torch.float64)
    assert torch.equal(first.inputs, again.inputs) and calls == [1]
    with np.load(stored) as saved:
        mean, std = saved["mean"], saved["std"]
    assert mean.shape == std.shape == (3072,) and np.all(std > 0)
    raw = np.concatenate([pickle.load(open(tmp_path / "cifar-10-batches-py" / f"data_batch_{i}", "rb"))["data"]
                          for i in range(1, 6)]).astype(np.float64) / 255  # (150, 3072), CHW order
    assert np.allclose(mean, raw.mean(0), rtol=1e-12) and np.allclose(std, raw.std(0), rtol=1e-12)


def test_shakespeare_download_is_verified_and_atomic(tmp_path, monkeypatch):
    import hashlib
    import io

    from eoslib import data as data_module

    body = b"First Citizen:\nBefore we proceed any further, hear me speak.\n" * 50

    class Response(io.BytesIO):
        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    monkeypatch.setattr(data_module.urllib.request, "urlopen", lambda url, timeout: Response(body))
    with pytest.raises(ValueError, match="SHA-256"):  # the real digest: these bytes are not tiny Shakespeare
        load_text(5, source="shakespeare", root=tmp_path, download=True)
    assert list(tmp_path.iterdir()) == []  # nothing was saved
    monkeypatch.setattr(data_module, "SHAKESPEARE_SHA256", hashlib.sha256(body).hexdigest())
    d = load_text(5, context=8, source="shakespeare", root=tmp_path, download=True)
    assert d.inputs.shape == (5, 8) and [p.name for p in tmp_path.iterdir()] == ["tinyshakespeare.txt"]
    (tmp_path / "tinyshakespeare.txt").write_bytes(body[:-1])  # a damaged local copy is refused
    with pytest.raises(ValueError, match="delete it"):
        load_text(5, source="shakespeare", root=tmp_path)


def test_real_size_cifar10_folder(tmp_path, monkeypatch):
    """The tools/fake_cifar10 folder (50,000 training images): 5,000 examples load without converting all."""
    import importlib.util
    from pathlib import Path

    import torchvision

    spec = importlib.util.spec_from_file_location(
        "fake_cifar10_make", Path(__file__).resolve().parents[1] / "tools" / "fake_cifar10" / "make.py")
    make = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make)
    monkeypatch.setattr(torchvision.datasets.cifar, "check_integrity", lambda path, md5=None: True)
    make.write(tmp_path, per_batch=10_000)
    d = load_dataset("cifar10", 5000, root=tmp_path)
    assert d.inputs.shape == (5000, 3, 32, 32) and d.inputs.dtype == torch.float32
    assert abs(float(d.inputs.mean())) < 0.05 and abs(float(d.inputs.std()) - 1) < 0.05
