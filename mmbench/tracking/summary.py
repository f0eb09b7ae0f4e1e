"""A study's search summary on its parent run, and the best run's link back to its trial.

Someone opening the suite's experiment sees a study's parent run first: it should say what the
search was (Optuna study name and storage), how it went (trials by state, best value) and where
the winner is (best trial, its run, as a link in the run's description).
"""

from __future__ import annotations

from typing import Any

from mmbench.results import SearchSummary
from mmbench.tracking.client import Tracker

EXPERIMENT_KIND = {"mlflow.experimentKind": "custom_model_development"}
"""MLflow 3's experiment tag for a training (not GenAI) experiment: the UI opens on its runs."""


def run_link(tracker: Tracker, run_id: str, ui: str | None = None) -> str:
    """The run's address in the MLflow UI: on the tracking server, else on ``ui`` (where
    ``mlflow ui`` serves the local store), else the route within the UI."""
    route = f"#/experiments/{tracker.experiment_id}/runs/{run_id}"
    base = tracker.uri if tracker.uri.startswith(("http://", "https://")) else ui
    return f"{base.rstrip('/')}/{route}" if base else route


def log_search_summary(
    tracker: Tracker, parent_id: str, search: SearchSummary, study: Any, dataset: str
) -> None:
    """Trials by state, best value, best trial and its run link, study name and storage."""
    best = _best_trial(study)
    metrics: dict[str, float] = {"study.trials": search.n_trials}
    metrics.update({f"study.trials.{state}": n for state, n in search.states.items()})
    tags = {"mmbench.study": search.study, "mmbench.storage": search.storage}
    note = [f"Optuna study `{search.study}` in `{search.storage}`: {search.n_trials} trials ("]
    note[0] += ", ".join(f"{n} {state}" for state, n in sorted(search.states.items())) + ")."
    if best is not None:
        metrics.update({"study.best_value": best.values[0], "study.best_trial": best.number})
        tags["mmbench.best_trial"] = str(best.number)
        run_id = best.user_attrs.get("mlflow_run_id")
        name = f"{dataset}/trial-{best.number:03d}"
        if run_id:
            tags["mmbench.best_trial_run_id"] = run_id
            name = f"[{name}]({run_link(tracker, run_id)})"
        note.append(f"Best trial: {name}, value {best.values[0]:.4f}.")
    tags["mlflow.note.content"] = "\n\n".join(note)
    params = {"study.name": search.study, "study.storage": search.storage}
    tracker.log(parent_id, params=params, metrics=metrics, tags=tags)


def best_trial_tags(study: Any) -> dict[str, str]:
    """Tags of the chosen pipeline's run: which trial it is and that trial's run."""
    best = _best_trial(study)
    if best is None:
        return {}
    tags = {"mmbench.trial": str(best.number)}
    if best.user_attrs.get("mlflow_run_id"):
        tags["mmbench.trial_run_id"] = best.user_attrs["mlflow_run_id"]
    return tags


def _best_trial(study: Any) -> Any:
    from mmbench.search.trials import best_trial

    return None if study is None else best_trial(study)
