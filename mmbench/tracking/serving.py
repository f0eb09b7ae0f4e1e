"""The refitted pipeline as an MLflow pyfunc model: raw columns in, class probabilities out.

``mlflow.pyfunc.load_model(uri).predict(frame)`` takes a DataFrame with the suite's columns
(image/audio as file paths or raw bytes, text as strings, tabular values) and returns the
predicted class and one probability column per class. The model's signature and an input
example (real rows of the training data) are logged with it.

The model is named ``<dataset>-<pipeline>`` and carries the fitted pipeline inside its pickled
python model rather than as MLflow ``artifacts``: MLflow records an artifact's source path in
``MLmodel``, which would leak a temporary path of the machine that logged it.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import mlflow.pyfunc
import pandas as pd

from mmbench.suite import Modalities

EXAMPLE_ROWS = 3


class PipelinePyfunc(mlflow.pyfunc.PythonModel):  # type: ignore[misc,name-defined]
    """The :class:`~mmbench.pipeline.FittedPipeline` and its column map, pickled together."""

    def __init__(self, model: Any = None, columns: str = "{}") -> None:
        self.model = model
        self.columns = columns

    def load_context(self, context: Any) -> None:
        self.modalities = Modalities.model_validate(json.loads(self.columns))

    def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> pd.DataFrame:
        return predict_frame(self.model, self.modalities, model_input)


def predict_frame(model: Any, modalities: Modalities, frame: pd.DataFrame) -> pd.DataFrame:
    from mmbench.data.loading import table_from_frame
    from mmbench.evaluation import predict_labels

    table = table_from_frame(frame, modalities, model.classes)
    proba = model.predict_proba(table)
    out = pd.DataFrame(proba, columns=[f"proba.{c}" for c in model.classes])
    labels = predict_labels(proba, model.threshold)
    out.insert(0, "prediction", [model.classes[i] for i in labels])
    return out


def log_pyfunc(
    tracking_uri: str,
    run_id: str,
    model_path: Path,
    modalities: Modalities,
    table: Any,
    name: str = "model",
) -> None:
    """Log the model as ``name`` to ``run_id`` with a signature and an input example."""
    from mmbench.data.loading import frame_from_table
    from mmbench.pipeline import FittedPipeline

    example = frame_from_table(table, modalities, EXAMPLE_ROWS)
    fitted = FittedPipeline.load(model_path)
    output = predict_frame(fitted, modalities, example)
    wrapper = PipelinePyfunc(fitted, modalities.model_dump_json())
    mlflow.set_tracking_uri(tracking_uri)
    # MLflow warns about pickled python_model objects; pickling the pipeline is the point here.
    quiet = logging.getLogger("mlflow.pyfunc")
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        _log_model(run_id, wrapper, name, example, output)
    finally:
        quiet.setLevel(level)


def _log_model(
    run_id: str, wrapper: PipelinePyfunc, name: str, example: pd.DataFrame, output: pd.DataFrame
) -> None:
    from mlflow.models import infer_signature

    import mmbench

    with mlflow.start_run(run_id=run_id):
        mlflow.pyfunc.log_model(
            name=name,
            python_model=wrapper,
            input_example=example,
            signature=infer_signature(example, output),
            pip_requirements=[f"mmbench=={mmbench.__version__}"],
        )
