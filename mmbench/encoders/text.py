"""Text as n-grams: TF-IDF (+SVD) and capped n-gram counts.

Both learn a vocabulary, so they are fitted per fold on training rows only. Pretrained sentence
embeddings are in :mod:`mmbench.encoders.sentence`, token-id towers trained with the head in
:mod:`mmbench.encoders.tokens`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mmbench.encoders._util import present_rows
from mmbench.encoders.base import Encoder, register_encoder
from mmbench.errors import MMBenchError


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
