"""Pretrained sources: torchvision's ImageNet classifiers as activation sources, and the ImageNet validation
images of chosen classes (the SVCCA paper's "when are classes learned", notebook 05).

An activation source has named layers (`.layers`, input first) and `.activations(layers, ...)` returning
float32 numpy arrays, samples first: (n, c, h, w) for conv layers, (n, d) for fully connected ones.
Nothing here downloads a dataset; weights are downloaded by torchvision when online, else read from
torch's hub cache, with a message saying where to put them.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from functools import lru_cache
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import torch
import torchvision
from PIL import Image
from torch import nn
from torchvision.datasets.folder import IMG_EXTENSIONS

from .hooks import record
from .paths import data_dir

# The classes of the SVCCA paper's Fig. 5 ("firetruck", two terriers, two husky-like dogs), by torchvision's
# category names (the paper's fire truck is ImageNet's "fire engine") -> ImageNet class index.
PAPER_CLASSES: dict[str, int] = {
    "fire engine": 555,
    "Norfolk terrier": 185,
    "Norwich terrier": 186,
    "Eskimo dog": 248,
    "Siberian husky": 250,
}

# ImageNet class index -> WordNet id (the folder name of its validation images), for the classes above.
WNIDS: dict[int, str] = {555: "n03345487", 185: "n02094114", 186: "n02094258", 248: "n02109961", 250: "n02110185"}

_LAYOUT_HINT = (
    "to make it, put ILSVRC2012_img_val.tar and ILSVRC2012_devkit_t12.tar.gz (image-net.org) in {folder} and run "
    "once `torchvision.datasets.ImageNet({folder_str!r}, split='val')`, which sorts the images into val/<wnid>/ by "
    "their labels"
)


class WeightsUnavailable(FileNotFoundError):
    """Pretrained weights are neither in torch's hub cache nor downloadable."""


def _weights_enum(arch: str):
    """torchvision's weights enum of `arch` (e.g. ResNet50_Weights)."""
    return torchvision.models.get_model_weights(arch)


def _categories(arch: str = "resnet50") -> list[str]:
    """The 1000 ImageNet category names, in class-index order, from torchvision's weights meta."""
    return list(next(iter(_weights_enum(arch))).meta["categories"])


def standard_transform(arch: str = "resnet50") -> Callable:
    """The standard ImageNet preprocessing: resize to 256, centre-crop 224, normalise (PIL image or tensor)."""
    return next(iter(_weights_enum(arch))).transforms(crop_size=224, resize_size=256)


def layer_names(model: nn.Module) -> tuple[str, ...]:
    """Recordable layers of a torchvision classifier, input first: the stem (its last module), every block of
    each `nn.Sequential` stage (e.g. "layer1.0"), then each later top-level module (e.g. "avgpool", "fc")."""
    children = list(model.named_children())
    stages = [i for i, (_, child) in enumerate(children) if isinstance(child, nn.Sequential)]
    if not stages:
        return tuple(name for name, _ in children)
    names = [children[stages[0] - 1][0]] if stages[0] > 0 else []
    for name, child in children[stages[0]:]:
        if isinstance(child, nn.Sequential):
            names.extend(f"{name}.{block}" for block, _ in child.named_children())
        else:
            names.append(name)
    return tuple(names)


@lru_cache
def _arch_layers(arch: str) -> tuple[str, ...]:
    """`layer_names` of `arch`, built on the meta device (no memory, no initialisation cost)."""
    with torch.device("meta"):
        return layer_names(torchvision.models.get_model(arch, weights=None))


def checkpoint_path(weights) -> Path:
    """Where torch's hub cache keeps the file of `weights` (a torchvision weights enum member):
    `torch.hub.get_dir()/checkpoints/<file name of its URL>`, i.e. `$TORCH_HOME/hub/checkpoints/`."""
    return Path(torch.hub.get_dir()) / "checkpoints" / Path(urlparse(weights.url).path).name


def load_weights(weights, progress: bool = False) -> dict[str, torch.Tensor]:
    """The state dict of `weights` (a torchvision weights enum member), on the CPU: read from torch's hub cache
    when the file is there, else downloaded into it; `WeightsUnavailable` saying where to put it otherwise."""
    path = checkpoint_path(weights)
    if path.exists():
        try:
            return torch.load(path, map_location="cpu", weights_only=True)
        except Exception as error:
            raise RuntimeError(f"{path} is not a readable checkpoint ({error}); delete it to download it again") \
                from error
    try:
        # torch.hub's download, looked up at call time (torchvision's own is bound at import)
        return torch.hub.load_state_dict_from_url(
            weights.url, model_dir=str(path.parent), progress=progress, map_location="cpu"
        )
    except Exception as error:  # offline: URLError, socket errors, HTTP errors, SSL errors ... all mean the same
        raise WeightsUnavailable(
            f"the weights {weights} are not in torch's hub cache and could not be downloaded ({type(error).__name__}: "
            f"{error}). Download {path.name} from {weights.url} and put it at {path} "
            "(set TORCH_HOME to move that folder: files go to $TORCH_HOME/hub/checkpoints/)"
        ) from error


