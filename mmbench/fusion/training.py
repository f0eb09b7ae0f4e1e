"""The one training loop shared by every torch head.

Every regulariser a :class:`~mmbench.config.TrainSpec` can switch on is applied here, once (the
functions live in :mod:`mmbench.fusion.regularisers`), so that two fusion heads differ only in
their ``nn.Module`` and a search over training options means the same thing for all of them. Data
are small in-memory arrays, so batches are indexed directly instead of going through a
``DataLoader`` (much faster on CPU for small feature matrices).

Torch is imported inside the functions, so that importing :mod:`mmbench.fusion` (suite
validation, the CLI) does not pay for it. Epoch scores are the macro-F1 of
:func:`mmbench.evaluation.macro_f1`, the same one that scores folds.

Epochs are numbered from 0 everywhere (history, ``best_epoch``, ``on_epoch``).

Length: the one training loop (~460 lines) kept whole on purpose: every torch head trains
through it, and its epoch, validation, early stopping and device steps read in order.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from mmbench.config import TrainSpec
from mmbench.device import resolve_device
from mmbench.errors import MMBenchError
from mmbench.evaluation import macro_f1
from mmbench.fusion.base import EpochCallback, FeatureSet
from mmbench.fusion.regularisers import (
    class_weights,
    drop_modalities,
    mixup,
    smooth_labels,
    soft_loss,
)

if TYPE_CHECKING:
    import torch
    from torch import nn

Batch = tuple[dict[str, "torch.Tensor"], dict[str, "torch.Tensor"]]


class TrainingError(MMBenchError):
    """Training cannot go on: non-finite inputs or loss."""


@dataclass
class TrainHistory:
    """What happened during one :func:`fit_module` call, epoch by epoch."""

    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    val_score: list[float] = field(default_factory=list)
    best_epoch: int | None = None
    epochs_run: int = 0
    stopped_early: bool = False
    seconds: float = 0.0
    device: str = "cpu"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# --------------------------------------------------------------------------- data


@dataclass
class _Tensors:
    """A FeatureSet as tensors; tower inputs stay on CPU until a batch is taken."""

    features: dict[str, torch.Tensor]
    present: dict[str, torch.Tensor]
    labels: torch.Tensor | None
    device: str

    def __len__(self) -> int:
        return len(next(iter(self.present.values())))

    def batch(self, index: torch.Tensor) -> Batch:
        """Rows ``index`` (a CPU tensor) of every modality, on the training device."""
        xs, ps = {}, {}
        for m, x in self.features.items():
            rows = index if x.device.type == "cpu" else index.to(x.device)
            xs[m] = x[rows].to(self.device, non_blocking=True)
        for m, p in self.present.items():
            ps[m] = p[index.to(p.device)]
        return xs, ps


def _check_finite(data: FeatureSet, what: str, chunk: int = 4096) -> None:
    """Fail early, naming the modality, rather than with a NaN loss several batches later.

    Missing rows may hold anything (they are masked); raw tower inputs can be large, so the
    check runs over row chunks instead of copying the present rows.
    """
    for m, x in data.features.items():
        if not np.issubdtype(x.dtype, np.floating):
            continue
        present = np.asarray(data.present[m], dtype=bool)
        bad = 0
        for start in range(0, len(x), chunk):
            rows = x[start : start + chunk].reshape(min(chunk, len(x) - start), -1)
            bad += int((~np.isfinite(rows).all(axis=1) & present[start : start + chunk]).sum())
        if bad:
            raise TrainingError(
                f"modality {m!r} has non-finite values (NaN/inf) in {bad} present rows of the "
                f"{what} data"
            )


def _to_tensors(data: FeatureSet, device: str, cpu_modalities: set[str]) -> _Tensors:
    import torch

    features = {}
    for m, x in data.features.items():
        t = torch.from_numpy(_writable(x))
        if t.is_floating_point():
            t = t.float()
        if m in cpu_modalities:  # raw tower inputs can be large: move batch by batch
            features[m] = t
        else:
            features[m] = t.to(device)
    present = {
        m: torch.from_numpy(_writable(np.asarray(p, dtype=bool))).to(device)
        for m, p in data.present.items()
    }
    labels = None
    if data.labels is not None:
        labels = torch.from_numpy(_writable(np.asarray(data.labels, dtype=np.int64))).to(device)
    return _Tensors(features, present, labels, device)


def _writable(x: np.ndarray) -> np.ndarray:
    """Contiguous and writable, as torch requires; copies only when needed (pandas 3 hands out
    read-only views under copy-on-write)."""
    x = np.ascontiguousarray(x)
    return x if x.flags.writeable else x.copy()


def _batch_order(
    n: int, batch_size: int, generator: torch.Generator, weights: torch.Tensor | None
) -> Iterator[torch.Tensor]:
    """Shuffled (or class-balanced, with replacement) batches of row indices for one epoch.

    A trailing batch of a single row is dropped: batch-norm layers in towers cannot train on it.
    """
    import torch

    if weights is None:
        order = torch.randperm(n, generator=generator)
    else:  # what WeightedRandomSampler does, without iterating it row by row
        order = torch.multinomial(weights, n, replacement=True, generator=generator)
    for start in range(0, n, batch_size):
        index = order[start : start + batch_size]
        if len(index) == 1 and n > 1:
            break
        yield index


# --------------------------------------------------------------------------- the loop


class _Forward:
    """The module's forward, compiled when asked; falls back to eager if compilation fails."""

    def __init__(self, module: nn.Module, compile: bool) -> None:
        import torch

        self.module = module
        self.fn: Callable[..., torch.Tensor] = module
        if compile:
            try:
                self.fn = torch.compile(module)
            except Exception as exc:
                self._fallback(exc)

    def _fallback(self, exc: Exception) -> None:
        warnings.warn(
            f"torch.compile failed ({type(exc).__name__}: {exc}); training without compile",
            RuntimeWarning,
            stacklevel=3,
        )
        self.fn = self.module

    def __call__(self, x: dict[str, torch.Tensor], present: dict[str, torch.Tensor]) -> Any:
        if self.fn is self.module:
            return self.module(x, present)
        try:
            return self.fn(x, present)
        except Exception as exc:  # compile errors surface at the first call
            self._fallback(exc)
            return self.module(x, present)


