"""Pretrained activation sources and ImageNet images, offline: random weights, fake checkpoints, fake folders."""
import re
import urllib.error

import numpy as np
import pytest
import torch
import torchvision
from PIL import Image

import analysis.measures.conv as conv
from analysis.networks import sources
from analysis.networks.sources import PAPER_CLASSES, WNIDS, Pretrained, imagenet_images

LAYERS = ["maxpool", "layer1.0", "layer4.2", "avgpool", "fc"]


def _images(n: int, size: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, 3, size, size, generator=torch.Generator().manual_seed(seed))


@pytest.fixture(scope="module")
def source() -> Pretrained:
    return Pretrained("resnet50", weights=None, device="cpu", seed=0)


@pytest.fixture(scope="module")
def acts(source) -> dict[str, np.ndarray]:
    return source.activations(LAYERS, _images(4, 64), batch_size=3, progress=False)


def test_records_shapes(acts):
    assert {k: v.shape for k, v in acts.items()} == {
        "maxpool": (4, 64, 16, 16), "layer1.0": (4, 256, 16, 16), "layer4.2": (4, 2048, 2, 2),
        "avgpool": (4, 2048), "fc": (4, 1000),
    }
    assert all(v.dtype == np.float32 and np.isfinite(v).all() for v in acts.values())


def test_layers_are_modules_in_forward_order(source):
    model = source.model()
    assert source.layers[0] == "maxpool" and source.layers[-2:] == ("avgpool", "fc")
    blocks = [name for name, _ in model.named_modules() if re.fullmatch(r"layer\d\.\d+", name)]
    assert len(blocks) == 16 and set(blocks) <= set(source.layers)
    modules = dict(model.named_modules())
    called = []
    handles = [modules[name].register_forward_hook(lambda *_, n=name: called.append(n)) for name in source.layers]
    try:
        with torch.no_grad():
            model(_images(1, 32))
    finally:
        for handle in handles:
            handle.remove()
    assert tuple(called) == source.layers
    assert Pretrained("resnet18", weights=None).layers[:3] == ("maxpool", "layer1.0", "layer1.1")


def test_seeded():
    images = _images(2, 32)
    sources_ = [Pretrained("resnet18", weights=None, device="cpu", seed=seed) for seed in (0, 0, 1)]
    fc = [source.activations(["fc"], images, progress=False)["fc"] for source in sources_]
    np.testing.assert_array_equal(fc[0], fc[1])
    assert not np.allclose(fc[0], fc[2])


def test_random_init_leaves_global_rng_alone():
    before = torch.random.get_rng_state()
    Pretrained("resnet18", weights=None, device="cpu", seed=3).model()
    assert torch.equal(torch.random.get_rng_state(), before)


def test_classes_and_transform(source):
    assert len(source.classes) == 1000
    for name, index in PAPER_CLASSES.items():
        assert source.classes[index] == name and index in WNIDS
    assert source.transform(Image.new("RGB", (300, 260))).shape == (3, 224, 224)


def test_offline_error_names_file_url_and_path(offline):
    with pytest.raises(FileNotFoundError) as caught:
        Pretrained("resnet50").model()
    message = str(caught.value)
    url = torchvision.models.ResNet50_Weights.IMAGENET1K_V2.url
    assert "resnet50-11ad3fa6.pth" in message and url in message and "TORCH_HOME" in message
    assert str(offline / "resnet50-11ad3fa6.pth") in message
    assert isinstance(caught.value.__cause__, urllib.error.URLError)


def test_weights_file_in_cache_loads_without_download(offline):
    weights = torchvision.models.ResNet18_Weights.IMAGENET1K_V1
    state = torchvision.models.resnet18().state_dict()
    offline.mkdir(parents=True)
    torch.save(state, offline / weights.url.rsplit("/", 1)[1])
    model = Pretrained("resnet18", "IMAGENET1K_V1", device="cpu").model()
    assert not model.training
    assert torch.equal(model.state_dict()["fc.weight"], state["fc.weight"])


def _write_images(folder, count: int, suffix: str = ".JPEG") -> None:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(len(str(folder)))
    for i in range(count):
        pixels = rng.integers(0, 256, (20 + i, 30, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"ILSVRC2012_val_{i:08d}{suffix}")


def test_imagenet_images_from_folders(tmp_path):
    val = tmp_path / "imagenet" / "val"
    _write_images(val / WNIDS[555], 3)
    _write_images(val / WNIDS[185], 2, ".png")
    images, labels = imagenet_images(tmp_path, classes=[555, 185], per_class=2)
    assert images.shape == (4, 3, 224, 224) and images.dtype == torch.float32
    assert labels.tolist() == [555, 555, 185, 185] and labels.dtype == torch.long
    with pytest.raises(ValueError, match="no WordNet id known"):
        imagenet_images(tmp_path, classes=[7])


def test_imagenet_images_any_class_with_all_folders(tmp_path):
    val = tmp_path / "imagenet" / "val"
    for i in range(1000):
        (val / f"n{i:08d}").mkdir(parents=True)
    (val / "n00000007").rmdir()
    _write_images(val / "n00000007", 1)
    images, labels = imagenet_images(tmp_path, classes=[7], transform=sources.standard_transform())
    assert images.shape == (1, 3, 224, 224) and labels.tolist() == [7]


def test_imagenet_images_missing_says_layout(tmp_path, monkeypatch):
    monkeypatch.setenv("SVCCA_DATA", str(tmp_path))
    with pytest.raises(FileNotFoundError) as caught:
        imagenet_images()
    message = str(caught.value)
    assert f"{tmp_path}/imagenet/val/<wnid>/*.JPEG" in message and f"imagenet/val/{WNIDS[555]}/" in message
    assert "ILSVRC2012_img_val.tar" in message and "ILSVRC2012_devkit_t12" in message
    assert all(name in message for name in PAPER_CLASSES)


def test_dft_cca_of_conv_layer_against_one_logit(acts):
    # 4 images for 256 channels: the result saturates (that is the warning), but the call must work
    with pytest.warns(RuntimeWarning, match="fewer samples than features"):
        result = conv.dft_cca(acts["layer1.0"], acts["fc"][:, [555]])
    assert 0.0 <= result.mean <= 1.0
