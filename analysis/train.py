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
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from . import data as datasets
from .models import Named, build_model, freeze, frozen_layers, module
from .paths import data_dir
from .record import evaluating, model_device, record

CACHE_FORMAT = 1  # bump when a change to training makes old cached runs wrong
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
        if self.dataset not in datasets.DATASETS:
            raise ValueError(f"unknown dataset {self.dataset!r}; choose one of {datasets.DATASETS}")
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


# The one place where the profiles' sizes live. quick: Fashion-MNIST subsets, minutes on 2 CPU cores;
# full: the papers' scale on CIFAR-10 (a GPU is expected).
PROFILES: dict[str, dict[str, dict[str, Any]]] = {
    "quick": {
        "mlp": dict(epochs=10),
        "convnet": dict(width=0.25, epochs=8),
        "resnet": dict(options=(("blocks", 1),), epochs=8),
    },
    "full": {
        "mlp": dict(dataset="cifar10", n_train=None, n_test=10_000, epochs=100, lr=0.01),
        "convnet": dict(dataset="cifar10", n_train=None, n_test=10_000, epochs=100, augment=True),
        "resnet": dict(dataset="cifar10", n_train=None, n_test=10_000, epochs=100, augment=True, lr=0.1),
    },
}


def profile_config(model: str, profile: str = "quick", **overrides) -> RunConfig:
    """The configuration of `model` ("mlp", "convnet", "resnet") in `profile` ("quick" or "full"), with
    `overrides` (seed, width, random_labels, ...) applied on top."""
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; choose one of {tuple(PROFILES)}")
    if model not in PROFILES[profile]:
        raise ValueError(f"no {profile} profile for model {model!r}; choose one of {tuple(PROFILES[profile])}")
    return RunConfig(model=model, **{**PROFILES[profile][model], **overrides})


@dataclass
class Run:
    """A finished training run: its configuration, per-epoch history and checkpoints."""

    config: RunConfig
    path: Path
    history: list[dict[str, float]] = field(default_factory=list)

    @property
    def test_accuracy(self) -> float:
        """Test accuracy at the end of training."""
        return self.history[-1]["test_accuracy"]

    @property
    def train_accuracy(self) -> float:
        """Training accuracy over the last epoch (on the labels trained on, random or not)."""
        return self.history[-1]["train_accuracy"]

    def model(self, fraction: float = 1.0, device: torch.device | str = "cpu") -> Named:
        """The network at `fraction` of training (one of `config.checkpoints`), in eval mode."""
        net = _new_model(self.config)
        net.load_state_dict(torch.load(self.path / _checkpoint_name(self._fraction(fraction)), map_location=device, weights_only=True))
        return net.to(device).eval()

    def data(self, split: str = "test") -> datasets.Split:
        """The images and labels this run trained on ("train") or is tested on ("test")."""
        return _split(self.config, split)

    def labels(self, split: str = "test") -> np.ndarray:
        """Labels of `split` in recording order."""
        return self.data(split).labels.numpy()

    def activations(
        self, layers: list[str] | tuple[str, ...] | None = None, split: str = "test", fraction: float = 1.0,
        pool: int | None = None, progress: bool | None = None,
    ) -> dict[str, np.ndarray]:
        """Activations of `layers` (default: all of the model's) over `split` at `fraction` of training,
        float32, samples first; cached beside the run. `pool`: see `record.iter_activations`."""
        fraction = self._fraction(fraction)
        layers = tuple(layers) if layers is not None else self.model(fraction).layers
        folder = self.path / "activations" / (f"{split}-{fraction:g}" + ("" if pool is None else f"-pool{pool}"))
        missing = [name for name in layers if not (folder / f"{name}.npy").exists()]
        if missing:
            net = self.model(fraction)
            acts = record(net, self.data(split).batches(), missing, pool=pool, progress=progress)
            folder.mkdir(parents=True, exist_ok=True)
            for name, value in acts.items():
                _atomic(folder / f"{name}.npy", lambda p, v=value: _save_npy(p, v))
        return {name: np.load(folder / f"{name}.npy") for name in layers}

    def _fraction(self, fraction: float) -> float:
        for f in self.config.checkpoints:
            if math.isclose(f, fraction):
                return f
        raise ValueError(f"no checkpoint at {fraction} of training; this run has {self.config.checkpoints}")


