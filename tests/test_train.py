"""Training: determinism, the run cache (hit, miss, resume, corruption), checkpoints, freezing, accuracy."""
import json
import shutil

import numpy as np
import pytest
import torch

import analysis
import analysis.networks.runs
from analysis import RunConfig, profile_config, train
from analysis.networks.runs import _Trainer

TINY = dict(model="mlp", n_train=512, n_test=256, epochs=2, batch_size=64, options=(("hidden", (32, 32)),))


def _weights(run, fraction=1.0):
    return {k: v.clone() for k, v in run.model(fraction).state_dict().items()}


def _same(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_same_seed_same_weights_and_activations(cache, tmp_path):
    first = train(RunConfig(**TINY), progress=False)
    w1, a1 = _weights(first), first.activations(["fc2"])["fc2"]
    (cache / "runs").rename(tmp_path / "elsewhere")
    second = train(RunConfig(**TINY), progress=False)
    assert _same(w1, _weights(second))
    np.testing.assert_array_equal(a1, second.activations(["fc2"])["fc2"])
    other = train(RunConfig(**{**TINY, "seed": 1}), progress=False)
    assert not _same(w1, _weights(other))


def test_cache_hit_loads_without_training(cache, monkeypatch):
    config = RunConfig(**TINY)
    run = train(config, progress=False)
    assert [h["epoch"] for h in run.history] == [1, 2]
    monkeypatch.setattr(_Trainer, "run", lambda self: pytest.fail("a cached run was trained again"))
    again = train(config, progress=False)
    assert again.history == run.history and _same(_weights(run), _weights(again))
    with pytest.raises(ValueError, match="no checkpoint at 0.5"):
        again.model(0.5)


def test_a_new_configuration_is_a_cache_miss(cache):
    a = train(RunConfig(**TINY), progress=False)
    b = train(RunConfig(**{**TINY, "lr": 0.01}), progress=False)
    assert a.path != b.path and a.config.key != b.config.key


def test_interrupted_run_resumes_bitwise(cache, monkeypatch):
    config = RunConfig(**{**TINY, "epochs": 3})
    reference = _weights(train(config, progress=False))
    reference_history = train(config, progress=False).history
    shutil.rmtree(cache / "runs")
    original = _Trainer._train_step
    calls = {"n": 0}

    def crash_midway(self, x, y):
        calls["n"] += 1
        if calls["n"] == 12:  # mid-epoch 2, after the checkpoint at 35%
            raise KeyboardInterrupt
        original(self, x, y)

    monkeypatch.setattr(_Trainer, "_train_step", crash_midway)
    with pytest.raises(KeyboardInterrupt):
        train(config, progress=False)
    run_dir = cache / "runs" / config.key
    assert (run_dir / "state.pt").exists() and not (run_dir / "manifest.json").exists()
    monkeypatch.setattr(_Trainer, "_train_step", original)
    resumed = train(config, progress=False)
    assert _same(reference, _weights(resumed))
    assert resumed.history == reference_history


def test_run_stopped_after_a_checkpoint_on_an_epochs_last_step_resumes_with_that_epochs_history(cache, monkeypatch):
    config = RunConfig(**{**TINY, "checkpoints": (0.0, 0.5)})  # 0.5: the last step of epoch 1
    reference = train(config, progress=False)
    reference_weights, reference_history = _weights(reference), reference.history
    shutil.rmtree(cache / "runs")
    original = _Trainer._checkpoint

    def stop_after_half(self, fraction):
        original(self, fraction)
        if fraction == 0.5:
            raise KeyboardInterrupt

    monkeypatch.setattr(_Trainer, "_checkpoint", stop_after_half)
    with pytest.raises(KeyboardInterrupt):
        train(config, progress=False)
    monkeypatch.setattr(_Trainer, "_checkpoint", original)
    resumed = train(config, progress=False)
    assert resumed.history == reference_history
    assert _same(reference_weights, _weights(resumed))


def test_corrupt_checkpoint_is_detected_and_retrained(cache):
    config = RunConfig(**TINY)
    run = train(config, progress=False)
    weights = _weights(run)
    checkpoint = run.path / "checkpoint-1.pt"
    checkpoint.write_bytes(checkpoint.read_bytes()[:-100] + b"x" * 100)
    with pytest.warns(UserWarning, match="damaged"):
        again = train(config, progress=False)
    assert _same(weights, _weights(again))
    manifest = json.loads((again.path / "manifest.json").read_text())
    assert set(manifest["checksums"]) == {"checkpoint-0.pt", "checkpoint-0.35.pt", "checkpoint-0.75.pt", "checkpoint-1.pt"}


def test_corrupt_resume_state_restarts_from_scratch(cache):
    config = RunConfig(**TINY)
    path = cache / "runs" / config.key
    path.mkdir(parents=True)
    (path / "state.pt").write_bytes(b"not a torch file")
    with pytest.warns(UserWarning, match="damaged"):
        run = train(config, progress=False)
    assert len(run.history) == TINY["epochs"]


def test_checkpoints_differ_along_training_and_the_first_is_the_initialisation(cache):
    run = train(RunConfig(**TINY), progress=False)
    weights = [_weights(run, f) for f in run.config.checkpoints]
    assert all(not _same(a, b) for a, b in zip(weights, weights[1:]))
    torch.manual_seed(run.config.seed)
    init = analysis.build_model("mlp", (1, 28, 28), 10, hidden=(32, 32)).state_dict()
    assert _same(init, weights[0])


def test_freeze_schedule_leaves_frozen_layers_unchanged_after_their_fraction(cache):
    run = train(RunConfig(**{**TINY, "freeze": (("fc1", 0.35),)}), progress=False)
    at_35, final = _weights(run, 0.35), _weights(run)
    assert all(torch.equal(at_35[k], final[k]) for k in at_35 if k.startswith("fc1."))
    assert not all(torch.equal(at_35[k], final[k]) for k in at_35 if k.startswith("fc2."))


def test_random_labels_change_the_training_labels_and_do_not_generalise(cache):
    run = train(RunConfig(**{**TINY, "random_labels": True, "epochs": 1}), progress=False)
    true = analysis.load("fashion-mnist", "train", n=512, seed=0).targets
    assert not torch.equal(run.data("train").targets, true)
    assert run.test_accuracy < 0.25


@pytest.mark.parametrize("model", ["mlp", "convnet", "resnet"])
def test_quick_networks_learn_in_their_smallest_form(cache, model):
    # the quick profile's schedule on a fifth of its images: README documents 86-90% on all of them
    run = train(profile_config(model, n_train=2000, n_test=1000), progress=False)
    assert run.test_accuracy > 0.75, f"quick {model} reached only {run.test_accuracy:.1%} test accuracy"
    assert run.history[-1]["train_loss"] < run.history[0]["train_loss"]


def test_configuration_errors_are_named():
    with pytest.raises(ValueError, match="unknown profile"):
        profile_config("mlp", "huge")
    with pytest.raises(ValueError, match="optimizer"):
        RunConfig(model="mlp", optimizer="rmsprop")
    with pytest.raises(ValueError, match="fractions"):
        RunConfig(model="mlp", checkpoints=(1.5,))


@pytest.mark.parametrize("model", ["mlp", "convnet", "resnet"])
def test_full_profile_is_the_papers_scale_on_cifar10(model):
    # full-profile runs need CIFAR-10 and a GPU; their configurations and networks can be checked here
    config = profile_config(model, "full")
    assert (config.dataset, config.n_train, config.width) == ("cifar10", None, 1.0)
    net = analysis.build_model(model, (3, 32, 32), 10, config.width, **dict(config.options))
    assert net(torch.zeros(2, 3, 32, 32)).shape == (2, 10)
    if model == "resnet":  # ResNet-20: a stem, 3 stages of 3 blocks of 2 conv layers, logits
        convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d) and m.kernel_size == (3, 3)]
        assert len(convs) + 1 == 20


