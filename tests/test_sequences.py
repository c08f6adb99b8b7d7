"""Recurrent networks: hidden states recorded at checkpoints, each layer against its final self with time steps as
samples (and the controls), a layer against itself over the sequence, on closed-form cases."""
import numpy as np
import pytest
import torch

from analysis.measures.cca import pwcca
from analysis.networks import data
from analysis.networks.hooks import record, steps_as_samples
from analysis.networks.models import build_model
from analysis.networks.profiles import study_plan
from analysis.studies.dynamics import bottom_up
from analysis.studies.sequences import derangement, final_self_curves, over_sequence, record_states

FRACTIONS = (0.0, 0.5, 1.0)
LAYERS = ("layer0", "layer1", "layer2")


def mixing_states(seed: int, n: int = 30, time: int = 20, width: int = 5) -> dict[float, dict[str, np.ndarray]]:
    """States (n, time, width) of one seed's network at each fraction f: layer k is its final self weighted f**k
    plus fixed noise weighted 1 - f**k, so layer0 is final from the start and higher layers arrive later."""
    rng = np.random.default_rng(seed)
    final = {name: rng.standard_normal((n, time, width)) for name in LAYERS}
    noise = {name: rng.standard_normal((n, time, width)) for name in LAYERS}
    return {f: {name: f**k * final[name] + (1 - f**k) * noise[name] for k, name in enumerate(LAYERS)} for f in FRACTIONS}


def test_record_states_records_every_checkpoint_on_the_same_windows():
    class FakeRun:
        class config:
            checkpoints = FRACTIONS

        class _Split:
            inputs = torch.randint(0, 11, (40, 7), generator=torch.Generator().manual_seed(0))

        def data(self, split):
            return self._Split

        def model(self, fraction):
            torch.manual_seed(int(10 * fraction))
            return build_model("lstm", (7,), 11, embed=4, hidden=6, n_layers=2).eval()

    run = FakeRun()
    states = record_states(run, ["lstm1", "lstm2"], sequences=25)
    assert list(states) == list(FRACTIONS)
    assert states[0.5]["lstm2"].shape == (25, 7, 6) and states[0.5]["lstm2"].dtype == np.float32
    np.testing.assert_array_equal(states[0.5]["lstm1"], record(run.model(0.5), [run._Split.inputs[:25]], ["lstm1"])["lstm1"])
    assert not np.allclose(states[0.0]["lstm1"], states[1.0]["lstm1"])
    assert list(record_states(run, ["embed"], [1.0])) == [1.0]
    with pytest.raises(ValueError, match="no layers"):
        record_states(run, [])
    run._Split.inputs = torch.zeros(4, 1, 3, 3)
    with pytest.raises(ValueError, match="language-model runs"):
        record_states(run, ["lstm1"])


def test_final_self_curves_compare_every_checkpoint_and_the_other_seeds_with_the_final_network():
    states = [mixing_states(s) for s in range(3)]
    curves = final_self_curves(states, LAYERS)
    assert curves.curves.shape == (3, 3, 3) and curves.untrained.shape == curves.trained.shape == (3, 2, 3)
    assert (curves.reduction, curves.keep) == ("time steps as samples", 1.0)
    np.testing.assert_allclose(curves.curves[:, -1], 1.0, atol=1e-9)  # the final network against itself
    np.testing.assert_allclose(curves.curves[:, :, 0], 1.0, atol=1e-9)  # layer0 is final from the start
    flat = lambda s, f, name: steps_as_samples(states[s][f][name])  # noqa: E731
    # seed 1's controls: seeds 0 and 2, untrained and trained, against seed 1's final layer2; weights from the final side
    assert curves.untrained[1, 1, 2] == pytest.approx(pwcca(flat(1, 1.0, "layer2"), flat(2, 0.0, "layer2")).mean, abs=1e-12)
    assert curves.trained[1, 0, 2] == pytest.approx(pwcca(flat(1, 1.0, "layer2"), flat(0, 1.0, "layer2")).mean, abs=1e-12)
    assert curves.curves[2, 1, 1] == pytest.approx(pwcca(flat(2, 1.0, "layer1"), flat(2, 0.5, "layer1")).mean, abs=1e-12)
    other = final_self_curves(states, LAYERS, weights="other")
    assert other.curves[2, 1, 1] == pytest.approx(pwcca(flat(2, 0.5, "layer1"), flat(2, 1.0, "layer1")).mean, abs=1e-12)
    assert other.curves[2, 1, 1] != pytest.approx(curves.curves[2, 1, 1], abs=1e-6)  # PWCCA is not symmetric
    # bottom-up by construction: at 0.5, layer1 is sqrt(1/2) of its final self, layer2 only sqrt(1/10)
    b = bottom_up(curves.select(["layer1", "layer2"]), threshold=0.5, at=0.5)
    np.testing.assert_allclose(b.spearman, 1.0)
    np.testing.assert_array_equal(b.first, [[0.5, 1.0]] * 3)


