"""Deep visualization (Yosinski, Clune, Nguyen, Fuchs & Lipson 2015): the activations of a conv layer as tiles,
and images that maximise one unit, found by gradient ascent on the input with the paper's four regularizers.

Works on any torch model and any named layer (`analysis.networks.models.module` resolves the name). A unit is
a channel of a layer; for a conv layer (b, c, h, w), its value at one position, the centre by default, as in
the authors' toolbox. Images are (n, channels, height, width) in the model's input space, whose zero is the
image the regularizers pull towards (the mean image for standardized inputs, as in the paper). A `Subject` holds
what a study looks at: the repository's trained networks (`runs_subject`) or the paper's ImageNet network
(`imagenet_subject`: torchvision's AlexNet, CaffeNet's twin, with its pretrained weights).
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ..networks.hooks import capture, evaluating, model_device
from ..networks.sources import PAPER_CLASSES, Pretrained, imagenet_images

# --- activation tiles -------------------------------------------------------------------------------------------


def grid_shape(n: int) -> tuple[int, int]:
    """(rows, columns) of the near-square grid holding n tiles: ceil(sqrt(n)) columns, as many rows as needed."""
    if n < 1:
        raise ValueError(f"need at least one tile, got {n}")
    cols = math.ceil(math.sqrt(n))
    return math.ceil(n / cols), cols


@dataclass(frozen=True)
class Tiles:
    """A conv layer's channels for one image laid out as tiles: `image` (rows * (h + pad) - pad, cols * (w + pad)
    - pad), float64, channel k at row k // cols, column k % cols (row-major), NaN in the gaps and empty cells."""

    image: np.ndarray
    grid: tuple[int, int]
    tile: tuple[int, int]
    pad: int

    def box(self, channel: int) -> tuple[int, int, int, int]:
        """Where `channel` lies in `image`: (top, left, height, width) in pixels."""
        rows, cols = self.grid
        if not 0 <= channel < rows * cols:
            raise ValueError(f"channel must lie in [0, {rows * cols}), got {channel}")
        h, w = self.tile
        return (channel // cols) * (h + self.pad), (channel % cols) * (w + self.pad), h, w


def tiles(activations, pad: int = 1) -> Tiles:
    """`Tiles` of one image's conv activations (channels, height, width) in a near-square grid (`grid_shape`)."""
    a = np.asarray(activations, dtype=np.float64)
    if a.ndim != 3:
        raise ValueError(f"expected one image's conv activations (channels, height, width), got shape {a.shape}")
    if pad < 0:
        raise ValueError(f"pad must be >= 0, got {pad}")
    (rows, cols), (c, h, w) = grid_shape(len(a)), a.shape
    out = np.full((rows * (h + pad) - pad, cols * (w + pad) - pad), np.nan)
    for k in range(c):
        top, left = (k // cols) * (h + pad), (k % cols) * (w + pad)
        out[top : top + h, left : left + w] = a[k]
    return Tiles(out, (rows, cols), (h, w), pad)


def layer_activations(model: nn.Module, layer: str, images) -> np.ndarray:
    """Outputs of `layer` on `images` (n, c, h, w), in eval mode without gradients, as float32 numpy: (n, ...)."""
    x = torch.as_tensor(np.asarray(images, dtype=np.float32)).to(model_device(model))
    with evaluating(model), capture(model, [layer]) as store:
        model(x)
    return store[layer].float().cpu().numpy()


def strongest_channel(activations) -> int:
    """The channel of one image's conv activations (channels, height, width) with the largest single response."""
    a = np.asarray(activations)
    if a.ndim != 3:
        raise ValueError(f"expected one image's conv activations (channels, height, width), got shape {a.shape}")
    return int(np.argmax(a.reshape(len(a), -1).max(axis=1)))



def as_picture(image) -> np.ndarray:
    """One image (c, h, w) for `imshow`: stretched to [0, 1] by its own minimum and maximum (as the paper shows
    optimized images), (h, w) for one channel, (h, w, c) for three; a constant image is mid-grey."""
    a = np.asarray(image, dtype=np.float64)
    if a.ndim != 3 or a.shape[0] not in (1, 3):
        raise ValueError(f"expected one image (1 or 3 channels, height, width), got shape {a.shape}")
    span = a.max() - a.min()
    a = (a - a.min()) / span if span > 0 else np.full_like(a, 0.5)
    return a[0] if len(a) == 1 else a.transpose(1, 2, 0)

# --- what to look at ----------------------------------------------------------------------------------------------

#: The paper's network is CaffeNet; torchvision's AlexNet, its twin with ImageNet weights, has its conv5 after the
#: ReLU (Caffe's in-place blob, what the paper shows) at "features.11" and fc8, the class logits, at "classifier.6".
ALEXNET_CONV5, ALEXNET_FC8 = "features.11", "classifier.6"


@dataclass(frozen=True)
class Subject:
    """What a deep-visualization study looks at: `nets` (eval mode) named `names`; `images` (n, c, h, w) float32 in
    their input space with `labels` (n,) class indices into `classes`; the conv layer `conv_layer` and the class
    logits `logits` shown; `activations`, for each network, those two layers' outputs on the images (n, ...)."""

    names: list[str]
    nets: list[nn.Module]
    images: np.ndarray
    labels: np.ndarray
    classes: list[str]
    conv_layer: str
    logits: str
    activations: list[dict[str, np.ndarray]]


def runs_subject(runs: Sequence, conv_layer: str, logits: str = "logits") -> Subject:
    """The trained networks of `runs` (`analysis.networks.runs.Run`s on the same data) on their test images."""
    if len({(r.config.dataset, r.config.n_test, r.config.subset_seed) for r in runs}) != 1:
        raise ValueError("the runs must share their test images (the same dataset, n_test and subset_seed)")
    test = runs[0].data("test")
    return Subject([f"seed {r.config.seed}" for r in runs], [r.model() for r in runs], test.inputs.numpy(),
                   test.targets.numpy(), list(test.classes), conv_layer, logits,
                   [r.activations([conv_layer, logits]) for r in runs])


def imagenet_subject(
    weights: str | None = "IMAGENET1K_V1",
    *,
    arch: str = "alexnet",
    conv_layer: str = ALEXNET_CONV5,
    logits: str = ALEXNET_FC8,
    classes: Sequence[int] = tuple(PAPER_CLASSES.values()),
    per_class: int = 10,
    root=None,
    device: torch.device | str | None = None,
    seed: int = 0,
) -> Subject:
    """torchvision's ImageNet classifier `arch` with its pretrained `weights` (None: randomly initialised with
    `seed`) on the first `per_class` ImageNet validation images of each of `classes` (ImageNet indices), from
    `root/imagenet/val/<wnid>/` (root: the data folder; `sources.imagenet_images`). The weights are read from
    torch's hub cache, else downloaded there; offline, `sources.WeightsUnavailable` names the file, its URL and
    the folder it goes in. The weights are loaded before the images are looked for."""
    source = Pretrained(arch, weights, device=device, seed=seed)
    net = source.model()
    images, labels = imagenet_images(root, classes, per_class, transform=source.transform)
    acts = source.activations([conv_layer, logits], images, progress=False)
    name = f"{arch} {weights}" if weights is not None else f"{arch} untrained, seed {seed}"
    return Subject([name], [net], images.numpy(), labels.numpy(), source.classes, conv_layer, logits, [acts])

# --- units --------------------------------------------------------------------------------------------------------


def centre(shape: Sequence[int]) -> tuple[int, int]:
    """The centre position (h // 2, w // 2) of a conv layer's activations (..., h, w): the toolbox's default unit."""
    return shape[-2] // 2, shape[-1] // 2


def unit_values(activations, channel: int, position: tuple[int, int] | None = None) -> np.ndarray:
    """The values (n,) of one unit over n images, from a layer's activations (n, units) or (n, c, h, w); for a conv
    layer the unit is `channel` at `position` (default: the centre)."""
    a = np.asarray(activations)
    if a.ndim == 2:
        if position is not None:
            raise ValueError("a dense layer's unit has no position")
        return a[:, channel]
    if a.ndim != 4:
        raise ValueError(f"expected activations (n, units) or (n, c, h, w), got shape {a.shape}")
    i, j = centre(a.shape) if position is None else position
    return a[:, channel, i, j]


def top_activating(activations, channel: int, k: int, position: tuple[int, int] | None = None) -> np.ndarray:
    """Indices (k,) of the k images that drive a unit (`unit_values`) highest, highest first (the dataset-centric
    view); ties keep the lower index first."""
    values = unit_values(activations, channel, position)
    if not 1 <= k <= len(values):
        raise ValueError(f"k must lie in [1, {len(values)}] (the number of images), got {k}")
    return np.argsort(-values, kind="stable")[:k]



def strongest_units(
    model: nn.Module, layer: str, activations, k: int, start, position: tuple[int, int] | None = None,
) -> list[int]:
    """The k channels of `layer` with the largest mean value (at `position`, default the centre, of a conv layer)
    over the images of its `activations` (n, units) or (n, c, h, w), largest first, skipping any whose gradient
    on the `start` image (1, c, h, w) is zero: gradient ascent from there cannot move them (a dead ReLU)."""
    a = np.asarray(activations)
    ranked = np.argsort(-np.stack([unit_values(a, c, position) for c in range(a.shape[1])], axis=1).mean(axis=0),
                        kind="stable")
    live = []
    for c in ranked:
        if np.abs(input_gradient(model, layer, int(c), start, position)).sum() > 0:
            live.append(int(c))
            if len(live) == k:
                return live
    raise ValueError(f"only {len(live)} channels of {layer!r} respond at the start image, {k} asked for")

# --- regularized activation maximisation ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Regularizer:
    """The paper's regularization r_θ, applied after each step x <- x + lr * ∂a/∂x (Yosinski et al. 2015, Sec. 3):
    `decay` θ_decay, L2 decay x <- (1 - θ_decay) x; `blur_radius` θ_b_width, a Gaussian blur of that standard
    deviation in pixels every `blur_every` θ_b_every steps (0: never); `norm_pct` θ_n_pct, pixels whose norm over
    the channels lies below that percentile of the image's are set to 0; `contribution_pct` θ_c_pct, the same for
    |Σ_channels x ∘ ∂a/∂x|, the predicted loss of activation were the pixel set to 0."""

    decay: float = 0.0
    blur_radius: float = 0.0
    blur_every: int = 0
    norm_pct: float = 0.0
    contribution_pct: float = 0.0

    def __post_init__(self):
        if not 0 <= self.decay < 1:
            raise ValueError(f"decay must lie in [0, 1), got {self.decay}")
        if self.blur_radius < 0 or self.blur_every < 0:
            raise ValueError(f"blur_radius and blur_every must be >= 0, got {self.blur_radius}, {self.blur_every}")
        if (self.blur_radius > 0) != (self.blur_every > 0):
            raise ValueError("blur needs both blur_radius and blur_every (or neither)")
        for name in ("norm_pct", "contribution_pct"):
            if not 0 <= getattr(self, name) < 100:
                raise ValueError(f"{name} is a percentile in [0, 100), got {getattr(self, name)}")


#: The four rows of the paper's Table 1, the hyperparameters its random search found (the third: most figures).
TABLE_1 = (
    Regularizer(decay=0.0, blur_radius=0.5, blur_every=4, norm_pct=50),
    Regularizer(decay=0.3, norm_pct=20),
    Regularizer(decay=0.0001, blur_radius=1.0, blur_every=4),
    Regularizer(decay=0.0, blur_radius=0.5, blur_every=4, contribution_pct=90),
)

#: No regularization, each regularizer alone at the strongest setting Table 1 gives it (decay and norm clipping
#: of row 2, blur of row 3, contribution clipping of row 4), and all four combined.
REGULARIZERS = {
    "none": Regularizer(),
    "L2 decay": Regularizer(decay=0.3),
    "blur": Regularizer(blur_radius=1.0, blur_every=4),
    "small norm": Regularizer(norm_pct=20),
    "small contribution": Regularizer(contribution_pct=90),
    "combined": Regularizer(decay=0.3, blur_radius=1.0, blur_every=4, norm_pct=20, contribution_pct=90),
}


def start_images(n: int, shape: Sequence[int], std: float, seed: int = 0) -> torch.Tensor:
    """n starting images (n, *shape), float32: zero (the mean image) plus Gaussian noise of `std`, drawn with
    `seed` (the toolbox's "mean_plus_rand"; std 0 gives the mean image itself)."""
    if std < 0:
        raise ValueError(f"std must be >= 0, got {std}")
    noise = torch.randn((n, *shape), generator=torch.Generator().manual_seed(seed))
    return noise * std


def gaussian_blur(images: torch.Tensor, sigma: float, truncate: float = 4.0) -> torch.Tensor:
    """Each channel of `images` (n, c, h, w) blurred by a Gaussian of standard deviation `sigma` pixels, cut at
    `truncate` sigmas, edges mirrored about the border (as scipy.ndimage.gaussian_filter's default)."""
    radius = int(truncate * sigma + 0.5)
    if radius == 0:
        return images
    if radius > min(images.shape[-2:]):
        raise ValueError(f"blur radius {radius} px exceeds the image size {tuple(images.shape[-2:])}")
    t = torch.arange(-radius, radius + 1, dtype=images.dtype, device=images.device)
    kernel = torch.exp(-0.5 * (t / sigma) ** 2)
    kernel = kernel / kernel.sum()
    n, c, h, w = images.shape
    x = images.reshape(n * c, 1, h, w)
    x = torch.cat([x[..., :radius].flip(-1), x, x[..., -radius:].flip(-1)], dim=-1)
    x = nn.functional.conv2d(x, kernel.view(1, 1, 1, -1))
    x = torch.cat([x[..., :radius, :].flip(-2), x, x[..., -radius:, :].flip(-2)], dim=-2)
    x = nn.functional.conv2d(x, kernel.view(1, 1, -1, 1))
    return x.reshape(n, c, h, w)


def _below_percentile(values: torch.Tensor, pct: float) -> torch.Tensor:
    """Mask (n, h, w) of the pixels whose value (n, h, w) lies strictly below the pct-th percentile of its image's."""
    threshold = torch.quantile(values.flatten(1), pct / 100, dim=1)
    return values < threshold.view(-1, 1, 1)


def regularize(
    x: torch.Tensor, grad: torch.Tensor, regularizer: Regularizer, step: int = 0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The paper's r_θ on images x (n, c, h, w) just updated by gradient `grad` at step `step` (from 0): L2 decay,
    the blur if `step` is a multiple of `blur_every`, then clipping of small-norm and of small-contribution pixels.
    Returns the images and the mask (n, h, w) of the pixels clipped to zero."""
    r = regularizer
    x = x * (1 - r.decay)
    if r.blur_every and step % r.blur_every == 0:
        x = gaussian_blur(x, r.blur_radius)
    mask = torch.zeros(x.shape[0], *x.shape[2:], dtype=torch.bool, device=x.device)
    if r.norm_pct:
        mask |= _below_percentile(x.norm(dim=1), r.norm_pct)
        x = x * ~mask[:, None]
    if r.contribution_pct:
        mask |= _below_percentile((x * grad).sum(dim=1).abs(), r.contribution_pct)
        x = x * ~mask[:, None]
    return x, mask


def _selected(out: torch.Tensor, index: torch.Tensor, position: tuple[int, int] | None, layer: str) -> torch.Tensor:
    """Unit `index[i]` (a channel, at `position` or the centre of a conv layer) of each image i of a layer's output."""
    if out.ndim == 4:
        i, j = centre(out.shape) if position is None else position
        out = out[:, :, i, j]
    elif position is not None:
        raise ValueError(f"layer {layer!r} is not a conv layer; its units have no position")
    if int(index.min()) < 0 or int(index.max()) >= out.shape[1]:
        raise ValueError(f"units must lie in [0, {out.shape[1]}) for layer {layer!r}, got {index.tolist()}")
    return out[torch.arange(len(out)), index.to(out.device)]


def _unit_index(units: int | Sequence[int], n: int) -> torch.Tensor:
    index = torch.as_tensor([units] * n if isinstance(units, int) else list(units), dtype=torch.long)
    if index.shape != (n,):
        raise ValueError(f"units must be one int or one per image ({n}), got {len(index)}")
    return index


def input_gradient(
    model: nn.Module, layer: str, units: int | Sequence[int], images, position: tuple[int, int] | None = None,
) -> np.ndarray:
    """The gradient (n, c, h, w) of unit `units[i]` of `layer` (one int: the same for all) with respect to image i
    of `images` (n, c, h, w), in eval mode, through a gradient-keeping hook (`capture(..., detach=False)`)."""
    x = torch.as_tensor(np.asarray(images, dtype=np.float32)).to(model_device(model)).requires_grad_(True)
    index = _unit_index(units, len(x))
    with evaluating(model, grad=True), capture(model, [layer], detach=False) as store:
        model(x)
        (grad,) = torch.autograd.grad(_selected(store[layer], index, position, layer).sum(), x)
    return grad.cpu().numpy()


@dataclass(frozen=True)
class Maximized:
    """Images optimized to drive one unit each: `images` (n, c, h, w) float32, the image of each ascent on which the
    unit was highest (what the authors' toolbox saves); `activation` (n,), the unit's value on it; `start` (n,), its
    value on the starting image; `trace` (steps, n), its value at every step; `zeroed` (n,), the fraction of
    pixels the clipping regularizers set to zero in the update that produced the image."""

    images: np.ndarray
    activation: np.ndarray
    start: np.ndarray
    trace: np.ndarray
    zeroed: np.ndarray


def maximize(
    model: nn.Module,
    layer: str,
    units: int | Sequence[int],
    start: torch.Tensor,
    regularizer: Regularizer = REGULARIZERS["combined"],
    *,
    steps: int = 200,
    lr: float = 1.0,
    bounds: tuple[float, float] | None = None,
    position: tuple[int, int] | None = None,
) -> Maximized:
    """Gradient ascent on the input from `start` (n, c, h, w) to maximise, for image i, unit `units[i]` (one int:
    the same unit for all) of `layer`, regularized by `regularizer` after each step (the authors' toolbox,
    constant learning rate `lr`). A conv layer's unit is the channel's value at `position` (default: the centre).

    Each step: clip pixels to `bounds` (the valid input range; None: no limit), forward in eval mode, gradient of
    the units by a gradient-keeping hook, then x <- r_θ(x + lr * gradient); the last step only evaluates. Of the
    `steps` images evaluated, the one driving the unit highest is returned (blurring every few steps makes the
    value oscillate). The
    images are optimized as one batch but independently (the model is in eval mode). Runs on one CPU thread
    (restored afterwards): these small batches gain nothing from more, and the thread count fixes the bits.
    """
    x = torch.as_tensor(start, dtype=torch.float32).detach().clone().to(model_device(model))
    if x.ndim != 4:
        raise ValueError(f"start must be images (n, channels, height, width), got shape {tuple(x.shape)}")
    n = len(x)
    index = _unit_index(units, n)
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    trace, zeroed = [], torch.zeros(n)
    best, best_value, best_zeroed = x.clone(), torch.full((n,), -math.inf), torch.zeros(n)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with evaluating(model, grad=True), capture(model, [layer], detach=False) as store:
            for step in range(steps):
                if bounds is not None:
                    x = x.clamp(*bounds)
                x.requires_grad_(True)
                model(x)
                value = _selected(store[layer], index, position, layer)
                trace.append(value.detach().cpu().numpy())
                (grad,) = torch.autograd.grad(value.sum(), x)
                x = x.detach()
                better = value.detach().cpu() > best_value
                best[better.to(x.device)] = x[better.to(x.device)]
                best_value, best_zeroed = torch.where(better, value.detach().cpu(), best_value), torch.where(better, zeroed, best_zeroed)
                if step == steps - 1:
                    break
                x, clipped = regularize(x + lr * grad, grad, regularizer, step)
                zeroed = clipped.flatten(1).float().mean(dim=1).cpu()
    finally:
        torch.set_num_threads(threads)
    trace = np.stack(trace)
    return Maximized(best.cpu().numpy(), best_value.numpy(), trace[0], trace, best_zeroed.numpy())


def maximize_units(
    model: nn.Module, units: Sequence[tuple[str, int]], regularizers: Mapping[str, Regularizer], start, **options,
) -> dict[str, Maximized]:
    """`maximize` each of `units` ((layer, channel) pairs, layers of any kind) from the same start image
    (1, c, h, w) under each of `regularizers`: {name: `Maximized` of the units, in their order}. `options`: steps,
    lr, bounds, position; the units of one layer are optimized as one batch."""
    start = torch.as_tensor(start, dtype=torch.float32)
    if start.ndim != 4 or len(start) != 1:
        raise ValueError(f"start must be one image (1, channels, height, width), got shape {tuple(start.shape)}")
    layers = list(dict.fromkeys(layer for layer, _ in units))
    rows = {layer: [k for k, (name, _) in enumerate(units) if name == layer] for layer in layers}
    order = np.argsort(np.concatenate([rows[layer] for layer in layers]), kind="stable")
    found = {}
    for name, regularizer in regularizers.items():
        parts = [maximize(model, layer, [units[k][1] for k in rows[layer]], start.expand(len(rows[layer]), -1, -1, -1),
                          regularizer, **options) for layer in layers]
        joined = {f: np.concatenate([getattr(p, f) for p in parts])[order] for f in ("images", "activation", "start", "zeroed")}
        found[name] = Maximized(trace=np.concatenate([p.trace for p in parts], axis=1)[:, order], **joined)
    return found


def class_predictions(model: nn.Module, images) -> np.ndarray:
    """The class (n,) a classifier assigns to each of `images` (n, c, h, w): the argmax of its outputs."""
    x = torch.as_tensor(np.asarray(images, dtype=np.float32)).to(model_device(model))
    with evaluating(model):
        return model(x).argmax(dim=1).cpu().numpy()


# --- measures of the optimized images ---------------------------------------------------------------------------


def high_frequency_fraction(images, cutoff: float = 0.25) -> np.ndarray:
    """Fraction (n,) of each image's spectral energy above `cutoff` cycles per pixel (radial; Nyquist is 0.5).

    From the 2-D DFT of each channel of images (n, c, h, w), energy |F|² summed over channels, the mean (zero
    frequency) left out; an image without any variation has none, and 0 is returned for it.
    """
    a = np.asarray(images, dtype=np.float64)
    if a.ndim != 4:
        raise ValueError(f"expected images (n, channels, height, width), got shape {a.shape}")
    if not 0 < cutoff < 0.5 * math.sqrt(2):
        raise ValueError(f"cutoff must lie in (0, {0.5 * math.sqrt(2):.3f}) cycles per pixel, got {cutoff}")
    energy = (np.abs(np.fft.fft2(a)) ** 2).sum(axis=1)
    energy[:, 0, 0] = 0.0
    fy, fx = np.fft.fftfreq(a.shape[-2]), np.fft.fftfreq(a.shape[-1])
    high = np.hypot(fy[:, None], fx[None, :]) > cutoff
    total = energy.sum(axis=(1, 2))
    return np.divide(energy[:, high].sum(axis=1), total, out=np.zeros_like(total), where=total > 0)
