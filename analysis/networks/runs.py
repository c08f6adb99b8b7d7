"""Seeded, cached training runs with checkpoints at chosen fractions of training.

A run is identified by its whole configuration (`RunConfig`); finished runs live in `data/runs/<model>-<key>/`
with their checkpoints and a manifest holding each file's SHA-256. Asking for a run that exists loads it;
an interrupted run resumes from its last saved state; a corrupt or partial entry is detected and trained
again. Everything random (initialisation, batch order, augmentation) derives from the seed and the step,
so a resumed run is bitwise the run that was never interrupted.
"""
from __future__ import annotations

import hashlib
import json
import math
import shutil
import warnings
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from ..measures.progress import progress_bar
from . import data as datasets
from .hooks import evaluating, model_device, record
from .models import Named, build_model, freeze
from .paths import data_dir

if TYPE_CHECKING:
    from .cluster import Cluster

CACHE_FORMAT = 2  # bump when a change to training makes old cached runs wrong
#: Intra-op threads for training on the CPU, whatever the machine: a reduction split over another number of
#: threads rounds differently, so the thread count is part of what fixes a run's bits.
TRAINING_THREADS = 2
CHECKPOINTS = (0.0, 0.35, 0.75, 1.0)


@dataclass(frozen=True)
class RunConfig:
    """Everything that determines a trained network; its hash is the run's cache key."""

    model: str
    dataset: str = "fashion-mnist"
    n_train: int | None = 10_000
    n_test: int | None = 2_000
    subset_seed: int = 0
    random_labels: bool = False
    label_seed: int = 0
    width: float = 1.0
    options: tuple[tuple[str, Any], ...] = ()  # further keyword arguments of the model, e.g. (("blocks", 1),)
    seed: int = 0
    optimizer: str = "sgd"  # or "adamw"
    lr: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 5e-4
    schedule: str = "cosine"
    epochs: int = 10
    batch_size: int = 128
    augment: bool = False
    checkpoints: tuple[float, ...] = CHECKPOINTS
    freeze: tuple[tuple[str, float], ...] = ()  # (layer, fraction of training from which it is frozen)

    def __post_init__(self):
        datasets.dataset(self.dataset)  # a ValueError naming the registered ones
        if self.optimizer not in ("sgd", "adamw"):
            raise ValueError(f"optimizer must be 'sgd' or 'adamw', got {self.optimizer!r}")
        if self.schedule not in ("cosine", "constant"):
            raise ValueError(f"schedule must be 'cosine' or 'constant', got {self.schedule!r}")
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError("epochs and batch_size must be positive")
        bad = [f for f in (*self.checkpoints, *(f for _, f in self.freeze)) if not 0 <= f <= 1]
        if bad:
            raise ValueError(f"checkpoint and freeze fractions must lie in [0, 1], got {bad}")
        object.__setattr__(self, "checkpoints", tuple(sorted(set(self.checkpoints) | {1.0})))

    @property
    def key(self) -> str:
        """SHA-256 of the configuration (and the cache format), shortened: the run's folder name."""
        text = json.dumps({"format": CACHE_FORMAT, **asdict(self)}, sort_keys=True, default=list)
        return f"{self.model}-{hashlib.sha256(text.encode()).hexdigest()[:16]}"


