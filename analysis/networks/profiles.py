"""Profiles: how large each network and each study is. The one place where their sizes live.

`quick`: Fashion-MNIST subsets, minutes per study on 2 CPU cores. `full`: the papers' scale on CIFAR-10 (a
GPU is expected). A study's plan lists the runs it needs by role (e.g. "generalizing", "memorizing");
studies that ask for the same configuration share one cached run.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from .runs import RunConfig

#: checkpoints of the conv networks: every 10% of training (dense enough to order layers by when they
#: converge) and the SVCCA paper's Fig. 4 fractions, 35% and 75%
DYNAMICS = (0.0, 0.1, 0.2, 0.3, 0.35, 0.4, 0.5, 0.6, 0.7, 0.75, 0.8, 0.9, 1.0)
#: the LSTM's: its three layers converge within a tenth of training of each other, where DYNAMICS's grid left ties
FINE = tuple(k / 20 for k in range(21))

NETWORKS: dict[str, dict[str, dict[str, Any]]] = {
    "quick": {
        "mlp": dict(epochs=10),
        "convnet": dict(width=0.25, epochs=8, checkpoints=DYNAMICS),
        "resnet": dict(options=(("blocks", 1),), epochs=8, checkpoints=DYNAMICS),
        "lstm": dict(dataset="fortunes", n_train=8_000, options=(("embed", 32), ("hidden", 64), ("n_layers", 3)),
                     optimizer="adamw", lr=0.01, weight_decay=0.0, epochs=8, batch_size=64, checkpoints=FINE),
    },
    "full": {
        "mlp": dict(dataset="cifar10", n_train=None, n_test=10_000, epochs=100, lr=0.01),
        "convnet": dict(dataset="cifar10", n_train=None, n_test=10_000, epochs=100, augment=True,
                        checkpoints=DYNAMICS),
        "resnet": dict(dataset="cifar10", n_train=None, n_test=10_000, epochs=100, augment=True, lr=0.1,
                       checkpoints=DYNAMICS),
        "lstm": dict(dataset="wikitext-2", n_train=None, n_test=None,
                     options=(("embed", 128), ("hidden", 512), ("n_layers", 3)), optimizer="adamw", lr=2e-3,
                     weight_decay=0.0, epochs=20, checkpoints=FINE),
    },
}
PROFILES = tuple(NETWORKS)


def profile_config(model: str, profile: str = "quick", **overrides) -> RunConfig:
    """The configuration of `model` ("mlp", "convnet", "resnet") in `profile` ("quick" or "full"), with
    `overrides` (seed, width, random_labels, ...) applied on top."""
    _check_profile(profile)
    if model not in NETWORKS[profile]:
        raise ValueError(f"no {profile} profile for model {model!r}; choose one of {tuple(NETWORKS[profile])}")
    return RunConfig(model=model, **{**NETWORKS[profile][model], **overrides})


@dataclass(frozen=True)
class StudyPlan:
    """The runs a study needs in a profile, by role, and the study's other sizes (`settings`)."""

    study: str
    profile: str
    runs: dict[str, tuple[RunConfig, ...]]
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def configs(self) -> list[RunConfig]:
        """Every run of every role, each once, in order (for `train_many`)."""
        return list(dict.fromkeys(c for role in self.runs.values() for c in role))


def _seeds(model: str, seeds: tuple[int, ...]) -> Callable[[str], dict[str, tuple[RunConfig, ...]]]:
    return lambda profile: {model: tuple(profile_config(model, profile, seed=s) for s in seeds)}


def _classes(profile: str) -> dict[str, tuple[RunConfig, ...]]:
    """Study 05: quick, the ResNet seeds 0-2 (shared with 02; checkpoint 0 is the untrained control); full,
    torchvision's pretrained ResNet-50, so nothing is trained."""
    return {"resnet": tuple(profile_config("resnet", profile, seed=s) for s in (0, 1, 2))} if profile == "quick" else {}


def _widths(profile: str) -> dict[str, tuple[RunConfig, ...]]:
    """Study 04: the convnet at five widths spanning 16x, seeds 0-2 each. Quick: widths 1/32 to 1/2 (conv
    channels 2 to 32 in conv1), each on 3,000 training images so that the widest fit the time budget, saved
    untrained and trained only; full: CIFAR-10 at widths 1/8 to 2 (width 1 is 01's and 02's convnet)."""
    quick = profile == "quick"
    widths = (0.03125, 0.0625, 0.125, 0.25, 0.5) if quick else (0.125, 0.25, 0.5, 1.0, 2.0)
    budget = dict(n_train=3_000, checkpoints=(0.0, 1.0)) if quick else {}
    return {f"width {w:g}": tuple(profile_config("convnet", profile, width=w, seed=s, **budget) for s in (0, 1, 2))
            for w in widths}


def _dynamics(profile: str) -> dict[str, tuple[RunConfig, ...]]:
    """Study 02: the convnet and the ResNet, seeds 0-2 each (shared with 01 and 05), checkpoints every 10% of
    training plus 35% and 75%; each seed's checkpoint 0 is the untrained control of the others."""
    return {m: tuple(profile_config(m, profile, seed=s) for s in (0, 1, 2)) for m in ("convnet", "resnet")}



