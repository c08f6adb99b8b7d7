"""The studies' datasets and tasks, as in-memory tensors, by name from a registry.

A `Dataset` names its task ("classification": images and a class per image; "language-model": token
sequences and the next token at every step), how to make it readable under `data/`, and how to read a
split; the trainer and the recorders need nothing else, so a dataset is added with `register` alone.

Images are read by torchvision's own dataset classes with `data/` as root. Fashion-MNIST is had, in order:
from a copy already there; offline, from Debian's `dataset-fashion-mnist` package (its .gz files are
recompressed, so their md5 differs from torchvision's list: we decompress them into torchvision's raw
folder, which it then reads unchanged); online, by torchvision's download. Text corpora: `text.py`.
`python -m analysis.networks.data NAME` prepares a dataset and exits with status 3 when no route works.
"""
from __future__ import annotations

import argparse
import gzip
import shutil
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache, partial
from pathlib import Path
from typing import Literal

import torch

from .paths import data_dir

DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
#: Fashion-MNIST's raw files and the MD5 of each (decompressed; the same from Zalando's release or Debian's)
FASHION_MNIST_FILES = {
    "train-images-idx3-ubyte": "f4a8712d7a061bf5bd6d2ca38dc4d50a",
    "train-labels-idx1-ubyte": "9018921c3c673c538a1fc5bad174d6f9",
    "t10k-images-idx3-ubyte": "8181f5470baa50b63fa0f6fddb340f0a",
    "t10k-labels-idx1-ubyte": "15d484375f8d13e6eb1aabb0c3f46965",
}
FASHION_MNIST_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
#: characters per sequence of the language-model datasets, and their vocabulary's size (the training split's
#: most frequent characters; the rest, rare symbols and mis-encoded bytes, count as one unknown character)
SEQUENCE_LENGTH = 64
VOCABULARY_SIZE = 96

Task = Literal["classification", "language-model"]


class DataUnavailable(RuntimeError):
    """Neither a local copy, Debian's package nor a download could provide the dataset."""


