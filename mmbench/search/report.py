"""The best trials of a suite's studies, read back from their storage (``mmbench show``)."""

from __future__ import annotations

from typing import Any


def study_report(storage: str, suite: str, top: int = 5) -> list[dict[str, Any]]:
    """The best ``top`` trials of every study of ``suite`` in ``storage``, best first."""
    import optuna
    from optuna.trial import TrialState

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    rows: list[dict[str, Any]] = []
    summaries = optuna.get_all_study_summaries(storage)
    for summary in sorted(summaries, key=lambda s: s.study_name):
        if not summary.study_name.startswith(f"{suite}."):
            continue
        study = optuna.load_study(study_name=summary.study_name, storage=storage)
        done = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        sign = -1.0 if study.directions[0].name == "MAXIMIZE" else 1.0
        states = {s.name.lower(): 0 for s in TrialState}
        for t in study.get_trials(deepcopy=False):
            states[t.state.name.lower()] += 1
        for rank, t in enumerate(sorted(done, key=lambda t: sign * t.values[0])[:top], 1):
            rows.append(
                {
                    "study": study.study_name,
                    "rank": rank,
                    "trial": t.number,
                    "value": t.values[0],
                    "params": t.params,
                    "states": {k: v for k, v in states.items() if v},
                }
            )
    return rows
