"""The linear head: sparse n-grams and dense blocks in one regularized logistic regression."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import sparse

from mmbench.config import FusionSpec, TrainSpec
from mmbench.errors import MMBenchError
from mmbench.fusion import FUSIONS, FeatureSet, create_head


def toy(n: int = 300, seed: int = 0) -> FeatureSet:
    """Class 0/1/2; the sparse block holds a class word in half the rows, dense a weak signal."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    words = sparse.random(n, 50, density=0.05, random_state=seed, format="lil", dtype=np.float32)
    has_word = rng.random(n) < 0.5
    words[np.flatnonzero(has_word), y[has_word]] = 1.0
    dense = rng.normal(size=(n, 4)) + 0.8 * np.eye(3, 4)[y]
    return FeatureSet(
        features={"text": words.tocsr(), "tabular": dense.astype(np.float32)},
        present={"text": np.ones(n, bool), "tabular": np.ones(n, bool)},
        labels=y,
    )


def accuracy(head, data: FeatureSet) -> float:
    return float(np.mean(head.predict_proba(data).argmax(1) == data.labels))


def test_linear_head_uses_sparse_and_dense_blocks() -> None:
    train, valid = toy(600, 0), toy(300, 1)
    dims = {"text": 50, "tabular": 4}
    head = create_head(FusionSpec(name="linear"), TrainSpec(), dims, 3, seed=0).fit(train)
    proba = head.predict_proba(valid)
    assert proba.shape == (300, 3) and np.allclose(proba.sum(1), 1)
    both = accuracy(head, valid)
    text_only = create_head(FusionSpec(name="linear"), TrainSpec(), dims, 3, seed=0)
    text_only.fit(train.drop({"tabular"}))
    assert both > accuracy(text_only, valid.drop({"tabular"})) + 0.03
    assert both > 0.7


def test_missing_modality_rows_and_absent_classes() -> None:
    train = toy(200)
    keep = train.labels != 2  # class 2 never seen in training
    train = train.take(np.flatnonzero(keep))
    train.present["text"][:50] = False
    head = create_head(FusionSpec(name="linear"), TrainSpec(), {}, 3, seed=0).fit(train)
    proba = head.predict_proba(toy(40, 3).drop({"text"}))
    assert np.all(proba[:, 2] == 0) and np.allclose(proba.sum(1), 1)


def test_registry_declares_a_sparse_non_torch_head_with_a_searched_c() -> None:
    info = FUSIONS.meta("linear")
    assert info.sparse and not info.torch and "C" in info.search_space
    with pytest.raises(MMBenchError, match="C must be > 0"):
        create_head(FusionSpec(name="linear", options={"C": 0}), TrainSpec(), {}, 3, seed=0)


def test_torch_heads_reject_sparse_features_naming_the_alternatives() -> None:
    data = toy(60)
    head = create_head(
        FusionSpec(name="early"), TrainSpec(epochs=1), {"text": 50, "tabular": 4}, 3, seed=0
    )
    with pytest.raises(MMBenchError, match=r"needs dense features.*linear, xgboost"):
        head.fit(data)


@pytest.mark.parametrize("fusion", ["early", "xgboost", "lightgbm", "catboost"])
def test_an_expired_deadline_stops_training_between_units_of_work(fusion: str) -> None:
    from mmbench.budget import Deadline, DeadlineReached

    if fusion == "catboost":
        pytest.importorskip("catboost", reason="pip install 'mmbench[catboost]'")
    data = toy(200)
    data.features["text"] = data.features["text"].toarray()
    head = create_head(
        FusionSpec(name=fusion), TrainSpec(epochs=5), {"text": 50, "tabular": 4}, 3, seed=0
    )
    head.deadline = Deadline.after(-1.0)
    with pytest.raises(DeadlineReached, match=r"epoch 0|boosting round 0"):
        head.fit(data.take(np.arange(150)), data.take(np.arange(150, 200)))
