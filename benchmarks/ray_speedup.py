"""Local Ray against serial training for a batch of quick-profile runs; prints a Markdown table.

Run: `.venv/bin/python benchmarks/ray_speedup.py [--runs 4] [--model mlp]` (needs the cluster extra; a few
minutes on 2 cores). Each way trains the same configurations from an empty scratch cache (the project's `data/`
is only read for its datasets), and the runs must come out bitwise the same. Ray's own start is timed apart.
"""
from __future__ import annotations

import argparse
import datetime
import os
import platform
import tempfile
import time
from pathlib import Path

import ray
import torch

from analysis.networks import data
from analysis.networks.cluster import Cluster
from analysis.networks.paths import data_dir
from analysis.networks.profiles import profile_config
from analysis.networks.runs import train_many


def scratch(root: Path, name: str) -> None:
    """Point SVCCA_DATA at an empty cache in `root` whose Fashion-MNIST is a link to the project's copy."""
    folder = root / name
    folder.mkdir()
    (folder / "FashionMNIST").symlink_to(data.prepare("fashion-mnist", data_dir()) / "FashionMNIST")
    os.environ["SVCCA_DATA"] = str(folder)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=4)
    parser.add_argument("--model", default="mlp", choices=("mlp", "convnet", "resnet"))
    args = parser.parse_args()
    configs = [profile_config(args.model, "quick", seed=100 + s) for s in range(args.runs)]
    ways = {
        "serial (in-process)": False,
        "local Ray, 2 CPUs per run (one at a time)": Cluster(cpus_per_run=2),
        "local Ray, 1 CPU per run (two at a time)": Cluster(cpus_per_run=1),
    }
    files, rows = {}, []
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        ray.init(num_cpus=os.cpu_count(), include_dashboard=False)
        ray_start = time.perf_counter() - start
        for i, (name, cluster) in enumerate(ways.items()):
            scratch(Path(tmp), f"way{i}")
            start = time.perf_counter()
            runs = train_many(configs, cluster=cluster, progress=False)
            rows.append((name, time.perf_counter() - start))
            files[name] = [{p.name: p.read_bytes() for p in r.path.iterdir() if p.is_file()} for r in runs]
    ray.shutdown()
    same = all(f == files["serial (in-process)"] for f in files.values())
    serial = rows[0][1]
    print(f"{args.runs} quick-profile {args.model} runs ({configs[0].epochs} epochs on {configs[0].n_train} images); "
          f"{datetime.date.today()}, {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"torch {torch.__version__}, ray {ray.__version__}; Ray's start {ray_start:.1f} s (not included); "
          f"runs bitwise the serial ones: {same}\n")
    print("| way | wall (s) | speed-up over serial |\n|---|---|---|")
    for name, seconds in rows:
        print(f"| {name} | {seconds:.1f} | {serial / seconds:.2f}x |")


if __name__ == "__main__":
    main()
