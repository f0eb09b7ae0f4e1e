"""The search space: declared in a suite, sampled by Optuna into a :class:`PipelineSpec`.

YAML grammar for one parameter: a list is a categorical choice, ``{low, high, log?, step?}`` is
a numeric range (integer when ``low`` and ``high`` are integers and there is no ``log``...
or ``int: true``), anything else is a fixed value. Parameters are conditional on their parent:
``fusion_options.attention.heads`` is sampled only when the trial picked ``attention``; encoder
options only for the chosen encoder; torch training options only for torch heads;
``focal_gamma`` only with ``loss: focal``.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator

from mmbench.config import (
    DEFAULT_ENCODERS,
    EncoderSpec,
    FusionSpec,
    PipelineSpec,
    StrictModel,
    TrainSpec,
    check_modality_keys,
)
from mmbench.errors import MMBenchError, did_you_mean

NON_TORCH_HEADS = ("xgboost",)
TORCH_ONLY_TRAINING = {
    "lr",
    "weight_decay",
    "dropout",
    "label_smoothing",
    "modality_dropout",
    "mixup_alpha",
    "grad_clip",
    "patience",
    "epochs",
    "batch_size",
    "loss",
    "focal_gamma",
    "balanced_sampling",
    "compile",
}


class Range(StrictModel):
    low: float
    high: float
    log: bool = False
    step: float | None = None
    int: bool | None = None

    def is_int(self) -> bool:
        if self.int is not None:
            return self.int
        return float(self.low).is_integer() and float(self.high).is_integer() and not self.log

    @field_validator("high")
    @classmethod
    def _ordered(cls, high: float, info: Any) -> float:
        if "low" in info.data and high < info.data["low"]:
            raise ValueError("'high' must be >= 'low'")
        return high


Param = Range | list[Any] | str | float | int | bool | None


def default_training_space() -> dict[str, Param]:
    return {
        "lr": Range(low=3e-4, high=1e-2, log=True),
        "weight_decay": Range(low=1e-6, high=1e-2, log=True),
        "dropout": Range(low=0.0, high=0.5),
        "modality_dropout": [0.0, 0.1, 0.25],
        "label_smoothing": [0.0, 0.05, 0.1],
        "loss": ["ce", "focal"],
        "focal_gamma": Range(low=1.0, high=3.0),
        "batch_size": [32, 64],
        "mixup_alpha": [0.0, 0.2],
    }


def default_fusion_options() -> dict[str, dict[str, Param]]:
    return {
        "early": {"hidden": [64, 128, 256]},
        "late": {"hidden": [32, 64]},
        "attention": {"heads": [2, 4], "layers": [1, 2], "d_model": [32, 64]},
        "gated": {"d": [32, 64, 128]},
        "xgboost": {
            "n_estimators": [100, 200, 400],
            "max_depth": Range(low=2, high=6),
            "learning_rate": Range(low=0.03, high=0.3, log=True),
        },
    }


class SearchSpace(StrictModel):
    """What a study explores and how. Omitted sections fall back to sensible defaults.

    With ``objectives: [latency_ms]`` the study is multi-objective (quality vs. inference
    latency per row); Optuna cannot prune multi-objective trials, so pruning is off then.
    """

    sampler: Literal["tpe", "random", "cmaes", "nsga2"] = "tpe"
    pruner: Literal["wilcoxon", "median", "hyperband", "none"] = "wilcoxon"
    objectives: list[Literal["latency_ms"]] = Field(default_factory=list)

    encoders: dict[str, list[str] | str] = Field(default_factory=dict)
    encoder_options: dict[str, dict[str, Param]] = Field(default_factory=dict)
    fusion: list[str] | str = Field(
        default_factory=lambda: ["early", "late", "attention", "gated", "xgboost"]
    )
    fusion_options: dict[str, dict[str, Param]] = Field(default_factory=default_fusion_options)
    training: dict[str, Param] = Field(default_factory=default_training_space)

    @field_validator("encoders")
    @classmethod
    def _known_modalities(cls, value: dict[str, Any]) -> dict[str, Any]:
        return check_modality_keys(value)

    @field_validator("training")
    @classmethod
    def _known_training_keys(cls, value: dict[str, Param]) -> dict[str, Param]:
        valid = list(TrainSpec.model_fields)
        for key in value:
            if key not in valid:
                raise ValueError(f"unknown training option {key!r}{did_you_mean(key, valid)}")
        return value

    def sample(self, trial: Any, modalities: list[str]) -> PipelineSpec:
        """Draw one pipeline from ``trial`` (an Optuna trial) for the given modalities."""
        encoders = {}
        for m in modalities:
            choices = _as_list(self.encoders.get(m, DEFAULT_ENCODERS[m]))
            name = _suggest(trial, f"encoder.{m}", choices)
            opts = {
                k: _suggest(trial, f"encoder.{m}.{name}.{k}", p)
                for k, p in self.encoder_options.get(name, {}).items()
            }
            encoders[m] = EncoderSpec(name=name, options=opts)
        fusion = _suggest(trial, "fusion", _as_list(self.fusion))
        fusion_opts = {
            k: _suggest(trial, f"fusion.{fusion}.{k}", p)
            for k, p in self.fusion_options.get(fusion, {}).items()
        }
        training: dict[str, Any] = {}
        for k, p in self.training.items():
            if fusion in NON_TORCH_HEADS and k in TORCH_ONLY_TRAINING:
                continue
            if k == "focal_gamma" and training.get("loss", "ce") != "focal":
                continue
            training[k] = _suggest(trial, k, p)
        try:
            return PipelineSpec(
                encoders=encoders,
                fusion=FusionSpec(name=fusion, options=fusion_opts),
                training=TrainSpec(**training),
            )
        except ValueError as exc:
            raise MMBenchError(f"search space produced an invalid pipeline: {exc}") from None

    def check_names(self) -> None:
        """Fail early, with did-you-mean, on unknown encoder or fusion names."""
        import mmbench.fusion  # noqa: F401  (registers the built-in heads)
        from mmbench.encoders.base import ENCODERS, _ensure_builtin_encoders
        from mmbench.fusion.base import FUSIONS, HEADS
        from mmbench.fusion.catalog import check_options

        _ensure_builtin_encoders()
        for choices in self.encoders.values():
            for name in _as_list(choices):
                ENCODERS.get(name.partition("/")[0])
        known = FUSIONS.names() + HEADS.names()
        for name in _as_list(self.fusion):
            if name not in known:
                raise MMBenchError(f"unknown fusion {name!r}{did_you_mean(name, known)}")
            builder = FUSIONS.get(name) if name in FUSIONS else HEADS.get(name)
            check_options(builder, self.fusion_options.get(name, {}), f"fusion {name!r}")


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _suggest(trial: Any, name: str, param: Any) -> Any:
    if isinstance(param, Range):
        if param.is_int():
            step = int(param.step or 1)
            return trial.suggest_int(
                name, int(param.low), int(param.high), step=step, log=param.log
            )
        return trial.suggest_float(name, param.low, param.high, log=param.log, step=param.step)
    if isinstance(param, list):
        if len(param) == 1:
            return param[0]
        return trial.suggest_categorical(name, param)
    return param
