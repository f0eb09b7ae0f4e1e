"""The shared training loop, its regularisers and threshold tuning, at toy size on CPU."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from mmbench.config import TrainSpec
from mmbench.fusion.base import FeatureSet
from mmbench.fusion.catalog import build_early
from mmbench.training import (
    TrainingError,
    class_weights,
    fit_module,
    mixup,
    modality_dropout_mask,
    predict_logits,
    resolve_device,
    soft_loss,
    tune_binary_threshold,
)

DIMS = {"a": 6, "b": 4}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def make_data(n: int = 96, seed: int = 0, signal: float = 3.0, k: int = 2) -> FeatureSet:
    """Two modalities, the class visible in ``a``; ``b`` is noise and missing on a third."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    a = rng.normal(size=(n, DIMS["a"])).astype(np.float32)
    a[:, 0] += signal * y
    b = rng.normal(size=(n, DIMS["b"])).astype(np.float32)
    present = {"a": np.ones(n, bool), "b": rng.random(n) > 0.33}
    return FeatureSet({"a": a, "b": b}, present, y)


def spec(**kw: object) -> TrainSpec:
    base = {"epochs": 15, "batch_size": 32, "device": "cpu", "patience": None}
    return TrainSpec(**{**base, **kw})


def model(seed: int = 0, k: int = 2) -> nn.Module:
    torch.manual_seed(seed)
    return build_early(DIMS, k, 0.1, hidden=16)


def test_resolve_device() -> None:
    assert resolve_device("cpu") == "cpu"
    assert resolve_device("auto") == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(TrainingError, match="cuda"):
            resolve_device("cuda")


def test_class_weights_inverse_frequency() -> None:
    y = np.array([0, 0, 0, 1])
    w = class_weights(y, 3)
    assert w[1] / w[0] == pytest.approx(3.0)
    assert w[y].mean() == pytest.approx(1.0)
    assert w[2] == 1.0  # absent class


def test_soft_loss_matches_torch_cross_entropy_and_focal_is_smaller() -> None:
    logits = torch.randn(10, 3)
    y = torch.randint(0, 3, (10,))
    w = torch.tensor([1.0, 2.0, 0.5])
    onehot = nn.functional.one_hot(y, 3).float()
    expected = nn.functional.cross_entropy(logits, y, weight=w)
    assert soft_loss(logits, onehot, w).item() == pytest.approx(expected.item(), rel=1e-5)
    assert soft_loss(logits, onehot, w, gamma=2.0) < soft_loss(logits, onehot, w)


def test_modality_dropout_never_drops_every_present_modality() -> None:
    g = torch.Generator().manual_seed(0)
    present = torch.rand(500, 3, generator=g) > 0.3
    keep = modality_dropout_mask(present, 0.9, g)
    assert not (keep & ~present).any()  # never resurrects a missing modality
    rows = present.any(dim=1)
    assert keep[rows].any(dim=1).all()
    assert keep.sum() < 0.5 * present.sum()  # but does drop most


def test_mixup_mixes_floats_and_targets_but_not_token_ids() -> None:
    g = torch.Generator().manual_seed(0)
    x = {"img": torch.randn(8, 3), "tok": torch.randint(0, 50, (8, 5))}
    present = {"img": torch.ones(8, dtype=torch.bool), "tok": torch.ones(8, dtype=torch.bool)}
    targets = nn.functional.one_hot(torch.arange(8) % 2, 2).float()
    mixed, soft = mixup(x, present, targets, 0.7, g)
    assert torch.equal(mixed["tok"], x["tok"])
    assert not torch.equal(mixed["img"], x["img"])
    assert torch.allclose(soft.sum(dim=1), torch.ones(8))


def test_fits_and_is_deterministic() -> None:
    data = make_data()
    preds = []
    for _ in range(2):
        net = model()
        history = fit_module(net, data, None, spec(), 2, seed=3)
        preds.append(predict_logits(net, data, spec()))
    assert np.array_equal(preds[0], preds[1])
    assert history.epochs_run == 15 and not history.stopped_early
    assert history.train_loss[-1] < history.train_loss[0]
    assert (preds[0].argmax(1) == data.labels).mean() > 0.85


