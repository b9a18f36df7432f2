"""Write a CIFAR-10 folder of real size in torchvision's on-disk format, filled with random images.

Real CIFAR-10 cannot be downloaded on offline machines; this folder lets the
``cifar10`` code paths (and the chapters' ``EOSLIB_DATASET=cifar10`` branches) run
end to end on data of the real shape and size: five training batches of 10,000
images and one test batch, pickled dicts with ``uint8`` rows of 3·32·32 values.

torchvision checks the MD5 of each file, which random files cannot match; put
``tools/fake_cifar10`` on ``PYTHONPATH`` (its ``sitecustomize.py`` turns that check
off, and only that) when running against the folder::

    python tools/fake_cifar10/make.py /tmp/fake-data
    PYTHONPATH=tools/fake_cifar10:. EOSLIB_DATA=/tmp/fake-data EOSLIB_DATASET=cifar10 ...
"""

from __future__ import annotations

import argparse
import pickle
from pathlib import Path

import numpy as np


def write(root: str | Path, per_batch: int = 10_000, seed: int = 0) -> Path:
    """Write ``root/cifar-10-batches-py`` (5 train batches + 1 test batch of ``per_batch`` images)."""
    folder = Path(root) / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        data = rng.integers(0, 256, size=(per_batch, 3 * 32 * 32), dtype=np.uint8)
        labels = rng.integers(0, 10, size=per_batch).tolist()
        with open(folder / name, "wb") as f:
            pickle.dump({"data": data, "labels": labels}, f)
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({"label_names": [f"class{i}" for i in range(10)]}, f)
    return folder


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", help="folder to create (EOSLIB_DATA)")
    parser.add_argument("--per-batch", type=int, default=10_000, help="images per batch file (default 10000)")
    args = parser.parse_args()
    print(write(args.root, args.per_batch))
