from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mmbench.suite import Suite, parse_suite


@pytest.fixture(autouse=True)
def _isolated_caches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep feature caches, HF caches and MLflow stores of tests inside tmp_path."""
    monkeypatch.setenv("MMBENCH_CACHE_DIR", str(tmp_path / "feature-cache"))
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "hf-datasets"))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="module")
def one_torch_thread() -> Iterator[None]:
    """Toy models: a thread pool only adds overhead, and stalls when other jobs share the CPU."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny_suite(
    tmp_path: Path,
    *,
    modalities: dict[str, Any] | None = None,
    n_rows: int = 150,
    folds: int = 3,
    trials: int = 1,
    pipeline: dict[str, Any] | None = None,
    search: dict[str, Any] | None = None,
    signal: dict[str, float] | None = None,
) -> Suite:
    """A one-dataset suite on small generated data with fast, cheap encoders."""
    options: dict[str, Any] = {"n_rows": n_rows, "n_classes": 3, "seed": 1}
    if signal:
        options["signal"] = signal
    dataset: dict[str, Any] = {
        "name": "tiny",
        "source": {"kind": "synthetic", "options": options},
        "target": "label",
        "modalities": modalities
        or {"text": "text", "tabular": ["num_0", "num_1", "num_2", "num_3", "cat_0", "cat_1"]},
        "protocol": {"folds": folds},
        "budget": {"trials": trials},
    }
    if pipeline is not None:
        dataset["pipeline"] = pipeline
    if search is not None:
        dataset["search"] = search
    suite = parse_suite({"name": "tiny-suite", "seed": 0, "datasets": [dataset]})
    suite.path = tmp_path / "suite.yaml"
    return suite


FAST_TRAINING = {"epochs": 6, "batch_size": 32, "patience": 3}
