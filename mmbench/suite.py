"""Suites: YAML files naming datasets, their modalities, the protocol and the budget.

The schema is code (pydantic with ``extra="forbid"`` and ``Literal`` vocabularies). Loading a
suite turns every schema violation into a :class:`~mmbench.errors.SuiteError` that names the file,
the key path and, for unknown keys, the closest valid key.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, ValidationError, field_validator, model_validator

from mmbench import modality_kind
from mmbench.config import SAFE_NAME, PipelineSpec, StrictModel
from mmbench.data.spec import FILE_KINDS, DataSpec, Modalities, SourceKind, SourceSpec
from mmbench.errors import SuiteError, did_you_mean
from mmbench.evaluation import MetricName, Protocol
from mmbench.space import SearchSpace, as_list

__all__ = [  # the data and protocol halves live below, in the layers that read them
    "FILE_KINDS",
    "Ablation",
    "Budget",
    "DataSpec",
    "DatasetSpec",
    "MetricName",
    "Modalities",
    "Protocol",
    "PublishedScore",
    "RegressRule",
    "SourceKind",
    "SourceSpec",
    "Suite",
    "load_suite",
    "parse_suite",
    "resolve_suite",
    "shipped_suites",
]


class Budget(StrictModel):
    """How much search a dataset gets. ``trials: 1`` runs only the default/given pipeline."""

    trials: int = Field(1, ge=1)
    timeout_s: float | None = Field(None, gt=0)


class Ablation(StrictModel):
    """Modality ablations of the chosen pipeline (``ablation: true`` is shorthand)."""

    enabled: bool = False
    max_subset_modalities: int = Field(5, ge=1, description="every subset up to this many")
    budget_share: float = Field(
        0.25,
        ge=0.0,
        lt=1.0,
        description="share of a search's timeout_s kept for the ablation (it also gets what "
        "the search and final model leave); the job's timeout_s covers the ablation",
    )

    @model_validator(mode="before")
    @classmethod
    def _from_bool(cls, value: Any) -> Any:
        return {"enabled": value} if isinstance(value, bool) else value


class RegressRule(StrictModel):
    """How ``mmbench regress`` judges this suite (see :mod:`mmbench.gate.regress` for the rule).

    A dataset regresses when its paired drop is significant after Holm's correction at
    ``alpha`` *and* at least ``min_effect`` (metric units): significance alone would fail CI on
    a real but negligible change, size alone on noise. ``time_tolerance`` is the largest
    accepted growth of the fit-time ratio (fit seconds / reference seconds) over the baseline's.
    """

    min_effect: float = Field(0.01, ge=0)
    alpha: float = Field(0.05, gt=0, lt=1)
    resamples: int = Field(2000, ge=100)
    time_tolerance: float = Field(1.5, gt=1)


class PublishedScore(StrictModel):
    """A score published elsewhere for this dataset: shown beside measured rows, never ranked.

    Every field a reader needs to find the number in its source and judge what it measures is
    required: the publication (``source``), the table or figure in it (``where``), the split,
    the metric and how many train/test resamples the figure averages. A number that could not
    be read in its source is not entered.

    ``split: test`` is the dataset's held-out split (its ``test_source``: the benchmark's own
    test file), compared with the held-out column; ``cv`` is a cross-validated score on folds
    that are not these, shown but not compared.
    """

    system: str = Field(
        min_length=1, description="what was scored, e.g. 'AutoGluon multimodal (fuse-late)'"
    )
    metric: MetricName
    split: Literal["test", "cv"]
    value: float
    source: str = Field(
        min_length=1,
        description="the publication the number is read in: authors, year, title or venue",
    )
    where: str = Field(
        min_length=1, description="where in the source the number is: 'Table 3', 'Figure 2b'"
    )
    resamples: int = Field(
        ge=1,
        description="how many train/test resamples the published figure averages "
        "(1: the one split named by 'split')",
    )
    url: str = Field("", description="a link or DOI to the source, e.g. 'doi:10.1007/...'")
    notes: str = ""

    @field_validator("system", "source", "where")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be blank: a reader needs it to find the published number")
        return value


class DatasetSpec(DataSpec):
    """One dataset entry: the data (:class:`~mmbench.data.spec.DataSpec`) and what to run on it."""

    reference: list[PublishedScore] = Field(
        default_factory=list, description="published scores, shown as reference rows"
    )
    budget: Budget = Field(default_factory=Budget)
    ablation: Ablation = Field(default_factory=Ablation)
    pipeline: PipelineSpec | None = None
    search: SearchSpace | None = Field(
        None, description="what the Optuna study explores when budget.trials > 1"
    )


class Suite(StrictModel):
    name: str = Field(pattern=SAFE_NAME)
    description: str = ""
    seed: int = 0
    datasets: list[DatasetSpec] = Field(min_length=1)
    regress: RegressRule = Field(default_factory=RegressRule)
    # not part of the YAML: where the suite was read from, to resolve relative paths
    path: Path | None = Field(None, exclude=True)

    @model_validator(mode="after")
    def _unique_names(self) -> Suite:
        names = [d.name for d in self.datasets]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"dataset names must be unique; repeated: {dupes}")
        return self

    def dataset(self, name: str) -> DatasetSpec:
        for d in self.datasets:
            if d.name == name:
                return d
        known = [d.name for d in self.datasets]
        raise SuiteError(
            f"suite {self.name!r} has no dataset {name!r}{did_you_mean(name, known)}; known: {known}"
        )

    @property
    def root(self) -> Path:
        """Directory that relative source paths are resolved against."""
        return self.path.parent if self.path else Path.cwd()


def shipped_suites() -> dict[str, Path]:
    """The suites that ship inside the package (``mmbench/suites/*.yaml``), by file stem."""
    folder = resources.files("mmbench") / "suites"
    if not folder.is_dir():
        return {}
    found = (Path(str(f)) for f in folder.iterdir() if f.name.endswith((".yaml", ".yml")))
    return {p.stem: p for p in sorted(found)}


def resolve_suite(arg: str | Path) -> Path:
    """The suite file ``arg`` names: ``arg`` itself when it is a file or looks like a path (a
    folder or a YAML suffix), else the shipped suite of that name (``smoke``)."""
    path = Path(arg)
    if path.exists() or path.suffix in (".yaml", ".yml") or path.parent != Path("."):
        return path
    shipped = shipped_suites()
    if path.name in shipped:
        return shipped[path.name]
    names = ", ".join(shipped) or "none (no suites folder in the installed package)"
    raise SuiteError(
        f"{arg}: no such suite file, and no shipped suite of that name"
        f"{did_you_mean(path.name, shipped)}; shipped suites: {names}"
    )


def load_suite(path: str | Path) -> Suite:
    """Read and validate a suite YAML file, or the shipped suite a bare name names."""
    path = resolve_suite(path)
    if not path.exists():
        hint = ""
        if path.parent.is_dir():
            hint = did_you_mean(path.name, [p.name for p in path.parent.glob("*.y*ml")])
        raise SuiteError(f"{path}: suite file not found{hint}")
    if path.is_dir():
        found = sorted(p.name for p in path.glob("*.y*ml"))
        inside = f" (it holds {', '.join(found)})" if found else ""
        raise SuiteError(f"{path}: is a directory, not a suite YAML file{inside}")
    try:
        raw = yaml.safe_load(path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise SuiteError(
            f"{path}: not UTF-8 text (byte {exc.object[exc.start]:#04x} at offset {exc.start}); "
            "a suite is a UTF-8 YAML file"
        ) from None
    except OSError as exc:
        raise SuiteError(f"{path}: cannot read the suite file: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise SuiteError(f"{path}: not valid YAML: {exc}") from None
    return parse_suite(raw, source=str(path), path=path)


def parse_suite(raw: Any, source: str = "<suite>", path: Path | None = None) -> Suite:
    """Validate an already-parsed suite mapping; errors are reported against ``source``."""
    if not isinstance(raw, dict):
        raise SuiteError(f"{source}: a suite must be a mapping with 'name' and 'datasets'")
    try:
        suite = Suite.model_validate(raw)
    except ValidationError as exc:  # the schema's errors, and the parts that did validate
        lines = validation_lines(exc, source, raw) + partial_problems(raw, source)
        raise SuiteError("invalid suite\n  " + "\n  ".join(lines)) from None
    problems = [p for i, d in enumerate(suite.datasets) for p in dataset_problems(i, d)]
    if problems:
        raise SuiteError("invalid suite\n  " + "\n  ".join(f"{source}: {p}" for p in problems))
    suite.path = path.resolve() if path else None
    if suite.path is not None:  # hashes of files published without one are pinned beside it
        for d in suite.datasets:
            for spec in (d.source, d.test_source):
                if spec is not None:
                    spec._lock_path = suite.path.with_suffix(".lock")
    return suite


def dataset_problems(
    i: int, d: DatasetSpec | None, *, name: str = "", search: Any = None, pipeline: Any = None
) -> list[str]:
    """Every unknown encoder, fusion or option name, and every searched value outside its
    option's bounds, in one dataset's pipeline and search space, each with where it is."""
    from mmbench.space import encoder_problems, fusion_problems

    if d is not None:
        name, search, pipeline = d.name, d.search, d.pipeline
    where = f"datasets[{i}]({name})"
    problems = [f"{where}.search: {p}" for p in search.problems()] if search is not None else []
    if pipeline is not None:
        found = [p for e in pipeline.encoders.values() for p in encoder_problems(e.name, e.options)]
        found += fusion_problems(pipeline.fusion.name, pipeline.fusion.options)
        problems += [f"{where}.pipeline: {p}" for p in found]
    declared = d.modalities.present() if d is not None else None
    for section, part in (("pipeline", pipeline), ("search", search)):
        if part is not None:
            found = modality_problems(part.encoders, declared)
            problems += [f"{where}.{section}.encoders: {p}" for p in found]
    return problems


def modality_problems(encoders: dict[str, Any], declared: list[str] | None) -> list[str]:
    """Encoders keyed by a named modality the dataset does not declare (``sensor_acel``), and
    encoders given to a modality of another kind (``text: minirocket``)."""
    from mmbench.encoders.base import ENCODERS  # importing it registers the built-ins

    problems = []
    for key, value in encoders.items():
        kind = modality_kind(key)
        if declared is not None and key != kind and key not in declared:
            named = [m for m in declared if modality_kind(m) == kind] or declared
            problems.append(
                f"modality {key!r} is not declared{did_you_mean(key, named)}; the dataset's "
                f"modalities: {', '.join(declared)}"
            )
        names = [value.name] if hasattr(value, "name") else as_list(value)
        for name in names:
            family = str(name).partition("/")[0]
            encodes = (
                getattr(ENCODERS.get(family), "modality", kind) if family in ENCODERS else kind
            )
            if encodes != kind:
                problems.append(f"{key}: encoder {name!r} encodes {encodes}, not {kind}")
    return problems


def partial_problems(raw: dict[str, Any], source: str) -> list[str]:
    """When the schema rejected the suite, the name and bounds problems of each dataset's
    ``search`` and ``pipeline`` sections that did validate on their own: every problem is
    reported in one pass, not in rounds of edit-and-rerun."""
    lines = []
    datasets = raw.get("datasets")
    for i, d in enumerate(datasets if isinstance(datasets, list) else []):
        if not isinstance(d, dict):
            continue
        parts = {}
        for key, model in (("search", SearchSpace), ("pipeline", PipelineSpec)):
            if d.get(key) is not None:
                try:
                    parts[key] = model.model_validate(d[key])
                except ValidationError:
                    continue  # already among the schema's errors
        found = dataset_problems(i, None, name=str(d.get("name", "")), **parts)
        lines += [f"{source}: {p}" for p in found]
    return lines


def validation_lines(exc: ValidationError, source: str, raw: Any) -> list[str]:
    """One line per problem: ``file: key.path: message (did you mean 'x'?)``."""
    lines = []
    for err in exc.errors():
        loc = [p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-"))]
        where = _loc_string(loc, raw)
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            valid = _valid_keys(Suite, loc[:-1])
            msg = f"unknown key {loc[-1]!r}{did_you_mean(str(loc[-1]), valid)}"
            if valid:
                msg += f"; valid keys: {', '.join(valid)}"
        elif err["type"] == "missing":
            msg = f"required key {loc[-1]!r} is missing"
            about = _field_description(loc)
            msg += f" ({about})" if about else ""
        elif err["type"] == "literal_error":
            msg = f"{msg}, got {err.get('input')!r}"
        elif err["type"] == "string_pattern_mismatch" and loc[-1:] == ["name"]:
            msg = (
                f"{err.get('input')!r} is not a safe name: names become folders under results/, "
                "so use letters, digits, '_', '-' and '.', not starting with '.'"
            )
        lines.append(f"{source}: {where}: {msg}")
    return lines


def _loc_string(loc: list[Any], raw: Any) -> str:
    """``datasets[0](synthetic).protocol.folds`` — dataset indices carry their name when known."""
    parts: list[str] = []
    node = raw
    for p in loc:
        if isinstance(p, int):
            label = f"[{p}]"
            if isinstance(node, list) and p < len(node) and isinstance(node[p], dict):
                name = node[p].get("name")
                label += f"({name})" if name else ""
            parts.append(label)
        else:
            parts.append(("." if parts else "") + str(p))
        node = node[p] if _can_index(node, p) else None
    return "".join(parts) or "<top level>"


def _can_index(node: Any, key: Any) -> bool:
    if isinstance(node, dict):
        return key in node
    return isinstance(node, list) and isinstance(key, int) and key < len(node)


def _valid_keys(model: Any, loc: list[Any]) -> list[str]:
    """Field names of the model found by following ``loc`` through the schema."""
    for p in loc:
        if isinstance(p, int) or model is None:
            continue
        field = getattr(model, "model_fields", {}).get(p)
        model = _model_of(field.annotation) if field else None
    return sorted(getattr(model, "model_fields", {})) if model else []


def _field_description(loc: list[Any]) -> str:
    """The schema's description of the field at ``loc`` (empty when it has none)."""
    model: Any = Suite
    field = None
    for p in loc:
        if isinstance(p, int):
            continue
        field = getattr(model, "model_fields", {}).get(p) if model is not None else None
        model = _model_of(field.annotation) if field else None
    return (field.description or "") if field is not None else ""


def _model_of(annotation: Any) -> Any:
    """The pydantic model inside ``X``, ``X | None``, ``list[X]`` or ``dict[K, X]``."""
    from typing import get_args

    if isinstance(annotation, type) and hasattr(annotation, "model_fields"):
        return annotation
    for arg in reversed(get_args(annotation)):
        found = _model_of(arg)
        if found is not None:
            return found
    return None
