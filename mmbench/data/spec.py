"""What the data layer reads from a suite's dataset entry: its sources, target and modalities.

The suite schema (:mod:`mmbench.suite`) extends :class:`DataSpec` with what the layers above
need (budget, pipeline, search space), so the data layer never imports the suite.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from mmbench.config import SAFE_NAME, StrictModel
from mmbench.evaluation import Protocol

SourceKind = Literal[
    "hub", "parquet", "csv", "json", "imagefolder", "audiofolder", "disk", "synthetic"
]
FILE_KINDS = ("parquet", "csv", "json", "imagefolder", "audiofolder", "disk")


class SourceSpec(StrictModel):
    """Where rows come from. ``path`` is relative to the suite file."""

    kind: SourceKind
    id: str | None = Field(None, description="hub dataset id, e.g. 'org/name'")
    revision: str | None = Field(None, description="hub commit/tag; required for reproducibility")
    config: str | None = Field(None, description="hub config name")
    split: str = "train"
    path: str | list[str] | None = None
    options: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _check_kind(self) -> SourceSpec:
        if self.kind == "hub":
            if not self.id:
                raise ValueError("a hub source needs 'id' (e.g. id: org/name)")
            if not self.revision:
                raise ValueError(
                    f"hub source {self.id!r} needs a pinned 'revision' (a commit sha or tag) "
                    "so that results are reproducible"
                )
        elif self.kind in FILE_KINDS and not self.path:
            raise ValueError(f"a {self.kind} source needs 'path'")
        return self

    def describe(self) -> str:
        if self.kind == "hub":
            return f"hub:{self.id}@{self.revision}"
        if self.kind == "synthetic":
            return "synthetic"
        return f"{self.kind}:{self.path}"


class Modalities(StrictModel):
    """Columns carrying each modality. Image and audio take one column; text and tabular several."""

    image: list[str] = Field(default_factory=list)
    text: list[str] = Field(default_factory=list)
    tabular: list[str] = Field(default_factory=list)
    audio: list[str] = Field(default_factory=list)

    @field_validator("image", "text", "tabular", "audio", mode="before")
    @classmethod
    def _listify(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("image", "audio")
    @classmethod
    def _single(cls, value: list[str]) -> list[str]:
        if len(value) > 1:
            raise ValueError("takes exactly one column")
        return value

    def present(self) -> list[str]:
        """Modalities with at least one column, in canonical order."""
        return [m for m in ("image", "text", "tabular", "audio") if getattr(self, m)]

    def columns(self) -> list[str]:
        return [c for m in self.present() for c in getattr(self, m)]


class DataSpec(StrictModel):
    """A dataset entry as the data layer sees it (:class:`mmbench.suite.DatasetSpec` adds the rest).

    ``protocol`` is here because loading checks that every class has enough rows for its folds.
    """

    name: str = Field(pattern=SAFE_NAME)
    source: SourceSpec
    test_source: SourceSpec | None = None
    target: str
    modalities: Modalities
    on_unreadable: Literal["error", "missing"] = "error"
    max_rows: int | None = Field(None, ge=2, description="stratified subsample for quick runs")
    protocol: Protocol = Field(default_factory=Protocol)

    @model_validator(mode="after")
    def _check_modalities(self) -> DataSpec:
        if not self.modalities.present():
            raise ValueError("'modalities' must name columns for at least one modality")
        if self.target in self.modalities.columns():
            raise ValueError(f"target column {self.target!r} is also listed as a modality column")
        return self
