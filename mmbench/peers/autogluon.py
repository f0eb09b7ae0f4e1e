"""``autogluon``: AutoGluon's ``TabularPredictor`` under the same time limit, on the same rows.

AutoGluon handles the ``text`` column with its own n-gram features and the pixel/MFCC columns
as numbers. It is an optional extra (``pip install 'mmbench[peers]'``) and imported only here,
when the peer is fitted.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from mmbench.peers.base import PeerModel, importable, register_peer
from mmbench.peers.frame import TEXT_COLUMN

LABEL_COLUMN = "__mmbench_label__"
AUTOGLUON_PRESETS = "medium_quality"
AUTOGLUON_METRICS = {
    "f1_macro": "f1_macro",
    "balanced_accuracy": "balanced_accuracy",
    "accuracy": "accuracy",
    "log_loss": "log_loss",
    "roc_auc": "roc_auc",
    "pr_auc": "average_precision",
}
"""mmbench metric -> AutoGluon ``eval_metric``; AutoGluon picks and weights models by it."""
AUTOGLUON_CPUS = 1
"""One core per model: on 2 shared cores, ``num_cpus="auto"`` let LightGBM's threads spin-wait
(one 150-row fit 19.8 s against 2.7 s, and two models in a 30 s limit instead of five); mmbench's
own heads train on one thread for the same reason."""


def autogluon_metric(metric: str, n_classes: int) -> str:
    """AutoGluon's name for the harness's primary ``metric``.

    AutoGluon selects and ensembles its models on this metric, as mmbench's search does on the
    primary metric, so both are tuned towards what they are ranked by. Ranking metrics have no
    multiclass form in AutoGluon's binary names: ROC-AUC becomes one-vs-rest macro, PR-AUC falls
    back to log-loss (a proper score that also ranks well).
    """
    if n_classes > 2 and metric == "roc_auc":
        return "roc_auc_ovr_macro"
    if n_classes > 2 and metric == "pr_auc":
        return "log_loss"
    return AUTOGLUON_METRICS.get(metric, "log_loss")


@register_peer(
    "autogluon",
    f"AutoGluon TabularPredictor ({AUTOGLUON_PRESETS} preset, its own text n-gram features) "
    "under the same time limit",
    requires=("autogluon.tabular",),
    extra="peers",
)
def _fit_autogluon(
    frame: pd.DataFrame,
    y: np.ndarray,
    n_classes: int,
    seed: int,
    time_limit_s: float | None,
    metric: str,
) -> PeerModel:
    """A TabularPredictor in a temporary folder that lives as long as the returned model.

    ``seed`` is not used: AutoGluon seeds every model with its own fixed default (0), and
    ``ag_args_fit={"random_seed": ...}`` is ignored by 1.6 (checked on the fitted models).
    """
    from autogluon.tabular import TabularPredictor

    workdir = tempfile.TemporaryDirectory(prefix="mmbench-autogluon-")
    data = frame.copy()
    data[LABEL_COLUMN] = y
    predictor = TabularPredictor(
        label=LABEL_COLUMN,
        problem_type="binary" if n_classes == 2 else "multiclass",
        eval_metric=autogluon_metric(metric, n_classes),
        path=workdir.name,
        verbosity=0,
    )
    predictor.fit(
        data,
        time_limit=time_limit_s,
        presets=AUTOGLUON_PRESETS,
        feature_metadata=_autogluon_features(data),
        # the harness fits the decision rule on every candidate's out-of-fold probabilities,
        # AutoGluon's as mmbench's own (mmbench.evaluation.decide): a second, private
        # threshold here would give this row a rule the others do not get
        calibrate_decision_threshold=False,
        num_cpus=AUTOGLUON_CPUS,
        # FastAI's network is not in the extra; without it AutoGluon warns and skips it anyway
        excluded_model_types=[] if importable("fastai") else ["FASTAI"],
    )
    return _AutoGluon(predictor, workdir, n_classes)


def _autogluon_features(data: pd.DataFrame) -> Any:
    """Inferred types, with ``text`` always text: short names would otherwise pass as categories."""
    from autogluon.tabular import FeatureMetadata

    metadata = FeatureMetadata.from_df(data.drop(columns=[LABEL_COLUMN]))
    inferred_text = metadata.get_features(required_special_types=["text"])
    if TEXT_COLUMN in data.columns and TEXT_COLUMN not in inferred_text:
        metadata = metadata.add_special_types({TEXT_COLUMN: ["text"]})
    return metadata


@dataclass
class _AutoGluon:
    predictor: Any
    workdir: tempfile.TemporaryDirectory[str]
    n_classes: int

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        proba = self.predictor.predict_proba(frame, as_multiclass=True)
        return proba.reindex(columns=range(self.n_classes), fill_value=0.0).to_numpy(dtype=float)