def _autocast(device: str) -> Any:
    """bf16 autocast on CUDA (fast, no loss scaling needed); plain float32 on CPU."""
    import contextlib

    import torch

    if device == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


@dataclass
class _Setup:
    """Everything one epoch needs, built once per fit."""

    forward: _Forward
    optimizer: Any
    spec: TrainSpec
    n_classes: int
    generator: Any
    rng: np.random.Generator
    loss_weights: torch.Tensor | None
    val_weights: torch.Tensor | None
    sample_weights: torch.Tensor | None


def _train_epoch(setup: _Setup, data: _Tensors) -> tuple[float, float]:
    """One pass over ``data``; returns the mean loss and the macro-F1 of the batch predictions."""
    import torch

    spec, module = setup.spec, setup.forward.module
    module.train()
    total = torch.zeros((), device=data.device)
    preds, seen = [], []
    for index in _batch_order(len(data), spec.batch_size, setup.generator, setup.sample_weights):
        x, present = data.batch(index)
        assert data.labels is not None
        y = data.labels[index.to(data.labels.device)]
        x, present = drop_modalities(x, present, spec.modality_dropout, setup.generator)
        targets = torch.nn.functional.one_hot(y, setup.n_classes).float()
        if spec.mixup_alpha > 0:
            lam = float(setup.rng.beta(spec.mixup_alpha, spec.mixup_alpha))
            x, targets = mixup(x, present, targets, max(lam, 1 - lam), setup.generator)
        if spec.label_smoothing > 0:
            targets = smooth_labels(targets, spec.label_smoothing)
        with _autocast(data.device):
            logits = setup.forward(x, present)
        loss = soft_loss(logits, targets, setup.loss_weights, _gamma(spec))
        setup.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if spec.grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(module.parameters(), spec.grad_clip)
        setup.optimizer.step()
        total += loss.detach() * len(index)
        preds.append(logits.detach().argmax(dim=1))
        seen.append(y)
    n_seen = sum(len(s) for s in seen)
    mean_loss = float(total.item()) / max(n_seen, 1)
    y_all, pred_all = torch.cat(seen).cpu().numpy(), torch.cat(preds).cpu().numpy()
    return mean_loss, macro_f1(y_all, pred_all, setup.n_classes)


