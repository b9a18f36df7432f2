"""Benchmark: eoslib.hessian.sharpness against PyHessian, the paper's eigsh code and hessian-eigenthings.

Every method measures the same float32 model state (200 GD steps on random
CIFAR-shaped data) to the same accuracy, 1e-3 relative to a float64 reference
(our Lanczos at tol=1e-9 on a float64 copy).  Peers whose accuracy depends on a
setting get the *cheapest* setting of a ladder that reaches 1e-3 (decided with
hindsight, in their favour); only that run is timed.  Also reported: the cost of
one Hessian-vector product in gradients, the floor (fewest products that reach
1e-3 from our start vector × our cheapest product), and the overhead of tracking
sharpness every 10 steps during 300 steps of ``eoslib.train.train`` on the same MLP
(the book's training loop, which measures on each step's own gradient graph).

    python benchmarks/bench_sharpness.py            # a few minutes on 1 thread
    python benchmarks/bench_sharpness.py --quick    # smaller data, ~1 minute

Peers are installed on first use (``pip install --no-deps``); they are not
dependencies of eoslib.  Times are CPU seconds of this process (``time.process_time``,
one torch thread), which other jobs on a shared machine disturb far less than wall
time; still, compare the ratios of one run, not absolute seconds.
"""

from __future__ import annotations

import argparse
import copy
import importlib
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from eoslib.hessian import HVP, lanczos, sharpness, top_eigenpairs  # noqa: E402

TARGET = 1e-3  # relative accuracy every method must reach
PEERS = {"pyhessian": "pyhessian", "hessian_eigenthings": "hessian-eigenthings"}


_START = time.perf_counter()


def log(msg: str) -> None:
    """Progress on stderr, so that stdout holds only the report."""
    print(f"[{time.perf_counter() - _START:6.0f} s] {msg}", file=sys.stderr, flush=True)


def mse(f, y):
    """The book's MSE: ½‖f − y‖² summed over outputs, averaged over examples."""
    return 0.5 * ((f - y) ** 2).sum(dim=1).mean()


def ensure_peers() -> dict[str, str]:
    """Import the peers, pip-installing missing ones (--no-deps); name -> error for those that fail."""
    errors = {}
    for module, dist in PEERS.items():
        try:
            importlib.import_module(module)
        except ImportError:
            proc = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", dist],
                                  capture_output=True, text=True)
            try:
                importlib.invalidate_caches()
                importlib.import_module(module)
            except ImportError as err:
                errors[module] = (proc.stderr.strip().splitlines() or [repr(err)])[-1]
    return errors


