"""The studies' networks, each with named layers (`model.layers`, input first) whose outputs studies record.

Every named layer is a submodule whose output is the layer's post-nonlinearity activation, so forward hooks
on `model.<name>` see exactly what the papers compare. `width` multiplies every hidden layer's size.
"""
from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

MODELS = ("convnet", "resnet", "mlp", "lstm")


def _scaled(size: int, width: float) -> int:
    return max(1, round(size * width))


def _conv(c_in: int, c_out: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU())


def _dense(d_in: int, d_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(d_in, d_out, bias=False), nn.BatchNorm1d(d_out), nn.ReLU())


class Named(nn.Module):
    """Base class: `layers` holds the names of the recordable layers in forward order."""

    layers: tuple[str, ...] = ()


class ConvNet(Named):
    """The SVCCA paper's plain CIFAR convnet: two pairs of 3x3 conv layers with pooling, two fully connected
    layers, logits. Channels 64, 64, 128, 128 and 256, 256 units at width 1."""

    def __init__(self, in_shape: tuple[int, int, int] = (3, 32, 32), n_classes: int = 10, width: float = 1.0):
        super().__init__()
        c, h, w = in_shape
        c1, c2, d = _scaled(64, width), _scaled(128, width), _scaled(256, width)
        self.conv1, self.conv2 = _conv(c, c1), _conv(c1, c1)
        self.conv3, self.conv4 = _conv(c1, c2), _conv(c2, c2)
        self.pool = nn.MaxPool2d(2)
        self.fc1, self.fc2 = _dense(c2 * (h // 4) * (w // 4), d), _dense(d, d)
        self.logits = nn.Linear(d, n_classes)
        self.layers = ("conv1", "conv2", "conv3", "conv4", "fc1", "fc2", "logits")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.conv2(self.conv1(x)))
        x = self.pool(self.conv4(self.conv3(x)))
        return self.logits(self.fc2(self.fc1(x.flatten(1))))


class ResidualBlock(nn.Module):
    """Two 3x3 conv layers with batch norm and an identity (or 1x1 projection) shortcut, then ReLU."""

    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(),
            nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False), nn.BatchNorm2d(c_out),
        )
        self.shortcut = (
            nn.Identity()
            if stride == 1 and c_in == c_out
            else nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.body(x) + self.shortcut(x))


class ResNet(Named):
    """A CIFAR ResNet (He et al. 2016, Sec. 4.2): a conv stem, three stages of `blocks` residual blocks at
    16, 32, 64 channels (x width), global average pooling, logits. blocks=3 is ResNet-20."""

    def __init__(self, in_shape: tuple[int, int, int] = (3, 32, 32), n_classes: int = 10, width: float = 1.0, blocks: int = 3):
        super().__init__()
        channels = [_scaled(c, width) for c in (16, 32, 64)]
        self.stem = _conv(in_shape[0], channels[0])
        names, c_in = ["stem"], channels[0]
        for stage, c_out in enumerate(channels):
            for b in range(blocks):
                name = f"block{stage + 1}_{b + 1}"
                setattr(self, name, ResidualBlock(c_in, c_out, 2 if stage > 0 and b == 0 else 1))
                names.append(name)
                c_in = c_out
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.logits = nn.Linear(c_in, n_classes)
        self.layers = (*names, "pool", "logits")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for name in self.layers:
            x = getattr(self, name)(x)
        return x


class MLP(Named):
    """A fully connected ReLU network on flattened images: hidden layers fc1, fc2, ... then logits."""

    def __init__(
        self, in_shape: tuple[int, int, int] = (1, 28, 28), n_classes: int = 10, width: float = 1.0,
        hidden: Iterable[int] = (500, 500, 500),
    ):
        super().__init__()
        d_in = int(torch.tensor(in_shape).prod())
        names = []
        for i, d in enumerate(_scaled(h, width) for h in hidden):
            setattr(self, f"fc{i + 1}", nn.Sequential(nn.Linear(d_in, d), nn.ReLU()))
            names.append(f"fc{i + 1}")
            d_in = d
        self.logits = nn.Linear(d_in, n_classes)
        self.layers = (*names, "logits")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.flatten(1)
        for name in self.layers:
            x = getattr(self, name)(x)
        return x


class LSTMLanguageModel(Named):
    """A word-level LSTM language model (PWCCA Sec. 4): embedding, `n_layers` LSTM layers (lstm1, lstm2, ...,
    each its own module so each can be recorded), logits over the vocabulary at every step."""

    def __init__(self, vocab: int, width: float = 1.0, embed: int = 200, hidden: int = 200, n_layers: int = 2):
        super().__init__()
        embed, hidden = _scaled(embed, width), _scaled(hidden, width)
        self.embed = nn.Embedding(vocab, embed)
        names, d_in = ["embed"], embed
        for i in range(n_layers):
            setattr(self, f"lstm{i + 1}", nn.LSTM(d_in, hidden, batch_first=True))
            names.append(f"lstm{i + 1}")
            d_in = hidden
        self.logits = nn.Linear(hidden, vocab)
        self.layers = (*names, "logits")

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """tokens (batch, time) -> logits (batch, time, vocab)."""
        x = self.embed(tokens)
        for name in self.layers[1:-1]:
            x = getattr(self, name)(x)[0]
        return self.logits(x)


def build_model(name: str, in_shape: tuple[int, int, int], n_classes: int, width: float = 1.0, **options) -> Named:
    """A network by name (`MODELS`) for inputs of `in_shape` (channels, height, width) and `n_classes`."""
    if name == "convnet":
        return ConvNet(in_shape, n_classes, width, **options)
    if name == "resnet":
        return ResNet(in_shape, n_classes, width, **options)
    if name == "mlp":
        return MLP(in_shape, n_classes, width, **options)
    if name == "lstm":
        return LSTMLanguageModel(n_classes, width, **options)
    raise ValueError(f"unknown model {name!r}; choose one of {MODELS}")


def module(model: nn.Module, layer: str) -> nn.Module:
    """The submodule called `layer`; a ValueError listing the model's layers when there is none."""
    modules = dict(model.named_modules())
    if layer not in modules or not layer:
        valid = getattr(model, "layers", None) or tuple(n for n in modules if n)
        raise ValueError(f"{type(model).__name__} has no layer {layer!r}; valid names: {', '.join(valid)}")
    return modules[layer]


def freeze(model: nn.Module, layers: Iterable[str]) -> None:
    """Stop training `layers`: their parameters get no gradient and their batch-norm statistics stop moving,
    also after `model.train()` (a frozen module stays in eval mode whatever mode it is asked for)."""
    for layer in layers:
        m = module(model, layer)
        m.requires_grad_(False)
        for sub in m.modules():
            sub.train = _stay_in_eval.__get__(sub)
            nn.Module.train(sub, False)


def _stay_in_eval(self: nn.Module, mode: bool = True) -> nn.Module:
    """`train` of a frozen module: eval mode, whatever `mode` is asked for."""
    self.training = False
    return self


def frozen_layers(model: nn.Module) -> list[str]:
    """Names of the layers `freeze` has frozen (their submodules not listed again)."""
    names = [name for name, m in model.named_modules() if name and "train" in vars(m)]
    return [n for n in names if not any(n.startswith(f"{p}.") for p in names)]
