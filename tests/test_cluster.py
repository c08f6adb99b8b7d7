"""Training on Ray: chosen only when asked; runs bitwise the serial ones through a shared cache or Ray's object
store; a killed worker retried; a failing run reported without losing the others; Ctrl-C keeps finished runs."""
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest

from analysis.networks import CPU_CODE_PATH, cluster
from analysis.networks.cluster import Cluster, RunsFailed
from analysis.networks.runs import RunConfig, _load_finished, train_many

TINY = dict(model="mlp", n_train=512, n_test=256, epochs=2, batch_size=64, options=(("hidden", (32, 32)),),
            checkpoints=(0.0, 0.5))
#: long enough (seconds) to be caught mid-training
LONGER = dict(model="mlp", n_train=10_000, n_test=256, epochs=6, batch_size=64, checkpoints=(0.0, 0.5))


def test_ray_is_chosen_only_when_asked(monkeypatch):
    monkeypatch.delenv("SVCCA_RAY", raising=False)
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    assert cluster.choose(None) is None and cluster.choose(False) is None
    assert cluster.choose(True) == Cluster()
    monkeypatch.setenv("SVCCA_RAY", "local")
    assert cluster.choose(None) == Cluster(address=None)
    assert cluster.choose(False) is None
    monkeypatch.setenv("SVCCA_RAY", "ray://head:10001")
    assert cluster.choose(None) == Cluster(address="ray://head:10001")
    monkeypatch.delenv("SVCCA_RAY")
    monkeypatch.setenv("RAY_ADDRESS", "10.0.0.1:6379")
    assert cluster.choose(None) == Cluster(address="10.0.0.1:6379")
    monkeypatch.setenv("SVCCA_RAY", "0")
    assert cluster.choose(None) is None


@pytest.mark.parametrize("settings, problem", [
    (dict(cpus_per_run=0), "cpus_per_run"), (dict(gpus_per_run=1.5), "gpus_per_run"),
    (dict(gpus_per_run=0), "gpus_per_run"), (dict(retries=-1), "retries"),
])
def test_bad_cluster_settings_are_named(settings, problem):
    with pytest.raises(ValueError, match=problem):
        Cluster(**settings)
    with pytest.raises(ValueError, match="cluster must be"):
        cluster.choose("local")


def test_tasks_ask_for_gpus_only_where_the_cluster_has_them_and_carry_the_cpu_code_path():
    small = Cluster(cpus_per_run=1, gpus_per_run=0.25, retries=5)
    on_gpus = cluster.task_options(small, {"CPU": 32.0, "GPU": 4.0})
    assert (on_gpus["num_gpus"], on_gpus["num_cpus"], on_gpus["max_retries"]) == (0.25, 1, 5)
    assert cluster.task_options(small, {"CPU": 32.0})["num_gpus"] == 0
    assert cluster.task_options(Cluster(), {"CPU": 2.0, "GPU": 1.0})["num_gpus"] == 1
    assert not on_gpus["retry_exceptions"]
    assert on_gpus["runtime_env"]["env_vars"] == {v: os.environ[v] for v in CPU_CODE_PATH}


def test_default_training_never_imports_ray(cache):
    code = ("import sys; from analysis.networks.runs import RunConfig, train_many; "
            f"train_many([RunConfig(**{TINY!r})], progress=False); assert 'ray' not in sys.modules, 'ray imported'")
    env = {k: v for k, v in os.environ.items() if k not in ("SVCCA_RAY", "RAY_ADDRESS")}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert _load_finished(RunConfig(**TINY), cache / "runs" / RunConfig(**TINY).key) is not None


@pytest.fixture(scope="module")
def local_ray():
    """A local Ray with 2 CPUs, as `SVCCA_RAY=local` starts on this machine."""
    import ray

    ray.init(num_cpus=2, include_dashboard=False)
    yield ray
    ray.shutdown()


def _cache(tmp_path: Path, name: str, monkeypatch) -> Path:
    """Another empty run cache beside the `cache` fixture's, sharing its Fashion-MNIST."""
    root = tmp_path / name
    root.mkdir()
    (root / "FashionMNIST").symlink_to(tmp_path / "FashionMNIST")
    monkeypatch.setenv("SVCCA_DATA", str(root))
    return root


def _files(run) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(run.path.iterdir()) if p.is_file()}


