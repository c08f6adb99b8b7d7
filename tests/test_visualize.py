"""Deep visualization: tiles and their order, closed-form gradient ascent on linear models, each regularizer's
effect, the high-frequency measure on known spectra, gradients reaching the input, determinism; the paper's ImageNet
AlexNet through torchvision's weight loading, offline: a randomly initialised checkpoint and fake image folders."""
import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torchvision
from PIL import Image
from scipy.ndimage import gaussian_filter
from torch import nn

from analysis.networks import sources
from analysis.studies import visualize as vis


def linear_model(seed: int = 0, units: int = 3, shape=(1, 8, 8)) -> nn.Sequential:
    """logits = W flatten(x) + b: the unit's gradient is its weight image, whatever the input."""
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(math.prod(shape), units))


def weight_image(model: nn.Sequential, unit: int, shape=(1, 8, 8)) -> np.ndarray:
    return model[1].weight[unit].detach().numpy().reshape(shape)


def small_convnet(seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 6, 3, padding=1), nn.ReLU(),
                         nn.Flatten(), nn.Linear(6 * 12 * 12, 5))


@pytest.mark.parametrize("n, grid", [(1, (1, 1)), (2, (1, 2)), (4, (2, 2)), (5, (2, 3)), (16, (4, 4)), (17, (4, 5)), (32, (6, 6))])
def test_grid_is_near_square(n, grid):
    assert vis.grid_shape(n) == grid
    rows, cols = grid
    assert rows * cols >= n > (rows - 1) * cols  # no empty row


def test_tiles_in_row_major_order_with_gaps():
    acts = np.arange(5 * 3 * 4, dtype=float).reshape(5, 3, 4)
    t = vis.tiles(acts, pad=1)
    assert t.grid == (2, 3) and t.tile == (3, 4)
    assert t.image.shape == (2 * 4 - 1, 3 * 5 - 1)
    for k in range(5):
        top, left, h, w = t.box(k)
        np.testing.assert_array_equal(t.image[top : top + h, left : left + w], acts[k])
    assert t.box(4)[:2] == (4, 5)  # channel 4: second row, second column
    assert np.isnan(t.image[3]).all() and np.isnan(t.image[:, 4]).all()  # the gaps between tiles
    top, left, h, w = t.box(5)  # the grid's empty last cell
    assert np.isnan(t.image[top : top + h, left : left + w]).all()
    assert np.isnan(t.image).sum() == t.image.size - acts.size


def test_tiles_reject_wrong_shapes():
    with pytest.raises(ValueError, match="channels, height, width"):
        vis.tiles(np.zeros((2, 3, 4, 4)))
    with pytest.raises(ValueError, match="channel must lie"):
        vis.tiles(np.zeros((3, 2, 2))).box(4)


def test_strongest_channel_and_top_images():
    acts = np.zeros((3, 2, 2))
    acts[1, 0, 0], acts[2] = 5.0, 1.0  # one strong response beats a broad weaker one
    assert vis.strongest_channel(acts) == 1
    conv = np.zeros((4, 2, 3, 3))
    conv[:, 1, 1, 1] = [0.5, 3.0, -1.0, 3.0]
    np.testing.assert_array_equal(vis.unit_values(conv, 1), [0.5, 3.0, -1.0, 3.0])  # the centre by default
    np.testing.assert_array_equal(vis.top_activating(conv, 1, 3), [1, 3, 0])
    dense = np.array([[1.0, 2.0], [4.0, 0.0]])
    np.testing.assert_array_equal(vis.top_activating(dense, 0, 1), [1])
    with pytest.raises(ValueError, match="no position"):
        vis.unit_values(dense, 0, position=(0, 0))


def test_layer_tiles_come_from_the_named_layer():
    net = small_convnet()
    x = vis.start_images(2, (1, 12, 12), std=1.0)
    acts = vis.layer_activations(net, "2", x)
    assert acts.shape == (2, 6, 12, 12)
    with torch.no_grad():
        np.testing.assert_allclose(acts, net[:3](x).numpy(), atol=1e-6)
    assert net.training  # the model's mode is restored