def _toy_text(root, split):
    """A periodic 'text' over 5 symbols: the next token is always predictable from the previous two."""
    tokens = torch.tensor([0, 1, 2, 1, 3, 4] * 200)
    windows = tokens[: 1200 - 1200 % 25].view(-1, 25)
    windows = windows[:40] if split == "train" else windows[40:]
    return windows[:, :-1], windows[:, 1:], tuple("abcde")


def test_language_model_trains_through_the_same_trainer_and_records_over_time(cache):
    analysis.register(analysis.Dataset("toy-text", "language-model", lambda root, download: None, _toy_text))
    try:
        config = RunConfig(model="lstm", dataset="toy-text", n_train=None, n_test=None, epochs=20, batch_size=8,
                           optimizer="adamw", lr=0.03, weight_decay=0.0,
                           options=(("n_layers", 2), ("embed", 8), ("hidden", 12)))
        run = train(config, progress=False)
        assert run.history[-1]["train_loss"] < 0.5 * run.history[0]["train_loss"]
        assert run.test_accuracy > 0.9  # next-token accuracy over every step of held-out windows
        assert run.layers == ("embed", "lstm1", "lstm2", "logits")
        acts = run.activations(["lstm1", "lstm2"])
        assert acts["lstm2"].shape == (len(run.data("test")), 24, 12)
        steps = analysis.steps_as_samples(acts["lstm2"])
        np.testing.assert_array_equal(steps[24], acts["lstm2"][1, 0])  # sample-major, then time
    finally:
        del analysis.networks.data.DATASETS["toy-text"]


def test_train_many_trains_each_configuration_once_and_keeps_the_order(cache, monkeypatch, capsys):
    a, b = RunConfig(**TINY), RunConfig(**{**TINY, "seed": 3})
    trained = []
    real = train
    monkeypatch.setattr(analysis.networks.runs, "train", lambda c, **kw: trained.append(c) or real(c, **kw))
    runs = analysis.train_many([a, b, a], progress=False)
    assert [r.config for r in runs] == [a, b, a] and trained == [a, b]
    assert "trained mlp-" in capsys.readouterr().out
    assert [r.config for r in analysis.train_many([b, a], progress=False)] == [b, a] and trained == [a, b]