@dataclass(frozen=True)
class Split:
    """One split of a dataset: `inputs` (images (n, c, h, w) float32, or token sequences (n, time) long),
    `targets` (class per image (n,), or next token per step (n, time)), `classes` (class names, or the
    vocabulary of a language model), `task`."""

    inputs: torch.Tensor
    targets: torch.Tensor
    classes: tuple[str, ...]
    task: Task = "classification"

    def __len__(self) -> int:
        return len(self.targets)

    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of one input: (channels, height, width), or (time,)."""
        return tuple(self.inputs.shape[1:])

    def batches(self, batch_size: int = 500) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """The split in order, as (inputs, targets) batches: a loader for recording activations."""
        return [(self.inputs[i : i + batch_size], self.targets[i : i + batch_size]) for i in range(0, len(self), batch_size)]


@dataclass(frozen=True)
class Dataset:
    """A registered dataset: `prepare(root, download)` makes it readable under `root`; `read(root, split)`
    gives that split's raw (inputs, targets, classes): images as uint8 (n, c, h, w), tokens as long;
    `stats`: per-channel pixel mean and std of the training set, used to standardize images."""

    name: str
    task: Task
    prepare: Callable[[Path, bool], None]
    read: Callable[[Path, str], tuple[torch.Tensor, torch.Tensor, tuple[str, ...]]]
    stats: tuple[tuple[float, ...], tuple[float, ...]] | None = None


DATASETS: dict[str, Dataset] = {}


def register(dataset: Dataset) -> Dataset:
    """Add `dataset` to the registry (replacing one of the same name) and return it."""
    DATASETS[dataset.name] = dataset
    return dataset


def dataset(name: str) -> Dataset:
    """The registered dataset called `name`; a ValueError listing them otherwise."""
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; choose one of {tuple(DATASETS)}")
    return DATASETS[name]


def prepare(name: str, root: Path | None = None, download: bool = True) -> Path:
    """Make dataset `name` readable under `root` (default data/) and return the root."""
    root = Path(root) if root is not None else data_dir()
    dataset(name).prepare(root, download)
    return root


def load(
    name: str,
    split: str = "train",
    *,
    n: int | None = None,
    seed: int = 0,
    random_labels: bool = False,
    label_seed: int = 0,
    normalize: bool = True,
    root: Path | None = None,
) -> Split:
    """One split ("train" or "test") of a registered dataset as tensors.

    `n`: a fixed subset of n samples (images or sequences) drawn with `seed` (None: all). `random_labels`:
    the memorization variant of a classification task, the labels permuted once with `label_seed` over the
    same images. `normalize`: standardize each image channel with the training set's mean and standard
    deviation (else pixels in [0, 1]).
    """
    spec = dataset(name)
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    if random_labels and spec.task != "classification":
        raise ValueError(f"random labels are defined for classification only; {name} is a {spec.task} task")
    root = prepare(name, root)
    inputs, targets, classes = spec.read(root, split)
    if n is not None:
        if not 0 < n <= len(targets):
            raise ValueError(f"n must be between 1 and {len(targets)} for {name} {split}, got {n}")
        keep = torch.randperm(len(targets), generator=torch.Generator().manual_seed(seed))[:n].sort().values
        inputs, targets = inputs[keep], targets[keep]
    if random_labels:
        targets = targets[torch.randperm(len(targets), generator=torch.Generator().manual_seed(label_seed))]
    if spec.stats is not None:
        inputs = inputs.float().div_(255)
        if normalize:
            mean, std = (torch.tensor(s).view(1, -1, 1, 1) for s in spec.stats)
            inputs = (inputs - mean) / std
    return Split(inputs.contiguous(), targets, classes, spec.task)


def augment(images: torch.Tensor, generator: torch.Generator, pad: int = 4, flip: bool = True) -> torch.Tensor:
    """Random translation by up to `pad` pixels (zero padding) and random horizontal flips, per image."""
    n, _, h, w = images.shape
    padded = torch.nn.functional.pad(images, (pad, pad, pad, pad))
    dy = torch.randint(0, 2 * pad + 1, (n,), generator=generator)
    dx = torch.randint(0, 2 * pad + 1, (n,), generator=generator)
    rows = (dy[:, None] + torch.arange(h))[:, None, :, None]
    cols = (dx[:, None] + torch.arange(w))[:, None, None, :]
    out = padded[torch.arange(n)[:, None, None, None], torch.arange(images.shape[1])[None, :, None, None], rows, cols]
    if flip:
        flipped = torch.rand(n, generator=generator) < 0.5
        out[flipped] = out[flipped].flip(-1)
    return out


def _read_torchvision(name: str, classes: tuple[str, ...], root: Path, split: str):
    ds = _torchvision_dataset(name, root, train=split == "train", download=False)
    images = torch.as_tensor(ds.data)
    images = images.unsqueeze(1) if images.ndim == 3 else images.permute(0, 3, 1, 2)
    return images, torch.as_tensor(ds.targets, dtype=torch.long), classes


def _prepare_fashion_mnist(root: Path, download: bool) -> None:
    if _fashion_mnist_ready(root):
        return
    if all((DEBIAN_FASHION_MNIST / f"{f}.gz").exists() for f in FASHION_MNIST_FILES):
        raw = root / "FashionMNIST" / "raw"
        raw.mkdir(parents=True, exist_ok=True)
        for f in FASHION_MNIST_FILES:
            with gzip.open(DEBIAN_FASHION_MNIST / f"{f}.gz") as src, open(raw / f"{f}.part", "wb") as dst:
                shutil.copyfileobj(src, dst)
            (raw / f"{f}.part").replace(raw / f)
        return
    _download("fashion-mnist", root, download)


def _prepare_cifar10(root: Path, download: bool) -> None:
    if not _cifar10_ready(root):
        _download("cifar10", root, download)


def _download(name: str, root: Path, download: bool) -> None:
    if download:
        try:
            _torchvision_dataset(name, root, train=True, download=True)
            _torchvision_dataset(name, root, train=False, download=True)
            return
        except Exception as error:  # network errors come in many types
            reason = f"{type(error).__name__}: {error}"
    else:
        reason = "downloading was not allowed"
    raise DataUnavailable(_how_to_get(name, root, reason))


def _torchvision_dataset(name: str, root: Path, train: bool, download: bool):
    from torchvision import datasets

    cls = datasets.FashionMNIST if name == "fashion-mnist" else datasets.CIFAR10
    return cls(str(root), train=train, download=download)


def _fashion_mnist_ready(root: Path) -> bool:
    return _intact(root / "FashionMNIST" / "raw", FASHION_MNIST_FILES)


def _cifar10_ready(root: Path) -> bool:
    from torchvision.datasets import CIFAR10

    return _intact(root / CIFAR10.base_folder, dict(CIFAR10.train_list + CIFAR10.test_list))


def _intact(folder: Path, md5s: dict[str, str]) -> bool:
    """Whether every file is in `folder` with its MD5; False, after removing it with a warning naming it, as
    soon as one is damaged (so that it is prepared again)."""
    from torchvision.datasets.utils import check_integrity

    for name, md5 in md5s.items():
        path = folder / name
        if not path.exists():
            return False
        if not check_integrity(str(path), md5):
            warnings.warn(f"{path} is damaged (its MD5 is not {md5}); preparing it again", stacklevel=4)
            path.unlink()
            return False
    return True


def _how_to_get(name: str, root: Path, reason: str) -> str:
    offline = (
        "offline on Debian/Ubuntu, install the dataset package (as root: `apt-get install -y "
        "dataset-fashion-mnist`) and run again"
        if name == "fashion-mnist"
        else f"offline, copy CIFAR-10's python version (cifar-10-batches-py/) into {root}"
    )
    return f"{name} is not in {root} and could not be downloaded ({reason}). Either connect to the internet so torchvision can download it, or {offline}."


def _prepare_text(name: str, root: Path, download: bool) -> None:
    from .text import prepare_corpus

    prepare_corpus(name, root, download)


@lru_cache(maxsize=4)
def _text_vocabulary(name: str, root: Path) -> tuple[str, ...]:
    from .text import read_corpus, vocabulary

    return vocabulary(read_corpus(name, root, "train"), size=VOCABULARY_SIZE)


def _read_text(name: str, root: Path, split: str):
    """A corpus split as windows of SEQUENCE_LENGTH characters and their next characters, in the training
    split's vocabulary."""
    from .text import encode, read_corpus, sequences

    vocab = _text_vocabulary(name, root)
    inputs, targets = sequences(encode(read_corpus(name, root, split), vocab), SEQUENCE_LENGTH)
    return inputs, targets, vocab


