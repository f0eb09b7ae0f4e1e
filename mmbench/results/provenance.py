"""What a result file records about where it was made: package versions, commit, hardware."""

from __future__ import annotations

import os
import platform
from datetime import UTC, datetime
from importlib import metadata
from typing import Any

import mmbench
from mmbench._io import git_commit
from mmbench.results.schema import Provenance

SCORE_PACKAGES = (
    "numpy", "scipy", "pandas", "scikit-learn", "xgboost", "lightgbm", "torch", "torchvision",
    "timm", "pillow", "librosa", "soundfile", "sentence-transformers", "transformers",
    "tokenizers",
)  # fmt: skip
"""Packages whose version can move a score on the same data: the CI gate's baseline records
them and ``mmbench regress`` names a mismatch instead of reporting a regression."""
PACKAGES = (*SCORE_PACKAGES, "optuna", "mlflow", "datasets", "aeon")
"""What a result file records; ``aeon`` (the sensor extra: MiniRocket) only where installed,
and outside the gate's list, whose suite has no sensors."""


def package_versions(names: tuple[str, ...] = PACKAGES) -> dict[str, str]:
    """Installed versions of ``names`` (missing packages are left out)."""
    packages = {}
    for name in names:
        try:
            packages[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return packages


def provenance(device: str = "cpu") -> Provenance:
    packages = package_versions()
    hardware: dict[str, Any] = {
        "machine": platform.machine(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "device": device,
        "gpu": None,  # leaderboards show it beside cost; files without the key read as none
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
