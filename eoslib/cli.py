"""Command line: ``python -m eoslib run|sweep ...``.

``run`` trains one configuration and writes its JSON record; ``sweep`` runs one
configuration over several learning rates, writes one JSON per run and prints
a summary table. Bad input exits with status 2 and a one-line ``eoslib: error:``
message, never a traceback. Examples::

    python -m eoslib run --model fc-tanh --dataset synthetic --n 1000 --loss mse --opt gd \\
        --lr 0.05 --steps 2000 --sharpness-every 20 --seed 0 --out run.json
    python -m eoslib sweep --lrs 0.05,0.1,0.2 --steps 1000 --out-dir runs/

The JSON record holds ``config`` (every setting), ``status`` (``converged``,
``diverged``, ``max_steps``), ``train_loss`` (one float per step),
``sharpness_steps`` and ``sharpness`` (equal lengths), ``threshold`` (the
optimizer's stability threshold) and ``wall_seconds``, among others.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

from .cache import atomic_write
from .data import DATASETS
from .models import MODELS
from .optim import OPTIMIZERS
from .settings import book_settings
from .train import DTYPES, METRICS, Run, TrainConfig, train


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line, without the usage block."""

    def error(self, message: str):  # noqa: D102 - argparse API
        self.exit(2, f"eoslib: error: {message} (see --help)\n")


def _parsed(convert, valid, requirement: str, noun: str):
    """An argparse ``type``: ``convert`` the text, then require ``valid(value)``; errors are one line."""

    def parse(text: str):
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {noun}") from None
        if not valid(value):
            raise argparse.ArgumentTypeError(f"{text!r} {requirement}")
        return value

    return parse


_positive_float = _parsed(float, lambda v: v > 0 and math.isfinite(v), "must be a positive number", "a number")
_positive_int = _parsed(int, lambda v: v >= 1, "must be a positive integer", "an integer")
_nonnegative_int = _parsed(int, lambda v: v >= 0, "must be >= 0", "an integer")
_unit_interval = _parsed(float, lambda v: 0 <= v < 1, "must lie in [0, 1)", "a number")


def _lr_list(text: str) -> list[float]:
    return [_positive_float(t) for t in text.split(",") if t.strip()] or [_positive_float(text)]


def _add_config_options(p: argparse.ArgumentParser) -> None:
    d = TrainConfig()
    p.add_argument("--model", choices=list(MODELS), default=d.model, help="architecture (default %(default)s)")
    p.add_argument("--dataset", choices=list(DATASETS), default=None,
                   help="dataset (default: EOSLIB_DATASET, else digits)")
    p.add_argument("--n", type=_positive_int, default=d.n, help="training examples, the first n (default %(default)s)")
    p.add_argument("--loss", choices=["mse", "ce"], default=d.loss, help="loss: mse (½‖f−y‖²) or ce (default %(default)s)")
    p.add_argument("--opt", choices=list(OPTIMIZERS), default=d.opt, help="optimizer (default %(default)s)")
    p.add_argument("--momentum", type=_unit_interval, default=d.momentum,
                   help="momentum β for heavy-ball / nesterov / sgd (default %(default)s)")
    p.add_argument("--beta1", type=_unit_interval, default=d.beta1, help="Adam's β₁ (default %(default)s)")
    p.add_argument("--batch-size", type=_positive_int, default=None, help="SGD minibatch size (default: full batch)")
    p.add_argument("--steps", type=_positive_int, default=d.steps, help="maximum steps (default %(default)s)")
    p.add_argument("--sharpness-every", type=_nonnegative_int, default=d.sharpness_every,
                   help="measure the sharpness every k steps, 0 = never (default %(default)s)")
    p.add_argument("--metrics", default="", help=f"comma-separated extra metrics from: {', '.join(METRICS)}")
    p.add_argument("--width", type=_positive_int, default=None, help="model width (default: architecture's)")
    p.add_argument("--depth", type=_nonnegative_int, default=None, help="model depth (default: architecture's)")
    p.add_argument("--seed", type=int, default=d.seed, help="initialisation / minibatch seed (default %(default)s)")
    p.add_argument("--dtype", choices=list(DTYPES), default=d.dtype, help="float precision (default %(default)s)")
    p.add_argument("--device", choices=["cpu", "cuda"], default=None, help="device (default: EOSLIB_DEVICE, else cpu)")
    p.add_argument("--chunk-size", type=_positive_int, default=None, help="examples per physical batch (default: all)")
    p.add_argument("--loss-goal", type=_positive_float, default=None, help="stop once the train loss is below this")
    p.add_argument("--acc-goal", type=_positive_float, default=None, help="stop once the train accuracy reaches this")
    p.add_argument("--cache", action="store_true", help="use the result cache (EOSLIB_CACHE) and resume from checkpoints")
    p.add_argument("--download", action="store_true", help="allow downloading the dataset (cifar10)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def parser() -> argparse.ArgumentParser:
    """The ``python -m eoslib`` argument parser."""
    p = _Parser(prog="python -m eoslib", description="Train networks and track their sharpness (eoslib).")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)
    run = sub.add_parser("run", help="train one configuration and write its JSON record")
    _add_config_options(run)
    run.add_argument("--lr", type=_positive_float, required=True, help="step size η")
    run.add_argument("--out", type=Path, required=True, help="path of the JSON record")
    sweep = sub.add_parser("sweep", help="train one configuration at several learning rates")
    _add_config_options(sweep)
    sweep.add_argument("--lrs", type=_lr_list, required=True, help="comma-separated step sizes, e.g. 0.05,0.1,0.2")
    sweep.add_argument("--out-dir", type=Path, required=True, help="folder for one JSON per run and summary.json")
    return p


