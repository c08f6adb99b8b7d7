"""Networks: named layers in forward order, width multiplier, freezing; recording with forward hooks."""
import numpy as np
import pytest
import torch

from analysis import build_model, freeze, record
from analysis.networks.hooks import capture, evaluating, iter_activations, replacing
from analysis.networks.models import frozen_layers

SHAPES = {"convnet": (3, 32, 32), "resnet": (3, 32, 32), "mlp": (1, 28, 28)}


@pytest.mark.parametrize("name", ["convnet", "resnet", "mlp"])
def test_named_layers_are_submodules_in_forward_order(name):
    torch.manual_seed(0)
    net = build_model(name, SHAPES[name], 10, width=0.25).eval()
    x = torch.randn(4, *SHAPES[name])
    seen = []
    hooks = [getattr(net, layer).register_forward_hook(lambda m, i, o, n=layer: seen.append(n)) for layer in net.layers]
    assert net(x).shape == (4, 10)
    for h in hooks:
        h.remove()
    assert seen == list(net.layers)
    assert net.layers[-1] == "logits"


def test_width_multiplies_hidden_sizes():
    narrow, wide = (build_model("convnet", (3, 32, 32), 10, width=w) for w in (0.5, 2.0))
    assert narrow.conv1[0].out_channels == 32 and wide.conv1[0].out_channels == 128
    assert build_model("mlp", (1, 28, 28), 10, width=0.1).fc1[0].out_features == 50


def test_lstm_language_model_records_every_layer():
    net = build_model("lstm", (1, 1, 1), 50, width=0.1, n_layers=2)
    tokens = torch.randint(0, 50, (3, 7))
    acts = record(net, [tokens], net.layers, progress=False)
    assert acts["lstm2"].shape == (3, 7, 20) and acts["logits"].shape == (3, 7, 50)


def test_record_matches_a_manual_forward_pass_batch_by_batch():
    torch.manual_seed(1)
    net = build_model("convnet", (1, 28, 28), 10, width=0.25)
    net.train()  # record must switch to eval (batch norm's running statistics) and back
    x = torch.randn(10, 1, 28, 28)
    acts = record(net, [(x[:4], None), (x[4:], None)], ["conv2", "fc1", "logits"], progress=False)
    assert net.training
    net.eval()
    with torch.no_grad():
        conv2 = net.conv2(net.conv1(x))
        fc1 = net.fc1(net.pool(net.conv4(net.conv3(net.pool(conv2)))).flatten(1))
        logits = net(x)
    assert acts["conv2"].shape == (10, 16, 28, 28) and acts["fc1"].shape == (10, 64)
    np.testing.assert_allclose(acts["conv2"], conv2.numpy(), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(acts["fc1"], fc1.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(acts["logits"], logits.numpy(), rtol=1e-5, atol=1e-6)
    pooled = next(iter_activations(net, [x], ["conv2"], pool=2))["conv2"]
    np.testing.assert_allclose(pooled.numpy(), conv2.reshape(10, 16, 2, 14, 2, 14).mean((3, 5)).numpy(), rtol=1e-5, atol=1e-6)


def test_unknown_layer_lists_the_valid_names():
    net = build_model("mlp", (1, 28, 28), 10)
    with pytest.raises(ValueError, match="no layer 'fc9'; valid names: fc1, fc2, fc3, logits"):
        record(net, [torch.randn(2, 1, 28, 28)], ["fc1", "fc9"])


def test_freeze_survives_train_and_stops_gradients_and_batch_norm_statistics():
    torch.manual_seed(0)
    net = build_model("convnet", (1, 28, 28), 10, width=0.25)
    torch.manual_seed(0)
    twin = build_model("convnet", (1, 28, 28), 10, width=0.25)  # same initial weights, not frozen
    freeze(net, ["conv1"])
    before = {k: v.clone() for k, v in net.conv1.state_dict().items()}
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    net.train()  # must not switch the frozen layer's batch norm back to training
    assert net.training and net.conv2.training and not net.conv1.training and not net.conv1[1].training
    x = torch.randn(8, 1, 28, 28)
    for _ in range(2):
        opt.zero_grad()
        net(x).sum().backward()
        opt.step()
    after = net.conv1.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # weights and running statistics
    assert not torch.equal(net.conv2[0].weight, twin.conv2[0].weight)  # the rest trained
    twin.train()
    twin(x)
    assert not torch.equal(twin.conv1[1].running_mean, before["1.running_mean"])  # unfrozen: statistics move
    assert frozen_layers(net) == ["conv1"]


def test_replacing_a_layer_changes_what_follows():
    torch.manual_seed(2)
    net = build_model("mlp", (1, 28, 28), 10, width=0.1).eval()
    x = torch.randn(16, 1, 28, 28)
    with torch.no_grad():
        plain = net(x)
        with replacing(net, {"fc2": torch.zeros_like}):
            zeroed = net(x)
        assert torch.equal(net(x), plain)  # the hook is gone after the block
    bias = net.logits(net.fc3(torch.zeros(1, 50)))  # what the network outputs when fc2 says nothing
    torch.testing.assert_close(zeroed, bias.expand(16, 10))
    with replacing(net, {"fc2": lambda out: out}), torch.no_grad():
        torch.testing.assert_close(net(x), plain)


def test_gradients_reach_the_input_only_when_asked():
    net = build_model("convnet", (1, 28, 28), 10, width=0.25)
    net.train()
    x = torch.randn(2, 1, 28, 28, requires_grad=True)
    with evaluating(net, grad=True), capture(net, ["conv3"], detach=False) as store:
        net(x)
        store["conv3"][:, 0].mean().backward()
    assert x.grad is not None and float(x.grad.abs().sum()) > 0 and net.training
    with evaluating(net), capture(net, ["conv3"]) as store:
        net(x)
        assert not store["conv3"].requires_grad