def make_problem(name: str, n: int, seed: int):
    """Random CIFAR-shaped inputs, random one-hot labels and a freshly initialised network."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, 32, 32, generator=g)
    y = nn.functional.one_hot(torch.randint(0, 10, (n,), generator=g), 10).float()
    torch.manual_seed(seed)  # nn layers initialise from the global stream (entry point only)
    if name == "mlp":
        model = nn.Sequential(nn.Flatten(), nn.Linear(3072, 200), nn.Tanh(), nn.Linear(200, 200), nn.Tanh(),
                              nn.Linear(200, 10))
    else:  # the paper's cnn-relu: [conv3×3(32) → ReLU → maxpool2] × 2 → linear
        model = nn.Sequential(nn.Conv2d(3, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                              nn.Conv2d(32, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                              nn.Flatten(), nn.Linear(32 * 8 * 8, 10))
    return model, x, y


def gd(model, x, y, lr: float, steps: int, every: int = 0, tracked: list | None = None) -> None:
    """Full-batch GD; with ``every`` > 0, warm-started sharpness every ``every`` steps into ``tracked``."""
    params = list(model.parameters())
    v0 = None
    for step in range(steps):
        if every and step % every == 0:
            r = top_eigenpairs(model, mse, x, y, v0=v0)
            v0 = r.vectors[0]
            tracked.append(r)
        grads = torch.autograd.grad(mse(model(x), y), params)
        with torch.no_grad():
            for p, g in zip(params, grads):
                p -= lr * g


def timed(fn):
    t = time.process_time()
    out = fn()
    return time.process_time() - t, out


def median_time(fn, reps: int = 5) -> float:
    fn()
    return statistics.median(timed(fn)[0] for _ in range(reps))


# ------------------------------------------------------------------ the methods


def ours(model, x, y, method: str = "auto"):
    """Exactly sharpness(model, mse, x, y) (hvp_operator + lanczos, defaults), with a timer per product.

    Returns (value, products, median seconds of one product in this run).
    """
    op = HVP(model, mse, x, y, method=method)
    times = []

    def timed_hvp(v):
        t = time.process_time()
        out = op(v)
        times.append(time.process_time() - t)
        return out

    r = lanczos(timed_hvp, op.dim, tol=1e-3, max_iter=100, seed=0, dtype=op.dtype, device=op.device)
    return float(r.values[0]), r.n_hvp, statistics.median(times)


def pyhessian_power(model, x, y, tol):
    importlib.import_module("pyhessian")
    ph = sys.modules["pyhessian.hessian"]  # the package re-exports the class under the module's name

    count = [0]
    hvp = ph.hessian_vector_product

    def counted(*a):
        count[0] += 1
        return hvp(*a)

    ph.hessian_vector_product = counted
    try:
        torch.manual_seed(0)  # PyHessian draws its start vector from the global stream
        values, _ = ph.hessian(model, mse, data=(x, y), cuda=False).eigenvalues(maxIter=3000, tol=tol)
    finally:
        ph.hessian_vector_product = hvp
        for p in model.parameters():  # PyHessian leaves a create_graph gradient in .grad
            p.grad = None
    return float(values[0]), count[0]


def paper_eigsh(model, x, y, neigs=2, physical_batch_size=1000):
    """locuslab/edge-of-stability utilities.py: compute_hvp + eigsh(neigs), run on the CPU."""
    from scipy.sparse.linalg import LinearOperator, eigsh

    params = list(model.parameters())
    dim = sum(p.numel() for p in params)
    count = [0]

    def compute_hvp(vector):
        count[0] += 1
        hvp = torch.zeros(dim)
        for i in range(0, len(x), physical_batch_size):
            loss = mse(model(x[i:i + physical_batch_size]), y[i:i + physical_batch_size]) * \
                len(x[i:i + physical_batch_size]) / len(x)
            grads = torch.autograd.grad(loss, inputs=params, create_graph=True)
            dot = torch.nn.utils.parameters_to_vector(grads).mul(vector).sum()
            grads = [g.contiguous() for g in torch.autograd.grad(dot, params, retain_graph=True)]
            hvp += torch.nn.utils.parameters_to_vector(grads)
        return hvp

    def mv(vec: np.ndarray):
        return compute_hvp(torch.tensor(vec, dtype=torch.float)).detach().numpy()

    evals, _ = eigsh(LinearOperator((dim, dim), matvec=mv), neigs)
    return float(evals.max()), count[0]


def eigenthings_lanczos(model, x, y, steps, self_check: bool = False):
    """hessian-eigenthings' Lanczos with ``steps`` products; with ``self_check``, value is NaN
    unless its own residual test (``‖Hv − λv‖ < tol·|λ|``, tol=1e-3) reports convergence."""
    import hessian_eigenthings as he

    op = he.HessianOperator(model, [(x, y)], he.supervised_loss(mse))
    count = [0]
    matvec = op.matvec

    def counted(v):
        count[0] += 1
        return matvec(v)

    op.matvec = counted
    r = he.lanczos(op, k=1, max_iter=steps, which="LA", seed=0, tol=TARGET)
    ok = bool(r.converged.all()) or not self_check
    return (float(r.eigenvalues[0]) if ok else float("nan")), count[0]


class _Reached(Exception):
    pass


def floor_products(model, x, y, ref: float, max_iter: int = 60) -> int:
    """Fewest Lanczos products from our seed-0 start whose top Ritz value is within TARGET of ref.

    Rayleigh-Ritz on the first j Krylov vectors (T_j = Q_j H Q_jᵀ, grown one row
    per product) gives exactly the Ritz values Lanczos would report after j products.
    """
    op = HVP(model, mse, x, y)
    Q = torch.zeros(max_iter, op.dim, dtype=torch.float64)
    T = torch.zeros(max_iter, max_iter, dtype=torch.float64)
    j = [0]

    def recorded(q):
        out = op(q)
        i = j[0]
        Q[i] = q.double()
        T[i, : i + 1] = Q[: i + 1] @ out.double()
        T[: i + 1, i] = T[i, : i + 1].clone()
        j[0] += 1
        if abs(float(torch.linalg.eigvalsh(T[: i + 1, : i + 1])[-1]) - ref) <= TARGET * abs(ref):
            raise _Reached
        return out

    try:
        lanczos(recorded, op.dim, tol=0.0, max_iter=max_iter, seed=0, dtype=op.dtype, device=op.device)
    except _Reached:
        pass
    return j[0]


# ------------------------------------------------------------------ driver


def hvp_costs(model, x, y, reps: int) -> dict[str, float]:
    """Seconds of one gradient, and of each product flavour in gradients (min over interleaved reps)."""
    params = list(model.parameters())
    v = torch.randn(sum(p.numel() for p in params), generator=torch.Generator().manual_seed(1))
    reuse = HVP(model, mse, x, y)
    rebuild = HVP(model, mse, x, y, reuse_graph=False)
    fwd = HVP(model, mse, x, y, method="forward_over_reverse")
    runs = {"grad_s": lambda: torch.autograd.grad(mse(model(x), y), params),
            "build": lambda: HVP(model, mse, x, y), "reuse": lambda: reuse(v),
            "rebuild": lambda: rebuild(v), "fwd_over_rev": lambda: fwd(v)}
    best = {key: (run(), float("inf"))[1] for key, run in runs.items()}  # warm-up
    for _ in range(max(reps, 3)):  # interleaved rounds: load from other processes hits all alike
        for key, run in runs.items():
            best[key] = min(best[key], timed(run)[0])
    return {key: sec if key == "grad_s" else sec / best["grad_s"] for key, sec in best.items()}


def ladder(run, settings, ref):
    """Run settings in order until one is within TARGET of ref; [(setting, seconds, value, products)]."""
    tried = []
    for s in settings:
        sec, (value, n) = timed(lambda: run(s))
        tried.append((s, sec, value, n))
        if abs(value - ref) <= TARGET * abs(ref):
            break
    return tried


def bench_net(name: str, n: int, steps: int, peers_ok: set[str], seed: int, repeats: int) -> dict:
    """All methods on one network: settings chosen first, then timed round-robin, best of ``repeats``."""
    model, x, y = make_problem(name, n, seed)
    lr = 1.0 / sharpness(model, mse, x, y)  # half the stability threshold 2/λ: nothing diverges
    log(f"{name}: {steps} GD steps at lr={lr:.3g}")
    gd(model, x, y, lr, steps)
    log(f"{name}: float64 reference")
    model64 = copy.deepcopy(model).double()
    ref = sharpness(model64, mse, x.double(), y.double(), tol=1e-9, max_iter=200)
    del model64
    log(f"{name}: reference {ref:.6g}; product costs")
    costs = hvp_costs(model, x, y, repeats)
    log(f"{name}: floor, then each peer's cheapest setting that reaches 1e-3")
    floor = floor_products(model, x, y, ref)
    methods = {"eoslib sharpness (tol=1e-3)": (lambda: ours(model, x, y), "double backward, reused graph"),
               "eoslib, forward-over-reverse": (lambda: ours(model, x, y, "forward_over_reverse"),
                                                "torch.func jvp(grad), same Lanczos")}
    if "pyhessian" in peers_ok:
        tried = ladder(lambda t: pyhessian_power(model, x, y, t), [1e-3, 1e-4, 1e-5, 1e-6, 1e-7], ref)
        tol, default = tried[-1][0], tried[0][2]
        methods["PyHessian power iteration"] = (lambda: pyhessian_power(model, x, y, tol),
                                                f"tol={tol:g}; its default 1e-3 is {abs(default - ref) / ref:.1e} off")
    methods["paper: scipy eigsh + HVP"] = (lambda: paper_eigsh(model, x, y),
                                           "neigs=2, eigsh tol=0, graph rebuilt per product")
    if "hessian_eigenthings" in peers_ok:
        steps_m = ladder(lambda m: eigenthings_lanczos(model, x, y, m), range(max(2, floor - 3), 61), ref)[-1][0]
        methods["hessian-eigenthings Lanczos"] = (lambda: eigenthings_lanczos(model, x, y, steps_m),
                                                  f"max_iter={steps_m}, the fewest that reach 1e-3 (hindsight)")
        steps_c = ladder(lambda m: eigenthings_lanczos(model, x, y, m, True), range(steps_m, 81), ref)[-1][0]
        methods["hessian-eigenthings, self-checked"] = (
            lambda: eigenthings_lanczos(model, x, y, steps_c),
            f"max_iter={steps_c}, the fewest its residual test accepts at tol=1e-3")
    best: dict[str, tuple] = {}
    for _ in range(repeats):  # round-robin, so that load from other processes hits all methods alike
        for method, (run, _) in methods.items():
            sec, out = timed(run)
            log(f"{name}: {method}: {sec:.2f} s, {out[1]} products")
            if method not in best or sec < best[method][0]:
                best[method] = (sec, *out)
    rows = [dict(method=m, sec=best[m][0], n_hvp=best[m][2], err=abs(best[m][1] - ref) / abs(ref), note=note)
            for m, (_, note) in methods.items()]
    t_hvp = best["eoslib sharpness (tol=1e-3)"][3]  # median product time inside our best run
    rows.insert(2, dict(method="floor", sec=floor * t_hvp, n_hvp=floor, err=float("nan"),
                        note="fewest products for 1e-3 × our product time"))
    for r in rows:
        r["ratio"] = r["sec"] / rows[0]["sec"]
    log(f"{name}: eoslib from other start vectors")
    starts = [top_eigenpairs(model, mse, x, y, seed=s) for s in range(5)]
    spread = dict(n_hvp=[r.n_hvp for r in starts], err=max(abs(float(r.values[0]) - ref) / ref for r in starts))
    return dict(name=name, n=n, steps=steps, ref=ref, costs=costs, rows=rows, floor=floor, spread=spread)


def bench_tracking(n: int, steps: int, every: int, seed: int, repeats: int) -> dict:
    """``eoslib.train.train`` on the benchmark MLP with the sharpness every ``every`` steps, against none.

    The MLP (3072-200-200-10 tanh, MSE) trains on the book's ``synthetic`` data with
    d = 3072 (Gaussian inputs, like the CIFAR-shaped ones above) at η = 1/λ_max(θ₀).
    Reported: CPU seconds of the tracked and untracked runs (interleaved, best of
    ``repeats``), and inside the tracked run the CPU time of the measurements against
    that of the training steps (the split is immune to load drift between runs).
    Accuracy: an untimed rerun compares every tracked value with a float64 Lanczos at
    tol=1e-9 on a copy of the model at that step.
    """
    import eoslib.train as T
    from eoslib.losses import mse as book_mse

    base = dict(model="fc-tanh", dataset="synthetic", data_options={"dim": 3072}, n=n, width=200, depth=2,
                loss="mse", seed=seed, steps=steps)
    model, data = T.build(T.TrainConfig(**base, lr=0.1))
    lr = 1.0 / sharpness(model, book_mse, data.inputs, data.targets)
    tracked, plain = T.TrainConfig(**base, lr=lr, sharpness_every=every), T.TrainConfig(**base, lr=lr, sharpness_every=0)
    real, inside = T._measure, []

    def timed_measure(*args, **kwargs):
        t0 = time.process_time()
        out = real(*args, **kwargs)
        inside.append(time.process_time() - t0)
        return out

    t_train = t_both = float("inf")
    split = None
    for _ in range(repeats):
        t_train = min(t_train, timed(lambda: T.train(plain, progress=False))[0])
        inside.clear()
        T._measure = timed_measure
        try:
            sec, run = timed(lambda: T.train(tracked, progress=False))
        finally:
            T._measure = real
        if sec < t_both:
            t_both, split = sec, (sum(inside), sec - sum(inside), list(inside))
    errors = []

    def check(t, m, r):
        m64 = copy.deepcopy(m).double()
        ref = sharpness(m64, book_mse, data.inputs.double(), data.targets.double(), tol=1e-9, max_iter=300)
        errors.append(abs(r.sharpness[-1] - ref) / ref)

    T.train(tracked, progress=False, callback=check)
    hvps = run.hvps
    measure_s, steps_s, per = split
    return dict(n=n, steps=steps, every=every, lr=lr, t_train=t_train, t_both=t_both, hvps=hvps,
                median=statistics.median(hvps[1:]), lam=list(run.sharpness), measure_s=measure_s, steps_s=steps_s,
                per_measure=statistics.median(per[1:]), per_step=steps_s / steps, errors=errors)


def report(nets: list[dict], track: dict, peer_errors: dict[str, str]) -> str:
    lines = []
    for b in nets:
        c = b["costs"]
        lines += [f"\n{b['name'].upper()}: n={b['n']}, after {b['steps']} GD steps, λ_max (float64 reference) = "
                  f"{b['ref']:.6g}",
                  f"one gradient {c['grad_s'] * 1e3:.0f} ms; in gradients: graph build {c['build']:.2f}, "
                  f"HVP reused graph {c['reuse']:.2f}, HVP rebuilt graph {c['rebuild']:.2f}, "
                  f"HVP forward-over-reverse {c['fwd_over_rev']:.2f}",
                  f"| {'method':32} | {'seconds':>8} | {'HVPs':>5} | {'rel. error':>10} | {'time / ours':>11} | notes |",
                  f"|{'-' * 34}|{'-' * 10}:|{'-' * 6}:|{'-' * 11}:|{'-' * 12}:|-------|"]
        for r in b["rows"]:
            err = "—" if r["err"] != r["err"] else f"{r['err']:.1e}"
            lines.append(f"| {r['method']:32} | {r['sec']:8.2f} | {r['n_hvp']:5d} | {err:>10} | "
                         f"{r['ratio']:10.2f}× | {r['note']} |")
        sp = b["spread"]
        lines.append(f"eoslib from start seeds 0-4: {sp['n_hvp']} products, worst error {sp['err']:.1e}")
    tr = track
    lines.append(f"\nTRACKING (eoslib.train, MLP on synthetic d=3072, n={tr['n']}, η={tr['lr']:.3g}): {tr['steps']} "
                 f"steps, sharpness every {tr['every']}: training alone {tr['t_train']:.1f} s, with tracking "
                 f"{tr['t_both']:.1f} s CPU, overhead {tr['t_both'] / tr['t_train'] - 1:.0%} end to end; inside the "
                 f"tracked run measurements {tr['measure_s']:.1f} s against steps {tr['steps_s']:.1f} s, overhead "
                 f"{tr['measure_s'] / tr['steps_s']:.0%}; steady state: median measurement "
                 f"{tr['per_measure'] * 1e3:.0f} ms = {tr['per_measure'] / tr['per_step']:.2f} steps, i.e. "
                 f"{tr['per_measure'] / tr['per_step'] / tr['every']:.0%} at every {tr['every']}; HVPs per "
                 f"measurement {tr['hvps']} (median of warm ones {tr['median']:g}); λ_max from {tr['lam'][0]:.3f} to "
                 f"{tr['lam'][-1]:.3f}; worst error of a tracked value against float64 {max(tr['errors']):.1e} "
                 f"(median {statistics.median(tr['errors']):.1e})")
    for module, err in peer_errors.items():
        lines.append(f"peer {module} unavailable: {err}")
    mlp = {r["method"]: r for r in nets[0]["rows"]}
    parts = [f"{mlp[m]['ratio']:.1f}× faster than {label} (target ≥{t}×)"
             for m, label, t in [("PyHessian power iteration", "PyHessian", 10),
                                 ("paper: scipy eigsh + HVP", "the paper's eigsh", 4),
                                 ("hessian-eigenthings Lanczos", "hessian-eigenthings at hindsight max_iter", 2),
                                 ("hessian-eigenthings, self-checked", "hessian-eigenthings self-checked", 2)]
             if m in mlp]
    lines.append("\nVERDICT (MLP, the issue's targets): eoslib is " + ", ".join(parts)
                 + f", {1 / mlp['floor']['ratio']:.2f}× the floor (target ≤1.3×), error "
                 f"{nets[0]['rows'][0]['err']:.1e}; tracking median {track['median']:g} HVPs (target ≤7), "
                 f"overhead {track['t_both'] / track['t_train'] - 1:.0%} of training end to end "
                 f"(target ≤25%).")
    return "\n".join(lines)


def main(quick: bool = False, seed: int = 0, repeats: int = 2) -> str:
    torch.set_num_threads(1)
    peer_errors = ensure_peers()
    peers_ok = set(PEERS) - set(peer_errors)
    sizes = dict(mlp=(300, 100), cnn=(100, 50)) if quick else dict(mlp=(1000, 200), cnn=(500, 100))
    nets = [bench_net(name, n, steps, peers_ok, seed, repeats) for name, (n, steps) in sizes.items()]
    track = bench_tracking(300 if quick else 1000, 100 if quick else 300, 10, seed, repeats)
    log("tracking done")
    text = report(nets, track, peer_errors)
    print(text)
    return text


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller data and fewer steps (~1 minute)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the data and of the initialisation")
    parser.add_argument("--repeats", type=int, default=2, help="timed runs per method (best is kept)")
    parser.add_argument("--tracking-only", action="store_true", help="only the tracking benchmark")
    args = parser.parse_args()
    if args.tracking_only:
        torch.set_num_threads(1)
        t = bench_tracking(300 if args.quick else 1000, 100 if args.quick else 300, 10, args.seed, args.repeats)
        print({k: v for k, v in t.items() if k not in ("lam",)})
    else:
        main(quick=args.quick, seed=args.seed, repeats=args.repeats)
