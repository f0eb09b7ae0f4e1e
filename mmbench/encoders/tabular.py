"""Tabular encoder: imputed, scaled numerics and encoded categoricals via scikit-learn.

Fitted per fold on training rows only (medians, means, category lists all come from them). A
column is numeric when its dtype is numeric and not boolean; everything else (object, string,
category, bool) is categorical, with "missing" as a category of its own because *that* a value
is missing is often informative.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mmbench.encoders.base import Encoder, register_encoder, zeros_for_missing
from mmbench.errors import DataError, MMBenchError

MISSING_CATEGORY = "__missing__"


@register_encoder("tabular")
class TabularEncoder(Encoder):
    """Numerics: median imputation + missing indicators + standard scaling; categoricals:
    one-hot (``categorical: onehot``), integer codes (``ordinal``, meant for tree heads) or
    learned embeddings (``embedding``: a trainable tower, one ``embed_dim`` vector per column
    value, trained with the fusion head). ``splines: k`` adds a cubic B-spline basis on ``k``
    quantile knots per numeric column (beside the scaled value), a cheap non-linearity for the
    linear head.

    ``min_frequency``/``max_categories`` fold rare categories into one "infrequent" column;
    categories unseen in training encode as all zeros (one-hot) or -1 (ordinal). Rows whose
    every cell is missing get all-zero features like any missing modality.
    """

    modality = "tabular"
    fits_on_data = True
    version = 1

    def __init__(
        self,
        categorical: str = "onehot",
        min_frequency: int | float | None = None,
        max_categories: int | None = None,
        scale: bool = True,
        missing_indicators: bool = True,
        embed_dim: int = 8,
        hidden: int = 64,
        splines: int = 0,
    ) -> None:
        if categorical not in ("onehot", "ordinal", "embedding"):
            raise MMBenchError(
                "tabular option categorical must be 'onehot', 'ordinal' or 'embedding', "
                f"got {categorical!r}"
            )
        options: dict[str, Any] = {
            "categorical": categorical,
            "min_frequency": min_frequency,
            "max_categories": max_categories,
            "scale": bool(scale),
            "missing_indicators": bool(missing_indicators),
        }
        if categorical == "embedding":
            options.update(embed_dim=int(embed_dim), hidden=int(hidden))
        if splines:  # absent when off: cache keys of existing features unchanged
            if splines < 2:
                raise MMBenchError(f"tabular option splines must be 0 (off) or >= 2, got {splines}")
            options["splines"] = int(splines)
        super().__init__("tabular", **options)
        self.trainable = categorical == "embedding"
        self.numeric_columns: list[str] = []
        self.categorical_columns: list[str] = []
        self._transformer: Any = None
        self._fitted = False

    def fit(self, values: Any, labels: np.ndarray) -> TabularEncoder:
        from pandas.api.types import is_bool_dtype, is_numeric_dtype

        frame = _string_columns(values)
        self.numeric_columns = [
            c for c in frame if is_numeric_dtype(frame[c]) and not is_bool_dtype(frame[c])
        ]
        self.categorical_columns = [c for c in frame if c not in set(self.numeric_columns)]
        present = np.asarray(~frame.isna().all(axis=1))
        self._transformer = None
        if present.any() and len(frame.columns):
            self._transformer = self._build().fit(self._prepare(frame[present]))
        self._fitted = True
        return self

    def _build(self) -> Any:
        """The sklearn ColumnTransformer described in the class docstring."""
        from sklearn.compose import ColumnTransformer
        from sklearn.impute import SimpleImputer
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler

        o = self.options
        numeric = [
            SimpleImputer(
                strategy="median",
                add_indicator=o["missing_indicators"],
                keep_empty_features=True,
            )
        ]
        if o["scale"]:
            numeric.append(StandardScaler())
        rare = {"min_frequency": o["min_frequency"], "max_categories": o["max_categories"]}
        if o["categorical"] == "onehot":
            unknown = "ignore" if rare == dict.fromkeys(rare) else "infrequent_if_exist"
            cat: Any = OneHotEncoder(
                handle_unknown=unknown, sparse_output=False, dtype=np.float32, **rare
            )
        else:  # ordinal codes; "embedding" shifts them by one so that unseen (-1) becomes 0
            cat = OrdinalEncoder(
                handle_unknown="use_encoded_value", unknown_value=-1, dtype=np.float32, **rare
            )
        splines = []
        if o.get("splines"):  # cubic B-splines of each number: non-linearity for linear heads
            from sklearn.preprocessing import SplineTransformer

            basis = SplineTransformer(n_knots=o["splines"], degree=3, knots="quantile")
            imputed = SimpleImputer(strategy="median", keep_empty_features=True)
            splines = [("spl", make_pipeline(imputed, basis), self.numeric_columns)]
        return ColumnTransformer(
            [
                ("num", make_pipeline(*numeric), self.numeric_columns),
                *splines,
                ("cat", cat, self.categorical_columns),
            ],
            sparse_threshold=0.0,
            verbose_feature_names_out=False,
        )

    def _prepare(self, frame: Any) -> Any:
        """Numerics as float64 (NaN for missing or unparsable), categoricals as strings."""
        import pandas as pd

        numeric = frame[self.numeric_columns].apply(pd.to_numeric, errors="coerce")
        cats = frame[self.categorical_columns].astype(object)
        cats = cats.where(cats.notna(), MISSING_CATEGORY).astype(str)
        return pd.concat([numeric.astype("float64"), cats], axis=1)

    def categorical_codes(self, values: Any) -> int:
        """How many trailing output columns are category codes (``ordinal`` only, else 0).

        Read from the column dtypes alone, so it is known for cached features too.
        """
        if self.options["categorical"] != "ordinal":
            return 0
        from pandas.api.types import is_bool_dtype, is_numeric_dtype

        frame = _string_columns(values)
        if not len(frame.columns) or frame.isna().all(axis=1).all():
            return 0  # no transformer: one zero column
        return sum(not is_numeric_dtype(frame[c]) or is_bool_dtype(frame[c]) for c in frame)

    @property
    def feature_names(self) -> list[str]:
        """Output column names (``age``, ``missingindicator_age``, ``city_Paris``...)."""
        if self._transformer is None:
            return []
        return [str(n) for n in self._transformer.get_feature_names_out()]

    def transform(self, values: Any) -> np.ndarray:
        if not self._fitted:
            raise RuntimeError("encoder 'tabular' must be fitted before transform")
        frame = _string_columns(values)
        if self._transformer is None:
            return np.zeros((len(frame), 1), dtype=np.float32)
        missing = [c for c in (*self.numeric_columns, *self.categorical_columns) if c not in frame]
        if missing:
            raise DataError(f"tabular columns seen in training are missing: {missing}")
        features = self._transformer.transform(self._prepare(frame))
        if self.options["categorical"] == "embedding" and self.categorical_columns:
            features[:, -len(self.categorical_columns) :] += 1.0
        return zeros_for_missing(features, np.asarray(~frame.isna().all(axis=1)))

    @property
    def tower_dim(self) -> int:
        return int(self.options["hidden"]) if self.trainable else super().tower_dim

    def build_tower(self) -> Any:
        """Embeddings sized by the categories seen in the training rows."""
        if not self.trainable:
            return super().build_tower()
        if not self._fitted:
            raise RuntimeError("encoder 'tabular' must be fitted before build_tower")
        from mmbench.encoders.towers import TabularTower

        cardinalities: list[int] = []
        if self._transformer is not None and self.categorical_columns:
            cats = self._transformer.named_transformers_["cat"].categories_
            cardinalities = [len(c) for c in cats]
        n_numeric = max(0, len(self.feature_names) - len(cardinalities))
        return TabularTower(
            n_numeric, cardinalities, self.options["embed_dim"], self.options["hidden"]
        )


def _string_columns(values: Any) -> Any:
    """A copy whose column labels are strings, which sklearn's column selection requires."""
    import pandas as pd

    if not isinstance(values, pd.DataFrame):
        raise DataError(f"tabular values must be a pandas DataFrame, got {type(values).__name__}")
    frame = values.copy()
    frame.columns = [str(c) for c in frame.columns]
    if frame.columns.duplicated().any():
        dupes = sorted(set(frame.columns[frame.columns.duplicated()]))
        raise DataError(f"tabular column names are not unique: {dupes}")
    return frame