register(Dataset("fashion-mnist", "classification", _prepare_fashion_mnist,
                 partial(_read_torchvision, "fashion-mnist", FASHION_MNIST_CLASSES), ((0.2860,), (0.3530,))))
register(Dataset("cifar10", "classification", _prepare_cifar10,
                 partial(_read_torchvision, "cifar10", CIFAR10_CLASSES),
                 ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616))))
for _corpus in ("fortunes", "wikitext-2"):
    register(Dataset(_corpus, "language-model", partial(_prepare_text, _corpus), partial(_read_text, _corpus)))
del _corpus


def main(argv: list[str] | None = None) -> int:
    """Command line: prepare datasets; exit status 3 when one of them cannot be had."""
    parser = argparse.ArgumentParser(prog="python -m analysis.networks.data", description=main.__doc__)
    parser.add_argument("names", nargs="+", choices=tuple(DATASETS), metavar="name")
    parser.add_argument("--root", type=Path, default=None, help="default: the project's data/ folder")
    args = parser.parse_args(argv)
    status = 0
    for name in args.names:
        try:
            print(f"{name} ready in {prepare(name, args.root)}")
        except DataUnavailable as error:
            print(error, file=sys.stderr)
            status = 3
    return status


if __name__ == "__main__":
    # run as `python -m`, this file is `__main__`, a second copy of the module: its DataUnavailable is not the one
    # the corpora (text.py) raise, so the package's own copy runs the command line
    from analysis.networks import data

    sys.exit(data.main())
