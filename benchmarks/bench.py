"""Benchmark of `analysis` against the reference implementation's algorithm; prints Markdown tables.

Run: `.venv/bin/python benchmarks/bench.py` (a few minutes on 2 cores; `--quick` for smaller shapes).
Each time is the best of several runs, ours and the baseline's alternating so that both see the same
machine. "÷ XᵀY" is our time over one `X.T @ Y` of the operation's (n, d) activations in float64: how
close the operation runs to the matrix-multiply floor. Baselines follow the reference implementation's
algorithm (`analysis/reference.py`: covariance of the stacked activations, pinv, eigendecomposition square
roots, SVD; SVCCA as an SVD per pair then that CCA; DFT-CCA as one such CCA per frequency in a loop).
On a shared virtual machine the times of one run can be off by tens of percent: compare ratios within a run.
"""
from __future__ import annotations

import argparse
import datetime
import platform
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

import analysis
from analysis.measures.grid import similarity_grid
from analysis.measures.stream import CrossStats

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from reference import reference_cca, reference_dft_cca_rho, reference_svcca_rho  # noqa: E402  (the test fixture)

PAUSE = 0.25


def best(fns: list[Callable], repeat: int) -> list[float]:
    """Best wall time of each function over `repeat` rounds, the functions alternating within a round.

    Each timed call starts after PAUSE idle seconds: OpenBLAS's worker threads spin for about 0.1 s after a
    multi-threaded call, and would otherwise take cores from whichever call comes next.
    """
    times = [[] for _ in fns]
    for fn in fns:  # warm-up: first-call costs (allocation, BLAS thread start) are not what we measure
        fn()
    for _ in range(repeat):
        for fn, ts in zip(fns, times):
            time.sleep(PAUSE)
            start = time.perf_counter()
            fn()
            ts.append(time.perf_counter() - start)
    return [min(ts) for ts in times]


def layers(rng: np.random.Generator, n: int, d: int, count: int, latent: int = 32) -> list[np.ndarray]:
    """`count` layers (n, d) sharing `latent` directions of signal, ReLU or tanh, plus noise."""
    z = rng.standard_normal((n, latent))
    out = []
    for i in range(count):
        signal = z @ rng.standard_normal((latent, d))
        out.append((np.maximum(signal, 0) if i % 2 else np.tanh(signal)) + rng.standard_normal((n, d)))
    return out


def floor(x: np.ndarray, y: np.ndarray, repeat: int) -> float:
    return best([lambda: x.T @ y], repeat)[0]


def row(operation: str, shapes: str, ours: float, baseline: str, base: float | None, floor_time: float) -> str:
    ratio = f"{base / ours:.1f}x" if base is not None else "—"
    base_s = f"{base:.3f}" if base is not None else "—"
    return f"| {operation} | {shapes} | {ours:.3f} | {baseline} | {base_s} | {ratio} | {ours / floor_time:.1f} |"


def one_pair(rng, n: int, d: int, repeat: int) -> list[str]:
    x, y = layers(rng, n, d, 2)
    collinear = np.column_stack([x[:, :-1], x[:, 0] + x[:, 1]])  # rank-deficient: only the SVD route is exact
    x32, y32 = x.astype(np.float32), y.astype(np.float32)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    xt32, yt32 = xt.float(), yt.float()
    f = floor(x, y, repeat)
    shapes = f"n={n}, {d}+{d} units"
    cases = [
        ("cca, float64 (Gram route)", lambda: analysis.cca(x, y), lambda: reference_cca(x, y)),
        ("cca, float64, rank-deficient (SVD route)",
         lambda: analysis.cca(collinear, y), lambda: reference_cca(collinear, y)),
        ("cca, float32", lambda: analysis.cca(x32, y32), lambda: reference_cca(x, y)),
        ("cca, torch CPU float64", lambda: analysis.cca(xt, yt), lambda: reference_cca(x, y)),
        ("cca, torch CPU float32", lambda: analysis.cca(xt32, yt32), lambda: reference_cca(x, y)),
        ("svcca keep=40, float64", lambda: analysis.svcca(x, y, keep=40), lambda: reference_svcca_rho(x, y, 40)),
        ("pwcca, float64", lambda: analysis.pwcca(x, y), None),
        ("linear_cka, float64", lambda: analysis.linear_cka(x, y), None),
    ]
    out = []
    for name, ours, base in cases:
        if base is None:
            t, b = best([ours], repeat)[0], None
        else:
            t, b = best([ours, base], repeat)
        baseline = "—" if base is None else "SVD per pair + reference CCA" if "svcca" in name else "reference CCA"
        out.append(row(name, shapes, t, baseline, b, f))
    return out


