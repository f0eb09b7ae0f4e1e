"""Fusion heads: shapes, missing-modality handling, learning, towers and the factory."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import numpy as np
import pytest
import torch
from torch import nn

from mmbench.config import FusionSpec, TrainSpec
from mmbench.errors import MMBenchError, UnknownNameError
from mmbench.fusion import FUSIONS, FeatureSet, create_head

TORCH_FUSIONS = ["early", "late", "hybrid", "attention", "gated"]
TREES = [
    "xgboost",
    "lightgbm",
    pytest.param(
        "catboost",
        marks=pytest.mark.skipif(
            importlib.util.find_spec("catboost") is None, reason="pip install 'mmbench[catboost]'"
        ),
    ),
]
DIMS = {"image": 8, "text": 6, "tabular": 3}
FAST = TrainSpec(epochs=25, batch_size=32, lr=0.01, device="cpu", patience=None, dropout=0.1)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def make_data(n: int = 150, k: int = 3, seed: int = 0, signal: float = 4.0) -> FeatureSet:
    """Three modalities, the class visible only in ``image``; text and tabular often missing."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % k
    rng.shuffle(y)
    feats = {m: rng.normal(size=(n, d)).astype(np.float32) for m, d in DIMS.items()}
    feats["image"][:, 0] += signal * y
    present = {
        "image": rng.random(n) > 0.05,
        "text": rng.random(n) > 0.4,
        "tabular": rng.random(n) > 0.3,
    }
    for m in feats:
        feats[m][~present[m]] = 0.0
    return FeatureSet(feats, present, y)


def head(name: str, k: int, training: TrainSpec = FAST, **options: object):
    return create_head(FusionSpec(name=name, options=options), training, DIMS, k, seed=0)


def test_import_does_not_load_torch_or_xgboost() -> None:
    code = "import sys, mmbench.fusion; print('torch' in sys.modules or 'xgboost' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("k", [2, 3])
@pytest.mark.parametrize("name", TORCH_FUSIONS)
def test_module_output_shape(name: str, k: int) -> None:
    module = FUSIONS.get(name)(DIMS, k, 0.1)
    x = {m: torch.randn(5, d) for m, d in DIMS.items()}
    present = {m: torch.tensor([True, False, True, True, False]) for m in DIMS}
    present["image"][4] = True
    assert module(x, present).shape == (5, k)


@pytest.mark.parametrize("name", TORCH_FUSIONS)
def test_masked_values_do_not_influence_outputs_or_gradients(name: str) -> None:
    torch.manual_seed(0)
    module = FUSIONS.get(name)(DIMS, 3, 0.0)
    x = {m: torch.randn(6, d) for m, d in DIMS.items()}
    present = {m: torch.rand(6) > 0.5 for m in DIMS}
    present["image"][:3] = False
    present["text"][:3] = False
    present["tabular"][0] = False  # row 0: nothing present
    changed = {
        m: torch.where(present[m][:, None], v, torch.full_like(v, 1e6)) for m, v in x.items()
    }
    nans = {
        m: torch.where(present[m][:, None], v, torch.full_like(v, float("nan")))
        for m, v in x.items()
    }
    for training in (True, False):
        module.train(training)
        out = module(x, present)
        assert torch.equal(out, module(changed, present))
        assert torch.equal(out, module(nans, present))
    module(nans, present).sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in module.parameters() if p.grad is not None)


@pytest.mark.parametrize("name", [*TORCH_FUSIONS, "xgboost"])
def test_learns_a_separable_problem_with_missing_modalities(name: str) -> None:
    data = make_data(n=300)
    train, test = data.take(np.arange(220)), data.take(np.arange(220, 300))
    options = {"n_jobs": 1, "n_estimators": 40} if name == "xgboost" else {}
    model = head(name, 3, **options).fit(train)
    proba = model.predict_proba(test)
    assert proba.shape == (80, 3)
    assert np.allclose(proba.sum(axis=1), 1.0)
    assert (proba.argmax(axis=1) == test.labels).mean() > 0.8  # chance is 1/3


