"""Declarative, validated specs of one candidate pipeline.

A pipeline is an encoder per modality, a fusion head and training options. These models are
plain data (pydantic, ``extra="forbid"``) so that suites, Optuna trials, MLflow params and result
files all describe a candidate the same way. They import nothing heavy.
"""

from __future__ import annotations

from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from mmbench import MODALITIES
from mmbench.errors import did_you_mean

T = TypeVar("T")


def check_modality_keys(value: dict[str, T]) -> dict[str, T]:
    """Validator body for mappings keyed by modality: unknown keys get a did-you-mean."""
    for key in value:
        if key not in MODALITIES:
            raise ValueError(f"unknown modality {key!r}{did_you_mean(key, MODALITIES)}")
    return value


class StrictModel(BaseModel):
    """Base for every spec: unknown keys are errors, values are validated on assignment."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class ComponentSpec(StrictModel):
    """A registry name plus its options; YAML may give just the name as a string."""

    name: str
    options: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _from_string(cls, value: Any) -> Any:
        return {"name": value} if isinstance(value, str) else value

    def key(self) -> str:
        """Stable short description, e.g. ``timm/test_resnet(frozen=True)``."""
        opts = ",".join(f"{k}={v}" for k, v in sorted(self.options.items()))
        return f"{self.name}({opts})" if opts else self.name


class EncoderSpec(ComponentSpec):
    """Which encoder turns one modality into features, e.g. ``timm/resnet18`` or ``tfidf``."""


class FusionSpec(ComponentSpec):
    """Which fusion head combines per-modality features, e.g. ``early`` or ``attention``."""


class TrainSpec(StrictModel):
    """Optimisation, regularisation and imbalance handling for torch heads."""

    epochs: int = Field(40, ge=1)
    batch_size: int = Field(64, ge=1)
    lr: float = Field(3e-3, gt=0)
    weight_decay: float = Field(1e-4, ge=0)
    dropout: float = Field(0.2, ge=0, lt=1)
    label_smoothing: float = Field(0.0, ge=0, lt=1)
    modality_dropout: float = Field(0.0, ge=0, lt=1)
    mixup_alpha: float = Field(0.0, ge=0)
    grad_clip: float | None = Field(1.0, gt=0)
    patience: int | None = Field(8, ge=1, description="early stopping on the validation fold")
    loss: Literal["ce", "focal"] = "ce"
    focal_gamma: float = Field(2.0, ge=0)
    class_weight: bool = True
    balanced_sampling: bool = False
    threshold_tuning: bool = False
    device: Literal["auto", "cpu", "cuda"] = "auto"
    compile: bool = False


class PipelineSpec(StrictModel):
    """One complete candidate: encoders by modality, fusion, training."""

    encoders: dict[str, EncoderSpec] = Field(default_factory=dict)
    fusion: FusionSpec = Field(default_factory=lambda: FusionSpec(name="early"))
    training: TrainSpec = Field(default_factory=TrainSpec)

    @field_validator("encoders")
    @classmethod
    def _known_modalities(cls, value: dict[str, EncoderSpec]) -> dict[str, EncoderSpec]:
        return check_modality_keys(value)

    def flat_params(self) -> dict[str, Any]:
        """Flat, stable parameter names for MLflow (``encoder.image``, ``fusion``, ``lr``...)."""
        params: dict[str, Any] = {}
        for modality, enc in sorted(self.encoders.items()):
            params[f"encoder.{modality}"] = enc.name
            for k, v in sorted(enc.options.items()):
                params[f"encoder.{modality}.{k}"] = v
        params["fusion"] = self.fusion.name
        for k, v in sorted(self.fusion.options.items()):
            params[f"fusion.{k}"] = v
        params.update(self.training.model_dump())
        return params


DEFAULT_ENCODERS: dict[str, str] = {
    "image": "timm/test_resnet",
    "text": "tfidf",
    "tabular": "tabular",
    "audio": "logmel",
}


def default_pipeline(modalities: list[str]) -> PipelineSpec:
    """The single default pipeline: cheap frozen encoders, early fusion MLP."""
    return PipelineSpec(encoders={m: EncoderSpec(name=DEFAULT_ENCODERS[m]) for m in modalities})
