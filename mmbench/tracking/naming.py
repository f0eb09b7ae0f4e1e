"""What MLflow calls a trial's parameters and runs, so the compare view lines trials up.

Optuna needs a distinct name per conditional parameter (``fusion.attention.d_model``,
``fusion.early.hidden``); a person comparing trials needs one name per *concept*: the width of
the fusion head is ``fusion.width`` whether the head calls it ``hidden``, ``d_model`` or ``d``,
and a learning rate is ``lr`` for the torch loop and for XGBoost alike. A trial logs only the
parameters its pipeline used — no ``lr`` or ``dropout`` for a linear head, no ``focal_gamma``
with cross-entropy — so the compare scatter and parallel coordinates never plot defaults the
trial ignored. The Optuna names are kept as tags (``optuna.name.<param>``).
"""

from __future__ import annotations

from typing import Any

FUSION_CONCEPTS: dict[str, dict[str, str]] = {
    "early": {"hidden": "fusion.width"},
    "late": {"hidden": "fusion.width"},
    "hybrid": {"hidden": "fusion.width"},
    "attention": {"d_model": "fusion.width"},
    "gated": {"d": "fusion.width"},
    "xgboost": {"learning_rate": "lr", "max_depth": "fusion.depth"},
}
"""Fusion option -> MLflow name, per fusion; an option not listed is ``fusion.<option>``."""


ENCODER_CONCEPTS: dict[str, str] = {"image_size": "size"}
"""Encoder option -> MLflow name where encoders name one concept differently: the image side
in pixels is ``size`` for ``pixels`` and ``image_size`` for timm models; MLflow shows one
``encoder.image.size`` column."""


def encoder_param(name: str) -> str:
    """``encoder.<modality>.<option>`` with the option's concept name."""
    head, _, option = name.rpartition(".")
    return f"{head}.{ENCODER_CONCEPTS[option]}" if option in ENCODER_CONCEPTS and head else name


def fusion_param(fusion: str, option: str) -> str:
    """The MLflow name of one fusion option (``attention``, ``d_model`` -> ``fusion.width``)."""
    return FUSION_CONCEPTS.get(fusion, {}).get(option, f"fusion.{option}")


def used_training(spec: Any) -> dict[str, Any]:
    """The training options the head reads: torch-only ones only for torch heads,
    ``focal_gamma`` only with the focal loss."""
    from mmbench.config import TrainSpec
    from mmbench.fusion import FUSIONS

    name = spec.fusion.name
    torch = FUSIONS.meta(name).torch if name in FUSIONS else True
    skip = set() if torch else set(TrainSpec.torch_only())
    if spec.training.loss != "focal":
        skip.add("focal_gamma")
    return {k: v for k, v in spec.training.model_dump().items() if k not in skip}


def run_params(spec: Any) -> dict[str, Any]:
    """Flat MLflow params of a pipeline (or a peer): only what it used, concepts aligned."""
    from mmbench.config import PipelineSpec

    if not isinstance(spec, PipelineSpec):
        return dict(spec.flat_params())
    params = {encoder_param(k): v for k, v in spec.encoder_params().items()}
    params["fusion"] = spec.fusion.name
    fusion_opts = {fusion_param(spec.fusion.name, k): v for k, v in spec.fusion.options.items()}
    params.update(used_training(spec))
    params.update(fusion_opts)  # a head's own learning rate is *the* lr of the trial
    return dict(sorted(params.items()))


def mlflow_param(optuna_name: str) -> str:
    """The MLflow name of an Optuna parameter of :func:`mmbench.search.sample_pipeline`.

    ``encoder.<modality>.<encoder>.<option>`` -> ``encoder.<modality>.<option>`` (encoder names
    may contain dots, options do not); ``fusion.<fusion>.<option>`` -> :func:`fusion_param`.
    """
    parts = optuna_name.split(".")
    if parts[0] == "encoder" and len(parts) >= 4:
        return encoder_param(f"encoder.{parts[1]}.{parts[-1]}")
    if parts[0] == "fusion" and len(parts) == 3:
        return fusion_param(parts[1], parts[2])
    return optuna_name


def optuna_name_tags(optuna_params: dict[str, Any]) -> dict[str, str]:
    """``optuna.name.<MLflow name>`` -> Optuna name, for every parameter named differently."""
    return {
        f"optuna.name.{mlflow_param(k)}": k for k in sorted(optuna_params) if mlflow_param(k) != k
    }


def trial_run_name(dataset: str, study_name: str, number: int) -> str:
    """``<dataset>/trial-NNN``; a later study of the same dataset (``name#2``) adds ``#2``,
    so trial names are unique within the suite's experiment."""
    _, sep, k = study_name.rpartition("#")
    suffix = f"#{k}" if sep and k.isdigit() else ""
    return f"{dataset}{suffix}/trial-{number:03d}"


def job_run_name(dataset: str, pipeline: str | None, searches: bool = False) -> str:
    """A job's top-level run: ``<dataset>/search``, ``<dataset>/default`` or
    ``<dataset>/<reference pipeline>``, so runs of a suite's experiment tell dataset and kind."""
    if pipeline is None or pipeline in ("search", "ensemble", "default"):
        return (
            f"{dataset}/{'search' if searches or pipeline == 'ensemble' else pipeline or 'default'}"
        )
    return f"{dataset}/{pipeline}"


def result_run_name(prefix: str, identity: str) -> str:
    """A result's run: ``<dataset>/<kind>: <what the pipeline is>`` (MLflow keeps 250 chars)."""
    name = f"{prefix}: {identity}"
    return name if len(name) <= 250 else name[:249] + "…"


def metric_key(text: str) -> str:
    """``text`` as a valid MLflow metric or tag key (letters, digits, ``_ - . / :`` and space)."""
    import re

    return re.sub(r"[^A-Za-z0-9_\-./: ]+", "_", text)
