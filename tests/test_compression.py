"""Compression by projection: closed forms of each projection, idempotence, full width = the network, conv layers
projected channel-wise at every position, and one pass for many projections."""
import numpy as np
import pytest
import torch
from torch import nn

from analysis.measures.conv import positions_as_samples
from analysis.networks.data import Split
from analysis.networks.hooks import capture, replacing
from analysis.networks.models import Named
from analysis.networks.runs import accuracy
from analysis.studies.compression import (
    accuracy_curves,
    needed_k,
    neuron_projection,
    pca_projection,
    projected_accuracy,
    random_projection,
    svcca_projection,
)


class Tiny(Named):
    """conv (1 -> 3 channels) on 6x6 images, 2x2 pooling, a dense layer of 5 units, 4 logits."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), nn.ReLU())
        self.fc = nn.Sequential(nn.Flatten(), nn.Linear(27, 5), nn.Tanh())
        self.logits = nn.Linear(5, 4)
        self.pool = nn.MaxPool2d(2)
        self.layers = ("conv", "fc", "logits")

    def forward(self, x):
        return self.logits(self.fc(self.pool(self.conv(x))))


@pytest.fixture(scope="module")
def tiny():
    gen = torch.Generator().manual_seed(1)
    split = Split(torch.randn(300, 1, 6, 6, generator=gen), torch.randint(0, 4, (300,), generator=gen), ("a", "b", "c", "d"))
    net = Tiny().eval()
    with capture(net, ["conv", "fc"]) as found:
        net(split.inputs)
    return net, split, {name: value.numpy().astype(np.float64) for name, value in found.items()}


def _layers(n=2000, seed=0):
    """x (n, 6) whose first two coordinates are shared with y (n, 4) (as y's last two, mixed), the rest noise."""
    rng = np.random.default_rng(seed)
    shared = rng.standard_normal((n, 2))
    x = np.column_stack([3 * shared[:, 0], 2 * shared[:, 1], rng.standard_normal((n, 4))]) + 5.0
    y = np.column_stack([rng.standard_normal((n, 2)), shared @ np.array([[1.0, 1.0], [-1.0, 1.0]])])
    return x, y


def _all(x, y, k):
    return {"svcca": svcca_projection(x, y, k, keep=1.0), "pca": pca_projection(x, k), "random": random_projection(x, k, 3),
            "random rebuilt": random_projection(x, k, 3, rebuild=True), "neurons": neuron_projection(x, k),
            "neurons by variance": neuron_projection(x, k, by="variance")}


@pytest.mark.parametrize("k", [1, 2, 4])
def test_every_projection_is_idempotent_of_rank_k(k):
    x, y = _layers()
    for name, p in _all(x, y, min(k, 4)).items():
        np.testing.assert_allclose(p.matrix @ p.matrix, p.matrix, atol=1e-10, err_msg=name)
        assert p.rank == min(k, 4), name
        out = torch.as_tensor(x[:50])
        np.testing.assert_allclose(p(p(out)).numpy(), p(out).numpy(), atol=1e-10, err_msg=name)


def test_full_width_is_the_identity():
    x, y = _layers()
    for name, p in _all(x, np.column_stack([y, np.random.default_rng(5).standard_normal((len(y), 2))]), 6).items():
        np.testing.assert_allclose(p.matrix, np.eye(6), atol=1e-9, err_msg=name)
    out = torch.as_tensor(x, dtype=torch.float32)
    assert torch.equal(neuron_projection(x, 6)(out), out)  # an exact identity leaves the layer's output bit for bit


def test_closed_forms():
    x, y = _layers()
    # PCA: the two high-variance coordinates (variances 9 and 4 against 1) span the top-2 principal directions
    np.testing.assert_allclose(pca_projection(x, 2).matrix, np.diag([1.0, 1, 0, 0, 0, 0]), atol=0.05)
    # neurons: the two largest raw norms kept, the others replaced by their mean (the layer's mean is 5 everywhere)
    p = neuron_projection(x, 2)
    np.testing.assert_array_equal(p.matrix, np.diag([1.0, 1, 0, 0, 0, 0]))
    out = p(torch.as_tensor(x[:10]))
    np.testing.assert_array_equal(out[:, :2].numpy(), x[:10, :2])
    np.testing.assert_allclose(out[:, 2:].numpy(), np.broadcast_to(x[:, 2:].mean(axis=0), (10, 4)))
    # SVCCA: x shares with y only its first two coordinates; the two canonical directions (rho 1) are them, and
    # rebuilding x from them leaves the independent coordinates at their mean
    np.testing.assert_allclose(svcca_projection(x, y, 2, keep=1.0).matrix, np.diag([1.0, 1, 0, 0, 0, 0]), atol=0.05)
    # random orthonormal directions: an orthogonal projection (symmetric), its trace k
    r = random_projection(x, 3, seed=7).matrix
    np.testing.assert_allclose(r, r.T, atol=1e-12)
    assert np.trace(r) == pytest.approx(3)
    assert not np.allclose(r, random_projection(x, 3, seed=8).matrix)


def test_svcca_projection_differs_from_pca_where_variance_is_not_shared():
    # the largest-variance coordinate of x is not in y: PCA keeps it at k = 1, SVCCA keeps a shared one instead
    rng = np.random.default_rng(0)
    shared, loud = rng.standard_normal((3000, 1)), 10 * rng.standard_normal((3000, 1))
    x = np.column_stack([loud, shared, rng.standard_normal((3000, 1))])
    y = np.column_stack([shared + 0.1 * rng.standard_normal((3000, 1)), rng.standard_normal((3000, 2))])
    np.testing.assert_allclose(pca_projection(x, 1).matrix, np.diag([1.0, 0, 0]), atol=0.01)
    p = svcca_projection(x, y, 1, keep=1.0).matrix
    np.testing.assert_allclose(np.diag(p), [0.0, 1, 0], atol=0.01)  # off the diagonal: chance correlations, x10 in `loud`


def test_conv_layers_are_projected_channel_wise_at_every_position(tiny):
    _, _, acts = tiny
    a = acts["conv"]  # (n, 3, 6, 6)
    x = positions_as_samples(a, 9, seed=0)  # each channel a neuron, each (image, position) a sample
    p = pca_projection(x, 2)
    out = p(torch.as_tensor(a, dtype=torch.float32)).numpy()
    expected = (a.transpose(0, 2, 3, 1) - p.mean) @ p.matrix + p.mean
    np.testing.assert_allclose(out, expected.transpose(0, 3, 1, 2), atol=1e-5)
    kept = neuron_projection(x, 1)(torch.as_tensor(a)).numpy()
    top = int(np.argmax(np.diag(neuron_projection(x, 1).matrix)))
    np.testing.assert_array_equal(kept[:, top], a[:, top])  # the kept channel's whole map, unchanged
    for c in set(range(3)) - {top}:
        np.testing.assert_allclose(kept[:, c], x[:, c].mean())  # the others: their mean, at every position


def test_full_width_reproduces_the_networks_accuracy_exactly(tiny):
    net, split, acts = tiny
    reference = accuracy(net, split)
    for layer, d in (("conv", 3), ("fc", 5)):
        x = positions_as_samples(acts[layer], 9, seed=0) if acts[layer].ndim == 4 else acts[layer]
        other = x @ np.random.default_rng(2).standard_normal((d, d))  # an invertible map of it: another "network"
        found = projected_accuracy(net, split, layer, list(_all(x, other, d).values()))
        np.testing.assert_array_equal(found, reference)
    with capture(net, ["logits"]) as plain:
        net(split.inputs)
    projected = pca_projection(acts["fc"], 5)
    with capture(net, ["logits"]) as after:
        with replacing(net, {"fc": projected}):
            net(split.inputs)
    np.testing.assert_allclose(after["logits"].numpy(), plain["logits"].numpy(), atol=1e-5)


def test_many_projections_in_one_pass_equal_one_at_a_time(tiny):
    net, split, acts = tiny
    x = positions_as_samples(acts["conv"], 9, seed=0)
    ps = [pca_projection(x, 1), neuron_projection(x, 2), random_projection(x, 1, 0)]
    together = projected_accuracy(net, split, "conv", ps, max_floats=5_000)  # several image batches
    apart = [projected_accuracy(net, split, "conv", [p])[0] for p in ps]
    np.testing.assert_array_equal(together, apart)
    assert together[0] != accuracy(net, split)  # a rank-1 projection of the conv layer changes the predictions
    assert not net.training and not net.conv._forward_hooks  # mode kept, hooks removed


def test_accuracy_curves(tiny):
    net, split, acts = tiny
    x, y = acts["fc"], acts["fc"] @ np.random.default_rng(3).standard_normal((5, 5))
    curves = accuracy_curves(net, split, "fc", x, y, ks=(1, 2, 5, 9), keep=1.0, draws=2, variants=True)
    assert curves.ks == (1, 2, 5) and curves.width == 5 and curves.full == accuracy(net, split)
    assert set(curves.accuracy) == {"svcca", "pca", "random", "neurons", "svcca keep 0.95", "random rebuilt",
                                    "neurons by variance"}
    for method, acc in curves.accuracy.items():
        if method != "svcca keep 0.95":
            assert acc[-1] == curves.full, method  # k = the layer's width
    single = projected_accuracy(net, split, "fc", [random_projection(x, 2, 0), random_projection(x, 2, 1)])
    assert curves.accuracy["random"][1] == pytest.approx(single.mean())
    assert curves.needed("pca", 0.0) <= 5
    assert curves.at("pca", 2) == curves.accuracy["pca"][1] and curves.at("pca", 5.0) == curves.full
    assert np.isnan(curves.at("svcca", curves.needed("svcca", -1.0)))  # never above the full accuracy: no k
    with pytest.raises(ValueError, match=r"k = 3 is not one of the measured ks \(1, 2, 5\)"):
        curves.at("pca", 3)


def test_svcca_keeps_only_the_directions_it_finds():
    x, y = _layers()
    y = y[:, 2:]  # two directions, both shared
    with pytest.raises(ValueError, match=r"k must lie in \[1, 2\] \(the SVCCA directions found with keep=1.0\), got 3"):
        svcca_projection(x, y, 3, keep=1.0)


def test_needed_k():
    assert needed_k((1, 2, 4, 8), [0.5, 0.85, 0.895, 0.9], full=0.9, margin=0.01) == 4
    assert np.isnan(needed_k((1, 2), [0.5, 0.6], full=0.9, margin=0.01))
    assert needed_k((1, 2), [np.nan, 0.9], full=0.9, margin=0.0) == 2
    with pytest.raises(ValueError, match="one value per k"):
        needed_k((1, 2), [0.5], 0.9, 0.01)


def test_bad_input():
    x, _ = _layers()
    for fit in (lambda k: pca_projection(x, k), lambda k: random_projection(x, k), lambda k: neuron_projection(x, k)):
        with pytest.raises(ValueError, match=r"k must lie in \[1, 6\] \(the layer's neurons\), got 7"):
            fit(7)
        with pytest.raises(ValueError, match="got 0"):
            fit(0)
    with pytest.raises(ValueError, match="by must be 'norm' or 'variance'"):
        neuron_projection(x, 2, by="mean")
    with pytest.raises(ValueError, match=r"expected a layer's output \(n, 6\) or \(n, 6, height, width\), got shape \(2, 5\)"):
        pca_projection(x, 2)(torch.zeros(2, 5))
    with pytest.raises(ValueError, match="no projections"):
        projected_accuracy(Tiny(), Split(torch.zeros(2, 1, 6, 6), torch.zeros(2, dtype=torch.long), ("a",)), "fc", [])
