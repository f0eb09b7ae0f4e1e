"""The refitted pipeline as an MLflow pyfunc model: raw columns in, class probabilities out.

``mlflow.pyfunc.load_model(uri).predict(frame)`` takes a DataFrame with the suite's columns
(image/audio as file paths or raw bytes, text as strings, tabular values) and returns the
predicted class and one probability column per class. The model's signature and an input
example (real rows of the training data) are logged with it.
"""

from __future__ import annotations

import json
import logging
import tempfile
from pathlib import Path
from typing import Any

import mlflow.pyfunc
import pandas as pd

from mmbench.suite import Modalities

EXAMPLE_ROWS = 3


class PipelinePyfunc(mlflow.pyfunc.PythonModel):  # type: ignore[misc,name-defined]
    """Loads the joblib-pickled :class:`~mmbench.pipeline.FittedPipeline` and its column map."""

    def load_context(self, context: Any) -> None:
        from mmbench.pipeline import FittedPipeline

        self.model = FittedPipeline.load(context.artifacts["pipeline"])
        columns = json.loads(Path(context.artifacts["columns"]).read_text())
        self.modalities = Modalities.model_validate(columns)

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
    tracking_uri: str, run_id: str, model_path: Path, modalities: Modalities, table: Any
) -> None:
    """Log the model (name ``model``) to ``run_id`` with a signature and an input example."""
    from mmbench.data.loading import frame_from_table
    from mmbench.pipeline import FittedPipeline

    example = frame_from_table(table, modalities, EXAMPLE_ROWS)
    output = predict_frame(FittedPipeline.load(model_path), modalities, example)
    with tempfile.TemporaryDirectory() as tmp:
        columns = Path(tmp) / "columns.json"
        columns.write_text(modalities.model_dump_json())
        mlflow.set_tracking_uri(tracking_uri)
        # The wrapper holds no state (the pipeline travels as an artifact), so MLflow's warning
        # about pickled python_model objects does not apply here.
        quiet = logging.getLogger("mlflow.pyfunc")
        level = quiet.level
        quiet.setLevel(logging.ERROR)
        try:
            _log_model(run_id, model_path, columns, example, output)
        finally:
            quiet.setLevel(level)


def _log_model(
    run_id: str, model_path: Path, columns: Path, example: pd.DataFrame, output: pd.DataFrame
) -> None:
    from mlflow.models import infer_signature

    import mmbench

    with mlflow.start_run(run_id=run_id):
        mlflow.pyfunc.log_model(
            name="model",
            python_model=PipelinePyfunc(),
            artifacts={"pipeline": str(model_path), "columns": str(columns)},
            input_example=example,
            signature=infer_signature(example, output),
            pip_requirements=[f"mmbench=={mmbench.__version__}"],
        )