def test_unregularized_ascent_on_a_linear_model_moves_along_the_weights():
    model, x0 = linear_model(), vis.start_images(2, (1, 8, 8), std=0.5, seed=3)
    steps, lr = 11, 0.1
    m = vis.maximize(model, "1", [2, 0], x0, vis.REGULARIZERS["none"], steps=steps, lr=lr)
    for i, unit in enumerate([2, 0]):  # steps - 1 updates, each lr * w
        np.testing.assert_allclose(m.images[i], x0[i].numpy() + (steps - 1) * lr * weight_image(model, unit), atol=1e-5)
    gain = m.trace[-1] - m.trace[0]
    w = model[1].weight.detach()
    np.testing.assert_allclose(gain, (steps - 1) * lr * (w[[2, 0]] ** 2).sum(dim=1).numpy(), rtol=1e-5)
    np.testing.assert_allclose(m.activation, m.trace[-1])
    assert (np.diff(m.trace, axis=0) > 0).all()
    assert (m.zeroed == 0).all()


def test_bounded_ascent_on_a_linear_model_reaches_the_corner_optimum():
    model = linear_model(1)
    m = vis.maximize(model, "1", 1, vis.start_images(1, (1, 8, 8), std=0.1), vis.REGULARIZERS["none"],
                     steps=200, lr=1e3, bounds=(-1.0, 2.0))
    w = weight_image(model, 1)
    np.testing.assert_array_equal(m.images[0], np.where(w > 0, 2.0, -1.0))  # each pixel at the bound its weight favours


def test_l2_decay_converges_to_its_fixed_point_along_the_weights():
    model, d, lr = linear_model(2), 0.3, 0.5
    m = vis.maximize(model, "1", 0, torch.zeros(1, 1, 8, 8), vis.Regularizer(decay=d), steps=120, lr=lr)
    # x = (1 - d)(x + lr w) has the fixed point x* = (1 - d) lr w / d, approached along w from 0
    np.testing.assert_allclose(m.images[0], (1 - d) * lr * weight_image(model, 0) / d, atol=1e-5)


def test_blur_matches_scipy_and_keeps_constants():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 10, 12)).astype(np.float32)
    for sigma in (0.5, 1.0, 2.0):
        blurred = vis.gaussian_blur(torch.from_numpy(x), sigma).numpy()
        expected = np.stack([[gaussian_filter(c, sigma) for c in image] for image in x])
        np.testing.assert_allclose(blurred, expected, atol=1e-5)
    const = torch.full((1, 1, 6, 6), 2.5)
    np.testing.assert_allclose(vis.gaussian_blur(const, 1.0).numpy(), 2.5, rtol=1e-6)
    with pytest.raises(ValueError, match="exceeds the image size"):
        vis.gaussian_blur(const, 3.0)


def test_high_frequency_fraction_of_known_spectra():
    yy, xx = np.mgrid[0:32, 0:32]
    low = np.cos(2 * np.pi * 2 * xx / 32)[None, None]  # 1/16 cycles per pixel
    high = np.cos(2 * np.pi * 12 * yy / 32)[None, None]  # 3/8 cycles per pixel
    hf = vis.high_frequency_fraction(np.concatenate([low, high, 3 * high + 7, np.ones_like(low)]), cutoff=0.25)
    np.testing.assert_allclose(hf, [0.0, 1.0, 1.0, 0.0], atol=1e-12)  # scale and mean do not matter; a constant has none
    noise = np.random.default_rng(0).standard_normal((200, 1, 32, 32))
    f = np.fft.fftfreq(32)
    radius = np.hypot(f[:, None], f[None, :])
    share = ((radius > 0.25).sum()) / (radius.size - 1)  # white noise: energy spread evenly over the frequencies
    assert vis.high_frequency_fraction(noise).mean() == pytest.approx(share, abs=0.01)
    with pytest.raises(ValueError, match="cutoff"):
        vis.high_frequency_fraction(noise, cutoff=0.8)


def test_blur_lowers_the_high_frequency_fraction_of_white_noise():
    noise = vis.start_images(20, (1, 28, 28), std=1.0, seed=1)
    before = vis.high_frequency_fraction(noise.numpy())
    after = vis.high_frequency_fraction(vis.gaussian_blur(noise, 1.0).numpy())
    assert (after < 0.5 * before).all()
    assert (vis.high_frequency_fraction(vis.gaussian_blur(noise, 0.5).numpy()) > after).all()  # less blur, more left


