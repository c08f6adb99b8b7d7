"""Freeze training: schedules, multiply-adds saved (closed forms on a tiny model), frozen weights, accuracy."""
from dataclasses import replace

import numpy as np
import pytest
import torch
from torch import nn

from analysis import RunConfig, train
from analysis.networks.models import Named, build_model
from analysis.networks.profiles import study_plan
from analysis.studies.freezing import (
    Saving,
    backward_macs,
    backward_saving,
    changed_verdicts,
    compare_accuracy,
    freeze_schedule,
    layer_macs,
    matched_schedule,
    phases,
    pooled_spread,
    schedule_seconds,
    step_seconds,
    training_steps,
)

CONVNET = ("conv1", "conv2", "conv3", "conv4", "fc1", "fc2", "logits")


class Tiny(Named):
    """conv (1 -> 2 channels, 3x3, padding 1) on 4x4 images, then 2x2 pooling, a linear layer, logits."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1, bias=False), nn.BatchNorm2d(2), nn.ReLU())
        self.fc = nn.Sequential(nn.Flatten(), nn.Linear(8, 5), nn.ReLU())
        self.logits = nn.Linear(5, 3)
        self.pool = nn.MaxPool2d(2)
        self.layers = ("conv", "fc", "logits")

    def forward(self, x):
        return self.logits(self.fc(self.pool(self.conv(x))))


def test_layer_macs_in_closed_form():
    # conv: 2 channels x (1 x 3 x 3) weights at 16 positions; fc: 8 x 5; logits: 5 x 3; per image, whatever the batch
    assert layer_macs(Tiny(), torch.zeros(3, 1, 4, 4)) == {"conv": 2 * 9 * 16, "fc": 40, "logits": 15}
    net = build_model("convnet", (1, 28, 28), 10, width=0.25)  # channels 16, 16, 32, 32; 64 units
    macs = layer_macs(net, torch.zeros(2, 1, 28, 28))
    assert macs == {"conv1": 16 * 9 * 784, "conv2": 16 * 16 * 9 * 784, "conv3": 16 * 32 * 9 * 196,
                    "conv4": 32 * 32 * 9 * 196, "fc1": 32 * 49 * 64, "fc2": 64 * 64, "logits": 64 * 10}
    assert net.training  # the count leaves the model's mode as it was


def test_layer_macs_refuses_weights_it_cannot_count():
    net = build_model("lstm", (5,), 50)  # an LSTM's gates are neither conv nor linear layers
    with pytest.raises(ValueError, match="layer 'lstm1' has LSTM weights"):
        layer_macs(net, torch.zeros(2, 5, dtype=torch.long), ["lstm1", "logits"])
    with pytest.raises(ValueError, match="layer 'embed' has Embedding weights"):
        layer_macs(net, torch.zeros(2, 5, dtype=torch.long))


def test_schedules_have_the_papers_order_and_fractions():
    bottom_up = freeze_schedule(CONVNET)
    assert bottom_up == tuple((layer, k / 7) for k, layer in enumerate(CONVNET[:-1], 1))
    assert freeze_schedule(CONVNET, "top-down") == tuple((layer, k / 7) for k, layer in enumerate(CONVNET[::-1][:-1], 1))
    assert freeze_schedule(["a", "b", "c"], fractions=[0.2, 0.9]) == (("a", 0.2), ("b", 0.9))
    assert freeze_schedule(["a", "b", "c"], "top-down", [0.1, 0.1, 0.5]) == (("c", 0.1), ("b", 0.1), ("a", 0.5))
    with pytest.raises(ValueError, match="rise"):
        freeze_schedule(["a", "b"], fractions=[0.6, 0.3])
    with pytest.raises(ValueError, match="rise"):
        freeze_schedule(["a", "b"], fractions=[0.5, 1.5])
    with pytest.raises(ValueError, match="3 fractions for 2 layers"):
        freeze_schedule(["a", "b"], fractions=[0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="order"):
        freeze_schedule(["a", "b"], "random")


def test_the_study_plan_freezes_04s_networks_with_these_schedules():
    plan = study_plan("07")
    assert plan.runs["normal"] == study_plan("04").runs["width 0.25"]
    assert list(plan.runs) == ["normal", "bottom-up", "top-down", "top-down, same saving", "bottom-up from halfway"]
    expected = {"bottom-up": freeze_schedule(CONVNET), "top-down": freeze_schedule(CONVNET, "top-down"),
                "bottom-up from halfway": freeze_schedule(CONVNET, fractions=[0.5 + k / 14 for k in range(1, 7)])}
    for role, schedule in expected.items():
        for normal, frozen in zip(plan.runs["normal"], plan.runs[role]):
            assert [layer for layer, _ in frozen.freeze] == [layer for layer, _ in schedule]
            assert [f for _, f in frozen.freeze] == pytest.approx([f for _, f in schedule])
            assert replace(normal, freeze=frozen.freeze) == frozen
    assert [layer for layer, _ in plan.runs["top-down, same saving"][0].freeze] == list(CONVNET[::-1][:-1])


@pytest.mark.parametrize("profile, shape, width", [("quick", (1, 28, 28), 0.25), ("full", (3, 32, 32), 1.0)])
def test_the_matched_top_down_control_saves_what_bottom_up_saves(profile, shape, width):
    runs = study_plan("07", profile).runs
    macs = layer_macs(build_model("convnet", shape, 10, width), torch.zeros(2, *shape))
    saving = {role: backward_saving(macs, runs[role][0].freeze).weight_gradients for role in runs if role != "normal"}
    assert saving["top-down, same saving"] == pytest.approx(saving["bottom-up"], abs=1e-3)
    assert saving["bottom-up from halfway"] == pytest.approx(saving["top-down"], abs=0.01)
    assert saving["top-down"] < saving["bottom-up"] - 0.2  # the lower conv layers cost the most


def test_backward_multiply_adds_saved_in_closed_form():
    macs = {"a": 10, "b": 20, "c": 30}
    assert backward_macs(macs, ()) == (60, 50)  # the input gradient of the lowest layer is never needed
    assert backward_macs(macs, ("a",)) == (50, 30)  # a frozen: b's input gradient is not needed either
    assert backward_macs(macs, ("c",)) == (30, 50)  # c frozen on top: gradients still pass through it
    with pytest.raises(ValueError, match="not among"):
        backward_macs(macs, ("d",))
    # bottom-up: a frozen for the last half, b for the last quarter
    s = backward_saving(macs, (("a", 0.5), ("b", 0.75)))
    assert s.weight_gradients == pytest.approx((10 * 0.5 + 20 * 0.25) / 60)
    # backward per step: 110 normally, 80 with a frozen, 30 with a and b frozen
    assert s.backward == pytest.approx(1 - (0.5 * 110 + 0.25 * 80 + 0.25 * 30) / 110)
    assert s.step == pytest.approx(1 - (60 + 0.5 * 110 + 0.25 * 80 + 0.25 * 30) / 170)
    t = backward_saving(macs, (("c", 0.5), ("b", 0.75)))  # top-down: only weight gradients are saved
    assert t.weight_gradients == pytest.approx((30 * 0.5 + 20 * 0.25) / 60)
    assert t.backward == pytest.approx((30 * 0.5 + 20 * 0.25) / 110)
    assert backward_saving(macs, ()) == backward_saving(macs, (("a", 1.0),)) == Saving(0.0, 0.0, 0.0)


def test_phases_round_freeze_points_to_steps_as_the_trainer():
    assert phases((("a", 0.5), ("b", 0.75))) == [(0.5, frozenset()), (0.25, frozenset("a")), (0.25, frozenset("ab"))]
    assert phases((("a", 0.0), ("b", 1.0))) == [(1.0, frozenset("a"))]
    rounded = phases((("a", 1 / 3),), steps=10)
    assert [share for share, _ in rounded] == pytest.approx([0.3, 0.7])
    assert sum(share for share, _ in phases((("a", 0.1), ("b", 0.37), ("c", 0.8)), steps=7)) == pytest.approx(1)


def test_matched_schedule_scales_fractions_to_the_asked_saving():
    macs = {"a": 10, "b": 20, "c": 30}
    top_down = freeze_schedule(list(macs), "top-down", [0.5, 1.0])  # saves 15/60 = 0.25
    matched = matched_schedule(macs, top_down, 0.5)
    assert [layer for layer, _ in matched] == ["c", "b"]
    assert [f for _, f in matched] == pytest.approx([2 / 7, 4 / 7])  # 30 * 5/7 + 20 * 3/7 = 30, half of 60
    assert backward_saving(macs, matched).weight_gradients == pytest.approx(0.5)
    with pytest.raises(ValueError, match="between 0.250 and 0.833"):
        matched_schedule(macs, top_down, 0.9)


def test_frozen_layers_stop_changing_at_their_fraction_in_a_tiny_run(cache):
    schedule = freeze_schedule(["fc1", "fc2", "logits"], fractions=[0.25, 0.5])
    config = RunConfig(model="mlp", n_train=256, n_test=128, epochs=4, batch_size=64, options=(("hidden", (16, 16)),),
                       freeze=schedule, checkpoints=(0.25, 0.5, 0.75))
    run = train(config, progress=False)
    assert training_steps(run) == 16
    w = {f: run.model(f).state_dict() for f in (0.25, 0.5, 0.75, 1.0)}

    def moved(layer, a, b):
        return not all(torch.equal(w[a][k], w[b][k]) for k in w[a] if k.startswith(f"{layer}."))

    assert not moved("fc1", 0.25, 1.0) and moved("fc2", 0.25, 0.5) and not moved("fc2", 0.5, 1.0)
    assert moved("logits", 0.5, 0.75) and moved("logits", 0.75, 1.0)


def test_step_seconds_times_every_set_of_frozen_layers_once(cache):
    config = RunConfig(model="mlp", n_train=256, batch_size=32, options=(("hidden", (16, 16)),))
    sets = [(), ("fc1",), ("fc1", "fc2"), ["fc1"]]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        seconds = step_seconds(config, sets, steps=2, rounds=2)
        assert torch.get_num_threads() == 1  # the trainer's thread count only while timing
    finally:
        torch.set_num_threads(threads)
    assert set(seconds) == {frozenset(), frozenset({"fc1"}), frozenset({"fc1", "fc2"})}
    assert all(0 < s < 10 for s in seconds.values())
    schedule = (("fc1", 0.5), ("fc2", 0.75))
    made_up = {frozenset(): 4.0, frozenset({"fc1"}): 2.0, frozenset({"fc1", "fc2"}): 1.0}
    assert schedule_seconds(schedule, made_up, steps=8) == 4 * 4.0 + 2 * 2.0 + 2 * 1.0
    with pytest.raises(ValueError, match="no measured step time"):
        schedule_seconds((("logits", 0.5),), made_up, steps=8)


def test_accuracy_comparison_against_the_seed_spread():
    normal = {0: 0.80, 1: 0.82, 2: 0.84}
    c = compare_accuracy(normal, {2: 0.83, 0: 0.82, 1: 0.80})
    assert c.seeds == (0, 1, 2)
    np.testing.assert_allclose(c.paired, [0.02, -0.02, -0.01])
    assert c.difference == pytest.approx(-0.01 / 3) and c.spread == pytest.approx(0.02)
    assert c.within_spread() and not c.within_spread(tolerance=0.001)
    assert not compare_accuracy(normal, {0: 0.78, 1: 0.79, 2: 0.80}).within_spread()  # 0.03 below, spread 0.02
    with pytest.raises(ValueError, match="same seeds"):
        compare_accuracy(normal, {0: 0.8, 1: 0.8})
    with pytest.raises(ValueError, match="at least two seeds"):
        compare_accuracy({0: 0.8}, {0: 0.8})
    # pooled: squared deviations 8e-4 + 0 over 2 + 1 degrees of freedom
    assert pooled_spread([[0.8, 0.82, 0.84], [0.5, 0.5]]) == pytest.approx(np.sqrt(8e-4 / 3))


def test_changed_verdicts_names_the_variants_that_disagree_with_the_main_test():
    assert changed_verdicts({"main": True, "a": True, "b": False, "c": None}) == "verdict reversed by: b; c"
    assert changed_verdicts({"main": False, "a": False}) == ""
