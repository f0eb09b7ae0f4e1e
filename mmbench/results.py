"""Typed, versioned result files: one JSON per (suite, dataset, pipeline).

Leaderboards and regression gates are built from these files only, never from memory. Every
file carries what is needed to reproduce it: mmbench version, git commit, package versions,
dataset revision and fingerprint, seed, protocol and hardware.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import tempfile
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

import mmbench
from mmbench.errors import MMBenchError

SCHEMA_VERSION = 1
PACKAGES = ("torch", "timm", "scikit-learn", "xgboost", "optuna", "mlflow", "datasets", "numpy")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Provenance(_Model):
    mmbench_version: str
    git_commit: str | None
    python: str
    packages: dict[str, str]
    hardware: dict[str, Any]
    created_at: str


class DatasetInfo(_Model):
    name: str
    source: str
    revision: str | None = None
    fingerprint: str
    n_rows: int
    n_classes: int
    classes: list[str]
    modalities: list[str]
    recipe: dict[str, Any] | None = None


class FoldRecord(_Model):
    key: str
    metrics: dict[str, float]
    seconds: float
    error: str | None = None


class RunResult(_Model):
    """Everything a leaderboard or a regression gate needs about one pipeline on one dataset."""

    schema_version: int = SCHEMA_VERSION
    suite: str
    dataset: DatasetInfo
    pipeline_name: str
    pipeline: dict[str, Any]
    seed: int
    protocol: dict[str, Any]
    metrics: dict[str, dict[str, float]]
    chance: dict[str, float] = Field(
        default_factory=dict, description="score of predicting the class prior for every row"
    )
    folds: list[FoldRecord]
    test_metrics: dict[str, float] | None = None
    durations: dict[str, float] = Field(default_factory=dict)
    search: dict[str, Any] | None = None
    ablation: dict[str, Any] | None = None
    tracking: dict[str, Any] | None = None
    provenance: Provenance

    def primary(self) -> tuple[str, float, float]:
        """(metric, mean, std) of the protocol's primary metric."""
        name = self.protocol["primary_metric"]
        m = self.metrics.get(name, {})
        return name, m.get("mean", float("nan")), m.get("std", float("nan"))


def provenance(device: str = "cpu") -> Provenance:
    packages = {}
    for name in PACKAGES:
        try:
            packages[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    hardware: dict[str, Any] = {
        "machine": platform.machine(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "device": device,
    }
    if device.startswith("cuda"):
        import torch

        hardware["gpu"] = torch.cuda.get_device_name(0)
    return Provenance(
        mmbench_version=mmbench.__version__,
        git_commit=git_commit(),
        python=platform.python_version(),
        packages=packages,
        hardware=hardware,
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )


def git_commit() -> str | None:
    """Commit of the mmbench checkout, with ``-dirty`` when it has uncommitted changes."""
    root = Path(__file__).resolve().parent.parent
    try:
        sha = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{sha}-dirty" if dirty else sha


def result_path(results_dir: Path, suite: str, dataset: str, pipeline: str) -> Path:
    return Path(results_dir) / suite / dataset / f"{pipeline}.json"


def write_result(result: RunResult, results_dir: Path) -> Path:
    """Atomically write ``result`` to its canonical path; returns the path."""
    path = result_path(results_dir, result.suite, result.dataset.name, result.pipeline_name)
    write_json_atomic(path, result.model_dump(mode="json"))
    return path


def write_json_atomic(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "w") as fh:
        json.dump(data, fh, indent=2, sort_keys=False, allow_nan=True)
        fh.write("\n")
    os.replace(tmp, path)


def read_result(path: Path) -> RunResult:
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise MMBenchError(f"{path}: cannot read result file: {exc}") from None
    version = data.get("schema_version")
    if version != SCHEMA_VERSION:
        raise MMBenchError(
            f"{path}: result schema version {version!r}, this mmbench reads {SCHEMA_VERSION}"
        )
    return RunResult.model_validate(data)


def load_results(results_dir: Path, suite: str) -> list[RunResult]:
    """Every result file of ``suite`` under ``results_dir``, sorted by dataset and pipeline."""
    root = Path(results_dir) / suite
    paths = sorted(p for p in root.glob("*/*.json") if not p.name.startswith("."))
    return [read_result(p) for p in paths]
