"""Optional: the audio path on real spoken-digit recordings (FSDD in ``../shared``).

Skipped where ``../shared/data/fsdd`` is absent (a fresh clone). Audio coverage with generated
data lives in ``test_encoders.py`` and ``test_synthetic.py``; this test checks that real WAV
files read through a ``csv`` source and the log-mel encoder carry the label.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mmbench.config import PipelineSpec
from mmbench.data import load_table
from mmbench.evaluation import cv_folds
from mmbench.pipeline import evaluate_pipeline
from mmbench.pipeline.cache import FeatureCache
from mmbench.suite import parse_suite

FSDD = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "fsdd"

pytestmark = [
    pytest.mark.shared,
    pytest.mark.skipif(not (FSDD / "metadata.csv").is_file(), reason=f"FSDD not found at {FSDD}"),
]


def fsdd_suite(tmp_path: Path, per_digit: int, folds: int):
    """A suite whose csv source lists ``per_digit`` recordings of every digit (absolute paths)."""
    import pandas as pd

    meta = pd.read_csv(FSDD / "metadata.csv")
    meta = meta.groupby("digit").sample(per_digit, random_state=0)
    rows = pd.DataFrame({"audio": [str(FSDD / f) for f in meta["file"]], "digit": meta["digit"]})
    rows.to_csv(tmp_path / "fsdd.csv", index=False)
    dataset = {
        "name": "fsdd",
        "source": {"kind": "csv", "path": "fsdd.csv"},
        "target": "digit",
        "modalities": {"audio": "audio"},
        "protocol": {"folds": folds},
    }
    suite = parse_suite({"name": "fsdd-test", "seed": 0, "datasets": [dataset]})
    suite.path = tmp_path / "suite.yaml"
    return suite


def test_spoken_digits_are_recognised_from_logmel(tmp_path: Path) -> None:
    """200 recordings (20 per digit), 3-fold CV, log-mel + early fusion: a few seconds."""
    suite = fsdd_suite(tmp_path, per_digit=20, folds=3)
    spec = suite.datasets[0]
    table = load_table(spec, suite.root, seed=suite.seed)
    assert len(table) == 200 and table.classes == [str(d) for d in range(10)]
    assert table.audio is not None
    assert all(ref is not None and Path(ref["path"]).is_file() for ref in table.audio)

    pipeline = PipelineSpec.model_validate(
        {
            "encoders": {"audio": {"name": "logmel", "options": {"sample_rate": 8000}}},
            "fusion": "early",
        }
    )
    folds = cv_folds(table.labels, 3, 1, suite.seed)
    cv = evaluate_pipeline(table, pipeline, folds, cache=FeatureCache(tmp_path / "cache"))

    assert cv.ok, cv.failures
    f1 = cv.mean("f1_macro")
    # Measured (2026-12-04, 1 torch thread): 0.776 on this sample. The same pipeline on four other
    # samples of 20 recordings per digit (random_state 1-4) scored 0.782, 0.708, 0.774, 0.739:
    # spread 0.71-0.78, sd 0.03. 0.65 sits two such sd below the worst sample, so thread-level
    # nondeterminism cannot fail it, while losing a fifth of what log-mel carries (chance 0.1) does.
    assert f1 > 0.65, f"macro-F1 {f1:.3f}: log-mel should carry the digit (0.776 measured)"
    assert np.isfinite(cv.oof).all()
