"""The study's storage, sampler and pruner: Optuna objects made from a search's settings."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Literal

from mmbench.errors import MMBenchError

SamplerName = Literal["tpe", "random", "cmaes", "nsga2"]
PrunerName = Literal["wilcoxon", "median", "hyperband", "none"]


def make_storage(url: str, heartbeat_s: int, attempts: int = 6) -> Any:
    """:func:`_make_storage`, retried: on a fresh database several workers create Optuna's
    tables at once and all but one may fail (e.g. PostgreSQL's ``UniqueViolation`` on a table's
    type); by the next attempt the tables exist."""
    import random
    import warnings

    import optuna

    # heartbeats, grouped TPE and the Wilcoxon pruner are flagged experimental; we rely on them
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)

    db = Path(url.removeprefix("sqlite:///")) if url.startswith("sqlite:///") else None
    new = db is not None and not db.exists()
    for attempt in range(attempts):
        try:
            return _make_storage(url, heartbeat_s)
        except MMBenchError as exc:
            if attempt == attempts - 1 or not any(m in str(exc) for m in _RACES):
                if new and db is not None and db.exists() and db.stat().st_size == 0:
                    db.unlink()  # a full or read-only disk: leave no empty database behind
                raise
            time.sleep(0.2 * (attempt + 1) + random.random() * 0.3)
    raise AssertionError("unreachable")


_RACES = ("UniqueViolation", "IntegrityError", "duplicate key", "already exists", "locked")
"""What Optuna creating its tables from several processes at once fails with."""


def _make_storage(url: str, heartbeat_s: int) -> Any:
    """RDB (SQLite, PostgreSQL...) with heartbeats and retry of stale trials, or a journal file."""
    import optuna

    if url.endswith((".log", ".journal")) and "://" not in url:
        from optuna.storages.journal import JournalFileBackend, JournalStorage

        return JournalStorage(JournalFileBackend(url))
    try:
        return optuna.storages.RDBStorage(
            url,
            heartbeat_interval=heartbeat_s,
            grace_period=heartbeat_s * 4,
            heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(
                max_retry=1
            ),
        )
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise MMBenchError(f"cannot open Optuna storage {url!r}: {first}") from None


def make_sampler(name: str, seed: int, multi: bool) -> Any:
    import optuna

    if name == "tpe":
        return optuna.samplers.TPESampler(
            seed=seed, multivariate=True, group=True, n_startup_trials=5
        )
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "cmaes":
        return optuna.samplers.CmaEsSampler(seed=seed)
    if name == "nsga2" or multi:
        return optuna.samplers.NSGAIISampler(seed=seed)
    raise MMBenchError(f"unknown sampler {name!r}")


def make_pruner(name: str) -> Any:
    import optuna

    return {
        "wilcoxon": lambda: optuna.pruners.WilcoxonPruner(p_threshold=0.1, n_startup_steps=2),
        "median": lambda: optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=1),
        "hyperband": lambda: optuna.pruners.HyperbandPruner(min_resource=1),
        "none": lambda: optuna.pruners.NopPruner(),
    }[name]()