@pytest.mark.parametrize("name", ["attention", "gated"])
def test_binary_head_with_validation_and_a_dropped_modality(name: str) -> None:
    data = make_data(k=2)
    model = head(name, 2, FAST.model_copy(update={"patience": 3})).fit(
        data.take(np.arange(100)), data.take(np.arange(100, 150))
    )
    assert model.predict_proba(data.drop(["text", "tabular"])).shape == (150, 2)
    info = model.info()
    assert info["epochs_run"] <= 25 and info["best_epoch"] is not None


@pytest.mark.parametrize("name", ["late", "hybrid", "gated"])
def test_modality_weights_are_reported(name: str) -> None:
    model = head(name, 3).fit(make_data())
    weights = model.info()["modality_weights"]
    assert sum(weights.values()) == pytest.approx(1.0, abs=1e-4)
    if name == "hybrid":  # default: the first two modalities form the early branch
        assert set(weights) == {"image+text", "tabular"}
    else:
        assert max(weights, key=weights.get) == "image"


def test_same_seed_same_predictions() -> None:
    data = make_data()
    a = head("attention", 3, modality_dropout := FAST.model_copy(update={"modality_dropout": 0.3}))
    b = head("attention", 3, modality_dropout)
    assert np.array_equal(a.fit(data).predict_proba(data), b.fit(data).predict_proba(data))


class BagTower(nn.Module):
    """A tiny fine-tunable text encoder: mean of token embeddings."""

    out_dim = 6

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.EmbeddingBag(50, self.out_dim, mode="mean")

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.embed(tokens)


def test_towers_train_jointly_on_token_ids() -> None:
    data = make_data(k=2)
    rng = np.random.default_rng(0)
    tokens = rng.integers(1, 50, size=(len(data), 7))
    tokens[:, 0] = 1 + data.labels  # the class is in the first token
    data.features["text"] = tokens
    data.present["text"] = np.ones(len(data), bool)
    data.features["image"][:] = 0.0  # only the tower can solve it
    tower = BagTower()
    before = tower.embed.weight.detach().clone()
    model = create_head(
        FusionSpec(name="early"), FAST, DIMS, 2, seed=0, towers={"text": tower}
    ).fit(data)
    assert not torch.equal(before, tower.embed.weight.detach())
    assert (model.predict_proba(data).argmax(axis=1) == data.labels).mean() > 0.9


@pytest.mark.parametrize("name", TREES)
@pytest.mark.parametrize("k", [2, 3])
def test_trees_with_missing_modality_and_early_stopping(name: str, k: int) -> None:
    data = make_data(k=k)
    data.features["text"][~data.present["text"]] = np.nan  # masked values are ignored
    model = head(name, k, n_jobs=1, n_estimators=300, early_stopping_rounds=5)
    model.fit(data.take(np.arange(100)), data.take(np.arange(100, 150)))
    proba = model.predict_proba(data.drop(["tabular"]))
    assert proba.shape == (150, k) and np.allclose(proba.sum(axis=1), 1.0)
    info = model.info()
    assert info["n_trees"] < 300
    assert max(info["modality_importance"], key=info["modality_importance"].get) == "image"


def test_unknown_names_and_options_suggest_the_closest() -> None:
    with pytest.raises(UnknownNameError, match="did you mean 'attention'"):
        head("atention", 2)
    with pytest.raises(UnknownNameError, match="did you mean 'xgboost'"):
        head("xgbost", 2)
    with pytest.raises(MMBenchError, match="did you mean 'hidden'"):
        head("early", 2, hiden=32)
    with pytest.raises(MMBenchError, match="did you mean 'text'"):
        head("hybrid", 2, early=["image", "txt"])
    with pytest.raises(MMBenchError, match="fine-tune"):
        create_head(FusionSpec(name="xgboost"), FAST, DIMS, 2, seed=0, towers={"text": BagTower()})


def test_feature_scale_does_not_decide_the_fusion() -> None:
    """Frozen features are standardized on training rows: a modality's scale alone (dB-valued
    audio statistics next to unit embeddings) must not change what the head learns."""
    data = make_data(n=300)
    scaled = FeatureSet(
        {**data.features, "text": data.features["text"] * 1000.0}, data.present, data.labels
    )
    train_idx, test_idx = np.arange(220), np.arange(220, 300)
    plain = head("early", 3).fit(data.take(train_idx)).predict_proba(data.take(test_idx))
    loud = head("early", 3).fit(scaled.take(train_idx)).predict_proba(scaled.take(test_idx))
    np.testing.assert_allclose(plain, loud, atol=1e-3)