def _gamma(spec: TrainSpec) -> float:
    return spec.focal_gamma if spec.loss == "focal" else 0.0


def _logits(
    module: nn.Module, forward: Callable[..., Any], data: _Tensors, batch_size: int
) -> torch.Tensor:
    """Eval-mode logits of every row, in order, as float32 on the data's device."""
    import torch

    module.eval()
    out = []
    with torch.inference_mode(), _autocast(data.device):
        for start in range(0, len(data), batch_size):
            index = torch.arange(start, min(start + batch_size, len(data)))
            out.append(forward(*data.batch(index)).float())
    return torch.cat(out)


def _validate(setup: _Setup, data: _Tensors) -> tuple[float, float]:
    """Validation loss (class-weighted CE, no smoothing) and macro-F1."""
    import torch

    logits = _logits(setup.forward.module, setup.forward, data, 2 * setup.spec.batch_size)
    assert data.labels is not None
    targets = torch.nn.functional.one_hot(data.labels, setup.n_classes).float()
    loss = float(soft_loss(logits, targets, setup.val_weights).item())
    score = macro_f1(data.labels.cpu().numpy(), logits.argmax(dim=1).cpu().numpy(), setup.n_classes)
    return loss, score


def _setup(
    module: nn.Module, labels: np.ndarray, spec: TrainSpec, n_classes: int, seed: int, device: str
) -> _Setup:
    import torch

    weights = class_weights(labels, n_classes)
    weights_t = torch.tensor(weights, dtype=torch.float32, device=device)
    sample_weights = None
    if spec.balanced_sampling:  # rows are already balanced: class weights would double-count
        sample_weights = torch.tensor(weights[labels], dtype=torch.float64)
    use_weights = spec.class_weight and not spec.balanced_sampling
    return _Setup(
        forward=_Forward(module, spec.compile),
        optimizer=torch.optim.AdamW(
            module.parameters(), lr=spec.lr, weight_decay=spec.weight_decay
        ),
        spec=spec,
        n_classes=n_classes,
        generator=torch.Generator().manual_seed(seed),
        rng=np.random.default_rng(seed),
        loss_weights=weights_t if use_weights else None,
        val_weights=weights_t if spec.class_weight else None,
        sample_weights=sample_weights,
    )


def _check_loss(value: float, epoch: int, what: str) -> None:
    if not np.isfinite(value):
        raise TrainingError(
            f"{what} loss became {value} at epoch {epoch}; try a lower learning rate "
            "(training.lr) or gradient clipping (training.grad_clip)"
        )


class _BestWeights:
    """The lowest validation loss so far, the weights that reached it, and the patience left."""

    def __init__(self, patience: int | None) -> None:
        self.patience = patience
        self.loss = float("inf")
        self.epoch: int | None = None
        self.state: dict[str, Any] | None = None
        self.waited = 0

    def update(self, module: nn.Module, loss: float, epoch: int) -> bool:
        """Record ``epoch``; True when patience has run out."""
        if loss < self.loss:
            self.loss, self.epoch, self.waited = loss, epoch, 0
            self.state = {k: v.detach().clone() for k, v in module.state_dict().items()}
        else:
            self.waited += 1
        return self.patience is not None and self.waited >= self.patience

    def restore(self, module: nn.Module, history: TrainHistory) -> None:
        if self.state is None:  # no validation data: the last epoch is the model
            history.best_epoch = history.epochs_run - 1
            return
        module.load_state_dict(self.state)
        history.best_epoch = self.epoch


