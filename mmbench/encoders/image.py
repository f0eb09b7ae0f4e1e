"""Image encoders backed by timm: frozen feature extractors or fine-tuned towers.

``timm/<model>`` accepts every name ``timm.list_models()`` knows, including the tiny ``test_*``
variants used in tests. Frozen encoders run the backbone once (the result is cached by the
pipeline); with ``frozen: false`` the encoder only preprocesses pixels and hands the backbone to
the fusion head as a tower, which fine-tunes it end to end.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import numpy as np

from mmbench.data.media import load_image
from mmbench.device import resolve_device
from mmbench.encoders._util import (
    batches,
    file_digest,
    package_version,
    present_rows,
    seeded,
)
from mmbench.encoders.base import Encoder, register_encoder
from mmbench.errors import MMBenchError, UnknownNameError, did_you_mean
from mmbench.hub import offline_unless_reachable

_HUB_PREFIXES = ("hf-hub:", "hf_hub:", "local-dir:")


@register_encoder("timm")
class TimmEncoder(Encoder):
    """A timm backbone without classifier; pooled features (frozen) or pixels for a tower.

    Options: ``frozen`` (run once vs. fine-tune), ``pretrained`` (timm's hub loader, needs the
    network or a warm Hugging Face cache), ``checkpoint`` (local ``.safetensors``/``.pth``
    weights, wins over ``pretrained``), ``pool`` (timm ``global_pool``; None keeps the model's),
    ``image_size`` (square input side; default from the model's data config), ``augment``
    (random flips/shifts while fine-tuning), ``seed`` (initialisation of weights that are not
    loaded, so random-init features are reproducible and cacheable), ``batch_size`` and
    ``device`` for inference.
    """

    modality = "image"
    version = 1

    def __init__(
        self,
        model: str = "test_resnet",
        frozen: bool = True,
        pretrained: bool = False,
        checkpoint: str | None = None,
        pool: str | None = "avg",
        image_size: int | None = None,
        augment: bool = False,
        seed: int = 0,
        batch_size: int = 64,
        device: str = "auto",
    ) -> None:
        _check_model_name(model)
        if augment and frozen:
            raise MMBenchError("timm option augment=True needs frozen=False (fine-tuning)")
        if image_size is not None and int(image_size) < 8:
            raise MMBenchError(f"timm option image_size must be >= 8, got {image_size}")
        super().__init__(
            f"timm/{model}",
            model=model,
            frozen=bool(frozen),
            pretrained=bool(pretrained),
            checkpoint=None if checkpoint is None else str(checkpoint),
            pool=pool,
            image_size=None if image_size is None else int(image_size),
            augment=bool(augment),
            seed=int(seed),
            batch_size=int(batch_size),
            device=device,
        )
        self.trainable = not frozen
        self._frozen_model: Any = None
        self._config: dict[str, Any] | None = None
        self._dim: int | None = None
        self._checkpoint_digest: str | None = None

    def spec(self) -> dict[str, Any]:
        """Output-determining options; a checkpoint counts by content, not by path."""
        options = {k: v for k, v in self.options.items() if k not in ("batch_size", "device")}
        if options["checkpoint"]:
            if self._checkpoint_digest is None:
                self._checkpoint_digest = file_digest(options["checkpoint"])
            options["checkpoint"] = self._checkpoint_digest
        return {
            "name": self.name,
            "options": options,
            "version": self.version,
            "timm": package_version("timm"),
        }

    # -- model construction ---------------------------------------------------------------

    def create_model(self, weights: bool = True) -> Any:
        """A fresh backbone with ``num_classes=0``; ``weights=False`` skips loading weights."""
        import timm

        o = self.options
        kwargs: dict[str, Any] = {"num_classes": 0}
        if o["pool"] is not None:
            kwargs["global_pool"] = o["pool"]
        if o["image_size"] and _fixed_input_size(o["model"]):  # ViTs: resize position embeddings
            kwargs["img_size"] = o["image_size"]
        use_hub = weights and o["pretrained"] and not o["checkpoint"]
        hub = offline_unless_reachable() if use_hub else contextlib.nullcontext()
        try:
            with seeded(o["seed"]), hub:  # offline: a missing cache entry fails at once
                model = timm.create_model(o["model"], pretrained=use_hub, **kwargs)
        except TypeError as exc:
            raise MMBenchError(f"timm model {o['model']!r} rejects its options: {exc}") from None
        except (OSError, RuntimeError, ValueError) as exc:
            if not (use_hub or o["model"].startswith(_HUB_PREFIXES[:2])):
                raise
            raise MMBenchError(
                f"cannot load timm model {o['model']!r} from the Hugging Face hub "
                f"({type(exc).__name__}: {_first_line(exc)}); when offline use "
                "`pretrained: false` or `checkpoint: PATH` to a local weights file"
            ) from None
        if weights and o["checkpoint"]:
            load_checkpoint(model, o["checkpoint"])
        return model

    def data_config(self) -> dict[str, Any]:
        """timm's preprocessing config for the model, with ``image_size`` applied."""
        if self._config is None:
            self._inspect()
        assert self._config is not None
        return self._config

    @property
    def feature_dim(self) -> int:
        """Width of the pooled features, measured with one forward pass at the input size."""
        if self._dim is None:
            self._inspect()
        assert self._dim is not None
        return self._dim

    def _inspect(self) -> None:
        """Read the data config and output width off the frozen model or a weightless one."""
        import timm.data
        import torch

        model = self._frozen_model if self._frozen_model is not None else self.create_model(False)
        config = dict(timm.data.resolve_model_data_config(model))
        if self.options["image_size"]:
            side = self.options["image_size"]
            config["input_size"] = (3, side, side)
        was_training = model.training
        device = next(model.parameters()).device
        with torch.inference_mode():
            x = torch.zeros((1, *config["input_size"]), device=device)
            self._dim = int(model.eval()(x).shape[-1])
        model.train(was_training)
        self._config = config

    @property
    def tower_dim(self) -> int:
        if not self.trainable:
            return super().tower_dim
        return self.feature_dim

    def build_tower(self) -> Any:
        """The backbone with fresh (pretrained or checkpoint) weights, wrapped for augmentation."""
        if not self.trainable:
            return super().build_tower()
        from mmbench.encoders.towers import ImageTower

        return ImageTower(self.create_model(), self.tower_dim, augment=self.options["augment"])

    # -- transform ------------------------------------------------------------------------

    def transform(self, values: Any) -> np.ndarray:
        """Pooled features (frozen) or preprocessed pixels (trainable); missing rows are zeros."""
        values = list(values)
        if self.trainable:
            return self._pixels(values)
        return self._features(values)

    def _batches(self, values: list[Any]) -> Iterator[tuple[np.ndarray, Any]]:
        """Yield ``(row indices, preprocessed pixel tensor)`` for the present rows."""
        import torch
        from timm.data import create_transform

        transform = create_transform(**self.data_config(), is_training=False)
        rows = present_rows(values)
        for part in batches(len(rows), self.options["batch_size"]):
            idx = rows[part]
            yield idx, torch.stack([transform(load_image(values[i], row=int(i))) for i in idx])

    def _pixels(self, values: list[Any]) -> np.ndarray:
        out = np.zeros((len(values), *self.data_config()["input_size"]), dtype=np.float32)
        for idx, pixels in self._batches(values):
            out[idx] = pixels.numpy()
        return out

    def _features(self, values: list[Any]) -> np.ndarray:
        import torch

        if self._frozen_model is None:
            self._frozen_model = self.create_model().eval()
        out = np.zeros((len(values), self.feature_dim), dtype=np.float32)
        device = resolve_device(self.options["device"], option=f"encoder {self.name!r} device")
        model = self._frozen_model.to(device)
        for idx, pixels in self._batches(values):
            with torch.inference_mode():
                out[idx] = model(pixels.to(device)).float().cpu().numpy()
        return out


def load_checkpoint(model: Any, path: str) -> None:
    """Load local weights into a ``num_classes=0`` model; classifier weights are dropped.

    Accepts ``.safetensors`` and torch files (timm unwraps ``state_dict``/``model`` keys and
    ``module.`` prefixes). Anything else that does not match is an error, not a silent partial
    load, because frozen features from half-random weights look plausible and are useless.
    """
    from timm.models import load_state_dict

    file_digest(path)  # clear error when missing
    try:
        state = load_state_dict(str(path), weights_only=True)
    except Exception as exc:  # torch/safetensors raise many types for a bad file
        raise MMBenchError(f"cannot read checkpoint {path}: {_first_line(exc)}") from None
    expected = set(model.state_dict())
    classifier = model.pretrained_cfg.get("classifier") or ()
    prefixes = tuple(f"{c}." for c in ([classifier] if isinstance(classifier, str) else classifier))
    state = {k: v for k, v in state.items() if k in expected or not k.startswith(prefixes)}
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise MMBenchError(
            f"checkpoint {path} does not fit timm model {model.pretrained_cfg.get('architecture')!r}: "
            f"{_first_line(exc, 300)}"
        ) from None


def _check_model_name(name: str) -> None:
    """Unknown names fail at construction with a hint, before any weights are fetched."""
    import timm

    if name.startswith(_HUB_PREFIXES) or timm.is_model(name):
        return
    raise UnknownNameError(
        f"unknown timm model {name!r}{did_you_mean(name, timm.list_models())}; "
        "see timm.list_models()"
    )


def _fixed_input_size(name: str) -> bool:
    """Whether the architecture is built for one input size (ViT-like), per timm's config."""
    import timm

    try:
        cfg = timm.get_pretrained_cfg(name)
    except (RuntimeError, ValueError, KeyError):
        return False
    return bool(getattr(cfg, "fixed_input_size", False))


def _first_line(exc: BaseException, limit: int = 200) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:limit]
