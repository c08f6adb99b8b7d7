"""Shared fixtures: the SVCCA authors' real activations (tests/fixtures), a scratch run cache, an offline torch hub."""
from pathlib import Path

import numpy as np
import pytest

from analysis.networks import data
from analysis.networks.paths import data_dir

REF = Path(__file__).resolve().parent / "fixtures" / "svcca_tutorial_activations.npz"


@pytest.fixture(scope="session")
def ref_activations() -> dict[str, np.ndarray]:
    """The SVCCA authors' tutorial activations, samples first (see tests/fixtures/README.md)."""
    with np.load(REF) as f:
        return {
            "mnist": (f["mnist_logits_net0"].T, f["mnist_logits_net1"].T),
            "svhn": (f["svhn_fc200_net0"], f["svhn_fc200_net1"]),
        }


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    """An empty `data/` (SVCCA_DATA) whose Fashion-MNIST is a link to the project's prepared copy."""
    try:
        source = data.prepare("fashion-mnist", data_dir())
    except data.DataUnavailable as error:
        pytest.skip(str(error))
    (tmp_path / "FashionMNIST").symlink_to(source / "FashionMNIST")
    monkeypatch.setenv("SVCCA_DATA", str(tmp_path))
    return tmp_path


@pytest.fixture
def offline(tmp_path, monkeypatch) -> Path:
    """An empty TORCH_HOME, and every download path of torch/torchvision failing as when offline: the folder
    pretrained weights go in."""
    import urllib.error

    import torch
    import torchvision

    def fail(*args, **kwargs):
        raise urllib.error.URLError("offline (test)")

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", fail)
    monkeypatch.setattr(torch.hub, "download_url_to_file", fail)
    monkeypatch.setattr(torchvision.models._api, "load_state_dict_from_url", fail, raising=False)
    return tmp_path / "torch" / "hub" / "checkpoints"
