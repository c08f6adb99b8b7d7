"""Layers as (samples, neurons): sampled conv positions equal the package's convention in every network."""
import numpy as np
import pytest
import torch

from analysis.measures import average_pool, positions_as_samples
from analysis.networks.hooks import record
from analysis.networks.models import build_model
from analysis.networks.samples import Samples, sample_layers

LAYERS = ("conv1", "conv3", "fc1", "logits")


@pytest.fixture(scope="module")
def net_and_inputs():
    torch.manual_seed(0)
    net = build_model("convnet", (1, 12, 12), 10, width=0.0625)  # conv1 4 channels at 12 x 12, conv3 8 at 6 x 6
    return net.eval(), torch.randn(70, 1, 12, 12)


def test_sampled_positions_equal_positions_as_samples_of_the_whole_layer(net_and_inputs):
    net, x = net_and_inputs
    # recorded in the same batches, so that the values are bitwise those sample_layers sees
    whole = record(net, [x[i : i + 16] for i in range(0, 70, 16)], LAYERS, progress=False)
    s = sample_layers(net, x, LAYERS, per_image=5, seed=3, batch_size=16)  # 70 images: batches of 16 and a last of 6
    for layer in ("conv1", "conv3"):
        np.testing.assert_array_equal(s.positions[layer], positions_as_samples(whole[layer], 5, seed=3))
        np.testing.assert_allclose(s.channel_means[layer], average_pool(whole[layer]), rtol=1e-5, atol=1e-6)
        assert s.per_image[layer] == 5
    for layer in ("fc1", "logits"):
        np.testing.assert_array_equal(s.positions[layer], whole[layer])
        np.testing.assert_array_equal(s.channel_means[layer], whole[layer])
        assert s.per_image[layer] == 1
    # every layer of one spatial size is sampled at the same (image, position) pairs, whatever its channels
    other = build_model("convnet", (1, 12, 12), 10, width=0.125).eval()
    big = sample_layers(other, x, ["conv1"], per_image=5, seed=3, batch_size=70)
    np.testing.assert_array_equal(big.positions["conv1"], positions_as_samples(record(other, [x], ["conv1"], progress=False)["conv1"], 5, seed=3))


def test_per_image_beyond_the_positions_keeps_them_all(net_and_inputs):
    net, x = net_and_inputs
    whole = record(net, [x], ["conv3"], progress=False)["conv3"]
    s = sample_layers(net, x, ["conv3"], per_image=1000)
    assert s.per_image["conv3"] == 36
    np.testing.assert_array_equal(s.positions["conv3"], positions_as_samples(whole, None))
    with pytest.raises(ValueError, match="per_image"):
        sample_layers(net, x, ["conv3"], per_image=0)


def test_subset_equals_drawing_fewer_in_the_first_place(net_and_inputs):
    net, x = net_and_inputs
    whole = record(net, [x], LAYERS, progress=False)
    s = sample_layers(net, x, LAYERS, per_image=6, seed=1)
    fewer = s.subset(per_image=2)
    np.testing.assert_array_equal(fewer.positions["conv1"], positions_as_samples(whole["conv1"], 2, seed=1))
    assert fewer.per_image == {"conv1": 2, "conv3": 2, "fc1": 1, "logits": 1}
    head = s.subset(n_images=20)
    np.testing.assert_array_equal(head.positions["conv3"], positions_as_samples(whole["conv3"][:20], 6, seed=1))
    np.testing.assert_array_equal(head.positions["fc1"], whole["fc1"][:20])
    assert head.channel_means["conv1"].shape == (20, 4)
    both = s.subset(n_images=10, per_image=1)
    assert both.positions["conv1"].shape == (10, 4) and both.positions["logits"].shape == (10, 10)


def test_samples_subset_keeps_the_type():
    s = Samples({"fc": np.arange(12.0).reshape(6, 2)}, {"fc": np.arange(12.0).reshape(6, 2)}, {"fc": 1})
    assert isinstance(s.subset(n_images=3), Samples) and s.subset(n_images=3).positions["fc"].shape == (3, 2)


def test_all_positions_and_no_images():
    torch.manual_seed(0)
    net = build_model("convnet", (1, 12, 12), 10, width=0.0625).eval()
    x = torch.randn(7, 1, 12, 12)
    s = sample_layers(net, x, ["conv1"], per_image=None, batch_size=3)
    np.testing.assert_array_equal(s.positions["conv1"], positions_as_samples(record(net, [x[:3], x[3:6], x[6:]], ["conv1"], progress=False)["conv1"], None))
    with pytest.raises(ValueError, match="no images"):
        sample_layers(net, x[:0], ["conv1"], per_image=2)