@pytest.mark.parametrize("sparse_text", [False, True])
@pytest.mark.parametrize("name", TREES)
def test_trees_split_natively_on_declared_category_codes(name: str, sparse_text: bool) -> None:
    """One stump separates a class that is an unordered set of categories (codes 0, 3 and 5
    of 8) only when the codes are categories: code 0 counts as a category also beside sparse
    n-grams (whose absent entries are missing), and -1 (unseen) as missing."""
    from scipy import sparse

    rng = np.random.default_rng(0)
    n = 2000  # LightGBM wants 100 rows per category group by default
    code = rng.integers(0, 8, n).astype(np.float32)
    y = np.isin(code, [0, 3, 5]).astype(np.int64)
    tabular = np.c_[rng.normal(size=n), code].astype(np.float32)  # one numeric, one code column
    text = rng.random((n, 5)).astype(np.float32)
    feats = {"text": sparse.csr_matrix(text) if sparse_text else text, "tabular": tabular}
    present = {m: np.ones(n, dtype=bool) for m in feats}
    data = FeatureSet(feats, present, y, meta={"categorical": {"tabular": 1}})
    dims = {"text": 5, "tabular": 2}
    stump = {
        "xgboost": {"max_depth": 1},
        "lightgbm": {"num_leaves": 2, "min_child_samples": 5},
        "catboost": {"depth": 1},
    }[name]
    accuracy = {}
    for native in (True, False):
        model = create_head(
            FusionSpec(
                name=name,
                options={"n_estimators": 1, "learning_rate": 1.0, **stump,
                         "n_jobs": 1, "categorical": native},
            ),
            FAST, dims, 2, seed=0,
        ).fit(data.take(np.arange(1500)))  # fmt: skip
        held_out = data.take(np.arange(1500, n))
        held_out.meta = {}  # predicting needs no metadata: the head remembers its columns
        accuracy[native] = (model.predict_proba(held_out).argmax(1) == y[1500:]).mean()
    assert accuracy[True] == 1.0 and accuracy[False] < 0.9
    unseen = data.take(np.arange(5))
    unseen.features["tabular"][:, 1] = -1.0
    assert np.isfinite(model.predict_proba(unseen)).all()


@pytest.mark.parametrize("name", TREES)
def test_trees_give_every_class_a_column_when_training_lacks_one(name: str) -> None:
    """A fold's training rows may miss a rare class: its column is there, with probability 0."""
    data = make_data(k=2)
    model = head(name, 3, n_jobs=1, n_estimators=10).fit(data)
    proba = model.predict_proba(data)
    assert proba.shape == (150, 3) and (proba[:, 2] == 0).all()
    assert np.allclose(proba.sum(axis=1), 1.0)


def test_catboost_threads_follow_the_runs_share_of_the_cores(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """CatBoost's thread pool ignores ``OMP_NUM_THREADS``, a worker's share: the head reads it."""
    pytest.importorskip("catboost", reason="pip install 'mmbench[catboost]'")
    from mmbench.fusion.catboost import run_threads

    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert run_threads() == 3
    big = np.zeros((2_000, 1_000), dtype=np.float32)  # at the single-thread limit
    model = head("catboost", 2)
    assert model._n_jobs(big, every_core=run_threads()) == 3
    assert model._n_jobs(big[:10], every_core=run_threads()) == 1
    assert head("catboost", 2, n_jobs=2)._n_jobs(big, every_core=3) == 2
    monkeypatch.delenv("OMP_NUM_THREADS")
    assert run_threads() == -1
    data = make_data()
    fitted = head("catboost", 3, n_estimators=5).fit(data)
    assert fitted.model.get_params()["thread_count"] == 1


@pytest.mark.parametrize("name", TREES)
def test_fitted_trees_pickle_with_their_predictions(name: str) -> None:
    """Saved pipelines pickle their heads: no callback or budget may stay attached."""
    import pickle

    data = make_data()
    model = head(name, 3, n_jobs=1, n_estimators=20)
    model.fit(data.take(np.arange(100)), data.take(np.arange(100, 150)))
    again = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(again.predict_proba(data), model.predict_proba(data))
    assert again.info() == model.info()