@pytest.mark.parametrize(
    "options",
    [
        {"loss": "focal", "focal_gamma": 2.0},
        {"balanced_sampling": True},
        {"modality_dropout": 0.5},
        {"mixup_alpha": 0.4},
        {"label_smoothing": 0.1},
        {"grad_clip": 0.05},
        {"grad_clip": None, "class_weight": False},
    ],
    ids=lambda o: ",".join(o),
)
def test_regularisers_train(options: dict[str, object]) -> None:
    data = make_data(k=3)
    net = model(k=3)
    history = fit_module(net, data, data, spec(epochs=4, **options), 3, seed=0)
    assert history.epochs_run == 4 and len(history.val_score) == 4
    assert np.isfinite(history.train_loss).all()


def test_early_stopping_restores_best_weights() -> None:
    train, valid = make_data(signal=0.0, seed=1), make_data(signal=0.0, seed=2)
    net = model()
    s = spec(epochs=200, patience=3, lr=0.02, class_weight=False)
    history = fit_module(net, train, valid, s, 2, seed=0)
    assert history.stopped_early and history.epochs_run < 200
    assert history.best_epoch == history.epochs_run - 1 - 3
    logits = torch.from_numpy(predict_logits(net, valid, s))
    loss = nn.functional.cross_entropy(logits, torch.from_numpy(valid.labels))
    assert loss.item() == pytest.approx(history.val_loss[history.best_epoch], rel=1e-4)


def test_on_epoch_is_called_each_epoch_and_may_raise() -> None:
    class Stop(Exception):
        pass

    calls: list[tuple[int, float]] = []

    def on_epoch(epoch: int, score: float) -> None:
        calls.append((epoch, score))
        if epoch == 2:
            raise Stop

    data = make_data()
    with pytest.raises(Stop):
        fit_module(model(), data, data, spec(), 2, seed=0, on_epoch=on_epoch)
    assert [e for e, _ in calls] == [0, 1, 2]
    assert all(0.0 <= s <= 1.0 for _, s in calls)


def test_nan_input_is_a_training_error_but_nan_in_missing_rows_is_fine() -> None:
    data = make_data()
    data.features["b"][~data.present["b"]] = np.nan
    fit_module(model(), data, None, spec(epochs=1), 2, seed=0)
    data.features["a"][5, 2] = np.nan
    with pytest.raises(TrainingError, match="'a'"):
        fit_module(model(), data, None, spec(epochs=1), 2, seed=0)


def test_non_finite_loss_names_the_epoch() -> None:
    class Exploding(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lin = nn.Linear(DIMS["a"], 2)

        def forward(self, x: dict[str, torch.Tensor], present: object) -> torch.Tensor:
            return self.lin(x["a"]) * float("inf")

    with pytest.raises(TrainingError, match="epoch 0"):
        fit_module(Exploding(), make_data(), None, spec(), 2, seed=0)


def test_compile_failure_falls_back_with_a_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: object, **kwargs: object) -> object:
        raise RuntimeError("no compiler here")

    monkeypatch.setattr(torch, "compile", broken)
    with pytest.warns(RuntimeWarning, match="torch.compile failed"):
        history = fit_module(model(), make_data(), None, spec(epochs=2, compile=True), 2, seed=0)
    assert history.epochs_run == 2


def test_tune_binary_threshold_finds_the_best_cut() -> None:
    y = np.array([0, 0, 0, 1, 0, 1, 1, 1])
    p = np.array([0.05, 0.1, 0.2, 0.3, 0.32, 0.4, 0.6, 0.9])
    t = tune_binary_threshold(y, p)
    assert 0.2 < t <= 0.3  # everything from 0.3 up: F1 = 8/9, the best achievable
    assert tune_binary_threshold(np.zeros(4), np.linspace(0, 1, 4)) == 0.5


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_bf16_training() -> None:
    data = make_data()
    net = model()
    history = fit_module(net, data, data, spec(device="auto"), 2, seed=0)
    assert history.device == "cuda"
    assert predict_logits(net, data, spec(device="auto")).dtype == np.float32
