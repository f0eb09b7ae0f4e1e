"""mmbench: benchmark multi-modal classification pipelines.

The package is layered so that dependencies point one way (ARCHITECTURE.md has the full table,
``tests/test_layering.py`` enforces it):

    errors, registry, config, evaluation           (foundation, specs, folds and metrics)
        -> data -> encoders -> fusion               (know nothing of what composes them)
        -> suite, space -> cache -> pipeline        (one candidate, scored by CV)
        -> peers, search -> results, ablation       (many candidates, bookkeeping)
        -> leaderboard, gate -> tracking            (many results; MLflow behind hooks)
        -> run -> cli                               (composition and user interface)

Heavy packages (torch, timm, mlflow, optuna, datasets) are imported lazily where used.
"""

from __future__ import annotations

__version__ = "0.1.0"

MODALITIES: tuple[str, ...] = ("image", "text", "tabular", "audio", "video", "sensor")
"""Modality *kinds*. A dataset's modality is named after its kind (``image``), or, for a kind of
which a dataset may carry several (:data:`NAMED_KINDS`), ``<kind>_<name>`` (``sensor_accel`` and
``sensor_gyro``: two sensors, two modalities, each ablated on its own). Encoders, defaults and
search spaces are chosen by kind; a search space or pipeline keyed by a kind covers every
modality of that kind."""

NAMED_KINDS: tuple[str, ...] = ("sensor",)
"""Kinds declared as named instances (``modalities: {sensor: {accel: [...], gyro: [...]}}``)."""

INSTANCE_NAME = r"^[a-z0-9][a-z0-9_]*$"
"""A named instance: lower-case letters, digits and ``_`` (it becomes part of MLflow parameter
names, ``encoder.sensor_accel``, where a ``.`` would read as an option)."""


def modality_kind(modality: str) -> str:
    """``sensor_accel`` -> ``sensor``; ``image`` -> ``image`` (kinds never contain ``_``)."""
    return modality.partition("_")[0]


def modality_name(kind: str, instance: str) -> str:
    """The modality name of a named instance of ``kind``: ``modality_name("sensor", "gyro")``."""
    return f"{kind}_{instance}"


def is_modality(name: str) -> bool:
    """A kind, or ``<kind>_<instance>`` of a kind in :data:`NAMED_KINDS`."""
    import re

    if name in MODALITIES:
        return True
    kind, _, instance = name.partition("_")
    return kind in NAMED_KINDS and re.fullmatch(INSTANCE_NAME, instance) is not None
