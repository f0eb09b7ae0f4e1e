"""Known-strong starting points: every study first runs a small portfolio, cheapest first.

A sampler needs several finished trials before it samples well, and at a fixed wall-clock budget
a slow random first trial can eat the budget. So a study begins with configurations that are
strong across many datasets (they are not tuned to any one): a class-balanced linear model, then
LightGBM trees (ours, then AutoGluon's default), over sparse n-grams, one-hot categoricals and
cheap media features — results within seconds — then the same heads over pretrained image
features, then a small MLP over dense features, then XGBoost, then CatBoost in the first
configuration of AutoGluon's zero-shot portfolio. Each entry names Optuna parameters of the
default space; values the suite's space does not offer are dropped and left to the sampler. An
encoder given for a kind (``encoder.sensor``) is given to each of the dataset's modalities of
that kind (``encoder.sensor_accel``, ``encoder.sensor_gyro``).
"""

from __future__ import annotations

from typing import Any

from mmbench import modality_kind
from mmbench.config import Range
from mmbench.space import SearchSpace, as_list

CHEAP_MEDIA = {
    "encoder.image": "pixels",
    "encoder.image.pixels.size": 8,
    "encoder.audio": "logmel",
    "encoder.sensor": "sensor_stats",
    "encoder.video": "frames/pixels",
    "encoder.video.frames/pixels.size": 8,
    "encoder.video.frames/pixels.pooling": "mean",
}
PRETRAINED = {
    "encoder.image": "efficientnet_lite0",
    "encoder.image.efficientnet_lite0.image_size": 96,  # a cheap fidelity; 128/224 searched
    "encoder.text": "minilm",
    "encoder.audio": "logmel",
    "encoder.sensor": "minirocket",  # random convolutions: no weights, fitted per fold
    "encoder.tabular.tabular.splines": 0,
    "encoder.video": "frames/efficientnet_lite0",
    "encoder.video.frames/efficientnet_lite0.pooling": "mean",
}
SPARSE_TEXT = {"encoder.text": "tfidf", "encoder.text.tfidf.sparse": True}
COUNTED_TEXT = {"encoder.text": "ngrams", "encoder.text.ngrams.max_features": 256}
PLAIN_TABULAR = {"encoder.tabular.tabular.splines": 0}  # splines cost the linear head 2-8x

PORTFOLIO: list[dict[str, Any]] = [
    # seconds: sparse n-grams, one-hot categoricals, raw thumbnails, log-mel statistics
    {"fusion": "linear", "fusion.linear.C": 1.0, **SPARSE_TEXT, **CHEAP_MEDIA, **PLAIN_TABULAR},
    # boosted trees on the same features: where the signal is in tabular interactions
    # (benchmarks/trees.py: ~10 s for 5 folds of 20k rows on one thread)
    {
        "fusion": "lightgbm",
        "fusion.lightgbm.n_estimators": 200,
        "fusion.lightgbm.num_leaves": 15,
        "fusion.lightgbm.learning_rate": 0.1,
        **SPARSE_TEXT,
        **CHEAP_MEDIA,
        **PLAIN_TABULAR,
    },
    # AutoGluon-Tabular's default LightGBM: learning rate 0.05 and LightGBM's own 31 leaves
    # (autogluon.tabular models/lgb/hyperparameters/parameters.py; AutoGluon early-stops up to
    # 10,000 rounds, here at most 400), the `{}` GBM entry of its zero-shot portfolio learned on
    # TabRepo's datasets (autogluon.tabular configs/zeroshot/zeroshot_portfolio_2023.py);
    # benchmarks/trees.py "lgbm native slow"
    {
        "fusion": "lightgbm",
        "fusion.lightgbm.n_estimators": 400,
        "fusion.lightgbm.num_leaves": 31,
        "fusion.lightgbm.learning_rate": 0.05,
        **SPARSE_TEXT,
        **CHEAP_MEDIA,
        **PLAIN_TABULAR,
    },
    # pretrained representations (encoded once, then cached for every later trial)
    {"fusion": "linear", "fusion.linear.C": 1.0, **PRETRAINED},
    {"fusion": "early", "fusion.early.hidden": 256, **PRETRAINED},
    {
        "fusion": "xgboost",
        "fusion.xgboost.n_estimators": 200,
        "fusion.xgboost.max_depth": 4,
        "fusion.xgboost.learning_rate": 0.1,
        **PRETRAINED,
    },
    # CatBoost last: several times slower than LightGBM per round, most of all with many classes
    # (benchmarks/README.md §11). The first learned CatBoost configuration of AutoGluon's
    # zero-shot portfolio (CAT_r177 in zeroshot_portfolio_2023.py: depth 6, l2_leaf_reg 2.15,
    # learning rate 0.069, one_hot_max_size 10; its max_ctr_complexity 4 is CatBoost's default),
    # on capped n-gram counts, the dense text CatBoost takes
    {
        "fusion": "catboost",
        "fusion.catboost.n_estimators": 400,
        "fusion.catboost.depth": 6,
        "fusion.catboost.l2_leaf_reg": 2.1542798306067823,
        "fusion.catboost.learning_rate": 0.06864209415792857,
        "fusion.catboost.one_hot_max_size": 10,
        **COUNTED_TEXT,
        **CHEAP_MEDIA,
        **PLAIN_TABULAR,
    },
]


def portfolio(space: SearchSpace, modalities: list[str]) -> list[dict[str, Any]]:
    """The portfolio entries that fit ``space``, restricted to ``modalities``, duplicates removed."""
    out: list[dict[str, Any]] = []
    for entry in PORTFOLIO:
        named = _by_modality(entry, modalities)
        params = {k: v for k, v in named.items() if _offered(space, modalities, k, v)}
        if params.get("fusion") == entry["fusion"] and params not in out:
            out.append(params)
    return out


def _by_modality(entry: dict[str, Any], modalities: list[str]) -> dict[str, Any]:
    """``encoder.<kind>...`` as ``encoder.<modality>...`` for each named modality of that kind."""
    out: dict[str, Any] = {}
    for name, value in entry.items():
        parts = name.split(".")
        if parts[0] == "encoder" and parts[1] not in modalities:
            for m in modalities:
                if modality_kind(m) == parts[1] and m != parts[1]:
                    out[".".join(["encoder", m, *parts[2:]])] = value
        out.setdefault(name, value)
    return out


def _offered(space: SearchSpace, modalities: list[str], name: str, value: Any) -> bool:
    """Whether the space can produce ``value`` for Optuna parameter ``name``."""
    if name == "fusion":
        return value in space.fusions()
    if name.startswith("encoder."):
        parts = name.split(".")
        if parts[1] not in modalities:
            return False
        if len(parts) == 2:
            kind = modality_kind(parts[1])
            return value in as_list(space.encoders.get(parts[1], space.encoders.get(kind, [])))
        return _contains(space.encoder_options.get(parts[2], {}).get(parts[3]), value)
    _, fusion, option = name.split(".", 2)
    return _contains(space.fusion_options.get(fusion, {}).get(option), value)


def _contains(param: Any, value: Any) -> bool:
    if isinstance(param, Range):
        return param.low <= value <= param.high
    if isinstance(param, list):
        return value in param
    return False
