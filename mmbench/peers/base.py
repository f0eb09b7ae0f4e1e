"""The peer contract and its registry: a named tool that fits a DataFrame and predicts probabilities.

Peers see only the classes present in their training rows, relabelled 0..k-1 (XGBoost and
AutoGluon both reject label gaps); :meth:`Peer.fit` maps their probabilities back onto every
class index, so a class missing from a fold gets probability 0 rather than breaking the fold.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import pandas as pd

from mmbench.errors import MMBenchError
from mmbench.registry import Registry


class PeerUnavailable(MMBenchError):
    """A peer's optional dependencies are missing; the message says how to install them."""


class PeerModel(Protocol):
    """A fitted peer: probabilities for new rows of a :func:`peer_frame`."""

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        """``(n_rows, n_classes)``, columns in class-index order, rows summing to one."""
        ...


LocalFit = Callable[[pd.DataFrame, np.ndarray, int, int, float | None, str], PeerModel]
"""A peer's builder: (frame, contiguous labels 0..k-1, k, seed, time limit, metric) -> model."""


@dataclass(frozen=True)
class Peer:
    """A named reference tool. ``extra`` is the pip extra its dependencies come with."""

    name: str
    description: str
    requires: tuple[str, ...]
    build: LocalFit
    extra: str | None = None

    def available(self) -> str | None:
        """None when the peer can run, else a one-line reason with the install command."""
        missing = [m for m in self.requires if not importable(m)]
        if not missing:
            return None
        target = f"mmbench[{self.extra}]" if self.extra else "mmbench"
        return f"{self.name}: {', '.join(missing)} is not installed: pip install '{target}'"

    def fit(
        self,
        frame: pd.DataFrame,
        y: np.ndarray,
        n_classes: int,
        *,
        seed: int,
        time_limit_s: float | None = None,
        metric: str = "f1_macro",
    ) -> PeerModel:
        """Fit on ``frame`` with labels ``y`` in ``0..n_classes-1``; any subset may be absent.

        Peers only ever see the classes present (relabelled 0..k-1), because XGBoost and AutoGluon
        both reject gaps; the returned model maps back and gives absent classes probability 0.
        ``metric`` is the harness's primary metric, for peers that tune towards one.
        """
        reason = self.available()
        if reason is not None:
            raise PeerUnavailable(reason)
        y = np.asarray(y, dtype=np.int64)
        present = np.unique(y)
        if len(present) == 1:
            return _Expanded(None, present, n_classes)
        local = np.searchsorted(present, y)
        model = self.build(frame, local, len(present), seed, time_limit_s, metric)
        return _Expanded(model, present, n_classes)


@dataclass
class _Expanded:
    """Probabilities over the classes seen in training, spread back onto every class index."""

    model: PeerModel | None
    present: np.ndarray
    n_classes: int

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        out = np.zeros((len(frame), self.n_classes), dtype=np.float64)
        if self.model is None:  # one training class: the only possible answer
            out[:, self.present[0]] = 1.0
            return out
        local = np.asarray(self.model.predict_proba(frame), dtype=np.float64)
        out[:, self.present] = np.clip(local, 0.0, None)
        total = out.sum(axis=1, keepdims=True)
        return np.divide(out, total, out=np.full_like(out, 1 / self.n_classes), where=total > 0)


def importable(module: str) -> bool:
    """Whether ``module`` can be imported, without importing it (parents excepted)."""
    try:
        return importlib.util.find_spec(module) is not None
    except ImportError:  # a dotted name whose parent package is missing
        return False


PEERS: Registry[Peer] = Registry("peer")


def register_peer(
    name: str, description: str, requires: tuple[str, ...], extra: str | None = None
) -> Callable[[LocalFit], LocalFit]:
    """Register a builder as peer ``name``."""

    def decorator(build: LocalFit) -> LocalFit:
        PEERS.register(name)(Peer(name, description, requires, build, extra))
        return build

    return decorator


def get_peer(name: str) -> Peer:
    """The peer ``name``; raises :class:`PeerUnavailable` when its extra is not installed."""
    peer = PEERS.get(name)
    reason = peer.available()
    if reason is not None:
        raise PeerUnavailable(reason)
    return peer