def test_training_bits_do_not_depend_on_the_callers_thread_count(cache, tmp_path):
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        first = _weights(train(RunConfig(**TINY), progress=False))
        assert torch.get_num_threads() == 1  # restored after training
        (cache / "runs").rename(tmp_path / "elsewhere")
        torch.set_num_threads(3)
        second = train(RunConfig(**TINY), progress=False)
    finally:
        torch.set_num_threads(threads)
    assert _same(first, _weights(second))
    assert second.environment["threads"] == analysis.networks.runs.TRAINING_THREADS
    assert second.environment["torch"] == torch.__version__


def _flip_bytes(path, at=0.6, count=64):
    data = bytearray(path.read_bytes())
    start = int(len(data) * at)
    data[start : start + count] = bytes(b ^ 0xFF for b in data[start : start + count])
    path.write_bytes(bytes(data))


def test_resume_state_with_flipped_bytes_is_never_promoted(cache, monkeypatch):
    config = RunConfig(**{**TINY, "epochs": 3})
    reference = _weights(train(config, progress=False))
    shutil.rmtree(cache / "runs")
    original, calls = _Trainer._train_step, {"n": 0}

    def crash(self, x, y):
        calls["n"] += 1
        if calls["n"] == 12:
            raise KeyboardInterrupt
        original(self, x, y)

    monkeypatch.setattr(_Trainer, "_train_step", crash)
    with pytest.raises(KeyboardInterrupt):
        train(config, progress=False)
    monkeypatch.setattr(_Trainer, "_train_step", original)
    _flip_bytes(cache / "runs" / config.key / "state.pt")
    with pytest.warns(UserWarning, match="state.pt does not match its checksum"):
        again = train(config, progress=False)
    assert _same(reference, _weights(again))  # trained from the start, not from the damaged state


@pytest.mark.parametrize("damage", [
    lambda m: {**m, "checksums": []}, lambda m: {**m, "checksums": None}, lambda m: [m],
    lambda m: {**m, "history": m["history"][:1]}, lambda m: {k: v for k, v in m.items() if k != "digest"},
], ids=["checksums-list", "checksums-null", "not-an-object", "history-edited", "no-digest"])
def test_a_manifest_of_the_wrong_shape_or_content_is_damage(cache, damage):
    run = train(RunConfig(**TINY), progress=False)
    manifest = run.path / "manifest.json"
    manifest.write_text(json.dumps(damage(json.loads(manifest.read_text()))))
    with pytest.warns(UserWarning, match=f"cached run {run.path} is damaged"):
        again = train(RunConfig(**TINY), progress=False)
    assert len(again.history) == TINY["epochs"] and json.loads(manifest.read_text())["digest"]


def test_a_file_where_the_run_folder_should_be_is_replaced(cache):
    config = RunConfig(**TINY)
    (cache / "runs").mkdir()
    (cache / "runs" / config.key).write_text("not a folder")
    with pytest.warns(UserWarning, match="is a file, not a folder"):
        run = train(config, progress=False)
    assert run.path.is_dir() and len(run.history) == TINY["epochs"]


@pytest.mark.parametrize("damage", ["zeroed rows", "truncated", "checksums"])
def test_damaged_activations_are_reported_and_recorded_again(cache, damage):
    run = train(RunConfig(**TINY), progress=False)
    good = run.activations(["fc1"])["fc1"]
    folder = run.path / "activations" / "test-1"
    if damage == "zeroed rows":  # same size, wrong numbers
        value = good.copy()
        value[10:20] = 0
        with open(folder / "fc1.npy", "wb") as f:
            np.save(f, value)
    elif damage == "truncated":
        (folder / "fc1.npy").write_bytes((folder / "fc1.npy").read_bytes()[:-500])
    else:
        (folder / "checksums.json").write_text("[1, 2]")
    with pytest.warns(UserWarning, match=f"cached file {folder / 'fc1.npy'} is damaged"):
        again = run.activations(["fc1"])["fc1"]
    np.testing.assert_array_equal(again, good)


def test_replacing_a_layer_by_its_projection_changes_accuracy_accordingly(cache):
    run = train(RunConfig(**TINY), progress=False)
    net, split = run.model(), run.data("test")
    full = analysis.accuracy(net, split)
    fc2 = run.activations(["fc2"])["fc2"]
    mean = torch.as_tensor(fc2.mean(0))
    basis = torch.as_tensor(np.linalg.svd(fc2 - fc2.mean(0), full_matrices=False)[2][:1].T)  # top direction
    with analysis.replacing(net, {"fc2": lambda out: (out - mean) @ basis @ basis.T + mean}):
        one = analysis.accuracy(net, split)
    with analysis.replacing(net, {"fc2": lambda out: out}):
        same = analysis.accuracy(net, split)
    with analysis.replacing(net, {"fc2": lambda out: mean.expand_as(out)}):
        none = analysis.accuracy(net, split)
    assert same == full and none < 0.2 < one < full  # nothing left: chance; one direction: in between
