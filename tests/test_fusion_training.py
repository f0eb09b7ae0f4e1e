"""The shared torch training loop and what each regulariser does to it, at toy size on CPU."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from mmbench.config import TrainSpec
from mmbench.evaluation import macro_f1
from mmbench.fusion.base import FeatureSet
from mmbench.fusion.catalog import build_early
from mmbench.fusion.training import TrainingError, fit_module, predict_logits

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


class Recorder(nn.Module):
    """An early-fusion module that keeps a copy of every training batch it is given."""

    def __init__(self, k: int = 2, seed: int = 0) -> None:
        super().__init__()
        self.inner = model(seed, k)
        self.batches: list[tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]] = []

    def forward(self, x: dict[str, torch.Tensor], present: dict[str, torch.Tensor]) -> torch.Tensor:
        if self.training:
            copy = {m: v.detach().clone() for m, v in x.items()}
            self.batches.append((copy, {m: p.clone() for m, p in present.items()}))
        return self.inner(x, present)

    def seen(self, m: str) -> tuple[torch.Tensor, torch.Tensor]:
        """Every training row of modality ``m`` and its presence flag, over all batches."""
        return (
            torch.cat([x[m] for x, _ in self.batches]),
            torch.cat([p[m] for _, p in self.batches]),
        )


def labelled_data(n: int = 120, minority: float = 0.5, seed: int = 0) -> FeatureSet:
    """``a[:, 0]`` is the label itself, so a recorded row tells its class (and whether mixed)."""
    data = make_data(n, seed=seed)
    rng = np.random.default_rng(seed)
    data.labels = (rng.random(n) < minority).astype(np.int64)
    data.features["a"][:, 0] = data.labels
    data.present["b"][:] = True
    return data


def test_label_smoothing_keeps_the_training_loss_above_the_target_entropy() -> None:
    """Smoothed targets cannot be fitted exactly: the loss stays above their entropy."""
    data, k, eps = make_data(k=3, signal=6.0), 3, 0.3
    target = np.array([1 - eps + eps / k] + [eps / k] * (k - 1))
    entropy = float(-(target * np.log(target)).sum())
    losses = {}
    for smoothing in (0.0, eps):
        s = spec(epochs=40, lr=0.03, label_smoothing=smoothing, class_weight=False)
        losses[smoothing] = min(fit_module(model(k=k), data, None, s, k, seed=0).train_loss)
    assert losses[eps] >= entropy - 1e-6
    assert losses[0.0] < 0.5 * entropy  # without smoothing the same model goes well below


def test_modality_dropout_drops_whole_modalities_in_training_only() -> None:
    data, net = labelled_data(), Recorder()
    fit_module(net, data, None, spec(epochs=3, modality_dropout=0.5), 2, seed=0)
    a, a_present = net.seen("a")
    b, b_present = net.seen("b")
    assert 0.25 < 1 - a_present.float().mean() < 0.6  # every row was present in the data
    assert (a[~a_present] == 0).all() and (b[~b_present] == 0).all()
    assert (a_present | b_present).all()  # never both
    net.batches.clear()
    fit_module(net, data, None, spec(epochs=1), 2, seed=0)
    assert net.seen("a")[1].all()


def test_mixup_trains_on_mixed_rows_and_targets() -> None:
    data, net = labelled_data(), Recorder()
    fit_module(net, data, None, spec(epochs=3, mixup_alpha=0.4), 2, seed=0)
    label_feature = net.seen("a")[0][:, 0]
    mixed = (label_feature != 0) & (label_feature != 1)  # between the two classes' rows
    assert mixed.float().mean() > 0.3
    assert (label_feature >= 0).all() and (label_feature <= 1).all()
    net.batches.clear()
    fit_module(net, data, None, spec(epochs=1), 2, seed=0)
    assert set(net.seen("a")[0][:, 0].tolist()) == {0.0, 1.0}


def test_balanced_sampling_draws_classes_evenly() -> None:
    data = labelled_data(n=200, minority=0.15)
    shares = {}
    for balanced in (False, True):
        net = Recorder()
        fit_module(net, data, None, spec(epochs=5, balanced_sampling=balanced), 2, seed=0)
        shares[balanced] = float(net.seen("a")[0][:, 0].mean())
    assert shares[False] < 0.25
    assert 0.4 < shares[True] < 0.6


def test_class_weights_shift_predictions_toward_the_minority() -> None:
    data = make_data(n=200, signal=0.0, seed=4)
    data.labels = (np.arange(200) < 20).astype(np.int64)  # 10% minority, weakly visible
    data.features["a"][:, 0] += data.labels
    predicted = {}
    for weighted in (False, True):
        s = spec(epochs=20, class_weight=weighted)
        net = model()
        fit_module(net, data, None, s, 2, seed=0)
        predicted[weighted] = float((predict_logits(net, data, s).argmax(1) == 1).mean())
    assert predicted[True] > predicted[False] + 0.1  # seen: 0.20 vs 0.03


def test_grad_clip_bounds_the_gradient_norm_of_each_step() -> None:
    from torch.optim.optimizer import register_optimizer_step_pre_hook

    norms: list[float] = []

    def record(optimizer: torch.optim.Optimizer, args: object, kwargs: object) -> None:
        grads = [p.grad for group in optimizer.param_groups for p in group["params"]]
        norms.append(float(torch.linalg.vector_norm(torch.stack([g.norm() for g in grads]))))

    handle = register_optimizer_step_pre_hook(record)
    try:
        steps = {}
        for clip in (None, 0.05):
            norms.clear()
            fit_module(
                model(), make_data(), None, spec(epochs=3, grad_clip=clip, lr=0.05), 2, seed=0
            )
            steps[clip] = list(norms)
    finally:
        handle.remove()
    assert max(steps[None]) > 0.2  # unclipped steps are much larger
    assert max(steps[0.05]) <= 0.05 + 1e-5


def test_epoch_scores_are_the_evaluation_macro_f1() -> None:
    train, valid = make_data(seed=1, k=3), make_data(seed=2, k=3)
    net, s = model(k=3), spec(epochs=5)
    history = fit_module(net, train, valid, s, 3, seed=0)
    best = history.val_score[history.best_epoch]
    assert valid.labels is not None
    predicted = predict_logits(net, valid, s).argmax(1)
    assert best == macro_f1(valid.labels, predicted, 3)


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


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_bf16_training() -> None:
    data = make_data()
    net = model()
    history = fit_module(net, data, data, spec(device="auto"), 2, seed=0)
    assert history.device == "cuda"
    assert predict_logits(net, data, spec(device="auto")).dtype == np.float32