def _run_epoch(
    setup: _Setup, train: _Tensors, valid: _Tensors | None, history: TrainHistory, epoch: int
) -> float:
    """Train one epoch, validate, record both; returns the score reported to ``on_epoch``."""
    train_loss, score = _train_epoch(setup, train)
    _check_loss(train_loss, epoch, "training")
    history.train_loss.append(train_loss)
    history.epochs_run = epoch + 1
    if valid is not None:
        val_loss, score = _validate(setup, valid)
        _check_loss(val_loss, epoch, "validation")
        history.val_loss.append(val_loss)
        history.val_score.append(score)
    return score


def fit_module(
    module: nn.Module,
    train: FeatureSet,
    valid: FeatureSet | None,
    spec: TrainSpec,
    n_classes: int,
    *,
    seed: int,
    on_epoch: EpochCallback | None = None,
) -> TrainHistory:
    """Train ``module`` in place; with ``valid``, stop early on its loss and keep the best weights.

    ``module(x, present)`` maps per-modality batches and presence masks to logits. Modalities
    named in ``module.tower_modalities`` hold raw tower inputs and are moved to the device batch
    by batch. With ``valid`` the weights of the epoch with the lowest validation loss are
    restored, also when ``spec.patience`` is None (no early stopping). Without ``valid`` all
    epochs run and ``on_epoch`` gets the macro-F1 of the training batches. Exceptions raised by
    ``on_epoch`` (e.g. Optuna's pruning signal) propagate.
    """
    import torch

    if train.labels is None:
        raise TrainingError("training data has no labels")
    started = time.perf_counter()
    device = resolve_device(spec.device, option="training.device")
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    cpu = set(getattr(module, "tower_modalities", ()))
    _check_finite(train, "training")
    train_t, valid_t = _to_tensors(train, device, cpu), None
    if valid is not None:
        _check_finite(valid, "validation")
        valid_t = _to_tensors(valid, device, cpu)
    module.to(device)
    setup = _setup(module, np.asarray(train.labels, dtype=np.int64), spec, n_classes, seed, device)
    history, best = TrainHistory(device=device), _BestWeights(spec.patience)
    with small_model_threads(module, device):
        _train_epochs(module, setup, train_t, valid_t, history, best, spec, on_epoch)
    history.seconds = time.perf_counter() - started
    return history


def _train_epochs(
    module: nn.Module,
    setup: Any,
    train_t: Any,
    valid_t: Any,
    history: TrainHistory,
    best: Any,
    spec: TrainSpec,
    on_epoch: EpochCallback | None,
) -> None:
    for epoch in range(spec.epochs):
        score = _run_epoch(setup, train_t, valid_t, history, epoch)
        stop = valid_t is not None and best.update(module, history.val_loss[-1], epoch)
        if on_epoch is not None:
            on_epoch(epoch, score)
        if stop:
            history.stopped_early = epoch + 1 < spec.epochs
            break
    best.restore(module, history)
    module.eval()


@contextmanager
def small_model_threads(module: nn.Module, device: str) -> Iterator[None]:
    """One intra-op thread for heads over cached features on the CPU.

    Such heads are tiny (an MLP, a transformer over a handful of modality tokens): a thread pool
    only adds synchronisation, and it stalls badly when other work shares the cores (parallel
    Optuna workers, the encoders of another job). Modules with towers keep torch's setting.
    """
    import torch

    if device != "cpu" or list(getattr(module, "tower_modalities", [])):
        yield
        return
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def predict_logits(module: nn.Module, data: FeatureSet, spec: TrainSpec) -> np.ndarray:
    """``(n, n_classes)`` float32 logits in eval mode, batched on the resolved device."""
    _check_finite(data, "prediction")
    device = resolve_device(spec.device, option="training.device")
    module.to(device)
    tensors = _to_tensors(data, device, set(getattr(module, "tower_modalities", ())))
    with small_model_threads(module, device):
        return _logits(module, module, tensors, 2 * spec.batch_size).cpu().numpy()
