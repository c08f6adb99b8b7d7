"""Training many runs as Ray tasks: on a local Ray or a cluster, only when asked, each run stored in this
machine's run cache as it finishes.

Asked for by `train_many(..., cluster=...)` or by the environment, so that the notebooks need no change:
`SVCCA_RAY=local` starts a local Ray (`ray.init()`), `SVCCA_RAY=<address>` or `RAY_ADDRESS=<address>` joins that
cluster, `SVCCA_RAY=0` keeps training in-process whatever else is set. Runs are pure functions of their
configuration, so a worker trains one exactly as this process would (same seed, same device type, the same CPU
code path and thread count): where the workers see this machine's `data/` (a shared file system at the same
path, found out with a token file) they train into it directly and a retried task resumes from the run's last
saved state; elsewhere they train into their node's scratch folder and the run's files travel back through Ray's
object store, their checksums checked here. Ray is imported only here (`pip install -e '.[cluster]'`).
"""
from __future__ import annotations

import math
import os
import secrets
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch

from ..measures.progress import progress_bar
from . import CPU_CODE_PATH
from .paths import data_dir
from .runs import TRAINING_THREADS, Run, RunConfig, _load_finished, _train_at

ENVIRONMENT = "SVCCA_RAY"


@dataclass(frozen=True)
class Cluster:
    """Where and how `train_many` trains the runs it lacks as Ray tasks."""

    address: str | None = None  # None: a local Ray on this machine (or the one this process already joined)
    cpus_per_run: float = TRAINING_THREADS  # a CPU run trains with TRAINING_THREADS threads whatever it asks for
    gpus_per_run: float = 1.0  # asked for only where the cluster has GPUs; a fraction lets small networks share one
    retries: int = 3  # of a task whose worker died (a run that raises is reported, not retried)
    shared_cache: bool | None = None  # whether the workers see this machine's data/ at its path; None: find out

    def __post_init__(self):
        if not self.cpus_per_run > 0:
            raise ValueError(f"cpus_per_run must be positive, got {self.cpus_per_run}")
        if not (0 < self.gpus_per_run <= 1 or (self.gpus_per_run > 1 and float(self.gpus_per_run).is_integer())):
            raise ValueError(f"gpus_per_run must be a fraction in (0, 1] or a whole number, got {self.gpus_per_run}")
        if self.retries < 0:
            raise ValueError(f"retries must be 0 or more, got {self.retries}")


class RunsFailed(RuntimeError):
    """Runs that failed on Ray, each with its error (`failures`); the others finished and are cached."""

    def __init__(self, failures: dict[RunConfig, str]):
        self.failures = failures
        lines = "".join(f"\n  {config.key}: {error}" for config, error in failures.items())
        super().__init__(f"{len(failures)} run(s) failed on Ray; the others are trained and cached:{lines}")


def from_environment() -> Cluster | None:
    """The cluster that `SVCCA_RAY` or else `RAY_ADDRESS` asks for; None (train in-process) when neither does."""
    value = os.environ.get(ENVIRONMENT, "").strip()
    if value == "0":
        return None
    if value:
        return Cluster(address=None if value in ("1", "local") else value)
    address = os.environ.get("RAY_ADDRESS", "").strip()
    return Cluster(address=address) if address else None


def choose(cluster: Cluster | bool | None) -> Cluster | None:
    """`train_many`'s `cluster` argument as a Cluster, or None for in-process training."""
    if cluster is None:
        return from_environment()
    if isinstance(cluster, bool):
        return Cluster() if cluster else None
    if not isinstance(cluster, Cluster):
        raise ValueError(f"cluster must be a Cluster, True, False or None, got {cluster!r}")
    return cluster


