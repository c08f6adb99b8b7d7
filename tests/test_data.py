"""Datasets: the offline Debian route, seeded subsets, random labels, normalisation, augmentation."""
import gzip
import subprocess
import sys

import numpy as np
import pytest
import torch

from analysis.networks import data


def _idx_gz(path, payload: bytes) -> None:
    with gzip.open(path, "wb") as f:
        f.write(payload)


def test_debian_copy_is_decompressed_into_torchvision_layout(tmp_path, monkeypatch):
    debian = tmp_path / "debian"
    debian.mkdir()
    payloads = {name: f"{name} bytes".encode() * 100 for name in data.FASHION_MNIST_FILES}
    for name, payload in payloads.items():
        _idx_gz(debian / f"{name}.gz", payload)
    monkeypatch.setattr(data, "DEBIAN_FASHION_MNIST", debian)
    root = data.prepare("fashion-mnist", tmp_path / "root", download=False)
    for name, payload in payloads.items():
        assert (root / "FashionMNIST" / "raw" / name).read_bytes() == payload
    assert not list((root / "FashionMNIST" / "raw").glob("*.part"))


@pytest.mark.skipif(not (data.DEBIAN_FASHION_MNIST / "t10k-images-idx3-ubyte.gz").exists(), reason="Debian's dataset-fashion-mnist is not installed")
def test_real_debian_copy_loads_through_torchvision(tmp_path):
    test = data.load("fashion-mnist", "test", root=tmp_path, normalize=False)
    assert test.inputs.shape == (10_000, 1, 28, 28)
    assert test.targets.bincount().tolist() == [1000] * 10
    assert 0 <= float(test.inputs.min()) and float(test.inputs.max()) <= 1


def test_no_route_names_both_ways_to_get_the_data(tmp_path, monkeypatch):
    monkeypatch.setattr(data, "DEBIAN_FASHION_MNIST", tmp_path / "absent")
    with pytest.raises(data.DataUnavailable) as error:
        data.prepare("fashion-mnist", tmp_path / "root", download=False)
    assert "apt-get install -y dataset-fashion-mnist" in str(error.value)
    assert "internet" in str(error.value)


def test_command_line_exits_3_when_no_route_works(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(data, "DEBIAN_FASHION_MNIST", tmp_path / "absent")

    def offline(*args, **kwargs):
        raise OSError("network unreachable")

    monkeypatch.setattr(data, "_torchvision_dataset", offline)
    assert data.main(["fashion-mnist", "--root", str(tmp_path / "root")]) == 3
    assert "network unreachable" in capsys.readouterr().err


def test_command_line_run_as_a_module_exits_3_for_a_missing_corpus(tmp_path):
    # as the Makefile runs it: a corpus missing (WikiText-2 is placed by hand) is exit status 3, not a traceback
    done = subprocess.run([sys.executable, "-m", "analysis.networks.data", "wikitext-2", "--root", str(tmp_path)],
                          capture_output=True, text=True)
    assert done.returncode == 3, done.stderr
    assert "wikitext-2" in done.stderr.lower() and "Traceback" not in done.stderr


def test_unknown_dataset_and_split_are_named():
    with pytest.raises(ValueError, match="unknown dataset 'mnist'"):
        data.load("mnist")
    with pytest.raises(ValueError, match="split must be"):
        data.load("fashion-mnist", "validation")


def test_subsets_are_seeded_and_random_labels_permute_the_same_images(cache):
    a = data.load("fashion-mnist", "train", n=500, seed=3)
    b = data.load("fashion-mnist", "train", n=500, seed=3)
    c = data.load("fashion-mnist", "train", n=500, seed=4)
    assert torch.equal(a.inputs, b.inputs) and torch.equal(a.targets, b.targets)
    assert not torch.equal(a.inputs, c.inputs)
    shuffled = data.load("fashion-mnist", "train", n=500, seed=3, random_labels=True, label_seed=1)
    assert torch.equal(shuffled.inputs, a.inputs)
    assert sorted(shuffled.targets.tolist()) == sorted(a.targets.tolist())
    assert (shuffled.targets == a.targets).float().mean() < 0.3


def test_normalisation_standardises_the_training_set(cache):
    train = data.load("fashion-mnist", "train")
    assert abs(float(train.inputs.mean())) < 1e-3
    assert abs(float(train.inputs.std()) - 1) < 1e-3
    assert train.classes[1] == "Trouser"


def test_augmentation_translates_and_flips_within_the_padding():
    images = torch.arange(2 * 1 * 6 * 6, dtype=torch.float32).view(2, 1, 6, 6)
    out = data.augment(images, torch.Generator().manual_seed(0), pad=2)
    assert out.shape == images.shape
    for image, moved in zip(images, out):
        # every pixel kept is one of the image's own (flipped or not), the rest are zero padding
        kept = moved[moved != 0]
        assert set(kept.tolist()) <= set(image.flatten().tolist())
    again = data.augment(images, torch.Generator().manual_seed(0), pad=2)
    assert torch.equal(out, again)
    assert np.isclose(float(data.augment(images, torch.Generator().manual_seed(1), pad=0, flip=False).sum()), float(images.sum()))


def test_registered_datasets_load_without_touching_the_trainer(cache):
    tokens = torch.arange(40).remainder(5).view(4, 10)
    data.register(data.Dataset("toy-text", "language-model", lambda root, download: None,
                               lambda root, split: (tokens[:, :-1], tokens[:, 1:], tuple("abcde"))))
    try:
        split = data.load("toy-text", "test", n=3)
        assert split.task == "language-model" and split.shape == (9,) and split.targets.shape == (3, 9)
        with pytest.raises(ValueError, match="classification only"):
            data.load("toy-text", random_labels=True)
    finally:
        del data.DATASETS["toy-text"]
    assert data.load("fashion-mnist", "test", n=10).shape == (1, 28, 28)
    with pytest.raises(ValueError, match="choose one of"):
        data.load("mnist")


@pytest.mark.skipif(not (data.DEBIAN_FASHION_MNIST / "t10k-images-idx3-ubyte.gz").exists(), reason="Debian's dataset-fashion-mnist is not installed")
def test_a_damaged_raw_file_is_named_and_prepared_again(tmp_path):
    root = data.prepare("fashion-mnist", tmp_path)
    labels = root / "FashionMNIST" / "raw" / "t10k-labels-idx1-ubyte"
    good = labels.read_bytes()
    labels.write_bytes(good[:-10] + bytes(10))  # same size, wrong labels
    with pytest.warns(UserWarning, match=f"{labels} is damaged"):
        data.prepare("fashion-mnist", tmp_path)
    assert labels.read_bytes() == good


def test_cifar10_with_a_damaged_batch_is_not_ready(tmp_path, monkeypatch):
    from torchvision.datasets import CIFAR10

    folder = tmp_path / CIFAR10.base_folder
    folder.mkdir()
    for name, _ in CIFAR10.train_list + CIFAR10.test_list:
        (folder / name).write_bytes(b"not the batch")
    monkeypatch.setattr(data, "_torchvision_dataset", lambda *a, **k: (_ for _ in ()).throw(OSError("offline")))
    with pytest.warns(UserWarning, match="data_batch_1 is damaged"), pytest.raises(data.DataUnavailable, match="offline"):
        data.prepare("cifar10", tmp_path)