@dataclass
class Run:
    """A finished training run: its configuration, per-epoch history, checkpoints, and the environment it was
    trained in (`environment`)."""

    config: RunConfig
    path: Path
    history: list[dict[str, float]] = field(default_factory=list)
    environment: dict[str, str | int] = field(default_factory=dict)

    @property
    def test_accuracy(self) -> float:
        """Test accuracy at the end of training."""
        return self.history[-1]["test_accuracy"]

    @property
    def train_accuracy(self) -> float:
        """Training accuracy over the last epoch (on the labels trained on, random or not)."""
        return self.history[-1]["train_accuracy"]

    def summary(self) -> str:
        """One line: epochs, final training loss and accuracy, test accuracy."""
        last = self.history[-1]
        return (f"{last['epoch']} epochs, train loss {last['train_loss']:.3f}, train accuracy "
                f"{last['train_accuracy']:.3f}, test accuracy {last['test_accuracy']:.3f}")

    @property
    def layers(self) -> tuple[str, ...]:
        """The network's recordable layers, input first (from the configuration; no checkpoint is read)."""
        return _new_model(self.config).layers

    def model(self, fraction: float = 1.0, device: torch.device | str = "cpu") -> Named:
        """The network at `fraction` of training (one of `config.checkpoints`), in eval mode."""
        net = _new_model(self.config)
        net.load_state_dict(torch.load(self.path / _checkpoint_name(self._fraction(fraction)), map_location=device, weights_only=True))
        return net.to(device).eval()

    def data(self, split: str = "test") -> datasets.Split:
        """The inputs and targets this run trained on ("train") or is tested on ("test")."""
        return _split(self.config, split)

    def labels(self, split: str = "test") -> np.ndarray:
        """Targets of `split` in recording order (the labels trained on, random or not, for "train")."""
        return self.data(split).targets.numpy()

    def activations(
        self, layers: list[str] | tuple[str, ...] | None = None, split: str = "test", fraction: float = 1.0,
        pool: int | None = None, progress: bool | None = None,
    ) -> dict[str, np.ndarray]:
        """Activations of `layers` (default: all) over `split` at `fraction` of training, float32, samples
        first; cached beside the run with checksums (a damaged file is reported and recorded again).
        `pool`: see `hooks.iter_activations`."""
        fraction = self._fraction(fraction)
        layers = tuple(layers) if layers is not None else self.layers
        folder = self.path / "activations" / (f"{split}-{fraction:g}" + ("" if pool is None else f"-pool{pool}"))
        sums = _read_checksums(folder / "checksums.json")
        missing = [name for name in layers if not _intact(folder / f"{name}.npy", sums.get(f"{name}.npy"))]
        if missing:
            net = self.model(fraction)
            acts = record(net, self.data(split).batches(), missing, pool=pool, progress=progress)
            folder.mkdir(parents=True, exist_ok=True)
            for name, value in acts.items():
                _atomic(folder / f"{name}.npy", lambda p, v=value: _save_npy(p, v))
                sums[f"{name}.npy"] = _sha256(folder / f"{name}.npy")
            _atomic(folder / "checksums.json", lambda p: p.write_text(json.dumps(sums, indent=1, sort_keys=True)))
        return {name: np.load(folder / f"{name}.npy") for name in layers}

    def _fraction(self, fraction: float) -> float:
        for f in self.config.checkpoints:
            if math.isclose(f, fraction):
                return f
        raise ValueError(f"no checkpoint at {fraction} of training; this run has {self.config.checkpoints}")


def train(config: RunConfig, *, device: torch.device | str | None = None, progress: bool | None = None) -> Run:
    """The trained run of `config`: loaded from the cache when it is there, else trained (resuming an
    interrupted run) and cached. `device`: default a GPU when torch sees one, else the CPU."""
    return _train_at(config, data_dir() / "runs" / config.key, device, progress)


def _train_at(config: RunConfig, path: Path, device: torch.device | str | None, progress: bool | None) -> Run:
    """`train`, with the run's folder given (a Ray worker may train into its own node's cache)."""
    done = _load_finished(config, path)
    if done is not None:
        return done
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    threads = torch.get_num_threads()
    torch.set_num_threads(TRAINING_THREADS)
    try:
        return _Trainer(config, path, device, progress).run()
    finally:
        torch.set_num_threads(threads)


def environment(device: torch.device) -> dict[str, str | int]:
    """What besides the configuration decides a run's bits: torch's version, the device, and on the CPU the
    vector instructions and thread count used (see `analysis.networks`)."""
    found: dict[str, str | int] = {"torch": torch.__version__, "device": device.type}
    if device.type == "cpu":
        found |= {"cpu_capability": torch.backends.cpu.get_cpu_capability(), "threads": torch.get_num_threads()}
    return found