def _memorization(profile: str) -> dict[str, tuple[RunConfig, ...]]:
    """Study 03: the convnet trained on the true labels ("generalizing") and on one random permutation of them,
    the same for every network of the group ("memorizing"), on the same images with the same schedule and no
    augmentation, so that both groups fit their training labels; each seed's checkpoint 0 is the untrained
    control. Quick: seeds 0-2 on 1,000 training images, AdamW at a constant 3e-3 for 15 epochs (enough to
    memorize them); full: seeds 0-4 (the paper's groups of 5) on all of CIFAR-10, 200 epochs at 1e-3."""
    quick = profile == "quick"
    seeds = (0, 1, 2) if quick else (0, 1, 2, 3, 4)
    fit = dict(n_train=1_000, epochs=15, lr=3e-3) if quick else dict(epochs=200, lr=1e-3)
    common = dict(optimizer="adamw", schedule="constant", augment=False, checkpoints=(0.0, 1.0), label_seed=0, **fit)
    return {role: tuple(profile_config("convnet", profile, seed=s, random_labels=random, **common) for s in seeds)
            for role, random in (("generalizing", False), ("memorizing", True))}

#: study 07's top-down control that saves as much weight-gradient compute as bottom-up freezing: the linear
#: regime's fractions times this factor (`analysis.studies.freezing.matched_schedule` on each profile's convnet;
#: tests/test_freezing.py checks that the two savings agree)
FREEZE_MATCH = {"quick": 0.5855, "full": 0.5925}


def _freezing(profile: str) -> dict[str, tuple[RunConfig, ...]]:
    """Study 07: the convnet trained normally and with its layers frozen one by one, seeds 0-2 each; "normal" is
    04's width-1/4 convnet on 3,000 images (quick) or 01's and 02's convnet (full). The k-th of its 7 layers is
    frozen at k/7 of training (the SVCCA paper's linear regime; the logits, due at the end, never are):
    bottom-up, top-down at the same fractions, top-down at fractions scaled to save what bottom-up saves, and
    bottom-up from halfway (at 1/2 + k/14, saving what top-down at k/7 saves)."""
    budget = dict(width=0.25, n_train=3_000, checkpoints=(0.0, 1.0)) if profile == "quick" else {}
    normal = tuple(profile_config("convnet", profile, seed=s, **budget) for s in (0, 1, 2))
    layers = ("conv1", "conv2", "conv3", "conv4", "fc1", "fc2", "logits")
    linear = [k / len(layers) for k in range(1, len(layers))]
    schedules = {
        "bottom-up": tuple(zip(layers, linear)),
        "top-down": tuple(zip(layers[::-1], linear)),
        "top-down, same saving": tuple(zip(layers[::-1], (FREEZE_MATCH[profile] * f for f in linear))),
        "bottom-up from halfway": tuple(zip(layers, (0.5 + f / 2 for f in linear))),
    }
    return {"normal": normal, **{role: tuple(replace(c, freeze=s) for c in normal) for role, s in schedules.items()}}


def _visualization(profile: str) -> dict[str, tuple[RunConfig, ...]]:
    """Study 10 trains nothing: quick, 01's convnets, seeds 0-2; full, torchvision's pretrained ImageNet AlexNet
    (the paper's CaffeNet's twin)."""
    return _seeds("convnet", (0, 1, 2))(profile) if profile == "quick" else {}


#: study -> profile -> runs by role
STUDIES: dict[str, Callable[[str], dict[str, tuple[RunConfig, ...]]]] = {
    "00": _seeds("mlp", (0, 1, 2)),
    "01": _seeds("convnet", (0, 1, 2)),
    "02": _dynamics,
    "03": _memorization,
    "04": _widths,
    "05": _classes,
    "06": _seeds("lstm", (0, 1, 2)),
    "07": _freezing,
    "08": _seeds("convnet", (0, 1, 2)),  # 01's convnets: compression projects their layers and trains nothing
    "09": _seeds("convnet", (0, 1, 2)),  # 01's convnets (checkpoint 0: the untrained control): matching trains nothing
    "10": _visualization,
}


def study_plan(study: str, profile: str = "quick", dataset: str | None = None) -> StudyPlan:
    """What study `study` ("00", "01", ...) trains in `profile`; `dataset`: every run on that registered
    dataset instead of the profile's (the same sizes, so a subset larger than the dataset is an error)."""
    _check_profile(profile)
    if study not in STUDIES:
        raise ValueError(f"no plan for study {study!r}; known: {tuple(STUDIES)}")
    runs = STUDIES[study](profile)
    if dataset is not None:
        runs = {role: tuple(replace(c, dataset=dataset) for c in configs) for role, configs in runs.items()}
    return StudyPlan(study, profile, runs)


def _check_profile(profile: str) -> None:
    if profile not in NETWORKS:
        raise ValueError(f"unknown profile {profile!r}; choose one of {PROFILES}")
