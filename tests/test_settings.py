"""eoslib.settings: the book-wide settings, read from the environment or chosen from Python."""

import os
from pathlib import Path

import pytest
import torch

from eoslib import settings
from eoslib.settings import book_settings, configure

_STARTING_ENV = dict(os.environ)  # at collection, before any test ran


def test_defaults_and_seed():
    s = book_settings(env={"EOSLIB_DEVICE": "cpu"})
    assert (s.dataset, s.scale, s.device, s.seed, s.threads) == ("digits", "cpu", "cpu", 0, 1)
    assert book_settings(env={"EOSLIB_SEED": "12", "EOSLIB_DEVICE": "cpu"}).seed == 12
    assert book_settings(env={"EOSLIB_SEED": "3"}).seeds(2) == [3, 4]


def test_auto_device_follows_cuda_availability():
    assert book_settings(env={}).device == ("cuda" if torch.cuda.is_available() else "cpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_without_a_gpu_is_one_line():
    with pytest.raises(ValueError, match="EOSLIB_DEVICE=cuda but torch sees no CUDA device"):
        book_settings(env={"EOSLIB_DEVICE": "cuda"})


@pytest.mark.parametrize("env,message", [
    ({"EOSLIB_SEED": "-1"}, "EOSLIB_SEED"),
    ({"EOSLIB_SEED": "1.5"}, "EOSLIB_SEED"),
    ({"EOSLIB_SEED": "0_1"}, "EOSLIB_SEED"),          # Python's underscore literal is not a seed
    ({"EOSLIB_SEED": "١"}, "EOSLIB_SEED"),            # Arabic-Indic digit
    ({"EOSLIB_SEED": str(2 ** 70)}, "EOSLIB_SEED"),
    ({"EOSLIB_THREADS": "0"}, "EOSLIB_THREADS"),
    ({"EOSLIB_SCALE": "huge"}, "EOSLIB_SCALE"),
    ({"EOSLIB_DEVICE": "gpu"}, "EOSLIB_DEVICE"),
    ({"EOSLIB_DATASET": "mnist"}, "EOSLIB_DATASET"),
])
def test_bad_environment_is_one_line(env, message):
    with pytest.raises(ValueError, match=message) as err:
        book_settings(env=env)
    assert "\n" not in str(err.value)


def test_empty_variables_count_as_unset(tmp_path):
    s = book_settings(env={"EOSLIB_CACHE": "", "EOSLIB_SEED": " ", "EOSLIB_DEVICE": "cpu"})
    assert s.cache_dir == Path.home() / ".cache" / "eoslib" and s.seed == 0


def test_cache_that_is_a_file_is_refused(tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(ValueError, match="is a file, not a folder"):
        book_settings(env={"EOSLIB_CACHE": str(f)})


def test_overrides_are_validated_like_the_environment():
    assert book_settings(env={}, scale="paper", device="cpu", seed=4).scale == "paper"
    for bad in ({"scale": "huge"}, {"device": "gpu"}, {"seed": -2}, {"seed": True}, {"threads": 0},
                {"colour": "red"}):
        with pytest.raises(ValueError):
            book_settings(env={}, **bad)


def test_str_has_no_machine_paths(tmp_path):
    s = book_settings(env={"EOSLIB_CACHE": str(tmp_path), "EOSLIB_DEVICE": "cpu"})
    assert str(tmp_path) not in str(s) and "seed=0" in str(s)


def test_configure_sets_the_environment_for_later_reads(monkeypatch):
    for var in settings.VARIABLES.values():
        monkeypatch.setenv(var, "")  # recorded, so monkeypatch restores (or removes) it afterwards ...
        monkeypatch.delenv(var)      # ... even though configure() below writes it: nothing leaks
    result = configure(scale="paper", seed=5, device="cpu")
    assert os.environ["EOSLIB_SCALE"] == "paper" and os.environ["EOSLIB_SEED"] == "5"
    assert book_settings() == result
    with pytest.raises(ValueError):
        configure(scale="huge")
    assert os.environ["EOSLIB_SCALE"] == "paper"  # a refused value changes nothing


def test_no_test_leaves_book_settings_in_the_environment():
    """configure() writes os.environ; a test that leaked it would change the scale or seed of
    every chapter that pytest-xdist later executes in the same worker (kernels inherit it)."""
    leaked = {v: os.environ[v] for v in ("EOSLIB_SCALE", "EOSLIB_SEED", "EOSLIB_DEVICE", "EOSLIB_DATASET")
              if os.environ.get(v) != _STARTING_ENV.get(v)}
    assert not leaked, f"book settings changed by an earlier test: {leaked}"


def test_config_and_train_helpers(tmp_path):
    s = book_settings(env={"EOSLIB_CACHE": str(tmp_path), "EOSLIB_SEED": "2", "EOSLIB_DEVICE": "cpu"})
    config = s.config(model="fc-tanh", n=20, width=8, lr=0.1, steps=3, sharpness_every=1)
    assert (config.seed, config.device, config.dataset) == (2, "cpu", "digits")
    first = s.train(config)
    assert len(first.train_loss) == 3 and any(tmp_path.iterdir())  # cached under EOSLIB_CACHE
    again = s.train(config)
    assert again.train_loss == first.train_loss
    seen = []
    s.train(config, callback=lambda t, model, run: seen.append(t))  # a callback turns the cache off
    assert seen == [0, 1, 2]
