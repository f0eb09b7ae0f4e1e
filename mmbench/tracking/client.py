"""The MLflow client: experiments, runs and batched logging, with every error an MMBenchError.

Params use flat, stable names (``encoder.image``, ``fusion``, ``lr``) and metrics ``cv.<metric>``
(mean), ``cv.<metric>.std`` and per-fold values as steps of ``fold.<metric>``. Everything a run
logs goes out in a few ``log_batch`` calls.

Uses :class:`mlflow.MlflowClient` directly (no global "active run" state), so that it works the
same against a local SQLite store and a remote ``mlflow server``.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from mmbench.errors import MMBenchError

DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"
MAX_PARAMS, MAX_METRICS, MAX_TAGS = 100, 1000, 100
REACH_TIMEOUT_S = 3.0
"""How long a tracking server gets to answer ``/health`` before the job runs untracked."""
HTTP_DEFAULTS = {  # MLflow's own defaults retry a dead server for minutes per call
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1",  # a server that died costs ~1 s, once
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_BACKOFF_JITTER": "0.2",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "15",
}


def tracking_uri(explicit: str | None = None) -> str:
    """``explicit``, else ``$MLFLOW_TRACKING_URI``, else a SQLite file in the working directory."""
    return explicit or os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI


class Tracker:
    """Creates experiments and runs and logs to them in batches."""

    def __init__(self, uri: str | None, experiment: str) -> None:
        import logging

        for name in ("mlflow", "alembic"):  # schema-migration chatter on a new SQLite store
            logging.getLogger(name).setLevel(logging.WARNING)
        # a "View run at <url>" line per ended run would bury the progress bars
        os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
        os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
        for key, value in HTTP_DEFAULTS.items():  # the user's settings win
            os.environ.setdefault(key, value)

        self.uri = tracking_uri(uri)
        self.failed: str | None = None  # the first error: later calls fail at once
        self.seconds = 0.0  # time spent talking to MLflow, reported by benchmarks
        self.timed(check_reachable, self.uri)
        self.experiment_id = self._open(experiment)

    def _open(self, experiment: str) -> str:
        """The client and the experiment's id. A local SQLite store is opened under a file
        lock: MLflow creating a new database's schema from several processes at once (workers
        started together) leaves all but one with a broken migration."""
        from mlflow import MlflowClient

        with _store_lock(self.uri):
            try:
                self.client = MlflowClient(tracking_uri=self.uri)
            except Exception as exc:
                raise MMBenchError(f"MLflow at {self.uri}: {type(exc).__name__}: {exc}") from exc
            return str(self.timed(self._experiment, experiment))

    def timed(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """Call ``fn`` counting its time as tracking time; its errors become MMBenchError.

        After the first error every later call fails at once: a tracking server that went away
        costs one timeout, not one per trial.
        """
        if self.failed is not None:
            raise MMBenchError(f"MLflow at {self.uri} failed earlier, not retried: {self.failed}")
        start = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            self.failed = (
                str(exc) if isinstance(exc, MMBenchError) else f"{type(exc).__name__}: {exc}"
            )
            if isinstance(exc, MMBenchError):
                raise
            raise MMBenchError(f"MLflow at {self.uri}: {self.failed}") from exc
        finally:
            self.seconds += time.perf_counter() - start

    def _experiment(self, name: str) -> str:
        exp = self.client.get_experiment_by_name(name)
        if exp is not None:
            if exp.lifecycle_stage == "deleted":
                self.client.restore_experiment(exp.experiment_id)
            return str(exp.experiment_id)
        artifact_location = None
        if self.uri.startswith("sqlite:"):  # keep artifacts beside the database, out of cwd
            db = Path(self.uri.removeprefix("sqlite:///"))
            artifact_location = (db.parent.resolve() / "mlartifacts").as_uri()
        return str(self.client.create_experiment(name, artifact_location=artifact_location))

    def start_run(self, name: str, tags: Mapping[str, Any], parent_id: str | None = None) -> str:
        all_tags = {k: str(v) for k, v in tags.items()}
        if parent_id:
            all_tags["mlflow.parentRunId"] = parent_id
        run = self.timed(self.client.create_run, self.experiment_id, tags=all_tags, run_name=name)
        return str(run.info.run_id)

    def log(
        self,
        run_id: str,
        params: Mapping[str, Any] | None = None,
        metrics: Mapping[str, float] | None = None,
        steps: Iterable[tuple[str, float, int]] = (),
        tags: Mapping[str, Any] | None = None,
    ) -> None:
        """Log params, final metrics, stepped metrics ``(key, value, step)`` and tags in batches."""
        from mlflow.entities import Metric, Param, RunTag

        now = int(time.time() * 1000)
        p = [Param(k, _param_value(v)) for k, v in (params or {}).items()]
        m = [Metric(k, float(v), now, 0) for k, v in (metrics or {}).items() if _finite(v)]
        m += [Metric(k, float(v), now, s) for k, v, s in steps if _finite(v)]
        t = [RunTag(k, str(v)) for k, v in (tags or {}).items()]
        while p or m or t:
            self.timed(
                self.client.log_batch,
                run_id,
                metrics=m[:MAX_METRICS],
                params=p[:MAX_PARAMS],
                tags=t[:MAX_TAGS],
            )
            p, m, t = p[MAX_PARAMS:], m[MAX_METRICS:], t[MAX_TAGS:]

    def log_artifact(self, run_id: str, path: Path, artifact_path: str | None = None) -> None:
        self.timed(self.client.log_artifact, run_id, str(path), artifact_path)

    def end_run(self, run_id: str, status: str = "FINISHED") -> None:
        self.timed(self.client.set_terminated, run_id, status)

    def run_url(self, run_id: str) -> str:
        return f"{self.uri} experiment {self.experiment_id} run {run_id}"


@contextlib.contextmanager
def _store_lock(uri: str) -> Iterator[None]:
    """An exclusive lock beside a ``sqlite:///`` store's file (no-op for other stores)."""
    if not uri.startswith("sqlite:///"):
        yield
        return
    import fcntl

    db = Path(uri.removeprefix("sqlite:///"))
    db.parent.mkdir(parents=True, exist_ok=True)
    with open(f"{db}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def check_reachable(uri: str, timeout: float = REACH_TIMEOUT_S) -> None:
    """For an ``http(s)://`` tracking URI, the server must answer ``/health`` within
    ``timeout`` seconds (a dead or hung server otherwise stalls every call for minutes)."""
    import urllib.request

    if not uri.startswith(("http://", "https://")):
        return
    try:
        with urllib.request.urlopen(f"{uri.rstrip('/')}/health", timeout=timeout) as resp:
            resp.read(64)
    except Exception as exc:  # refused, timed out, DNS, HTTP error: all mean "not usable"
        raise MMBenchError(
            f"tracking server {uri} did not answer /health within {timeout:g} s ({exc})"
        ) from None


def cv_metrics(summary: Mapping[str, Mapping[str, float]], prefix: str = "cv") -> dict[str, float]:
    """``{"cv.f1_macro": mean, "cv.f1_macro.std": std, ...}`` from an evaluation summary."""
    out: dict[str, float] = {}
    for name, stats in summary.items():
        out[f"{prefix}.{name}"] = stats["mean"]
        out[f"{prefix}.{name}.std"] = stats["std"]
    return out


def fold_steps(
    fold_metrics: list[Mapping[str, float]], prefix: str = "fold"
) -> list[tuple[str, float, int]]:
    """Per-fold values as steps of ``fold.<metric>``, so the UI plots them as a curve."""
    return [(f"{prefix}.{k}", v, i) for i, fm in enumerate(fold_metrics) for k, v in fm.items()]


def _finite(value: Any) -> bool:
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def _param_value(value: Any) -> str:
    text = "" if value is None else str(value)
    return text if len(text) <= 6000 else text[:5997] + "..."