def train_many(
    configs: list[RunConfig] | tuple[RunConfig, ...], *, device: torch.device | str | None = None,
    progress: bool | None = None, cluster: Cluster | bool | None = None,
) -> list[Run]:
    """The trained runs of `configs`, in order: cached ones loaded, the others trained (each configuration once,
    however often it is listed), with one progress bar over the runs and a summary line per run trained.

    `cluster`: where the missing runs are trained. None (default): as the environment says, which is one after
    another in this process unless `SVCCA_RAY` or `RAY_ADDRESS` is set; False: here, whatever the environment;
    True: as Ray tasks on a local Ray; a `Cluster`: on that Ray (see `analysis.networks.cluster`).
    """
    from . import cluster as ray_cluster  # imported here: it builds on this module, and imports Ray only when used

    chosen = ray_cluster.choose(cluster)
    unique = list(dict.fromkeys(configs))
    if chosen is not None:
        found = {c: _load_finished(c, data_dir() / "runs" / c.key) for c in unique}
        missing = [c for c, run in found.items() if run is None]
        found |= ray_cluster.train_on_ray(missing, chosen, device=device, progress=progress,
                                          finished=len(unique) - len(missing))
        return [found[c] for c in configs]
    done: dict[RunConfig, Run] = {}
    bar = progress_bar(unique, desc="runs", unit="run", disable=progress is False, delay=0 if progress else 1.0)
    for config in bar:
        cached = _load_finished(config, data_dir() / "runs" / config.key)
        done[config] = cached if cached is not None else train(config, device=device, progress=progress)
        if cached is None:
            bar.write(f"trained {config.key}: {done[config].summary()}")
    bar.close()
    return [done[c] for c in configs]


def optimizer(config: RunConfig, params) -> torch.optim.Optimizer:
    """The run's optimizer over `params`: SGD with momentum or AdamW, at the configuration's learning rate."""
    if config.optimizer == "sgd":
        return torch.optim.SGD(params, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)
    return torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)


def lr_at(config: RunConfig, step: int, total: int) -> float:
    """Learning rate at `step` of `total` under the run's schedule."""
    if config.schedule == "cosine":
        return config.lr * 0.5 * (1 + math.cos(math.pi * step / total))
    return config.lr