def grids(rng, n: int, d: int, count: int, keep: int, repeat: int) -> list[str]:
    a, b = layers(rng, n, d, count), layers(rng, n, d, count)
    names_a = {f"a{i}": x for i, x in enumerate(a)}
    names_b = {f"b{i}": y for i, y in enumerate(b)}
    f = floor(a[0], b[0], repeat)
    shapes = f"{count}x{count} layers, n={n}, {d} units"

    def svcca_per_pair():
        return [[reference_svcca_rho(x, y, keep).mean() for y in b] for x in a]

    def pairwise(fn):
        return lambda: [[fn(x, y) for y in b] for x in a]

    base_repeat = max(2, repeat // 2)
    t, base = best([lambda: similarity_grid(names_a, names_b, "svcca", keep=keep, progress=False), svcca_per_pair],
                   base_repeat)
    out = [row(f"similarity_grid svcca keep={keep}", shapes, t, "SVD per pair + reference CCA", base, f)]
    for measure, fn in (("cca", lambda x, y: analysis.cca(x, y).mean), ("linear_cka", analysis.linear_cka)):
        t, base = best([lambda m=measure: similarity_grid(names_a, names_b, m, progress=False), pairwise(fn)], base_repeat)
        out.append(row(f"similarity_grid {measure}", shapes, t, f"{count * count} pairwise `{measure}` calls", base, f))
    return out


def dft(rng, n: int, c: int, size: int, repeat: int) -> list[str]:
    a = rng.standard_normal((n, c, size, size))
    b = np.tanh(np.einsum("nchw,cd->ndhw", a, rng.standard_normal((c, c)))) + rng.standard_normal((n, c, size, size))
    fa = np.fft.fft2(a, axes=(2, 3)).reshape(n, c, -1).transpose(2, 0, 1)
    fb = np.fft.fft2(b, axes=(2, 3)).reshape(n, c, -1).transpose(2, 0, 1).copy()
    fah = fa.conj().transpose(0, 2, 1).copy()
    f = best([lambda: fah @ fb], repeat)[0]  # every frequency's X_fᴴ Y_f: the products DFT-CCA cannot skip
    shapes = f"2 x ({n}, {c}, {size}, {size})"
    at, bt = torch.from_numpy(a), torch.from_numpy(b)
    out = []
    for name, ours in (
        ("dft_cca, float64", lambda: analysis.dft_cca(a, b)),
        ("dft_cca, float32", lambda: analysis.dft_cca(a.astype(np.float32), b.astype(np.float32))),
        ("dft_cca, torch CPU float64", lambda: analysis.dft_cca(at, bt)),
    ):
        t, base = best([ours, lambda: reference_dft_cca_rho(a, b)], max(1, repeat // 2))
        out.append(row(name, shapes, t, "reference CCA per frequency", base, f))
    return out


def streaming(rng, samples: list[int], d: int, batch: int) -> tuple[list[str], list[str]]:
    """Time and peak traced memory of CrossStats over `samples`, cycling a pool of 8 pre-made batches."""
    pool = [layers(rng, batch, d, 2) for _ in range(8)]
    perf, memory = [], []
    for total in samples:
        tracemalloc.start()
        start = time.perf_counter()
        stats = CrossStats()
        for i in range(total // batch):
            stats.update(*pool[i % len(pool)])
        stats.cca(), stats.svcca(keep=40), stats.linear_cka()
        elapsed = time.perf_counter() - start
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        x, y = pool[0]
        per_batch = best([lambda x=x, y=y: x.T @ y], 5)[0]
        full = 2 * total * d * 8
        perf.append(row(f"CrossStats.update x {total // batch}, then cca + svcca + linear_cka",
                        f"n={total}, {d}+{d} units, batches of {batch}", elapsed, "—", None,
                        per_batch * total / batch))
        memory.append(f"| {total} | {d}+{d} | {batch} | {peak / 2**20:.1f} | {full / 2**20:.0f} |")
    return perf, memory


def machine() -> str:
    model = next((line.split(":", 1)[1].strip() for line in subprocess.run(
        ["lscpu"], capture_output=True, text=True).stdout.splitlines() if line.startswith("Model name")), "?")
    blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
    return (f"{model}, {torch.get_num_threads()} threads; Python {platform.python_version()}, numpy {np.__version__} "
            f"({blas['name']} {blas['version']}), torch {torch.__version__}; {datetime.date.today().isoformat()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller shapes, fewer repeats (a smoke run)")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    repeat = 3 if args.quick else 7
    q = args.quick
    print(f"Machine: {machine()}\n")
    print("| operation | shapes | ours (s) | baseline | baseline (s) | speed-up | ÷ XᵀY |")
    print("|---|---|---|---|---|---|---|")
    for line in one_pair(rng, 2000 if q else 10_000, 100 if q else 500, repeat):
        print(line, flush=True)
    for line in grids(rng, 1000 if q else 4000, 64 if q else 256, 6, 10 if q else 40, repeat):
        print(line, flush=True)
    for line in dft(rng, 200 if q else 500, 8 if q else 32, 8 if q else 16, repeat):
        print(line, flush=True)
    perf, memory = streaming(rng, [2_000, 20_000] if q else [10_000, 200_000], 64 if q else 256, 1000)
    for line in perf:
        print(line, flush=True)
    print("\nFor dft_cca, ÷ XᵀY divides by the batched per-frequency products X_fᴴ Y_f (all h·w frequencies);")
    print("for streaming, by one XᵀY per batch over the same samples.")
    print("\n| samples | units | batch | peak traced memory (MiB) | the activations in memory (MiB) |")
    print("|---|---|---|---|---|")
    for line in memory:
        print(line)


if __name__ == "__main__":
    main()
