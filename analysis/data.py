"""The studies' datasets, Fashion-MNIST (quick profile) and CIFAR-10 (full), as in-memory tensors.

Images are read by torchvision's own dataset classes with `data/` as root. Fashion-MNIST is had, in order:
from a copy already there; offline, from Debian's `dataset-fashion-mnist` package (its .gz files are
recompressed, so their md5 differs from torchvision's list: we decompress them into torchvision's raw
folder, which it then reads unchanged); online, by torchvision's download. `python -m analysis.data
fashion-mnist` prepares it and exits with status 3 when no route works.
"""
from __future__ import annotations

import argparse
import gzip
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import torch

from .paths import data_dir

DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
FASHION_MNIST_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")

FASHION_MNIST_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")

# Fashion-MNIST's class structure (notebook 05): classes told apart easily, and groups confused with each other
EASY_CLASSES = ("Trouser", "Bag")
CONFUSABLE_GROUPS = {
    "tops": ("T-shirt/top", "Pullover", "Coat", "Shirt"),
    "footwear": ("Sandal", "Sneaker", "Ankle boot"),
}

# per-channel mean and standard deviation of each training set's pixels in [0, 1]
_STATS = {
    "fashion-mnist": ((0.2860,), (0.3530,)),
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
}
DATASETS = tuple(_STATS)
IMAGE_SHAPE = {"fashion-mnist": (1, 28, 28), "cifar10": (3, 32, 32)}  # (channels, height, width)


class DataUnavailable(RuntimeError):
    """Neither a local copy, Debian's package nor a download could provide the dataset."""


@dataclass(frozen=True)
class Split:
    """Images `(n, channels, height, width)` float32 and integer labels `(n,)` of one dataset split."""

    images: torch.Tensor
    labels: torch.Tensor
    classes: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def shape(self) -> tuple[int, int, int]:
        """(channels, height, width) of one image."""
        return tuple(self.images.shape[1:])

    def batches(self, batch_size: int = 500) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """The split in order, as (images, labels) batches: a loader for recording activations."""
        return [(self.images[i : i + batch_size], self.labels[i : i + batch_size]) for i in range(0, len(self), batch_size)]


def prepare(name: str, root: Path | None = None, download: bool = True) -> Path:
    """Make `name` readable by torchvision under `root` (default data/) and return the root."""
    root = Path(root) if root is not None else data_dir()
    _check_name(name)
    if name == "fashion-mnist":
        if _fashion_mnist_ready(root):
            return root
        if all((DEBIAN_FASHION_MNIST / f"{f}.gz").exists() for f in FASHION_MNIST_FILES):
            raw = root / "FashionMNIST" / "raw"
            raw.mkdir(parents=True, exist_ok=True)
            for f in FASHION_MNIST_FILES:
                with gzip.open(DEBIAN_FASHION_MNIST / f"{f}.gz") as src, open(raw / f"{f}.part", "wb") as dst:
                    shutil.copyfileobj(src, dst)
                (raw / f"{f}.part").replace(raw / f)
            return root
    elif _cifar10_ready(root):
        return root
    if download:
        try:
            _torchvision_dataset(name, root, train=True, download=True)
            _torchvision_dataset(name, root, train=False, download=True)
            return root
        except Exception as error:  # network errors come in many types
            reason = f"{type(error).__name__}: {error}"
    else:
        reason = "downloading was not allowed"
    raise DataUnavailable(_how_to_get(name, root, reason))


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
    """One split ("train" or "test") of a dataset as tensors.

    `n`: a fixed subset of n images drawn with `seed` (None: all). `random_labels`: the memorization
    variant, the labels permuted once with `label_seed` over the same images. `normalize`: standardize
    each channel with the training set's mean and standard deviation (else pixels in [0, 1]).
    """
    _check_name(name)
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    root = prepare(name, root)
    ds = _torchvision_dataset(name, root, train=split == "train", download=False)
    images = torch.as_tensor(ds.data)
    images = images.unsqueeze(1) if images.ndim == 3 else images.permute(0, 3, 1, 2)
    labels = torch.as_tensor(ds.targets, dtype=torch.long)
    if n is not None:
        if not 0 < n <= len(labels):
            raise ValueError(f"n must be between 1 and {len(labels)} for {name} {split}, got {n}")
        keep = torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))[:n].sort().values
        images, labels = images[keep], labels[keep]
    if random_labels:
        labels = labels[torch.randperm(len(labels), generator=torch.Generator().manual_seed(label_seed))]
    images = images.float().div_(255)
    if normalize:
        mean, std = (torch.tensor(s).view(1, -1, 1, 1) for s in _STATS[name])
        images = (images - mean) / std
    classes = FASHION_MNIST_CLASSES if name == "fashion-mnist" else CIFAR10_CLASSES
    return Split(images.contiguous(), labels, classes)


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


def _check_name(name: str) -> None:
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; choose one of {DATASETS}")


def _torchvision_dataset(name: str, root: Path, train: bool, download: bool):
    from torchvision import datasets

    cls = datasets.FashionMNIST if name == "fashion-mnist" else datasets.CIFAR10
    return cls(str(root), train=train, download=download)


def _fashion_mnist_ready(root: Path) -> bool:
    return all((root / "FashionMNIST" / "raw" / f).exists() for f in FASHION_MNIST_FILES)


def _cifar10_ready(root: Path) -> bool:
    return (root / "cifar-10-batches-py" / "test_batch").exists()


def _how_to_get(name: str, root: Path, reason: str) -> str:
    offline = (
        "offline on Debian/Ubuntu, install the dataset package (as root: `apt-get install -y "
        "dataset-fashion-mnist`) and run again"
        if name == "fashion-mnist"
        else f"offline, copy CIFAR-10's python version (cifar-10-batches-py/) into {root}"
    )
    return f"{name} is not in {root} and could not be downloaded ({reason}). Either connect to the internet so torchvision can download it, or {offline}."


def main(argv: list[str] | None = None) -> int:
    """Command line: prepare a dataset; exit status 3 when it cannot be had."""
    parser = argparse.ArgumentParser(prog="python -m analysis.data", description=main.__doc__)
    parser.add_argument("name", choices=DATASETS)
    parser.add_argument("--root", type=Path, default=None, help="default: the project's data/ folder")
    args = parser.parse_args(argv)
    try:
        root = prepare(args.name, args.root)
    except DataUnavailable as error:
        print(error, file=sys.stderr)
        return 3
    print(f"{args.name} ready in {root}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
