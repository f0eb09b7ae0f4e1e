"""Text as token ids for a small tower trained from scratch with the head (``textcnn``,
``embbag``); the vocabulary is learned per fold on training rows only."""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

import numpy as np

from mmbench.encoders._util import present_rows, seeded
from mmbench.encoders.base import Encoder, register_encoder
from mmbench.encoders.text import _not_fitted
from mmbench.errors import MMBenchError

_TOKEN = re.compile(r"\w+|[^\w\s]")


def tokenize(text: str) -> list[str]:
    """Lower-cased words and single punctuation marks; simple, fast and language-agnostic."""
    return _TOKEN.findall(text.lower())


@register_encoder("textcnn")
class TextCNNEncoder(Encoder):
    """Token ids for a small text tower trained from scratch with the head.

    The vocabulary (``vocab_size`` most frequent training tokens seen at least ``min_count``
    times) is learned per fold; id 0 pads, id 1 is out-of-vocabulary. ``transform`` returns
    ``(n, max_len)`` int64 ids; :meth:`build_tower` a :class:`~mmbench.encoders.towers.TokenTower`
    (``arch="cnn"``: convolutions over ``kernel_sizes``; ``arch="bag"``: mean of embeddings)
    initialised from ``seed``.
    """

    modality = "text"
    fits_on_data = True
    trainable = True
    version = 1

    def __init__(
        self,
        arch: str = "cnn",
        vocab_size: int = 20000,
        max_len: int = 128,
        min_count: int = 1,
        embed_dim: int = 64,
        channels: int = 64,
        kernel_sizes: list[int] | tuple[int, ...] = (2, 3, 4),
        seed: int = 0,
    ) -> None:
        if arch not in ("cnn", "bag"):
            raise MMBenchError(f"textcnn option arch must be 'cnn' or 'bag', got {arch!r}")
        if vocab_size < 3 or max_len < 1 or not kernel_sizes:
            raise MMBenchError("textcnn needs vocab_size >= 3, max_len >= 1 and kernel sizes")
        super().__init__(
            "textcnn" if arch == "cnn" else "embbag",
            arch=arch,
            vocab_size=int(vocab_size),
            max_len=int(max_len),
            min_count=int(min_count),
            embed_dim=int(embed_dim),
            channels=int(channels),
            kernel_sizes=[int(k) for k in kernel_sizes],
            seed=int(seed),
        )
        self.vocab: dict[str, int] | None = None

    def fit(self, values: Any, labels: np.ndarray) -> TextCNNEncoder:
        counts = Counter(t for v in values if v is not None for t in tokenize(v))
        ranked = sorted(
            (w for w, c in counts.items() if c >= self.options["min_count"]),
            key=lambda w: (-counts[w], w),
        )
        self.vocab = {w: i + 2 for i, w in enumerate(ranked[: self.options["vocab_size"] - 2])}
        return self

    def transform(self, values: Any) -> np.ndarray:
        if self.vocab is None:
            raise _not_fitted(self)
        values = list(values)
        out = np.zeros((len(values), self.options["max_len"]), dtype=np.int64)
        for i in present_rows(values):
            ids = [self.vocab.get(t, 1) for t in tokenize(values[i])][: self.options["max_len"]]
            out[i, : len(ids)] = ids
        return out

    @property
    def tower_dim(self) -> int:
        o = self.options
        return o["embed_dim"] if o["arch"] == "bag" else o["channels"] * len(o["kernel_sizes"])

    def build_tower(self) -> Any:
        if self.vocab is None:
            raise _not_fitted(self)
        from mmbench.encoders.towers import TokenTower

        o = self.options
        with seeded(o["seed"]):
            return TokenTower(
                vocab_size=len(self.vocab) + 2,
                embed_dim=o["embed_dim"],
                arch=o["arch"],
                channels=o["channels"],
                kernel_sizes=o["kernel_sizes"],
            )


@register_encoder("embbag")
def _build_embbag(**options: Any) -> Encoder:
    return TextCNNEncoder(arch="bag", **options)