@pytest.mark.slow
def test_runs_trained_on_ray_are_bitwise_the_serial_runs(local_ray, cache, tmp_path, monkeypatch):
    configs = [RunConfig(**{**TINY, "seed": s}) for s in (0, 1)]
    serial = [_files(r) for r in train_many(configs, progress=False)]
    came_back = []
    store = cluster._store
    monkeypatch.setattr(cluster, "_store", lambda c, files, path: came_back.append(files is not None) or store(c, files, path))
    for name, shared in (("shared", None), ("object-store", False)):
        root = _cache(tmp_path, name, monkeypatch)
        runs = train_many(configs, progress=False, cluster=Cluster(shared_cache=shared))
        assert all(r.path.parent == root / "runs" for r in runs)
        assert [_files(r) for r in runs] == serial, name
        assert train_many(configs, progress=False, cluster=False)[0].path == runs[0].path  # cached like any run
    assert came_back == [False, False, True, True]  # the first pair through this machine's folder, then Ray's store


def _ray_tasks() -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter(["cmdline"]):
        line = process.info["cmdline"] or []
        if line and line[0].startswith("ray::_train_task"):
            found.append(process)
    return found


def _in_thread(work) -> tuple[threading.Thread, list]:
    outcome: list = []

    def target():
        try:
            outcome.append(work())
        except BaseException as error:  # handed to the test
            outcome.append(error)

    thread = threading.Thread(target=target)
    thread.start()
    return thread, outcome


def _wait_for(condition, timeout: float = 120.0) -> None:
    end = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > end:
            raise TimeoutError("the condition did not come true")
        time.sleep(0.02)


@pytest.mark.slow
def test_a_killed_worker_is_retried_and_the_run_is_unchanged(local_ray, cache, tmp_path, monkeypatch):
    config = RunConfig(**LONGER)
    serial = _files(train_many([config], progress=False)[0])
    root = _cache(tmp_path, "ray", monkeypatch)
    folder = root / "runs" / config.key
    thread, outcome = _in_thread(lambda: train_many([config], progress=False, cluster=Cluster(shared_cache=True)))
    _wait_for(lambda: (folder / "checkpoint-0.5.pt").exists())
    assert not (folder / "manifest.json").exists()
    killed = _ray_tasks()
    assert killed
    for process in killed:
        process.kill()
    thread.join(300)
    assert not isinstance(outcome[0], BaseException), outcome[0]
    assert _files(outcome[0][0]) == serial


@pytest.mark.slow
def test_a_failing_run_is_reported_and_the_others_are_kept(local_ray, cache):
    good, diverging = RunConfig(**{**TINY, "seed": 2}), RunConfig(**{**TINY, "lr": 1e12})
    with pytest.raises(RunsFailed, match="NaN or Inf") as raised:
        train_many([good, diverging], progress=False, cluster=True)
    assert list(raised.value.failures) == [diverging]
    assert _load_finished(good, cache / "runs" / good.key) is not None
    assert not (cache / "runs" / diverging.key / "manifest.json").exists()


@pytest.mark.slow
def test_ctrl_c_stops_the_tasks_and_keeps_finished_runs(local_ray, cache):
    # a real SIGINT to this process once one run is stored and the other trains (they take turns: each asks for
    # both CPUs), with Python's handler set as in a terminal (a shell's background job starts with SIGINT ignored)
    configs = [RunConfig(**{**LONGER, "seed": s}) for s in (1, 2)]
    folders = [cache / "runs" / c.key for c in configs]

    def one_done_and_the_other_training() -> bool:
        return any((a / "manifest.json").exists() and (b / "state.pt").exists() for a, b in (folders, folders[::-1]))

    def ctrl_c():
        _wait_for(one_done_and_the_other_training)
        os.kill(os.getpid(), signal.SIGINT)

    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        threading.Thread(target=ctrl_c, daemon=True).start()
        with pytest.raises(KeyboardInterrupt):
            train_many(configs, progress=False, cluster=Cluster(cpus_per_run=2))
    finally:
        signal.signal(signal.SIGINT, before)
    _wait_for(lambda: not _ray_tasks(), timeout=30)
    kept = [_load_finished(c, f) is not None for c, f in zip(configs, folders)]
    assert sorted(kept) == [False, True]  # the finished one, and not the stopped one
    stopped = folders[kept.index(False)]
    assert (stopped / "state.pt").exists() and not (stopped / "manifest.json").exists()  # stopped mid-run
