"""mmbench: benchmark multi-modal classification pipelines.

The package is layered so that dependencies point one way:

    data, encoders, fusion, training, evaluation   (know nothing of what composes them)
        -> pipeline, cache                          (one candidate, scored by CV)
        -> search, tracking, ablation, results      (many candidates, bookkeeping)
        -> runner -> cli                            (composition and user interface)

Heavy packages (torch, timm, mlflow, optuna, datasets) are imported lazily where used.
"""

from __future__ import annotations

__version__ = "0.1.0"

MODALITIES: tuple[str, ...] = ("image", "text", "tabular", "audio")