def train_on_ray(
    configs: list[RunConfig], cluster: Cluster, *, device: torch.device | str | None = None,
    progress: bool | None = None, finished: int = 0,
) -> dict[RunConfig, Run]:
    """Train `configs` (runs not in the cache) as Ray tasks and store each in the cache as it finishes, under one
    progress bar (`finished`: runs already there). Raises `RunsFailed` after the others finish if any fail;
    on Ctrl-C cancels the tasks still going and keeps the runs already stored."""
    if not configs:
        return {}
    ray = _ray()
    if not ray.is_initialized():
        ray.init(**({"address": cluster.address} if cluster.address else {"include_dashboard": False}))
    root = data_dir().resolve()  # the path the workers are given
    root.mkdir(parents=True, exist_ok=True)
    token = (root / f".ray-token-{secrets.token_hex(8)}", secrets.token_hex(16))
    options = task_options(cluster, ray.cluster_resources())
    task = ray.remote(_train_task).options(**options)
    where = None if device is None else str(device)
    done: dict[RunConfig, Run] = {}
    failures: dict[RunConfig, str] = {}
    pending = {}
    bar = progress_bar(total=finished + len(configs), initial=finished, desc="runs on Ray", unit="run",
                       disable=progress is False, delay=0 if progress else 1.0)
    try:
        token[0].write_text(token[1])
        pending = {task.remote(c, where, str(root), (str(token[0]), token[1]), cluster.shared_cache): c for c in configs}
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1, timeout=1.0)
            for ref in ready:
                config = pending.pop(ref)
                try:
                    done[config] = _store(config, ray.get(ref), root / "runs" / config.key)
                    bar.write(f"trained {config.key} on Ray: {done[config].summary()}")
                except (ray.exceptions.RayError, ValueError) as error:
                    failures[config] = _reason(error)
                    bar.write(f"failed {config.key} on Ray: {failures[config]}")
                bar.update()
            running = min(len(pending), _running(ray, options))
            bar.set_postfix({"running": running, "queued": len(pending) - running}, refresh=False)
    except KeyboardInterrupt:
        for ref in pending:
            ray.cancel(ref, force=True)
        raise
    finally:
        bar.close()
        token[0].unlink(missing_ok=True)
    if failures:
        raise RunsFailed(failures)
    return done


def task_options(cluster: Cluster, resources: dict[str, float]) -> dict:
    """Ray's options for one run's task on a cluster with `resources` (`ray.cluster_resources()`): GPUs asked for
    only where there are some; retried when its worker dies, never when the run itself raises; the CPU variables
    set in the worker process."""
    return dict(
        num_cpus=cluster.cpus_per_run, num_gpus=cluster.gpus_per_run if resources.get("GPU", 0) > 0 else 0,
        max_retries=cluster.retries, retry_exceptions=False,
        # read by torch, oneDNN and MKL when the worker first loads them: set for the worker process itself, as
        # they are here, so that CPU training there takes this process's code path
        runtime_env={"env_vars": {v: os.environ[v] for v in CPU_CODE_PATH if v in os.environ}},
    )


def _train_task(config: RunConfig, device: str | None, cache: str, token: tuple[str, str],
                shared: bool | None) -> dict[str, bytes] | None:
    """On a worker: train `config` into the driver's cache when this node sees it (returns None), else into this
    node's scratch cache, returning the run's files and removing them here."""
    if shared is None:
        try:
            shared = Path(token[0]).read_text() == token[1]
        except OSError:
            shared = False
    if shared:
        before = os.environ.get("SVCCA_DATA")
        os.environ["SVCCA_DATA"] = cache  # datasets too, as the driver reads them
        try:
            _train_at(config, Path(cache) / "runs" / config.key, device, progress=False)
        finally:
            if before is None:
                del os.environ["SVCCA_DATA"]
            else:
                os.environ["SVCCA_DATA"] = before
        return None
    # a fixed folder per run, so that a retry on this node resumes where the dead worker stopped
    path = Path(tempfile.gettempdir()) / "svcca-ray" / "runs" / config.key
    _train_at(config, path, device, progress=False)
    files = {p.name: p.read_bytes() for p in path.iterdir() if p.is_file()}
    shutil.rmtree(path)
    return files


def _store(config: RunConfig, files: dict[str, bytes] | None, path: Path) -> Run:
    """The run a task left at `path` (None: it trained there) or sent back as `files`, written there; checked."""
    if files is not None:
        incoming = path.with_name(f".{path.name}.incoming")
        shutil.rmtree(incoming, ignore_errors=True)
        incoming.mkdir(parents=True)
        for name, content in files.items():
            (incoming / name).write_bytes(content)
        shutil.rmtree(path, ignore_errors=True)
        incoming.rename(path)
    run = _load_finished(config, path)
    if run is None:
        raise ValueError(f"run {config.key} came back from its worker incomplete or damaged")
    return run


def _running(ray, options: dict) -> int:
    """How many runs the cluster's busy resources amount to (Ray does not report which tasks have started)."""
    total, free = ray.cluster_resources(), ray.available_resources()
    kind, each = ("GPU", options["num_gpus"]) if options["num_gpus"] else ("CPU", options["num_cpus"])
    return math.floor((total.get(kind, 0) - free.get(kind, 0)) / each + 1e-9)


def _reason(error: Exception) -> str:
    """The error a task raised (Ray wraps it), or why its worker failed, in one line."""
    cause = getattr(error, "cause", None) or error
    lines = str(cause).strip().splitlines()
    return f"{type(cause).__name__}: {lines[-1] if lines else ''}"


def _ray():
    try:
        import ray
    except ImportError as error:
        raise ImportError("training on Ray needs the cluster extra: pip install -e '.[cluster]'") from error
    return ray

