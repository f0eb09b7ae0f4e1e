from __future__ import annotations

from pathlib import Path

import pytest

from mmbench.config import PipelineSpec, default_pipeline
from mmbench.errors import UnknownNameError
from mmbench.pipeline.references import (
    REFERENCE_PIPELINES,
    evaluate_reference,
    reference_pipeline,
    select_single_best_modality,
)


def test_reference_pipelines_are_registered_and_buildable() -> None:
    assert {
        "early-fusion-mlp",
        "xgboost-early-fusion",
        "late-fusion-mlp",
        "single-best-modality",
    } <= set(REFERENCE_PIPELINES.names())
    mods = ["image", "text"]
    assert reference_pipeline("early-fusion-mlp", mods) == default_pipeline(mods)
    assert reference_pipeline("xgboost-early-fusion", mods).fusion.name == "xgboost"
    late = reference_pipeline("late-fusion-mlp", mods)
    assert late.fusion.name == "late" and set(late.encoders) == set(mods)
    assert REFERENCE_PIPELINES.get("single-best-modality").selects_modality
    with pytest.raises(UnknownNameError, match="did you mean 'late-fusion-mlp'"):
        reference_pipeline("late-fusion", mods)


def test_single_best_modality_picks_the_informative_one(tmp_path: Path) -> None:
    from mmbench.data import load_table
    from mmbench.evaluation import cv_folds
    from mmbench.suite import DatasetSpec

    spec = DatasetSpec.model_validate(
        {
            "name": "syn",
            "source": {
                "kind": "synthetic",
                "options": {
                    "n_rows": 150,
                    "n_classes": 3,
                    "seed": 0,
                    "signal": {"tabular": 0.9, "text": 0.0},
                },
            },
            "target": "label",
            "modalities": {"text": "text", "tabular": ["num_0", "num_1", "cat_0"]},
            "protocol": {"folds": 3},
        }
    )
    table = load_table(spec, tmp_path, seed=0)
    folds = cv_folds(table.labels, 3, 1, seed=0)
    fast = PipelineSpec.model_validate(
        {"encoders": {"text": "tfidf", "tabular": "tabular"}, "fusion": "xgboost"}
    )
    choice = select_single_best_modality(table, folds, spec=fast)
    assert choice.modalities == ["tabular"]
    assert list(choice.spec.encoders) == ["tabular"] and choice.spec.fusion.name == "xgboost"
    assert choice.scores["tabular"] > choice.scores["text"] + 0.2
    assert choice.cv.modalities == ["tabular"] and choice.cv.ok
    assert set(choice.candidates) == {"text", "tabular"}

    final, cv = evaluate_reference("xgboost-early-fusion", table, folds)
    assert final.fusion.name == "xgboost" and cv.modalities == ["text", "tabular"] and cv.ok