def test_small_norm_clipping_zeroes_the_stated_share_of_pixels():
    x = vis.start_images(1, (3, 8, 8), std=1.0)
    out, mask = vis.regularize(x, torch.ones_like(x), vis.Regularizer(norm_pct=50))
    norms, before = out[0].norm(dim=0).numpy(), x[0].norm(dim=0).numpy()
    assert mask.shape == (1, 8, 8) and mask.sum() == 32  # strictly below the median of 64 norms
    np.testing.assert_array_equal(norms == 0, mask[0].numpy())  # a pixel's channels go to zero together
    assert before[mask[0]].max() < before[~mask[0]].min()  # the smallest-norm half
    np.testing.assert_array_equal(out[0][:, ~mask[0]], x[0][:, ~mask[0]])  # the rest untouched


def test_small_contribution_clipping_keeps_the_pixels_that_contribute_most():
    x, grad = vis.start_images(1, (2, 8, 8), std=1.0, seed=2), vis.start_images(1, (2, 8, 8), std=1.0, seed=3)
    out, mask = vis.regularize(x, grad, vis.Regularizer(contribution_pct=75))
    contribution = (x * grad).sum(dim=1).abs()[0].numpy()  # |Σ_c x ∘ ∂a/∂x|: the linear estimate of the loss if zeroed
    kept = ~mask[0].numpy()
    assert kept.sum() == 16 and (out[0][:, mask[0]] == 0).all()
    assert contribution[kept].min() > contribution[~kept].max()


def test_regularizers_apply_in_the_papers_order():
    x = vis.start_images(2, (1, 10, 10), std=1.0, seed=5)
    out, mask = vis.regularize(x, x, vis.Regularizer(decay=0.25, blur_radius=1.0, blur_every=4), step=8)
    np.testing.assert_allclose(out.numpy(), vis.gaussian_blur(0.75 * x, 1.0).numpy(), atol=1e-6)
    assert not mask.any()
    out, _ = vis.regularize(x, x, vis.Regularizer(decay=0.25, blur_radius=1.0, blur_every=4), step=9)
    np.testing.assert_allclose(out.numpy(), 0.75 * x.numpy(), atol=1e-7)  # no blur between every 4th step
    out, mask = vis.regularize(x, x, vis.REGULARIZERS["combined"])
    assert (mask.flatten(1).float().mean(dim=1) >= 0.9).all()  # norm clipping's pixels contribute 0: within the 90%


def test_gradients_reach_the_input_and_ascent_raises_a_conv_unit():
    net = small_convnet(1)
    x = vis.start_images(3, (1, 12, 12), std=1.0, seed=4)
    grad = vis.input_gradient(net, "2", [0, 3, 5], x)
    assert grad.shape == (3, 1, 12, 12)
    # the centre unit (6, 6) of two 3x3 layers sees the 5x5 patch around it, and nothing else
    seen = np.abs(grad).sum(axis=(0, 1)) > 0
    assert seen[4:9, 4:9].any() and not seen[:4].any() and not seen[9:].any()
    assert net.training  # the model's mode is restored
    live = [u for u in range(6) if np.abs(vis.input_gradient(net, "2", u, x[:1])).sum() > 0]
    m = vis.maximize(net, "2", live[0], x[:1], vis.REGULARIZERS["none"], steps=40, lr=1.0, bounds=(-2.0, 2.0))
    assert m.activation[0] > m.start[0] + 1 and (np.diff(m.trace[:, 0]) >= 0).all()
    assert np.abs(m.images).max() == 2.0
    m = vis.maximize(net, "2", live[0], x[:1], vis.REGULARIZERS["combined"], steps=40, lr=0.1, bounds=(-2.0, 2.0))
    assert m.activation[0] == m.trace[:, 0].max() and np.abs(m.images).max() <= 2.0  # the best image is kept
    assert m.zeroed[0] == (0.0 if m.trace[:, 0].argmax() == 0 else pytest.approx(0.9, abs=0.01))