class _Trainer:
    def __init__(self, config: RunConfig, path: Path, device: torch.device, progress: bool | None):
        self.config, self.path, self.device, self.progress = config, path, device, progress
        self.train_set = _split(config, "train")
        self.test_set = _split(config, "test")
        self.steps_per_epoch = math.ceil(len(self.train_set) / config.batch_size)
        self.total = config.epochs * self.steps_per_epoch
        self.checkpoint_steps = {round(f * self.total): f for f in config.checkpoints}

    def run(self) -> Run:
        c = self.config
        state = self._saved_state()
        torch.manual_seed(c.seed)
        self.net = _new_model(c).to(self.device)
        self.opt = optimizer(c, self.net.parameters())
        self.step, self.history, self.sums, self.checksums = 0, [], [0.0, 0, 0], {}
        if state is not None:
            self.net.load_state_dict(state["model"])
            self.opt.load_state_dict(state["optimizer"])
            self.step, self.history, self.sums, self.checksums = (state[k] for k in ("step", "history", "sums", "checksums"))
        self.path.mkdir(parents=True, exist_ok=True)
        _atomic(self.path / "config.json", lambda p: p.write_text(json.dumps(asdict(c), indent=1)))
        if self.step == 0 and 0 in self.checkpoint_steps:
            self._checkpoint(0.0)
        epochs_done, into_epoch = divmod(self.step, self.steps_per_epoch)
        if into_epoch == 0 and len(self.history) < epochs_done:  # saved by a checkpoint on an epoch's last step
            self._end_epoch(epochs_done - 1)
        for layer, f in c.freeze:  # layers frozen from the start, or by the point a resumed run had reached
            if self.step >= round(f * self.total):
                freeze(self.net, [layer])
        images, labels = self.train_set.inputs.to(self.device), self.train_set.targets.to(self.device)
        bar = progress_bar(total=self.total, initial=self.step, desc=f"training {c.key}", unit="step", disable=self.progress is False, delay=0 if self.progress else 1.0)
        while self.step < self.total:
            epoch, first = divmod(self.step, self.steps_per_epoch)
            order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(c.seed * 100_003 + epoch)).to(self.device)
            for b in range(first, self.steps_per_epoch):
                idx = order[b * c.batch_size : (b + 1) * c.batch_size]
                self._train_step(images[idx], labels[idx])
                bar.update()
                if self.step in self.checkpoint_steps:
                    self._checkpoint(self.checkpoint_steps[self.step])
            self._end_epoch(epoch)
            bar.set_postfix(test_accuracy=f"{self.history[-1]['test_accuracy']:.3f}")
        bar.close()
        _check_finite(self.net.state_dict())  # a diverged run is an error, never a cached result
        entry = {"config": asdict(c), "environment": environment(self.device), "history": self.history,
                 "checksums": self.checksums}
        entry["digest"] = _digest(entry)
        _atomic(self.path / "manifest.json", lambda p: p.write_text(json.dumps(entry, indent=1)))
        (self.path / "state.pt").unlink(missing_ok=True)
        (self.path / "state.sha256").unlink(missing_ok=True)
        return Run(c, self.path, self.history, environment(self.device))

    def _end_epoch(self, epoch: int) -> None:
        loss, hits, seen = self.sums
        self.history.append({
            "epoch": epoch + 1,
            "train_loss": loss / seen,
            "train_accuracy": hits / seen,
            "test_accuracy": accuracy(self.net, self.test_set),
        })
        self.sums = [0.0, 0, 0]
        self._save_state()

    def _train_step(self, x: torch.Tensor, y: torch.Tensor) -> None:
        c = self.config
        freezing = [layer for layer, f in c.freeze if self.step == round(f * self.total)]
        if freezing:
            freeze(self.net, freezing)
        self.net.train()
        if c.augment:
            x = datasets.augment(x.cpu(), torch.Generator().manual_seed(c.seed * 1_000_003 + self.step)).to(self.device)
        for group in self.opt.param_groups:
            group["lr"] = lr_at(c, self.step, self.total)
        out = self.net(x)
        loss = task_loss(out, y)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        self.step += 1
        self.sums[0] += loss.item() * y.numel()
        self.sums[1] += int((out.argmax(-1) == y).sum())
        self.sums[2] += y.numel()

    def _checkpoint(self, fraction: float) -> None:
        name = _checkpoint_name(fraction)
        _atomic(self.path / name, lambda p: torch.save(self.net.state_dict(), p))
        self.checksums[name] = _sha256(self.path / name)
        self._save_state()

    def _save_state(self) -> None:
        state = {
            "step": self.step, "history": self.history, "sums": self.sums, "checksums": self.checksums,
            "model": self.net.state_dict(), "optimizer": self.opt.state_dict(),
        }
        _atomic(self.path / "state.pt", lambda p: torch.save(state, p))
        digest = _sha256(self.path / "state.pt")
        _atomic(self.path / "state.sha256", lambda p: p.write_text(digest))

    def _saved_state(self) -> dict | None:
        """The state an interrupted run left, checked (its own checksum, its checkpoints', finite weights);
        None to start afresh."""
        file = self.path / "state.pt"
        if not file.exists():
            return None
        try:
            if not (self.path / "state.sha256").is_file() or _sha256(file) != (self.path / "state.sha256").read_text():
                raise ValueError("state.pt does not match its checksum")
            state = torch.load(file, map_location=self.device, weights_only=True)
            for name, digest in state["checksums"].items():
                if _sha256(self.path / name) != digest:
                    raise ValueError(f"checkpoint {name} does not match its checksum")
            _check_finite(state["model"])
        except Exception as error:  # unpickling a damaged file raises many kinds of error
            warnings.warn(f"cached run {self.path} is damaged ({error}); training it again from the start", stacklevel=2)
            shutil.rmtree(self.path)
            return None
        return state


