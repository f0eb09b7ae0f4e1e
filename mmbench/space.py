"""The search-space schema: what a suite's ``search:`` section may say, and its defaults.

YAML grammar for one parameter (:data:`~mmbench.config.Param`): a list is a categorical choice,
``{low, high, log?, step?}`` is a numeric :class:`~mmbench.config.Range` (integer when ``low`` and
``high`` are integers and there is no ``log``... or ``int: true``), anything else is a fixed value.
Parameters are conditional on their parent: ``fusion_options.attention.heads`` is sampled only when
the trial picked ``attention``; encoder options only for the chosen encoder; torch-only training
options only for torch heads; ``focal_gamma`` only with ``loss: focal``.

This module is data and validation only, so the suite schema can use it; drawing a pipeline from
it with Optuna is :func:`mmbench.search.sampling.sample_pipeline`. Which fusions are searched by
default, and over which option ranges, is what each fusion declares in
:data:`~mmbench.fusion.FUSIONS` (:class:`~mmbench.fusion.FusionInfo`).
"""

from __future__ import annotations

import copy
from typing import Any, Literal

from pydantic import Field, field_validator

from mmbench import modality_kind
from mmbench.config import (
    DEFAULT_ENCODERS,
    Param,
    Range,
    StrictModel,
    TrainSpec,
    check_modality_keys,
)
from mmbench.errors import MMBenchError, did_you_mean
from mmbench.fusion import FUSIONS
from mmbench.fusion.catalog import POSITIONAL
from mmbench.registry import option_problems


def default_training_space() -> dict[str, Param]:
    """Training options searched when a suite's search space gives no ``training`` section."""
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


def default_encoders() -> dict[str, list[str] | str]:
    """Encoder choices per modality when a suite's search space names none.

    Representation is searched, not fixed: a pretrained image backbone and the cheap raw
    thumbnail; n-gram TF-IDF (sparse for linear and tree heads, SVD-reduced for neural ones), the
    counts of a capped n-gram vocabulary (dense, a few hundred columns: what a tree head can
    split on beside a table's tabular columns) and MiniLM sentence embeddings; log-mel and MFCC statistics; per-channel sensor statistics and
    MiniRocket features (for every sensor of a dataset: a kind's entry covers its named
    modalities); video frames through either image encoder, mean- or max-pooled (a temporal
    tower needs a torch head, so suites opt in to it). Expensive encoders are only started when
    their measured cost fits the time left (:mod:`mmbench.search.objective`).
    """
    return {
        "image": ["efficientnet_lite0", "pixels"],
        "text": ["tfidf", "ngrams", "minilm"],
        "tabular": ["tabular"],
        "audio": ["logmel", "mfcc"],
        "sensor": ["sensor_stats", "minirocket"],
        "video": ["frames/efficientnet_lite0", "frames/pixels"],
    }


def default_encoder_options() -> dict[str, dict[str, Param]]:
    """Searched encoder options: ``sparse`` only for heads that take sparse input; a spline
    basis per number (``splines: 5``) raised the linear head's macro-F1 on adult, emoji and
    synthetic data alike but costs it 2-8x the fit time, so it is searched, not the first try."""
    return {
        "efficientnet_lite0": {"image_size": [96, 128, 224]},
        "pixels": {"size": [8, 16]},
        "tfidf": {"sparse": [True, False], "svd_dim": [64, 256]},
        "ngrams": {"max_features": [64, 256, 1024]},
        "tabular": {"splines": [0, 5]},
        "frames/efficientnet_lite0": {"pooling": ["mean", "max"], "image_size": [128]},
        "frames/pixels": {"pooling": ["mean", "max"], "size": [8, 16]},
    }


def default_fusions() -> list[str]:
    """Fusions the default space picks from, in registration order (Optuna's choice order)."""
    return [e.name for e in FUSIONS.entries(default_search=True)]


def default_fusion_options() -> dict[str, dict[str, Param]]:
    """Each fusion's declared search ranges (copies: a suite may not edit the registry)."""
    return {
        e.name: copy.deepcopy(dict(e.meta.search_space))
        for e in FUSIONS.entries()
        if e.meta.search_space
    }


