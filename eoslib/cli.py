"""Command line: ``python -m eoslib run|sweep ...``.

``run`` trains one configuration and writes its JSON record; ``sweep`` trains one
configuration over a grid of learning rates (and seeds), in parallel, writes one
JSON record per run and a ``summary.json``, and prints a table. Examples::

    python -m eoslib run --model fc-tanh --dataset synthetic --n 1000 --loss mse --opt gd \\
        --lr 0.05 --steps 2000 --sharpness-every 20 --seed 0 --out run.json
    python -m eoslib sweep --lrs 0.05,0.1,0.2 --seeds 0,1 --steps 1000 --out-dir runs/
    python -m eoslib sweep --lrs 0.05,0.1 --dask tcp://scheduler:8786 --cache --out-dir runs/

**The record.** A JSON object with ``config`` (every setting), ``status``
(``converged``, ``diverged``, ``max_steps``), ``train_loss`` (one value per step),
``sharpness_steps`` and ``sharpness`` (equal lengths), ``threshold`` (the
optimizer's stability threshold) and ``wall_seconds``, among others. Every file
and every line the CLI prints is strict JSON, readable by any parser: a value
that is not a finite number (the loss of a diverged run, the threshold of a
vanishing step size) is written as ``null``, never as ``NaN`` or ``Infinity``.
A diverged run is a result (status ``diverged``), not an error.

**Sweeps.** The runs of a sweep go to a local pool of ``--workers`` processes
(default: CPU cores // ``EOSLIB_THREADS``) or, with ``--dask ADDRESS``, to a Dask
cluster (:mod:`eoslib.sweep`). Each finished run is written to
``lr<η>-seed<s>-<id>.json`` (``<η>`` in full precision, ``<id>`` a hash of the whole
config: distinct configs never share a file) as soon as it arrives, and
``summary.json`` lists every run with its status; a run that fails is listed
with its error and the sweep goes on. With ``--cache`` runs are cached under
``EOSLIB_CACHE`` and an interrupted sweep, rerun, resumes where it stopped.

**Errors.** Bad input is refused before any work, with one line
``eoslib: error: ...`` on stderr, exit status 2 and no file written: numbers are
plain decimals (digits 0-9, e.g. ``0.05`` or ``5e-2``; no ``0_05``, no other
scripts' digits), output folders are checked for writing first. Exit statuses:
0 done; 1 a sweep in which some runs failed (see ``summary.json``); 2 bad input,
or a ``run`` that failed; 130 interrupted (rerun with ``--cache`` to resume).
"""

from __future__ import annotations

import argparse
import math
import os
import re
import sys
import tempfile
import warnings
from pathlib import Path

from .cache import atomic_write, to_json
from .data import DATASETS
from .models import MODELS
from .optim import OPTIMIZERS
from .settings import book_settings
from .sweep import Outcome, config_id, default_workers, one_line, sweep
from .train import DTYPES, METRICS, Run, TrainConfig, train

MAX_INT = 2 ** 63 - 1  # integers must fit a signed 64-bit integer (torch's seeds and sizes)


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line, without the usage block.

    Values such as ``-1e-3`` or ``-inf`` are read as (bad) numbers, not as
    options, so the message says what is wrong with them.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._negative_number_matcher = re.compile(r"^-(?:[0-9]|\.[0-9]|inf|nan)", re.IGNORECASE)

    def error(self, message: str):  # noqa: D102 - argparse API
        self.exit(2, f"eoslib: error: {message} (see --help)\n")


class InputError(ValueError):
    """Bad input found before any work: reported as one line, exit status 2."""


# ---------------------------------------------------------------- strict numbers

_DECIMAL = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_INTEGER = re.compile(r"[+-]?[0-9]+")


def decimal(text: str) -> float:
    """A plain decimal number: ASCII digits, optional sign, point and exponent.

    Python's ``float`` also reads ``0_05`` (as 5.0), ``nan``, and digits of other
    scripts (``٠.٥``, full-width ``０.５``); a command line should not.

    >>> decimal("5e-2"), decimal(".5"), decimal("1.")
    (0.05, 0.5, 1.0)
    >>> decimal("0_05")
    Traceback (most recent call last):
    ...
    ValueError: '0_05' is not a plain decimal number (e.g. 0.05 or 5e-2)
    """
    if not _DECIMAL.fullmatch(text.strip(" \t")):
        raise ValueError(f"{text!r} is not a plain decimal number (e.g. 0.05 or 5e-2)")
    return float(text)


