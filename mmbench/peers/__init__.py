"""Peers: other tools run on the same folds and held-out rows, so leaderboards show mmbench beside them.

Candidates predict, the harness scores. A peer only turns a plain DataFrame into class
probabilities; folds, out-of-fold arrays and every metric come from the same code that scores
mmbench's own pipelines (:mod:`mmbench.evaluation`, :class:`mmbench.pipeline.FoldResult`), so a
peer's cross-validation result reads exactly like a pipeline's.

- ``tfidf-xgboost`` — the script a practitioner writes first: sparse TF-IDF 1–2-grams (up to 20k
  features) on the text, one-hot categoricals, raw numbers, XGBoost (400 trees, depth 6) with
  class-balanced sample weights. Needs nothing beyond mmbench's own dependencies.
- ``autogluon`` — AutoGluon's ``TabularPredictor`` (its own text n-gram features, medium-quality
  preset) under a time limit. Needs ``pip install 'mmbench[peers]'``; without it,
  :meth:`Peer.available` says so in one line and callers skip the peer.

Tabular tools cannot read images or audio, so :func:`peer_frame` gives them what a hand-written
script would: a tiny grayscale thumbnail as pixel columns and MFCC summary statistics.
"""

from __future__ import annotations

from mmbench.peers.base import PEERS, Peer, PeerModel, PeerUnavailable, get_peer, register_peer
from mmbench.peers.evaluate import (
    HoldoutScore,
    PeerCV,
    PeerSpec,
    cross_validate_peer,
    fit_peer,
    holdout_peer,
)
from mmbench.peers.frame import categorical_columns, peer_frame
from mmbench.registry import import_submodules

import_submodules(__name__, __path__)  # each peer module registers itself: a new peer is one file

__all__ = [
    "PEERS",
    "HoldoutScore",
    "Peer",
    "PeerCV",
    "PeerModel",
    "PeerSpec",
    "PeerUnavailable",
    "categorical_columns",
    "cross_validate_peer",
    "fit_peer",
    "get_peer",
    "holdout_peer",
    "peer_frame",
    "register_peer",
]
