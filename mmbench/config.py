"""Declarative, validated specs of one candidate pipeline.

A pipeline is an encoder per modality, a fusion head and training options. These models are
plain data (pydantic, ``extra="forbid"``) so that suites, Optuna trials, MLflow params and result
files all describe a candidate the same way. They import nothing heavy.
"""

from __future__ import annotations

from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.fields import FieldInfo

from mmbench import MODALITIES, NAMED_KINDS, is_modality, modality_kind
from mmbench.errors import did_you_mean

T = TypeVar("T")


def check_modality_keys(value: dict[str, T]) -> dict[str, T]:
    """Validator body for mappings keyed by modality: unknown keys get a did-you-mean."""
    for key in value:
        if not is_modality(key):
            named = ", ".join(f"{k}_<name>" for k in NAMED_KINDS)
            raise ValueError(
                f"unknown modality {key!r}{did_you_mean(key, MODALITIES)}; modalities are "
                f"{', '.join(MODALITIES)}, or {named} for a named one"
            )
    return value


SAFE_NAME = r"^[A-Za-z0-9_-][A-Za-z0-9_.-]*$"
"""Suite and dataset names become folder names under ``results/``: letters, digits, ``_ - .``,
not starting with a dot (so ``..`` cannot climb out of the results directory)."""


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


class Range(StrictModel):
    """A numeric search range: ``{low, high, log?, step?, int?}`` in a suite's search space.

    It lives here, beside the specs, because components declare their default ranges with it
    (e.g. a fusion registers its search space) and the suite schema reads those.
    """

    low: float
    high: float
    log: bool = False
    step: float | None = None
    int: bool | None = None

    def is_int(self) -> bool:
        """Integer when asked, or when both bounds are integers and the scale is linear."""
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
"""One searched parameter: a range, a categorical list of choices, or a fixed value."""


class EncoderSpec(ComponentSpec):
    """Which encoder turns one modality into features, e.g. ``timm/resnet18`` or ``tfidf``."""


class FusionSpec(ComponentSpec):
    """Which fusion head combines per-modality features, e.g. ``early`` or ``attention``."""


def _torch(default: Any, **kwargs: Any) -> Any:
    """A :class:`TrainSpec` field that only torch heads read: searched only for them."""
    return Field(default, json_schema_extra={"torch_only": True}, **kwargs)


class TrainSpec(StrictModel):
    """Optimisation, regularisation and imbalance handling.

    Most options configure the torch training loop (marked ``torch_only``, see
    :meth:`torch_only`); ``class_weight``, ``threshold_tuning`` and ``device`` apply to every head.
    """

    epochs: int = _torch(40, ge=1)
    batch_size: int = _torch(64, ge=1)
    lr: float = _torch(3e-3, gt=0)
    weight_decay: float = _torch(1e-4, ge=0)
    dropout: float = _torch(0.2, ge=0, lt=1)
    label_smoothing: float = _torch(0.0, ge=0, lt=1)
    modality_dropout: float = _torch(0.0, ge=0, lt=1)
    mixup_alpha: float = _torch(0.0, ge=0)
    grad_clip: float | None = _torch(1.0, gt=0)
    patience: int | None = _torch(8, ge=1, description="early stopping on the validation fold")
    loss: Literal["ce", "focal"] = _torch("ce")
    focal_gamma: float = _torch(2.0, ge=0)
    class_weight: bool = True
    balanced_sampling: bool = _torch(False)
    threshold_tuning: bool = False
    device: Literal["auto", "cpu", "cuda"] = "auto"
    compile: bool = _torch(False)

    @classmethod
    def torch_only(cls) -> frozenset[str]:
        """Options that only the torch training loop reads (meaningless for e.g. xgboost)."""
        return frozenset(name for name, f in cls.model_fields.items() if _is_torch_only(f))


def _is_torch_only(field: FieldInfo) -> bool:
    extra = field.json_schema_extra
    return isinstance(extra, dict) and bool(extra.get("torch_only"))


class PipelineSpec(StrictModel):
    """One complete candidate: encoders by modality, fusion, training."""

    encoders: dict[str, EncoderSpec] = Field(default_factory=dict)
    fusion: FusionSpec = Field(default_factory=lambda: FusionSpec(name="early"))
    training: TrainSpec = Field(default_factory=TrainSpec)

    @field_validator("encoders")
    @classmethod
    def _known_modalities(cls, value: dict[str, EncoderSpec]) -> dict[str, EncoderSpec]:
        return check_modality_keys(value)

    def encoder_params(self) -> dict[str, Any]:
        """``encoder.<modality>`` and ``encoder.<modality>.<option>``, flat."""
        params: dict[str, Any] = {}
        for modality, enc in sorted(self.encoders.items()):
            params[f"encoder.{modality}"] = enc.name
            for k, v in sorted(enc.options.items()):
                params[f"encoder.{modality}.{k}"] = v
        return params

    def flat_params(self) -> dict[str, Any]:
        """Flat, stable parameter names for MLflow (``encoder.image``, ``fusion``, ``lr``...)."""
        params = self.encoder_params()
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
    "sensor": "sensor_stats",
    "video": "frames/pixels",
}


def default_pipeline(modalities: list[str], given: PipelineSpec | None = None) -> PipelineSpec:
    """The single default pipeline: cheap frozen encoders, early fusion MLP.

    With ``given`` (a suite's ``pipeline``), that pipeline — and when it names no encoder at
    all, the default encoders for every modality (``pipeline: {fusion: linear}`` means "this
    head over the usual features"); naming some encoders restricts it to those modalities.
    An encoder named for a kind (``sensor: minirocket``) is the encoder of every modality of that
    kind the dataset names (``sensor_accel``, ``sensor_gyro``) that has none of its own.
    """
    defaults = {m: EncoderSpec(name=DEFAULT_ENCODERS[modality_kind(m)]) for m in modalities}
    if given is None:
        return PipelineSpec(encoders=defaults)
    if not given.encoders:
        return given.model_copy(update={"encoders": defaults})
    by_kind = {
        m: given.encoders[modality_kind(m)]
        for m in modalities
        if m not in given.encoders and modality_kind(m) in given.encoders
    }
    if not by_kind:
        return given
    expanded = {modality_kind(m) for m in by_kind}
    kept = {k: e for k, e in given.encoders.items() if k not in expanded}
    return given.model_copy(update={"encoders": {**kept, **by_kind}})


class PeerSpec(StrictModel):
    """What a result file records about a peer tool (e.g. AutoGluon) where a pipeline records
    its spec: the peer's name and the options it ran with."""

    peer: str
    options: dict[str, Any] = Field(default_factory=dict)

    def flat_params(self) -> dict[str, Any]:
        """MLflow parameters, named like a pipeline's (``peer``, ``peer.<option>``)."""
        return {"peer": self.peer, **{f"peer.{k}": v for k, v in sorted(self.options.items())}}
