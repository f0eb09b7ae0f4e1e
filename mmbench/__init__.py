"""mmbench: benchmark multi-modal classification pipelines.

The package is layered so that dependencies point one way (ARCHITECTURE.md has the full table,
``tests/test_layering.py`` enforces it):

    errors, registry, config, evaluation           (foundation, specs, folds and metrics)
        -> data -> encoders -> fusion               (know nothing of what composes them)
        -> suite, space -> cache -> pipeline        (one candidate, scored by CV)
        -> peers, search -> results, ablation       (many candidates, bookkeeping)
        -> leaderboard, regress -> tracking         (many results; MLflow behind hooks)
        -> runner -> cli                            (composition and user interface)

Heavy packages (torch, timm, mlflow, optuna, datasets) are imported lazily where used.
"""

from __future__ import annotations

__version__ = "0.1.0"

MODALITIES: tuple[str, ...] = ("image", "text", "tabular", "audio", "video")