def integer(text: str) -> int:
    """A plain integer: ASCII digits with an optional sign.

    >>> integer("+12"), integer("007")
    (12, 7)
    """
    if not _INTEGER.fullmatch(text.strip(" \t")):
        raise ValueError(f"{text!r} is not a plain integer (digits 0-9)")
    return int(text)


def _option(convert, low, high, *, low_open=False, high_open=False, requirement: str | None = None):
    """An argparse ``type``: ``convert`` the text, then require it in the interval; errors are one line."""
    interval = f"{'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}" \
        if convert is decimal else f"{low}..{high}"
    requirement = requirement or f"must lie in {interval}"

    def parse(text: str):
        try:
            value = convert(text)
        except ValueError as err:
            raise argparse.ArgumentTypeError(str(err)) from None
        above = value > low if low_open else value >= low
        below = value < high if high_open else value <= high
        if not (above and below and math.isfinite(value)):
            raise argparse.ArgumentTypeError(f"{text!r} {requirement}")
        return value

    return parse


_positive_float = _option(decimal, 0, math.inf, low_open=True, high_open=True,
                          requirement="must be a positive finite number")
_fraction = _option(decimal, 0, 1, high_open=True)  # [0, 1): momentum, β₁, β₂
_acc = _option(decimal, 0, 1, low_open=True)  # (0, 1]
_positive_int = _option(integer, 1, MAX_INT)
_nonnegative_int = _option(integer, 0, MAX_INT)


def _list(item):
    """A comma-separated list of ``item``s, each at most once."""

    def parse(text: str) -> list:
        parts = [t for t in text.split(",") if t.strip(" \t")]
        if not parts:
            raise argparse.ArgumentTypeError(f"{text!r} lists no values")
        values = [item(t) for t in parts]
        repeated = sorted({t.strip() for t, v in zip(parts, values) if values.count(v) > 1})
        if repeated:
            raise argparse.ArgumentTypeError(f"{text!r} lists a value twice ({', '.join(repeated)})")
        return values

    return parse


# ---------------------------------------------------------------- the parser

def _add_config_options(p: argparse.ArgumentParser) -> None:
    d = TrainConfig()
    p.add_argument("--model", choices=list(MODELS), default=d.model, help="architecture (default %(default)s)")
    p.add_argument("--dataset", choices=list(DATASETS), default=None,
                   help="dataset (default: EOSLIB_DATASET, else digits)")
    p.add_argument("--n", type=_positive_int, default=d.n, help="training examples, the first n (default %(default)s)")
    p.add_argument("--loss", choices=["mse", "ce"], default=d.loss,
                   help="loss: mse (½‖f−y‖²) or ce (default %(default)s)")
    p.add_argument("--opt", choices=list(OPTIMIZERS), default=d.opt, help="optimizer (default %(default)s)")
    p.add_argument("--momentum", type=_fraction, default=d.momentum,
                   help="momentum β in [0, 1) for heavy_ball / nesterov / sgd (default %(default)s)")
    p.add_argument("--beta1", type=_fraction, default=d.beta1, help="Adam's β₁ in [0, 1) (default %(default)s)")
    p.add_argument("--beta2", type=_fraction, default=d.beta2, help="Adam's β₂ in [0, 1) (default %(default)s)")
    p.add_argument("--batch-size", type=_positive_int, default=None, help="SGD minibatch size (default: full batch)")
    p.add_argument("--steps", type=_positive_int, default=d.steps, help="maximum steps (default %(default)s)")
    p.add_argument("--sharpness-every", type=_nonnegative_int, default=d.sharpness_every,
                   help="measure the sharpness every k steps, 0 = never (default %(default)s)")
    p.add_argument("--metrics", default="", help=f"comma-separated extra metrics from: {', '.join(METRICS)}")
    p.add_argument("--width", type=_positive_int, default=None, help="model width (default: architecture's)")
    p.add_argument("--depth", type=_nonnegative_int, default=None, help="model depth (default: architecture's)")
    p.add_argument("--seed", type=_nonnegative_int, default=d.seed,
                   help=f"initialisation / minibatch seed, 0..2⁶³−1 (default {d.seed})")
    p.add_argument("--dtype", choices=list(DTYPES), default=d.dtype, help="float precision (default %(default)s)")
    p.add_argument("--device", choices=["cpu", "cuda"], default=None, help="device (default: EOSLIB_DEVICE, else auto)")
    p.add_argument("--chunk-size", type=_positive_int, default=None, help="examples per physical batch (default: all)")
    p.add_argument("--loss-goal", type=_positive_float, default=None, help="stop once the train loss is below this")
    p.add_argument("--acc-goal", type=_acc, default=None, help="stop once the train accuracy reaches this, in (0, 1]")
    p.add_argument("--cache", action="store_true", help="use the result cache (EOSLIB_CACHE) and resume from checkpoints")
    p.add_argument("--download", action="store_true", help="allow downloading the dataset (cifar10)")
    p.add_argument("--quiet", action="store_true", help="no progress bar or progress lines")


