"""The final model as an MLflow pyfunc model: raw columns in, class probabilities out.

What is logged is exactly what the result file scores: the final ensemble
(:class:`~mmbench.final.FinalModel`: its members' fold models or refits, weights and decision
rule) on the ensemble run, the refitted pipeline on the best or default run. The final model of
each (suite, dataset) is also *registered* under a stable name (:func:`registered_name`), its
versions tagged with the held-out metrics and the result file's schema version.

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
    """A fitted model (:class:`~mmbench.pipeline.FittedPipeline` or
    :class:`~mmbench.final.FinalModel`) and its column map, pickled together."""

    def __init__(self, model: Any = None, columns: str = "{}") -> None:
        self.model = model
        self.columns = columns

    def load_context(self, context: Any) -> None:
        self.modalities = Modalities.model_validate(json.loads(self.columns))

    def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> pd.DataFrame:
        return predict_frame(self.model, self.modalities, model_input)


def predict_frame(
    model: Any, modalities: Modalities, frame: pd.DataFrame, root: Path | None = None
) -> pd.DataFrame:
    """The predicted label and each class's probability of every row of ``frame`` (media
    paths relative to ``root``, default the working directory)."""
    from mmbench.data.loading import table_from_frame
    from mmbench.evaluation import predict_labels

    table = table_from_frame(frame, modalities, model.classes, root=root)
    proba = model.predict_proba(table)
    out = pd.DataFrame(proba, columns=[f"proba.{c}" for c in model.classes])
    # a pipeline's tuned binary threshold, or an ensemble's per-class decision weights
    labels = predict_labels(
        proba, getattr(model, "threshold", None), weights=getattr(model, "decision", None)
    )
    out.insert(0, "prediction", [model.classes[i] for i in labels])
    return out


def log_pyfunc(
    tracking_uri: str,
    run_id: str,
    model_path: Path,
    modalities: Modalities,
    table: Any,
    name: str = "model",
    registered: str | None = None,
) -> str | None:
    """Log the model as ``name`` to ``run_id`` with a signature and an input example; with
    ``registered``, also register it under that name. Returns the registered version."""
    from mmbench.data.loading import frame_from_table

    example = frame_from_table(table, modalities, EXAMPLE_ROWS)
    fitted = load_fitted(model_path)
    output = predict_frame(fitted, modalities, example)
    wrapper = PipelinePyfunc(fitted, modalities.model_dump_json())
    mlflow.set_tracking_uri(tracking_uri)
    # MLflow warns about pickled python_model objects; pickling the pipeline is the point here.
    quiet = logging.getLogger("mlflow.pyfunc")
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        info = _log_model(run_id, wrapper, name, example, output, registered)
    finally:
        quiet.setLevel(level)
    version = getattr(info, "registered_model_version", None)
    return None if version is None else str(version)


def load_fitted(path: Path) -> Any:
    """A saved :class:`~mmbench.pipeline.FittedPipeline` or :class:`~mmbench.final.FinalModel`;
    anything else (or an unreadable file) is an error that names the file."""
    import joblib

    from mmbench.errors import MMBenchError
    from mmbench.final import FinalModel
    from mmbench.pipeline import FittedPipeline

    try:
        model = joblib.load(path)
    except Exception as exc:
        raise MMBenchError(f"cannot read model file {path}: {type(exc).__name__}: {exc}") from None
    if not isinstance(model, FittedPipeline | FinalModel):
        raise MMBenchError(f"{path} holds no mmbench model ({type(model).__name__})")
    return model


def registered_name(suite: str, dataset: str) -> str:
    """``mmbench.<suite>.<dataset>``: one registered model per suite and dataset, whose latest
    version is the final model of the latest run."""
    import re

    return re.sub(r"[^A-Za-z0-9_.-]+", "-", f"mmbench.{suite}.{dataset}")


def tag_version(tracking_uri: str, name: str, version: str, tags: dict[str, Any]) -> None:
    client = mlflow.MlflowClient(tracking_uri)
    for key, value in tags.items():
        client.set_model_version_tag(name, version, key, str(value))


def _log_model(
    run_id: str,
    wrapper: PipelinePyfunc,
    name: str,
    example: pd.DataFrame,
    output: pd.DataFrame,
    registered: str | None,
) -> Any:
    from mlflow.models import infer_signature

    import mmbench

    with mlflow.start_run(run_id=run_id):
        return mlflow.pyfunc.log_model(
            name=name,
            python_model=wrapper,
            input_example=example,
            signature=infer_signature(example, output),
            pip_requirements=[f"mmbench=={mmbench.__version__}"],
            registered_model_name=registered,
        )


FINAL_MODELS = ("ensemble", "search", "default")
"""Saved models a ``predict`` uses, in order: the final ensemble, else the best trial's refit,
else the single pipeline's."""


def final_model_file(models_dir: Path) -> Path:
    """The final model a run saved under ``models_dir`` (see :data:`FINAL_MODELS`)."""
    from mmbench.errors import MMBenchError

    for name in FINAL_MODELS:
        path = models_dir / f"{name}.joblib"
        if path.is_file():
            return path
    raise MMBenchError(
        f"no saved model in {models_dir}/ (looked for {', '.join(FINAL_MODELS)}.joblib); a run "
        "saves one when the dataset has a test_source or after a search"
    )


def read_rows(path: Path) -> pd.DataFrame:
    """A table file of rows to score: ``.csv``, ``.parquet`` or ``.json``/``.jsonl``."""
    from mmbench.errors import MMBenchError

    readers = {".csv": pd.read_csv, ".parquet": pd.read_parquet, ".json": pd.read_json}
    reader = readers.get(path.suffix.lower())
    if path.suffix.lower() == ".jsonl":
        return pd.read_json(path, lines=True)
    if reader is None:
        raise MMBenchError(
            f"{path}: cannot read {path.suffix!r} files; use .csv, .parquet or .json"
        )
    try:
        return reader(path)
    except (OSError, ValueError) as exc:
        raise MMBenchError(f"cannot read {path}: {exc}") from None


def predict_file(model: Any, modalities: Modalities, rows: Path, output: Path) -> pd.DataFrame:
    """Score the rows of ``rows`` (media paths relative to its folder) and write the predicted
    label and each class's probability to ``output`` (``.csv`` or ``.parquet``)."""
    frame = read_rows(rows)
    if isinstance(model, mlflow.pyfunc.PyFuncModel):  # a logged or registered model
        out = model.predict(frame)
    else:
        out = predict_frame(model, modalities, frame, root=rows.parent)
    output.parent.mkdir(parents=True, exist_ok=True)
    if output.suffix.lower() == ".parquet":
        out.to_parquet(output, index=False)
    else:
        out.to_csv(output, index=False)
    return out
