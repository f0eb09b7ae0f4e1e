"""A study's trials read back: which used budget, the best one, why there is none, and those
whose process died before they ended."""

from __future__ import annotations

from typing import Any

from mmbench.search import coordination as coord
from mmbench.search.settings import TrialHooks


def _report_abandoned(study: Any, hooks: TrialHooks) -> None:
    """Hand every failed trial that never ended itself (no error of its own) to the hook."""
    from optuna.trial import TrialState

    if hooks.abandoned is None:
        return
    for t in study.get_trials(deepcopy=False, states=(TrialState.FAIL,)):
        if not any(k in t.user_attrs for k in ("error", *coord.SKIP_ATTRS)):
            hooks.abandoned(t)


def finished_trials(study: Any) -> int:
    """Trials that used budget: complete, pruned, or failed for a reason of their own.

    A trial interrupted by Ctrl-C (or left running by a killed process and then failed by the
    heartbeat) did not get to finish, so a resumed study runs it again; duplicates and surplus
    trials did no work.
    """
    from optuna.trial import TrialState

    return sum(
        1
        for t in study.get_trials(deepcopy=False)
        if t.state != TrialState.RUNNING and coord.counts(t)
    )


def no_trial_message(study: Any) -> str:
    """Why a study has no completed trial, and what to do: when the budget check declined every
    candidate, the reason of the first (the portfolio's cheapest) says what it needed."""
    declined = _all_declined(study)
    message = f"study {study.study_name!r} has no completed trial"
    if declined:
        first = declined[0].user_attrs.get("reason", "")
        return (
            f"{message}: the time budget fits no candidate — all {len(declined)} were declined, "
            f"the first (the cheapest known) because {first}; raise budget.timeout_s (or "
            "--timeout), or subsample with max_rows"
        )
    trials = study.get_trials(deepcopy=False)
    cut = [t for t in trials if "reason" in t.user_attrs and not t.user_attrs.get("declined")]
    if cut and not any("error" in t.user_attrs for t in trials):
        first = cut[0]
        return (
            f"{message}: the search's deadline came first — trial {first.number} was cut "
            f"({first.user_attrs['reason']}); raise budget.timeout_s (or --timeout), or "
            "subsample with max_rows"
        )
    return f"{message}; see failures above"


def _all_declined(study: Any) -> list[Any]:
    """The study's declined trials when every trial that used budget was declined, else []."""
    declined = [t for t in study.get_trials(deepcopy=False) if t.user_attrs.get("declined")]
    if len(declined) == sum(1 for t in study.trials if coord.counts(t)):
        return declined
    return []


def best_trial(study: Any) -> Any:
    """The best completed trial; for multi-objective, the best primary score on the front."""
    from optuna.trial import TrialState

    if not study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        return None
    if len(study.directions) == 1:
        return study.best_trial
    sign = 1 if study.directions[0].name == "MAXIMIZE" else -1
    return max(study.best_trials, key=lambda t: sign * t.values[0])