def _config(args: argparse.Namespace, lr: float, dataset: str, device: str) -> TrainConfig:
    metrics = tuple(m.strip() for m in args.metrics.split(",") if m.strip())
    return TrainConfig(model=args.model, dataset=dataset, n=args.n, loss=args.loss, opt=args.opt, lr=lr,
                       momentum=args.momentum, beta1=args.beta1, batch_size=args.batch_size, steps=args.steps,
                       sharpness_every=args.sharpness_every, metrics=metrics, width=args.width,
                       depth=args.depth, seed=args.seed, dtype=args.dtype, device=device, chunk_size=args.chunk_size,
                       loss_goal=args.loss_goal, acc_goal=args.acc_goal)


def _write(path: Path, run: Run) -> None:
    atomic_write(path, json.dumps(run.to_dict(), indent=1).encode())


def _summary(run: Run) -> dict:
    tail = run.sharpness[len(run.sharpness) // 2:]
    return {"lr": run.config.lr, "status": run.status, "steps": len(run.train_loss),
            "final_loss": run.train_loss[-1] if run.train_loss else float("nan"),
            "max_sharpness": max(run.sharpness, default=float("nan")),
            "late_sharpness_over_threshold": (sorted(tail)[len(tail) // 2] / run.threshold) if tail else float("nan"),
            "threshold": run.threshold, "wall_seconds": run.wall_seconds}


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    args = parser().parse_args(argv)
    try:
        settings = book_settings()
        import torch

        torch.set_num_threads(settings.threads)
        dataset, device = args.dataset or settings.dataset, args.device or settings.device
        lrs = [args.lr] if args.command == "run" else args.lrs
        configs = [_config(args, lr, dataset, device) for lr in lrs]  # validate all before running any
        kw = dict(cache_dir=settings.cache_dir if args.cache else None, data_root=settings.data_dir,
                  download=args.download, progress=not args.quiet)
        if args.command == "run":
            run = train(configs[0], **kw)
            _write(args.out, run)
            print(json.dumps(_summary(run)))
            return 0
        rows = []
        for config in configs:
            run = train(config, **kw)
            _write(args.out_dir / f"lr{config.lr:g}.json", run)
            rows.append(_summary(run))
        atomic_write(args.out_dir / "summary.json", json.dumps(rows, indent=1).encode())
        print(f"{'lr':>10} {'status':>10} {'steps':>6} {'final loss':>11} {'max λ':>9} {'2/η-type thr':>12} "
              f"{'late λ/thr':>10} {'seconds':>8}")
        for r in rows:
            print(f"{r['lr']:>10g} {r['status']:>10} {r['steps']:>6} {r['final_loss']:>11.4g} {r['max_sharpness']:>9.4g} "
                  f"{r['threshold']:>12.4g} {r['late_sharpness_over_threshold']:>10.3f} {r['wall_seconds']:>8.1f}")
        return 0
    except (ValueError, OSError) as err:
        message = str(err).splitlines()[0] if str(err) else type(err).__name__
        print(f"eoslib: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("eoslib: interrupted (rerun with --cache to resume from the last checkpoint)", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