def parser() -> argparse.ArgumentParser:
    """The ``python -m eoslib`` argument parser."""
    p = _Parser(prog="python -m eoslib", allow_abbrev=False,
                description="Train networks and track their sharpness (eoslib). Output is strict JSON: "
                            "non-finite numbers are written as null. Bad input: one line, exit status 2.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)
    run = sub.add_parser("run", allow_abbrev=False, help="train one configuration and write its JSON record",
                         description="Train one configuration and write its JSON record (strict JSON: "
                                     "non-finite numbers are null).")
    _add_config_options(run)
    run.add_argument("--lr", type=_positive_float, required=True, help="step size η")
    run.add_argument("--out", required=True, help="file of the JSON record (its folder is created if missing)")
    sw = sub.add_parser("sweep", allow_abbrev=False,
                        help="train one configuration at several learning rates and seeds",
                        description="Train one configuration over a grid of learning rates and seeds, in "
                                    "parallel; one JSON record per run, summary.json and a table (strict JSON: "
                                    "non-finite numbers are null). Exit status 1 if some runs failed.")
    _add_config_options(sw)
    sw.add_argument("--lrs", type=_list(_positive_float), required=True,
                    help="comma-separated step sizes, e.g. 0.05,0.1,0.2")
    sw.add_argument("--seeds", type=_list(_nonnegative_int), default=None,
                    help="comma-separated seeds, e.g. 0,1,2 (default: --seed)")
    sw.add_argument("--out-dir", required=True, help="folder for one JSON per run and summary.json")
    sw.add_argument("--workers", type=_option(integer, 1, 1024), default=None,
                    help="local worker processes (default: CPU cores // EOSLIB_THREADS; 1 = in this process)")
    sw.add_argument("--dask", metavar="ADDRESS", default=None,
                    help="run on the Dask cluster whose scheduler is at ADDRESS, e.g. tcp://host:8786 "
                         "(needs dask[distributed]; with --cache, EOSLIB_CACHE must be shared by the workers)")
    sw.set_defaults(seed=None)  # so that --seed and --seeds together can be refused
    return p


# ---------------------------------------------------------------- output folders, checked first

def _existing_ancestor(path: Path) -> Path:
    for folder in [path, *path.parents]:
        if folder.exists():
            return folder
    return Path(".")


def _check_folder(folder: Path, what: str) -> None:
    """Raise :class:`InputError` unless files can be created in ``folder`` (or in the folder that would hold it).

    ``what`` names the input in the message (e.g. ``--out 'x/run.json'``). Creates
    nothing that stays: a probe file is created in the nearest existing folder and
    deleted at once.
    """
    base = _existing_ancestor(folder.absolute())
    if not base.is_dir():
        raise InputError(f"{what}: {str(base)!r} is a file, not a folder")
    try:
        fd, probe = tempfile.mkstemp(dir=base, prefix=".eoslib-probe-")
    except OSError as err:
        raise InputError(f"{what}: cannot create files in {str(base)!r} ({err.strerror or one_line(err)})") from None
    os.close(fd)
    os.unlink(probe)


def _check_file(text: str, option: str) -> Path:
    """The output file ``text``, checked: a file name, not too long, in a folder where files can be created."""
    if not text.strip():
        raise InputError(f"{option} is empty; give a file name such as run.json")
    path = Path(text)
    what = f"{option} {text!r}"
    base = _existing_ancestor(path.parent.absolute())
    try:
        name_max = os.pathconf(base, "PC_NAME_MAX")
    except (AttributeError, OSError, ValueError):
        name_max = 255
    if len(os.fsencode(path.name)) > name_max:
        raise InputError(f"{option}: the file name has {len(os.fsencode(path.name))} bytes; "
                         f"this file system allows {name_max}")
    if text.endswith(("/", os.sep)) or path.is_dir():
        raise InputError(f"{what} is a folder; give a file name such as {str(path / 'run.json')!r}")
    _check_folder(path.parent, what)
    return path


def _write_file(path: Path, data: bytes) -> None:
    """Write ``path`` atomically, through a short temporary name (any legal ``path.name`` works)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    short = path.parent / f".eoslib-{os.getpid()}-{os.urandom(4).hex()}.part"
    try:
        atomic_write(short, data)
        os.replace(short, path)
    finally:
        short.unlink(missing_ok=True)


def _check_folder_option(text: str, what: str) -> Path:
    if not text.strip():
        raise InputError(f"{what} is empty; give a folder")
    path = Path(text)
    if path.exists() and not path.is_dir():
        raise InputError(f"{what} {text!r} is a file, not a folder")
    _check_folder(path, f"{what} {text!r}")
    return path


# ---------------------------------------------------------------- configs and summaries

def _configs(args: argparse.Namespace, dataset: str, device: str) -> list[TrainConfig]:
    metrics = tuple(m.strip() for m in args.metrics.split(",") if m.strip())
    common = dict(model=args.model, dataset=dataset, n=args.n, loss=args.loss, opt=args.opt,
                  momentum=args.momentum, beta1=args.beta1, beta2=args.beta2, batch_size=args.batch_size,
                  steps=args.steps, sharpness_every=args.sharpness_every, metrics=metrics, width=args.width,
                  depth=args.depth, dtype=args.dtype, device=device, chunk_size=args.chunk_size,
                  loss_goal=args.loss_goal, acc_goal=args.acc_goal)
    if args.command == "run":
        return [TrainConfig(lr=args.lr, seed=args.seed, **common)]
    if args.seeds is not None and args.seed is not None:
        raise InputError("give --seed or --seeds, not both")
    seeds = args.seeds or [TrainConfig().seed if args.seed is None else args.seed]
    return [TrainConfig(lr=lr, seed=seed, **common) for lr in args.lrs for seed in seeds]


def record_name(config: TrainConfig) -> str:
    """File name of a sweep's record: ``lr<η>-seed<s>-<config id>.json``, η in full precision.

    >>> record_name(TrainConfig(lr=0.1, seed=2))[:12]
    'lr0.1-seed2-'
    """
    return f"lr{config.lr!r}-seed{config.seed}-{config_id(config)}.json"


def _summary(run: Run) -> dict:
    """The one-line summary of a run (non-finite values become null when written)."""
    from .analysis import late_start, median_ratio_after

    late = (median_ratio_after(run.sharpness_steps, run.sharpness, run.threshold, late_start(run.sharpness_steps))
            if run.sharpness and run.threshold > 0 else None)
    return {"lr": run.config.lr, "seed": run.config.seed, "status": run.status, "steps": len(run.train_loss),
            "final_loss": run.train_loss[-1] if run.train_loss else None,
            "max_sharpness": max(run.sharpness, default=None),
            "late_sharpness_over_threshold": late, "threshold": run.threshold, "wall_seconds": run.wall_seconds}


def _row(config: TrainConfig, outcome: Outcome | None) -> dict:
    base = {"file": None, "lr": config.lr, "seed": config.seed}
    if outcome is None:
        return {**base, "status": "pending"}
    if outcome.run is None:
        return {**base, "status": "failed", "error": outcome.error}
    return {**_summary(outcome.run), "file": record_name(config)}


def _fmt(value, spec: str, width: int) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return f"{'—':>{width}}"
    return f"{value:>{width}{spec}}"


def _table(rows: list[dict]) -> str:
    lines = [f"{'lr':>10} {'seed':>5} {'status':>9} {'steps':>6} {'final loss':>10} {'max λ':>9} "
             f"{'threshold':>9} {'late λ/thr':>10} {'seconds':>8}"]
    for r in rows:
        lines.append(f"{r['lr']:>10.4g} {r['seed']:>5} {r['status']:>9} {_fmt(r.get('steps'), 'd', 6)} "
                     f"{_fmt(r.get('final_loss'), '.4g', 10)} {_fmt(r.get('max_sharpness'), '.4g', 9)} "
                     f"{_fmt(r.get('threshold'), '.4g', 9)} {_fmt(r.get('late_sharpness_over_threshold'), '.3f', 10)} "
                     f"{_fmt(r.get('wall_seconds'), '.1f', 8)}")
    for r in rows:
        if r["status"] == "failed":
            lines.append(f"lr={r['lr']!r} seed={r['seed']}: {r['error']}"[:88])
    return "\n".join(lines)


# ---------------------------------------------------------------- commands

def _preflight(config: TrainConfig, data_root, download: bool) -> None:
    """Build the model and data of ``config`` and evaluate the loss on two examples: a bad combination fails here."""
    import torch

    from .losses import get_loss
    from .train import build

    try:
        model, data = build(config, data_root=data_root, download=download)
        with torch.no_grad():
            get_loss(config.loss)(model(data.inputs[:2]), data.targets[:2])
    except Exception as err:  # noqa: BLE001 - any failure here is a bad configuration, reported in one line
        raise InputError(f"the configuration cannot run: {one_line(err)}") from None


def _dask_executor(address: str):
    if not address.strip():
        raise InputError("--dask is empty; give the scheduler's address, e.g. tcp://host:8786")
    try:
        from distributed import Client
    except ImportError:
        raise InputError("--dask needs the distributed package: pip install 'dask[distributed]'") from None
    try:
        return Client(address, timeout="10s")
    except Exception as err:  # noqa: BLE001 - address parsing, network and protocol errors alike
        raise InputError(f"--dask {address!r}: cannot reach a Dask scheduler ({one_line(err)})") from None


def _run(args, settings, config: TrainConfig, cache_dir) -> int:
    out = _check_file(args.out, "--out")
    run = train(config, cache_dir=cache_dir, data_root=settings.data_dir, download=args.download,
                progress=not args.quiet and sys.stderr.isatty())
    _write_file(out, to_json(run.to_dict(), indent=1).encode())
    print(to_json(_summary(run)))
    return 0


def _sweep(args, settings, configs: list[TrainConfig], cache_dir) -> int:
    out_dir = _check_folder_option(args.out_dir, "--out-dir")
    executor = None
    if args.dask is not None:
        executor = _dask_executor(args.dask)
    else:
        _preflight(configs[0], settings.data_dir, args.download)
    outcomes: dict[str, Outcome] = {}

    def rows() -> list[dict]:
        return [_row(c, outcomes.get(record_name(c))) for c in configs]

    def arrived(outcome: Outcome) -> None:
        name = record_name(outcome.config)
        outcomes[name] = outcome
        if outcome.run is not None:
            atomic_write(out_dir / name, to_json(outcome.run.to_dict(), indent=1).encode())
        atomic_write(out_dir / "summary.json", to_json(rows(), indent=1).encode())
        if not args.quiet:
            c = outcome.config
            print(f"[{len(outcomes)}/{len(configs)}] lr={c.lr!r} seed={c.seed}: {outcome.status}"
                  + (f" ({outcome.error})" if outcome.error else ""), file=sys.stderr)

    try:
        sweep(configs, executor, cache_dir=cache_dir, data_root=settings.data_dir, download=args.download,
              threads=settings.threads, workers=args.workers, on_result=arrived)
    finally:
        if executor is not None:
            executor.close()
    table = rows()
    print(_table(table))
    failed = sum(r["status"] == "failed" for r in table)
    if failed:
        print(f"eoslib: {failed} of {len(table)} runs failed (see {out_dir / 'summary.json'})", file=sys.stderr)
        return 1
    return 0


def _main(args: argparse.Namespace) -> int:
    settings = book_settings()
    import torch

    torch.set_num_threads(settings.threads)
    configs = _configs(args, args.dataset or settings.dataset, args.device or settings.device)
    cache_dir = None
    if args.cache:
        _check_folder(settings.cache_dir, f"EOSLIB_CACHE={str(settings.cache_dir)!r}")
        cache_dir = settings.cache_dir
    if args.command == "run":
        return _run(args, settings, configs[0], cache_dir)
    return _sweep(args, settings, configs, cache_dir)


def _one_line_warning(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"eoslib: warning: {str(message).splitlines()[0] if str(message) else category.__name__}",
          file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    args = parser().parse_args(argv)
    with warnings.catch_warnings():
        warnings.showwarning = _one_line_warning
        try:
            return _main(args)
        except KeyboardInterrupt:
            print("eoslib: interrupted (rerun with --cache to resume from the last checkpoint)", file=sys.stderr)
            return 130
        except Exception as err:  # noqa: BLE001 - the CLI's promise: one line, never a traceback
            message = one_line(err) if isinstance(err, (ValueError, OSError)) else f"the run failed: {one_line(err)}"
            print(f"eoslib: error: {message}", file=sys.stderr)
            return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