def test_final_self_curves_reject_what_cannot_be_compared():
    states = [mixing_states(s) for s in range(2)]
    with pytest.raises(ValueError, match="at least two seeds"):
        final_self_curves(states[:1], LAYERS)
    with pytest.raises(ValueError, match="same fractions"):
        final_self_curves([states[0], {f: states[1][f] for f in (0.0, 1.0)}], LAYERS)
    with pytest.raises(ValueError, match="no checkpoint at 0.1"):
        final_self_curves(states, LAYERS, start=0.1)
    with pytest.raises(ValueError, match="weights"):
        final_self_curves(states, LAYERS, weights="mean")
    short = {f: {**states[1][f], "layer2": states[1][f]["layer2"][:10]} for f in FRACTIONS}
    with pytest.raises(ValueError, match="different samples"):
        final_self_curves([states[0], short], LAYERS)


def test_over_sequence_sees_linear_maps_of_the_reference_step_and_nothing_in_independent_steps():
    rng = np.random.default_rng(0)
    n, time, width = 400, 10, 4
    states = rng.standard_normal((n, time, width))
    last = states[:, -1]
    for lag in (1, 2):  # the two steps before the last: invertible linear maps of it
        states[:, -1 - lag] = last @ rng.standard_normal((width, width))
    found = over_sequence(states)
    assert found.reference == time - 1
    np.testing.assert_allclose(found.similarity[-3:], 1.0, atol=1e-9)
    assert found.lag(0) == pytest.approx(1.0) and found.lag(2) == pytest.approx(1.0)
    assert found.similarity[: time - 3].max() < 0.3  # independent steps: only the finite-sample level
    assert np.all(found.control < 0.3) and np.all(found.control > 0)
    assert np.all(np.abs(found.progress[: time - 3]) < 0.2)
    assert found.span(0.5) == 2
    assert over_sequence(states, reference=time - 2).span(0.5) == 1  # one step back is a map of it too, two are not
    first = over_sequence(states, reference=0)
    assert first.span(0.5) == 0 and first.lag(0) == pytest.approx(1.0)
    same = states.copy()
    same[:] = last[:, None]
    assert over_sequence(same).span() == time - 1  # never below the level: the whole stretch


def test_over_sequence_rejects_other_shapes_and_steps():
    with pytest.raises(ValueError, match="sequences, time, features"):
        over_sequence(np.zeros((5, 3)))
    with pytest.raises(ValueError, match="outside the 4 steps"):
        over_sequence(np.random.default_rng(0).standard_normal((6, 4, 2)), reference=4)


def test_derangement_moves_every_element_reproducibly():
    for n in (2, 3, 50):
        order = derangement(n, seed=1)
        assert sorted(order) == list(range(n)) and not np.any(order == np.arange(n))
    np.testing.assert_array_equal(derangement(50, seed=1), derangement(50, seed=1))
    with pytest.raises(ValueError, match="at least 2"):
        derangement(1)


def test_full_profile_reads_wikitext_placed_by_the_user(tmp_path, monkeypatch):
    folder = tmp_path / "wikitext-2"
    folder.mkdir()
    sample = " = Valkyria Chronicles III = \n Senjō no Valkyria 3 is a tactical role @-@ playing video game . \n" * 20
    for split in ("train", "valid", "test"):
        (folder / f"wiki.{split}.tokens").write_text(sample, encoding="utf-8")
    monkeypatch.setenv("SVCCA_DATA", str(tmp_path))
    configs = study_plan("06", "full").configs
    assert [c.seed for c in configs] == [0, 1, 2] and {c.dataset for c in configs} == {"wikitext-2"}
    split = data.load("wikitext-2", "test")
    assert split.task == "language-model" and split.shape == (data.SEQUENCE_LENGTH,)
    net = build_model("lstm", split.shape, len(split.classes), **dict(configs[0].options))
    assert net.layers == ("embed", "lstm1", "lstm2", "lstm3", "logits")
    assert net(split.inputs[:2]).shape == (2, data.SEQUENCE_LENGTH, len(split.classes))