class SearchSpace(StrictModel):
    """What a study explores and how. Omitted sections fall back to sensible defaults.

    With ``objectives: [latency_ms]`` the study is multi-objective (quality vs. inference
    latency per row); Optuna cannot prune multi-objective trials, so pruning is off then.
    """

    sampler: Literal["tpe", "random", "cmaes", "nsga2"] = "tpe"
    pruner: Literal["wilcoxon", "median", "hyperband", "none"] = "wilcoxon"
    objectives: list[Literal["latency_ms"]] = Field(default_factory=list)
    portfolio: bool = True
    """Start a new study with known-strong configurations (:mod:`mmbench.search.portfolio`)."""
    rungs: bool = True
    """Multi-fidelity: on a large table, score every candidate first on a row subsample of one
    fold and cross-validate only the best third (:mod:`mmbench.search.fidelity`)."""

    encoders: dict[str, list[str] | str] = Field(default_factory=default_encoders)
    encoder_options: dict[str, dict[str, Param]] = Field(default_factory=default_encoder_options)
    fusion: list[str] | str = Field(default_factory=default_fusions)
    fusion_options: dict[str, dict[str, Param]] = Field(default_factory=default_fusion_options)
    training: dict[str, Param] = Field(default_factory=default_training_space)

    @field_validator("encoders")
    @classmethod
    def _known_modalities(cls, value: dict[str, Any]) -> dict[str, Any]:
        return check_modality_keys(value)

    def fusions(self) -> list[str]:
        """The fusion names this space picks from."""
        return as_list(self.fusion)

    def encoder_choices(self, modality: str) -> list[str]:
        """Encoders searched for ``modality`` (``sensor_accel``): its own entry, else its
        kind's (``sensor``), else the kind's default encoder."""
        kind = modality_kind(modality)
        return as_list(self.encoders.get(modality, self.encoders.get(kind, DEFAULT_ENCODERS[kind])))

    def check_names(self) -> None:
        """Fail early, with did-you-mean, on unknown encoder, fusion or training names and
        options, and on searched values outside their option's bounds."""
        problems = self.problems()
        if problems:
            raise MMBenchError("; ".join(problems))

    def problems(self) -> list[str]:
        """Every unknown name and every value outside its option's bounds, one line each."""
        return self.name_problems() + self.range_problems()

    def range_problems(self) -> list[str]:
        """Searched values a trial could draw and the pipeline would reject: both ends of each
        training range and every choice, checked against the option's own bounds (a dropout
        range up to 1.5 fails here, not in most trials); log ranges that reach zero."""
        problems = []
        for key, param in self.training.items():
            if key in TrainSpec.model_fields:
                problems += [f"training.{key}: {p}" for p in _value_problems(key, param)]
        sections = {"encoder_options": self.encoder_options, "fusion_options": self.fusion_options}
        for section, by_name in sections.items():
            for name, options in by_name.items():
                for key, param in options.items():
                    if isinstance(param, Range) and param.log and param.low <= 0:
                        problems.append(f"{section}.{name}.{key}: a log range needs low > 0")
        return problems

    def name_problems(self) -> list[str]:
        """Every unknown encoder, fusion or training option name in this space, one line each.

        Checked here rather than by the schema so that a suite's unknown names and its
        out-of-bounds values are reported together, in one pass."""
        encoders = [name for choices in self.encoders.values() for name in as_list(choices)]
        valid = list(TrainSpec.model_fields)
        problems = [
            f"training: unknown training option {key!r}{did_you_mean(key, valid)}"
            for key in self.training
            if key not in valid
        ]
        problems += [p for name in encoders for p in encoder_problems(name, {})]
        for name, options in self.encoder_options.items():  # an unknown name is said once
            problems += encoder_problems(name, options, name_known=name in encoders)
        for name in self.fusions():
            problems += fusion_problems(name, self.fusion_options.get(name, {}))
        return problems


def _value_problems(key: str, param: Param) -> list[str]:
    """Why values of training option ``key`` that ``param`` may draw are invalid."""
    from pydantic import ValidationError

    if isinstance(param, Range):
        problems = ["a log range needs low > 0"] if param.log and param.low <= 0 else []
        values: list[tuple[str, Any]] = [("low", param.low), ("high", param.high)]
    elif isinstance(param, list):
        problems, values = [], [("choice", v) for v in param]
    else:
        problems, values = [], [("value", param)]
    for label, value in values:
        try:
            TrainSpec.model_validate({key: value})
        except ValidationError as exc:
            why = exc.errors()[0]["msg"].removeprefix("Value error, ")
            problems.append(f"{label} {value!r} is outside the option's bounds ({why})")
    return problems


def encoder_problems(name: str, options: dict[str, Any], *, name_known: bool = False) -> list[str]:
    """Is ``name`` (``family`` or ``family/model``) a registered encoder taking ``options``?"""
    from mmbench.encoders.base import ENCODERS  # importing it registers the built-ins

    family = name.partition("/")[0]
    if family not in ENCODERS:
        return [] if name_known else [_unknown("encoder", family, ENCODERS.names())]
    return option_problems(ENCODERS.get(family), options, f"encoder {name!r}")


def fusion_problems(name: str, options: dict[str, Any]) -> list[str]:
    """Is ``name`` a registered fusion taking ``options``?"""
    if name not in FUSIONS:
        return [_unknown("fusion", name, FUSIONS.names())]
    return option_problems(FUSIONS.get(name), options, f"fusion {name!r}", POSITIONAL)


def _unknown(kind: str, name: str, known: list[str]) -> str:
    return f"unknown {kind} {name!r}{did_you_mean(name, known)}; known: {', '.join(known)}"


def as_list(value: Any) -> list[Any]:
    """A YAML value that may be one item or a list of them, as a list."""
    return value if isinstance(value, list) else [value]
