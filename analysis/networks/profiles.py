"""Profiles: how large each network and each study is. The one place where their sizes live.

`quick`: Fashion-MNIST subsets, minutes per study on 2 CPU cores. `full`: the papers' scale on CIFAR-10 (a
GPU is expected). A study's plan lists the runs it needs by role (e.g. "generalizing", "memorizing");
studies that ask for the same configuration share one cached run.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .runs import RunConfig

NETWORKS: dict[str, dict[str, dict[str, Any]]] = {
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


#: study -> profile -> runs by role
STUDIES: dict[str, Callable[[str], dict[str, tuple[RunConfig, ...]]]] = {
    "00": _seeds("mlp", (0, 1)),
    "01": _seeds("convnet", (0, 1)),
    "02": lambda profile: {m: (profile_config(m, profile, seed=0),) for m in ("convnet", "resnet")},
}


def study_plan(study: str, profile: str = "quick") -> StudyPlan:
    """What study `study` ("00", "01", ...) trains in `profile`."""
    _check_profile(profile)
    if study not in STUDIES:
        raise ValueError(f"no plan for study {study!r}; known: {tuple(STUDIES)}")
    return StudyPlan(study, profile, STUDIES[study](profile))


def _check_profile(profile: str) -> None:
    if profile not in NETWORKS:
        raise ValueError(f"unknown profile {profile!r}; choose one of {PROFILES}")