class Pretrained:
    """A torchvision ImageNet classifier as an activation source; `weights=None`: randomly initialised (seeded)."""

    def __init__(
        self, arch: str = "resnet50", weights: str | None = "IMAGENET1K_V2", device: torch.device | str | None = None,
        seed: int = 0,
    ):
        self.arch = arch
        self.weights = None if weights is None else _weights_enum(arch)[weights]
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.seed = seed
        self._model: nn.Module | None = None

    def __repr__(self) -> str:
        weights = f"seed={self.seed}" if self.weights is None else f"weights={self.weights._name_!r}"
        return f"Pretrained({self.arch!r}, {weights}, device={str(self.device)!r})"

    @property
    def layers(self) -> tuple[str, ...]:
        """Recordable layers, input first (from the architecture alone; no weights are read)."""
        return _arch_layers(self.arch)

    @property
    def classes(self) -> list[str]:
        """The 1000 ImageNet category names, by class index (the logits' order)."""
        return list(self.weights.meta["categories"]) if self.weights is not None else _categories(self.arch)

    @property
    def transform(self) -> Callable:
        """The preprocessing the weights expect (PIL image or tensor -> normalised (3, H, W) float tensor)."""
        return self.weights.transforms() if self.weights is not None else standard_transform(self.arch)

    def model(self) -> nn.Module:
        """The network in eval mode on `device`, with its weights (built once, then cached)."""
        if self._model is None:
            if self.weights is None:
                with torch.random.fork_rng(devices=[]):  # seeded without touching the global generator
                    torch.manual_seed(self.seed)
                    net = torchvision.models.get_model(self.arch, weights=None)
            else:
                net = torchvision.models.get_model(self.arch, weights=None)
                net.load_state_dict(load_weights(self.weights))
            self._model = net.to(self.device).eval()
        return self._model

    def activations(
        self, layers: Sequence[str] | None, images: torch.Tensor | Iterable, batch_size: int = 32,
        progress: bool | None = None,
    ) -> dict[str, np.ndarray]:
        """Activations of `layers` (None: all) on preprocessed `images` (a float tensor (n, 3, H, W), or an
        iterable of batches) as float32 numpy arrays, samples first; a global average pool's (n, c, 1, 1) as (n, c)."""
        layers = tuple(layers) if layers is not None else self.layers
        batches = images.split(batch_size) if isinstance(images, torch.Tensor) else images
        model = self.model()
        acts = record(model, batches, layers, device=self.device, progress=progress)
        modules = dict(model.named_modules())
        for name, a in acts.items():
            if isinstance(modules[name], nn.AdaptiveAvgPool2d) and a.ndim == 4 and a.shape[2:] == (1, 1):
                acts[name] = a.reshape(len(a), -1)
        return acts


def _image_files(folder: Path) -> list[Path]:
    """Image files in `folder`, sorted by name."""
    return sorted(p for p in folder.iterdir() if p.is_file() and p.name.lower().endswith(IMG_EXTENSIONS))


def _wnid_table(val: Path) -> dict[int, str]:
    """Class index -> WordNet id: by sorted folder order when all 1000 class folders exist, else `WNIDS`."""
    folders = sorted(p.name for p in val.iterdir() if p.is_dir()) if val.is_dir() else []
    return dict(enumerate(folders)) if len(folders) == 1000 else WNIDS


def imagenet_images(
    root: Path | None = None, classes: Sequence[int] = tuple(PAPER_CLASSES.values()), per_class: int = 50,
    transform: Callable | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """ImageNet validation images of `classes` (ImageNet indices), the first `per_class` of each by file name,
    from `root/imagenet/val/<wnid>/*.JPEG` (root: `data_dir()`): images (n, 3, 224, 224) float (after
    `transform`, default `standard_transform()`), labels (n,) long ImageNet indices, class by class."""
    folder = Path(root if root is not None else data_dir()) / "imagenet"
    val = folder / "val"
    if not classes:
        raise ValueError("no classes asked for")
    table = _wnid_table(val)
    names = _categories()
    unknown = [c for c in classes if c not in table]
    if unknown:
        raise ValueError(
            f"no WordNet id known for ImageNet classes {unknown}: without all 1000 folders under {val}, only the "
            f"classes of the built-in table are available: {sorted(WNIDS)}"
        )
    missing = [c for c in classes if not (val / table[c]).is_dir() or not _image_files(val / table[c])]
    if missing:
        listed = ", ".join(f"{c} {names[c]!r} ({table[c]})" for c in missing)
        raise FileNotFoundError(
            f"ImageNet validation images not found for classes {listed} (asked for {list(classes)}): "
            f"expected the layout {val}/<wnid>/*.JPEG, e.g. {val / table[missing[0]]}/*.JPEG; "
            + _LAYOUT_HINT.format(folder=folder, folder_str=str(folder))
        )
    transform = standard_transform() if transform is None else transform
    images, labels = [], []
    for c in classes:
        for path in _image_files(val / table[c])[:per_class]:
            with Image.open(path) as image:
                images.append(transform(image.convert("RGB")))
            labels.append(c)
    return torch.stack(images), torch.tensor(labels, dtype=torch.long)
