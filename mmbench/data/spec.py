"""What the data layer reads from a suite's dataset entry: its sources, target and modalities.

The suite schema (:mod:`mmbench.suite`) extends :class:`DataSpec` with what the layers above
need (budget, pipeline, search space), so the data layer never imports the suite.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, PrivateAttr, field_validator, model_validator

from mmbench import INSTANCE_NAME, modality_name
from mmbench.config import SAFE_NAME, StrictModel
from mmbench.evaluation import Protocol

SourceKind = Literal[
    "hub", "url", "parquet", "csv", "json", "ts", "imagefolder", "audiofolder", "disk", "synthetic"
]
FILE_KINDS = ("parquet", "csv", "json", "ts", "imagefolder", "audiofolder", "disk")
HASH_PATTERN = r"^((sha256:)?[0-9a-fA-F]{64}|sha1:[0-9a-fA-F]{40}|md5:[0-9a-fA-F]{32}|unpublished)$"


class RowsFromNames(StrictModel):
    """A many-file source's table: one row per registry file, columns from its name.

    ``pattern``'s named groups become string columns (``(?P<digit>\\d)_...``); the file's
    cached path goes in ``file_column``.
    """

    file_column: str
    pattern: str
    select: dict[str, str] = Field(
        default_factory=dict,
        description="keep rows whose column fully matches a regex, e.g. {take: '[0-4]'}",
    )

    @field_validator("pattern")
    @classmethod
    def _regex(cls, value: str) -> str:
        try:
            compiled = re.compile(value)
        except re.error as exc:
            raise ValueError(f"not a regular expression: {exc}") from None
        if not compiled.groupindex:
            raise ValueError("needs named groups, e.g. (?P<label>[a-z]+)")
        return value

    @model_validator(mode="after")
    def _select_groups(self) -> RowsFromNames:
        groups = set(re.compile(self.pattern).groupindex)
        unknown = sorted(set(self.select) - groups)
        if unknown:
            raise ValueError(f"select names {unknown}, not groups of the pattern {sorted(groups)}")
        return self


class DatasetCard(StrictModel):
    """What a user must know before publishing a number on a dataset (MTEB's TaskMetadata)."""

    homepage: str
    license: str
    citation: str
    task: str
    notes: str = ""


class SourceSpec(StrictModel):
    """Where rows come from. ``path`` is relative to the suite file."""

    kind: SourceKind
    id: str | None = Field(None, description="hub dataset id, e.g. 'org/name'")
    revision: str | None = Field(None, description="hub commit/tag; required for reproducibility")
    config: str | None = Field(None, description="hub config name")
    split: str = "train"
    path: str | list[str] | None = Field(
        None, description="local file(s); for a url archive, the member(s) holding the table"
    )
    url: str | None = Field(None, description="url source: one file (csv/parquet/json/archive)")
    hash: str | None = Field(
        None,
        pattern=HASH_PATTERN,
        description="published hash of 'url': sha256:HEX, sha1:HEX, md5:HEX or 'unpublished' "
        "(pinned in <suite>.lock on first fetch)",
    )
    format: Literal["csv", "parquet", "json", "ts"] | None = Field(
        None,
        description="url source: the table's format (default: from its extension); ts: the "
        "UEA/UCR time-series format, one column dim_K per channel (mmbench[sensor])",
    )
    base_url: str | None = Field(None, description="url source: many files under one URL")
    registry: str | None = Field(None, description="'NAME HASH' lines, relative to the suite")
    rows_from_names: RowsFromNames | None = None
    options: dict[str, Any] = Field(default_factory=dict)
    # set by the suite loader: where hashes of 'unpublished' files are pinned
    _lock_path: Path | None = PrivateAttr(None)

    @model_validator(mode="after")
    def _check_url(self) -> SourceSpec:
        remote = {"url": self.url, "base_url": self.base_url, "registry": self.registry}
        if self.kind != "url":
            extra = [k for k, v in remote.items() if v] + (["hash"] if self.hash else [])
            if extra:
                raise ValueError(f"{', '.join(extra)} only apply to kind: url")
            return self
        if bool(self.url) == bool(self.base_url):
            raise ValueError("a url source needs 'url' (one file) or 'base_url' + 'registry'")
        for value in (self.url, self.base_url):
            if value and not value.startswith(("https://", "http://")):
                raise ValueError(f"{value!r} is not an http(s) URL")
        if self.url and not self.hash:
            raise ValueError(
                f"url {self.url!r} needs its published 'hash' (sha256:HEX, sha1:HEX, md5:HEX), "
                "or 'unpublished' to pin it in the suite's lock file on first fetch"
            )
        if self.base_url and not (self.registry and self.rows_from_names):
            raise ValueError("'base_url' needs 'registry' (NAME HASH lines) and 'rows_from_names'")
        return self

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
        if self.kind == "url":
            if self.base_url:
                return f"url:{self.base_url} ({self.registry})"
            return f"url:{self.url}" + (f" [{self.path}]" if self.path else "")
        return f"{self.kind}:{self.path}"


class Modalities(StrictModel):
    """Columns carrying each modality. Image, audio and video take one column; text and tabular
    several.

    Sensors are named, each its own modality (``sensor: {accel: [ax, ay, az], gyro: [gx, gy,
    gz]}`` -> ``sensor_accel`` and ``sensor_gyro``): a column holds one channel's series per row
    (a list of numbers) or several (a list of equal-length lists), and a sensor's channels are
    its columns' channels in order.

    ``modalities: auto`` types every column but the target and the group column from the data
    (:mod:`mmbench.data.infer`); ``auto: true`` beside named columns types only the rest, and
    ``ignore`` lists columns that auto typing leaves out (identifiers, URLs).
    """

    image: list[str] = Field(default_factory=list)
    text: list[str] = Field(default_factory=list)
    tabular: list[str] = Field(default_factory=list)
    audio: list[str] = Field(default_factory=list)
    video: list[str] = Field(default_factory=list)
    sensor: dict[str, list[str]] = Field(
        default_factory=dict, description="NAME: [columns] per sensor; modality sensor_NAME"
    )
    auto: bool = Field(False, description="type the columns not named here from the data")
    ignore: list[str] = Field(
        default_factory=list, description="auto: columns left out (identifiers, URLs)"
    )

    @model_validator(mode="before")
    @classmethod
    def _auto(cls, value: Any) -> Any:
        if isinstance(value, str):
            if value != "auto":
                raise ValueError(
                    f"{value!r}: modalities are a mapping (text: [columns], ...) or 'auto'"
                )
            return {"auto": True}
        return value

    @model_validator(mode="after")
    def _ignore_needs_auto(self) -> Modalities:
        if self.ignore and not self.auto:
            raise ValueError("'ignore' applies to auto typing only: add 'auto: true'")
        named = sorted(set(self.ignore) & set(self.columns()))
        if named:
            raise ValueError(f"column(s) {named} are both named and ignored")
        return self

    @field_validator("image", "text", "tabular", "audio", "video", "ignore", mode="before")
    @classmethod
    def _listify(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("image", "audio", "video")
    @classmethod
    def _single(cls, value: list[str]) -> list[str]:
        if len(value) > 1:
            raise ValueError("takes exactly one column")
        return value

    @field_validator("sensor", mode="before")
    @classmethod
    def _named(cls, value: Any) -> Any:
        if isinstance(value, str | list):
            raise ValueError(
                "sensors are named, each its own modality: sensor: {NAME: [columns]}, "
                f"e.g. sensor: {{imu: {value!r}}}"
            )
        if isinstance(value, dict):
            return {k: [v] if isinstance(v, str) else v for k, v in value.items()}
        return value

    @field_validator("sensor")
    @classmethod
    def _sensor_names(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        for name, columns in value.items():
            if not re.fullmatch(INSTANCE_NAME, name):
                raise ValueError(
                    f"sensor name {name!r} must be lower-case letters, digits and '_' "
                    f"(it names the modality sensor_NAME), e.g. {_instance_hint(name)!r}"
                )
            if not columns:
                raise ValueError(f"sensor {name!r} names no column")
        return value

    def by_modality(self) -> dict[str, list[str]]:
        """Columns of each modality with at least one, by modality name, in canonical order."""
        out = {m: getattr(self, m) for m in ("image", "text", "tabular", "audio", "video")}
        out.update({modality_name("sensor", n): cols for n, cols in self.sensor.items()})
        return {m: cols for m, cols in out.items() if cols}

    def present(self) -> list[str]:
        """Modalities with at least one column, in canonical order."""
        return list(self.by_modality())

    def columns(self) -> list[str]:
        return [c for cols in self.by_modality().values() for c in cols]


def _instance_hint(name: str) -> str:
    return re.sub(r"[^a-z0-9_]+", "_", name.lower()).strip("_") or "imu"


class DataSpec(StrictModel):
    """A dataset entry as the data layer sees it (:class:`mmbench.suite.DatasetSpec` adds the rest).

    ``protocol`` is here because loading checks that every class has enough rows for its folds.
    """

    name: str = Field(pattern=SAFE_NAME)
    source: SourceSpec
    test_source: SourceSpec | None = None
    target: str
    modalities: Modalities
    card: DatasetCard | None = Field(None, description="homepage, license, citation, task")
    on_unreadable: Literal["error", "missing"] = "error"
    max_rows: int | None = Field(None, ge=2, description="stratified subsample for quick runs")
    protocol: Protocol = Field(default_factory=Protocol)

    @model_validator(mode="after")
    def _check_modalities(self) -> DataSpec:
        if not self.modalities.present() and not self.modalities.auto:
            raise ValueError(
                "'modalities' must name columns for at least one modality, or be 'auto'"
            )
        if self.target in self.modalities.ignore:
            raise ValueError(f"target column {self.target!r} is also listed under ignore")
        if self.target in self.modalities.columns():
            raise ValueError(f"target column {self.target!r} is also listed as a modality column")
        sensed = [c for cols in self.modalities.sensor.values() for c in cols]
        twice = sorted({c for c in sensed if self.modalities.columns().count(c) > 1})
        if twice:
            raise ValueError(f"sensor column(s) {twice} are listed twice: a column is one sensor's")
        return self