def test_seeds_make_it_deterministic():
    np.testing.assert_array_equal(vis.start_images(2, (1, 4, 4), 1.0, seed=7), vis.start_images(2, (1, 4, 4), 1.0, seed=7))
    assert not torch.equal(vis.start_images(2, (1, 4, 4), 1.0, seed=7), vis.start_images(2, (1, 4, 4), 1.0, seed=8))
    assert (vis.start_images(1, (1, 4, 4), 0.0) == 0).all()  # std 0: the mean image
    net = small_convnet(2)
    runs = [vis.maximize(net, "4", [1, 4], vis.start_images(2, (1, 12, 12), 0.5, seed=s), steps=15, lr=0.05)
            for s in (0, 0, 1)]
    np.testing.assert_array_equal(runs[0].images, runs[1].images)
    np.testing.assert_array_equal(runs[0].trace, runs[1].trace)
    assert not np.array_equal(runs[0].images, runs[2].images)


def test_class_predictions_of_a_known_classifier():
    model = linear_model(5)
    images = np.stack([weight_image(model, u) * 10 for u in range(3)])
    assert vis.class_predictions(model, images).tolist() == [0, 1, 2]


def test_bad_arguments_are_named():
    model, x = linear_model(), vis.start_images(2, (1, 8, 8), std=1.0)
    with pytest.raises(ValueError, match="one per image"):
        vis.maximize(model, "1", [0, 1, 2], x)
    with pytest.raises(ValueError, match=r"lie in \[0, 3\)"):
        vis.maximize(model, "1", 3, x)
    with pytest.raises(ValueError, match="no position"):
        vis.maximize(model, "1", 0, x, position=(1, 1))
    with pytest.raises(ValueError, match="start must be images"):
        vis.maximize(model, "1", 0, x[0])
    with pytest.raises(ValueError, match="decay"):
        vis.Regularizer(decay=1.0)
    with pytest.raises(ValueError, match="both blur_radius and blur_every"):
        vis.Regularizer(blur_radius=1.0)
    with pytest.raises(ValueError, match="percentile"):
        vis.Regularizer(contribution_pct=100)


def test_paper_settings():
    assert vis.TABLE_1[2] == vis.Regularizer(decay=0.0001, blur_radius=1.0, blur_every=4)  # most of the paper's figures
    combined = vis.REGULARIZERS["combined"]
    alone = [r for name, r in vis.REGULARIZERS.items() if name not in ("none", "combined")]
    assert all(sum(v != 0 for v in (r.decay, r.blur_radius, r.norm_pct, r.contribution_pct)) == 1 for r in alone)
    assert combined == vis.Regularizer(**{k: max(getattr(r, k) for r in alone) for k in vars(combined)})


def test_units_of_several_layers_keep_their_order():
    net = small_convnet(3)
    start = vis.start_images(1, (1, 12, 12), std=0.5)
    units = [("5", 3), ("2", 1), ("5", 0)]
    options = dict(steps=5, lr=0.1, bounds=(-1.0, 1.0))
    found = vis.maximize_units(net, units, {"blur": vis.REGULARIZERS["blur"], "none": vis.REGULARIZERS["none"]}, start,
                               **options)
    assert list(found) == ["blur", "none"]
    alone = vis.maximize(net, "2", 1, start, vis.REGULARIZERS["none"], **options)
    m = found["none"]
    assert m.images.shape == (3, 1, 12, 12) and m.trace.shape == (5, 3)
    np.testing.assert_allclose(m.images[1], alone.images[0], atol=1e-6)
    np.testing.assert_allclose(m.trace[:, 1], alone.trace[:, 0], atol=1e-6)
    assert m.start[0] == pytest.approx(float(net(start.clamp(-1.0, 1.0))[0, 3].detach()), abs=1e-5)  # the start within bounds
    with pytest.raises(ValueError, match="one image"):
        vis.maximize_units(net, units, {}, vis.start_images(2, (1, 12, 12), std=0.5))


def test_strongest_units_skip_those_ascent_cannot_move():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 3, 1), nn.ReLU())
    with torch.no_grad():
        net[0].weight[:] = torch.tensor([1.0, 2.0, 3.0]).view(3, 1, 1, 1)
        net[0].bias[:] = torch.tensor([0.0, 0.0, -5.0])  # channel 2: the strongest on bright images, dead at 0
    images = torch.full((4, 1, 5, 5), 10.0)
    acts = vis.layer_activations(net, "1", images)
    assert vis.strongest_units(net, "1", acts, 3, images[:1]) == [2, 1, 0]
    assert vis.strongest_units(net, "1", acts, 2, torch.zeros(1, 1, 5, 5) + 0.1) == [1, 0]
    with pytest.raises(ValueError, match="only 2 channels"):
        vis.strongest_units(net, "1", acts, 3, torch.zeros(1, 1, 5, 5) + 0.1)


