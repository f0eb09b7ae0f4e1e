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
import warnings
from collections.abc import Callable, Iterator
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
    model: Any,
    modalities: Modalities,
    frame: pd.DataFrame,
    root: Path | None = None,
    warn: Callable[[str], None] | None = None,
) -> pd.DataFrame:
    """The predicted label and each class's probability of every row of ``frame`` (media
    paths relative to ``root``, default the working directory). The rows are checked against
    the columns the model was trained on first (:func:`check_rows`); ``warn`` receives what
    scores but deserves a look (default: :func:`warnings.warn`)."""
    from mmbench.data.loading import table_from_frame
    from mmbench.evaluation import predict_labels

    table = table_from_frame(frame, modalities, model.classes, root=root)
    for message in check_rows(model, frame):
        (warn or _warn)(message)
    proba = model.predict_proba(table)
    out = pd.DataFrame(proba, columns=[f"proba.{c}" for c in model.classes])
    # a pipeline's tuned binary threshold, or an ensemble's per-class decision weights
    labels = predict_labels(
        proba, getattr(model, "threshold", None), weights=getattr(model, "decision", None)
    )
    out.insert(0, "prediction", [model.classes[i] for i in labels])
    return out


def _warn(message: str) -> None:
    warnings.warn(message, UserWarning, stacklevel=3)


EXAMPLE_VALUES = 3


def training_columns(model: Any) -> dict[str, set[str] | None]:
    """Tabular column -> ``None`` if it was numeric in training, else the categories seen
    there. Read off the model's fitted tabular encoders (of every member and fold), which every
    saved model already carries, so models saved before this check are checked too."""
    columns: dict[str, set[str] | None] = {}
    for encoder in _tabular_encoders(model):
        if getattr(encoder, "_transformer", None) is None:
            continue  # fitted on rows without a tabular value: nothing known
        for c in encoder.numeric_columns:
            columns[c] = None
        cats = encoder._transformer.named_transformers_["cat"].categories_
        for c, seen in zip(encoder.categorical_columns, cats, strict=True):
            known = columns.setdefault(c, set())
            if known is not None:
                known.update(str(v) for v in seen)
    return columns


def _tabular_encoders(model: Any) -> Iterator[Any]:
    """The fitted tabular encoders inside a pipeline, fold models or a final ensemble."""
    from mmbench.encoders.tabular import TabularEncoder

    members = getattr(model, "members", [model])
    for member in members:
        groups = [getattr(member, "encoders", {}), *getattr(member, "fitted", [])]
        for encoders in groups:
            yield from (e for e in encoders.values() if isinstance(e, TabularEncoder))


def check_rows(model: Any, frame: pd.DataFrame) -> list[str]:
    """Rows against the model's training columns, column by column. A numeric column holding
    values that are not numbers is refused (:class:`~mmbench.errors.DataError`): they would
    score as missing, silently, which is never what was meant. Categories never seen in
    training are returned as warnings: they score as an unknown category, by design."""
    from mmbench.errors import DataError

    refused, warned = [], []
    for column, known in training_columns(model).items():
        if column not in frame.columns:
            continue  # table_from_frame names missing columns
        values = frame[column]
        present = values.notna()
        if known is None:
            bad = present & pd.to_numeric(values, errors="coerce").isna()
            if bad.any():
                refused.append(
                    f"column {column!r} is numeric in training, but {int(bad.sum())} of "
                    f"{len(values)} rows hold no number ({_examples(values[bad])})"
                )
            continue
        unseen = present & ~values.astype(str).isin(known)
        if unseen.any():
            warned.append(
                f"column {column!r}: {int(unseen.sum())} of {len(values)} rows hold categories "
                f"never seen in training ({_examples(values[unseen])}); they score as unknown"
            )
    if refused:
        raise DataError(
            "input rows do not match the model's training columns: "
            + "; ".join(refused)
            + ". Fix or blank those cells (a blank cell scores as missing)"
        )
    return warned


def _examples(values: pd.Series) -> str:
    """``row 0: 'abc', row 4: 'n/a', ...`` (first few), rows numbered from 0 as in the file."""
    shown = [f"row {i}: {v!r}" for i, v in values.head(EXAMPLE_VALUES).items()]
    return ", ".join(shown) + (", ..." if len(values) > EXAMPLE_VALUES else "")


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


def load_logged(uri: str) -> Any:
    """A logged or registered model (``runs:/ID/model``, ``models:/NAME/VERSION``, a folder) as
    MLflow loads it; :func:`predict_file` scores rows with it."""
    return mlflow.pyfunc.load_model(uri)


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


def predict_file(
    model: Any,
    modalities: Modalities,
    rows: Path,
    output: Path,
    warn: Callable[[str], None] | None = None,
) -> pd.DataFrame:
    """Score the rows of ``rows`` (media paths relative to its folder) and write the predicted
    label and each class's probability to ``output`` (``.csv`` or ``.parquet``); rows that do
    not match the training columns are refused or warned about (:func:`check_rows`)."""
    from mmbench.errors import DataError

    frame = read_rows(rows)
    try:
        if isinstance(model, mlflow.pyfunc.PyFuncModel):  # a logged or registered model
            out = model.predict(frame)
        else:
            out = predict_frame(model, modalities, frame, root=rows.parent, warn=warn)
    except DataError as exc:
        raise DataError(f"{rows}: {exc}") from None
    output.parent.mkdir(parents=True, exist_ok=True)
    if output.suffix.lower() == ".parquet":
        out.to_parquet(output, index=False)
    else:
        out.to_csv(output, index=False)
    return out