def task_loss(out: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of outputs (..., classes) against targets (...): per image, or per step of a sequence."""
    return nn.functional.cross_entropy(out.reshape(-1, out.shape[-1]), targets.reshape(-1))


def accuracy(net: nn.Module, split: datasets.Split, batch_size: int = 1000) -> float:
    """Fraction of `split`'s targets (classes, or next tokens) that `net` predicts correctly."""
    device = model_device(net)
    hits = 0
    with evaluating(net):
        for x, y in split.batches(batch_size):
            hits += int((net(x.to(device)).argmax(-1).cpu() == y).sum())
    return hits / split.targets.numel()


def _load_finished(config: RunConfig, path: Path) -> Run | None:
    """The finished run cached at `path`, every file it reads checked; None (the damage reported and the folder
    removed) when anything is missing, damaged or of the wrong shape."""
    if path.exists() and not path.is_dir():
        warnings.warn(f"cached run {path} is a file, not a folder; training it again", stacklevel=3)
        path.unlink()
        return None
    manifest = path / "manifest.json"
    if not manifest.exists():
        return None
    try:
        entry = json.loads(manifest.read_text())
        if not isinstance(entry, dict) or entry.get("digest") != _digest(entry):
            raise ValueError("manifest.json does not match its digest")
        if entry["config"] != json.loads(json.dumps(asdict(config), default=list)):
            raise ValueError("its configuration differs from the one asked for")
        expected = {_checkpoint_name(f) for f in config.checkpoints}
        if set(entry["checksums"]) != expected:
            raise ValueError(f"it lists checkpoints {sorted(entry['checksums'])}, not {sorted(expected)}")
        for name, digest in entry["checksums"].items():
            if not (path / name).is_file() or _sha256(path / name) != digest:
                raise ValueError(f"checkpoint {name} is missing or does not match its checksum")
    except (ValueError, KeyError, TypeError, AttributeError, OSError) as error:  # JSON of any shape, or no file
        warnings.warn(f"cached run {path} is damaged ({error}); training it again", stacklevel=3)
        shutil.rmtree(path)
        return None
    return Run(config, path, entry["history"], entry.get("environment", {}))


def _digest(entry: dict) -> str:
    """SHA-256 of a manifest's content (everything but its own digest), so that its history is covered too."""
    body = {k: v for k, v in entry.items() if k != "digest"}
    return hashlib.sha256(json.dumps(body, sort_keys=True, default=list).encode()).hexdigest()


def _check_finite(state: dict[str, torch.Tensor]) -> None:
    """A ValueError naming the first tensor of a state dict that holds NaN or Inf."""
    for name, value in state.items():
        if value.is_floating_point() and not bool(torch.isfinite(value).all()):
            raise ValueError(f"{name} holds NaN or Inf")


@lru_cache(maxsize=8)
def _split(config: RunConfig, split: str) -> datasets.Split:
    train = split == "train"
    return datasets.load(
        config.dataset, split,
        n=config.n_train if train else config.n_test,
        seed=config.subset_seed,
        random_labels=config.random_labels and train,
        label_seed=config.label_seed,
    )


def _new_model(config: RunConfig) -> Named:
    split = _split(config, "test")
    return build_model(config.model, split.shape, len(split.classes), config.width, **dict(config.options))


def _checkpoint_name(fraction: float) -> str:
    return f"checkpoint-{fraction:g}.pt"


def _save_npy(path: Path, value: np.ndarray) -> None:
    with open(path, "wb") as f:  # a file object, so numpy does not append ".npy" to the temporary name
        np.save(f, value)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else ""


def _read_checksums(path: Path) -> dict[str, str]:
    """A checksum file's {file name: SHA-256}; empty (everything is then recorded again) if absent or damaged."""
    try:
        sums = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    ok = isinstance(sums, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in sums.items())
    return sums if ok else {}


def _intact(path: Path, digest: str | None) -> bool:
    """Whether a cached file exists and matches its checksum; a damaged one is reported (and then redone)."""
    if not path.exists():
        return False
    if digest is not None and _sha256(path) == digest:
        return True
    warnings.warn(f"cached file {path} is damaged or has no checksum; recording it again", stacklevel=3)
    return False


def _atomic(path: Path, write) -> None:
    """Write through a temporary file and rename it, so a killed process never leaves half a file."""
    tmp = path.with_name(f".{path.name}.tmp")
    write(tmp)
    tmp.replace(path)