def test_pictures_are_stretched_to_their_own_range():
    rgb = np.stack([np.full((2, 3), v) for v in (-1.0, 0.0, 3.0)])
    picture = vis.as_picture(rgb)
    assert picture.shape == (2, 3, 3)
    np.testing.assert_allclose(picture[0, 0], [0.0, 0.25, 1.0])
    np.testing.assert_array_equal(vis.as_picture(np.full((1, 2, 2), 7.0)), np.full((2, 2), 0.5))
    with pytest.raises(ValueError, match="1 or 3 channels"):
        vis.as_picture(np.zeros((2, 4, 4)))


def fake_imagenet(root, classes, count: int = 2) -> None:
    """`count` random JPEGs per class in root/imagenet/val/<wnid>/, the layout `sources.imagenet_images` reads."""
    rng = np.random.default_rng(0)
    for c in classes:
        folder = root / "imagenet" / "val" / sources.WNIDS[c]
        folder.mkdir(parents=True)
        for i in range(count):
            Image.fromarray(rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)).save(folder / f"val_{i}.JPEG")


def test_missing_imagenet_weights_say_which_file_goes_where(offline, tmp_path):
    with pytest.raises(sources.WeightsUnavailable) as caught:  # reported before the (absent) images are looked for
        vis.imagenet_subject("IMAGENET1K_V1", root=tmp_path, device="cpu")
    message = str(caught.value)
    url = "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth"
    assert url in message and f"put it at {offline / 'alexnet-owt-7be5be79.pth'}" in message
    assert "TORCH_HOME" in message


def test_the_papers_alexnet_from_a_checkpoint_in_the_hub_cache(offline, tmp_path):
    torch.manual_seed(3)
    state = torchvision.models.alexnet(weights=None).state_dict()  # a randomly initialised AlexNet stands in for the ImageNet weights
    offline.mkdir(parents=True)
    torch.save(state, offline / "alexnet-owt-7be5be79.pth")
    fake_imagenet(tmp_path, [555, 185])
    subject = vis.imagenet_subject("IMAGENET1K_V1", classes=[555, 185], per_class=2, root=tmp_path, device="cpu")
    (net,) = subject.nets
    assert torch.equal(net.state_dict()["classifier.6.weight"], state["classifier.6.weight"]) and not net.training
    assert subject.names == ["alexnet IMAGENET1K_V1"] and len(subject.classes) == 1000
    assert subject.images.shape == (4, 3, 224, 224) and subject.labels.tolist() == [555, 555, 185, 185]
    acts = subject.activations[0]
    assert acts[vis.ALEXNET_CONV5].shape == (4, 256, 13, 13) and acts[vis.ALEXNET_FC8].shape == (4, 1000)
    assert acts[vis.ALEXNET_CONV5].min() == 0  # conv5 after its ReLU, as the paper shows it
    np.testing.assert_allclose(vis.layer_activations(net, vis.ALEXNET_CONV5, subject.images[:1]), acts[vis.ALEXNET_CONV5][:1],
                               rtol=1e-4, atol=1e-5)
    assert vis.tiles(acts[vis.ALEXNET_CONV5][0]).grid == (16, 16)
    start = vis.start_images(1, (3, 224, 224), std=0.1)
    units = [(vis.ALEXNET_FC8, 555), (vis.ALEXNET_CONV5, vis.strongest_units(net, vis.ALEXNET_CONV5,
                                                                             acts[vis.ALEXNET_CONV5], 1, start)[0])]
    m = vis.maximize_units(net, units, {"combined": vis.REGULARIZERS["combined"]}, start, steps=3, lr=1.0,
                           bounds=(-2.5, 2.5))["combined"]
    assert m.images.shape == (2, 3, 224, 224) and (m.activation >= m.start).all() and (m.trace[1:] != m.trace[0]).any()


def test_runs_subject_needs_shared_test_images():
    runs = [SimpleNamespace(config=SimpleNamespace(dataset=d, n_test=100, subset_seed=0, seed=0)) for d in ("a", "b")]
    with pytest.raises(ValueError, match="share their test images"):
        vis.runs_subject(runs, "conv4")
