"""Drawing one :class:`~mmbench.config.PipelineSpec` from a search space with an Optuna trial.

The space itself (schema, defaults, name checks) is :mod:`mmbench.space`; this is the part that
talks to Optuna. Parameter names are stable (``encoder.text``, ``fusion.attention.heads``,
``lr``...) so that studies resume and trials compare across runs. Conditional parameters are
suggested only under their parent: options of the chosen encoder and fusion, torch-only training
options only for torch heads (as each fusion declares in :data:`~mmbench.fusion.FUSIONS`),
``focal_gamma`` only with ``loss: focal``.
"""

from __future__ import annotations

from typing import Any

from mmbench.config import EncoderSpec, FusionSpec, PipelineSpec, Range, TrainSpec
from mmbench.errors import MMBenchError
from mmbench.fusion import FUSIONS
from mmbench.space import SearchSpace


def sample_pipeline(space: SearchSpace, trial: Any, modalities: list[str]) -> PipelineSpec:
    """Draw one pipeline from ``trial`` (an Optuna trial) for the given modalities.

    The fusion is drawn first, since which representations fit depends on it: sparse encoder
    output (``sparse: true``) only for heads that declare ``sparse=True``.
    """
    fusion = suggest(trial, "fusion", space.fusions())
    sparse_ok = FUSIONS.meta(fusion).sparse if fusion in FUSIONS else False
    encoders = {m: _encoder(space, trial, m, sparse_ok) for m in modalities}
    fusion_opts = {
        k: suggest(trial, f"fusion.{fusion}.{k}", p)
        for k, p in space.fusion_options.get(fusion, {}).items()
    }
    try:
        return PipelineSpec(
            encoders=encoders,
            fusion=FusionSpec(name=fusion, options=fusion_opts),
            training=TrainSpec(**_training(space, trial, fusion)),
        )
    except ValueError as exc:
        raise MMBenchError(f"search space produced an invalid pipeline: {exc}") from None


def _encoder(space: SearchSpace, trial: Any, modality: str, sparse_ok: bool) -> EncoderSpec:
    """The modality's encoder and its options; dense-only options are skipped when sparse."""
    name = suggest(trial, f"encoder.{modality}", space.encoder_choices(modality))
    params = space.encoder_options.get(name, {})
    options: dict[str, Any] = {}
    if "sparse" in params:
        key = f"encoder.{modality}.{name}.sparse"
        options["sparse"] = bool(suggest(trial, key, params["sparse"])) if sparse_ok else False
    skip = _dense_only(name) if options.get("sparse") else ()
    for k, p in params.items():
        if k != "sparse" and k not in skip:
            options[k] = suggest(trial, f"encoder.{modality}.{name}.{k}", p)
    return EncoderSpec(name=name, options=options)


def _dense_only(name: str) -> tuple[str, ...]:
    from mmbench.encoders.base import ENCODERS  # importing it registers the built-ins

    family = name.partition("/")[0]
    builder = ENCODERS.get(family) if family in ENCODERS else None
    return tuple(getattr(builder, "dense_only_options", ()))


def _training(space: SearchSpace, trial: Any, fusion: str) -> dict[str, Any]:
    """Training options that apply to ``fusion``: heads other than torch's skip torch-only ones."""
    skip = frozenset() if _is_torch(fusion) else TrainSpec.torch_only()
    training: dict[str, Any] = {}
    for k, p in space.training.items():
        if k in skip:
            continue
        if k == "focal_gamma" and training.get("loss", "ce") != "focal":
            continue
        training[k] = suggest(trial, k, p)
    return training


def _is_torch(fusion: str) -> bool:
    """Torch heads take every training option; an unknown name is left to fail when built."""
    return FUSIONS.meta(fusion).torch if fusion in FUSIONS else True


def suggest(trial: Any, name: str, param: Any) -> Any:
    """One parameter: a range or a list of choices is suggested, a fixed value returned as is."""
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