def train(config: RunConfig, *, device: torch.device | str | None = None, progress: bool | None = None) -> Run:
    """The trained run of `config`: loaded from the cache when it is there, else trained (resuming an
    interrupted run) and cached. `device`: default a GPU when torch sees one, else the CPU."""
    path = data_dir() / "runs" / config.key
    done = _load_finished(config, path)
    if done is not None:
        return done
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    return _Trainer(config, path, device, progress).run()


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
        params = self.net.parameters()
        self.opt = (
            torch.optim.SGD(params, lr=c.lr, momentum=c.momentum, weight_decay=c.weight_decay)
            if c.optimizer == "sgd"
            else torch.optim.AdamW(params, lr=c.lr, weight_decay=c.weight_decay)
        )
        self.step, self.history, self.sums, self.checksums = 0, [], [0.0, 0, 0], {}
        if state is not None:
            self.net.load_state_dict(state["model"])
            self.opt.load_state_dict(state["optimizer"])
            self.step, self.history, self.sums, self.checksums = (state[k] for k in ("step", "history", "sums", "checksums"))
        self.path.mkdir(parents=True, exist_ok=True)
        _atomic(self.path / "config.json", lambda p: p.write_text(json.dumps(asdict(c), indent=1)))
        if self.step == 0 and 0 in self.checkpoint_steps:
            self._checkpoint(0.0)
        images, labels = self.train_set.images.to(self.device), self.train_set.labels.to(self.device)
        bar = tqdm(total=self.total, initial=self.step, desc=f"training {c.key}", unit="step", disable=self.progress is False, delay=0 if self.progress else 1.0)
        while self.step < self.total:
            epoch, first = divmod(self.step, self.steps_per_epoch)
            order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(c.seed * 100_003 + epoch)).to(self.device)
            for b in range(first, self.steps_per_epoch):
                idx = order[b * c.batch_size : (b + 1) * c.batch_size]
                self._train_step(images[idx], labels[idx])
                bar.update()
                if self.step in self.checkpoint_steps:
                    self._checkpoint(self.checkpoint_steps[self.step])
            loss, hits, seen = self.sums
            self.history.append({
                "epoch": epoch + 1,
                "train_loss": loss / seen,
                "train_accuracy": hits / seen,
                "test_accuracy": accuracy(self.net, self.test_set),
            })
            self.sums = [0.0, 0, 0]
            bar.set_postfix(test_accuracy=f"{self.history[-1]['test_accuracy']:.3f}")
            self._save_state()
        bar.close()
        _atomic(self.path / "manifest.json", lambda p: p.write_text(json.dumps(
            {"config": asdict(c), "history": self.history, "checksums": self.checksums}, indent=1)))
        (self.path / "state.pt").unlink(missing_ok=True)
        return Run(c, self.path, self.history)

    def _train_step(self, x: torch.Tensor, y: torch.Tensor) -> None:
        c = self.config
        to_freeze = [layer for layer, f in c.freeze if self.step >= round(f * self.total)]
        if to_freeze:
            freeze(self.net, to_freeze)
        self.net.train()
        for name in frozen_layers(self.net):  # train() above switched their batch-norm statistics back on
            module(self.net, name).eval()
        if c.augment:
            x = datasets.augment(x.cpu(), torch.Generator().manual_seed(c.seed * 1_000_003 + self.step)).to(self.device)
        for group in self.opt.param_groups:
            group["lr"] = lr_at(c, self.step, self.total)
        out = self.net(x)
        loss = nn.functional.cross_entropy(out, y)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        self.step += 1
        self.sums[0] += loss.item() * len(y)
        self.sums[1] += int((out.argmax(1) == y).sum())
        self.sums[2] += len(y)

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

    def _saved_state(self) -> dict | None:
        """The state an interrupted run left, checked against its checkpoints' checksums; None to start afresh."""
        file = self.path / "state.pt"
        if not file.exists():
            return None
        try:
            state = torch.load(file, map_location=self.device, weights_only=True)
            for name, digest in state["checksums"].items():
                if _sha256(self.path / name) != digest:
                    raise ValueError(f"checkpoint {name} does not match its checksum")
        except Exception as error:  # unpickling a damaged file raises many kinds of error
            warnings.warn(f"cached run {self.path} is corrupt ({error}); training it again from the start")
            shutil.rmtree(self.path)
            return None
        return state


def accuracy(net: nn.Module, split: datasets.Split, batch_size: int = 1000) -> float:
    """Fraction of `split` that `net` classifies correctly."""
    device = model_device(net)
    hits = 0
    with evaluating(net):
        for x, y in split.batches(batch_size):
            hits += int((net(x.to(device)).argmax(1).cpu() == y).sum())
    return hits / len(split)


def _load_finished(config: RunConfig, path: Path) -> Run | None:
    manifest = path / "manifest.json"
    if not manifest.exists():
        return None
    try:
        entry = json.loads(manifest.read_text())
        if entry["config"] != json.loads(json.dumps(asdict(config), default=list)):
            raise ValueError("its configuration differs from the one asked for")
        expected = {_checkpoint_name(f) for f in config.checkpoints}
        if set(entry["checksums"]) != expected:
            raise ValueError(f"it lists checkpoints {sorted(entry['checksums'])}, not {sorted(expected)}")
        for name, digest in entry["checksums"].items():
            if not (path / name).exists() or _sha256(path / name) != digest:
                raise ValueError(f"checkpoint {name} is missing or does not match its checksum")
    except (ValueError, KeyError, json.JSONDecodeError) as error:
        warnings.warn(f"cached run {path} is corrupt ({error}); training it again")
        shutil.rmtree(path)
        return None
    return Run(config, path, entry["history"])


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
    return build_model(config.model, datasets.IMAGE_SHAPE[config.dataset], 10, config.width, **dict(config.options))


def _checkpoint_name(fraction: float) -> str:
    return f"checkpoint-{fraction:g}.pt"


def _save_npy(path: Path, value: np.ndarray) -> None:
    with open(path, "wb") as f:  # a file object, so numpy does not append ".npy" to the temporary name
        np.save(f, value)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else ""


def _atomic(path: Path, write) -> None:
    """Write through a temporary file and rename it, so a killed process never leaves half a file."""
    tmp = path.with_name(f".{path.name}.tmp")
    write(tmp)
    tmp.replace(path)
