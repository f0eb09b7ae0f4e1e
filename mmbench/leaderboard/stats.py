"""Is the first row really ahead? Per dataset, row-level paired tests against the best row;
across datasets, Friedman + Nemenyi and Wilcoxon–Holm critical differences (``autorank``).

Per dataset, each ranked row's out-of-fold predictions (``RunResult.out_of_fold``) are compared
with the best row's, row by row, by the regression gate's paired bootstrap within folds
(:func:`mmbench.gate.paired.paired_bootstrap`: the same resampled rows score both, so the
fold-to-fold spread of the task cancels), one-sided ("is it worse than the best?"), with Holm's
correction over the rows of the dataset. A row whose adjusted p-value stays above ``alpha`` is
*tied* with the best: the data cannot tell them apart. Rows scored on other folds or rows than
the best, and files without row-level predictions (older than schema 5), are not compared; the
reason is listed among the row's caveats (when no file of the dataset has them, nothing is said).

Across datasets, :func:`critical_difference` hands the (dataset × pipeline) scores the
aggregate was fitted on to ``autorank`` (Friedman + Nemenyi for many pipelines, Wilcoxon for
two), and :func:`wilcoxon_holm` to ``scikit-posthocs`` (pairwise Wilcoxon signed-rank tests,
Holm-adjusted); :mod:`mmbench.report.charts` draws both critical-difference diagrams.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from mmbench.leaderboard.table import Entry
from mmbench.results import RunResult

ALPHA = 0.05
RESAMPLES = 1000
SLOW_RESAMPLES = 200
"""Resamples for a metric the bootstrap recomputes one resample at a time (PR-AUC)."""
TIED = "≈"
"""Appended to the rank of a row statistically tied with its dataset's best."""
NOT_COMPARED = "not compared with the best row by row"


def mark_ties(
    entries: list[Entry],
    results: Sequence[RunResult],
    alpha: float = ALPHA,
    resamples: int = RESAMPLES,
) -> None:
    """Set ``tied_best`` on the ranked entries of one dataset (best first), from their files'
    out-of-fold predictions; a row that cannot be compared gets a caveat saying why."""
    from mmbench.gate.baseline import rows_of
    from mmbench.gate.paired import VECTORISED, holm, paired_bootstrap, unpaired

    ranked = [e for e in entries if e.comparable and math.isfinite(e.mean)]
    if len(ranked) < 2 or not any(r.out_of_fold is not None for r in results):
        return  # files older than row-level predictions: nothing to compare, nothing to say
    files = {r.pipeline_name: r for r in results}
    best = ranked[0]
    best_file = files.get(best.pipeline)
    if best_file is None or best_file.out_of_fold is None:
        for e in ranked[1:]:
            e.caveats.append(f"{NOT_COMPARED}: the best row's file stores no row-level predictions")
        return
    best.tied_best = True
    best_rows = rows_of(best_file.out_of_fold)
    tests: list[tuple[Entry, float]] = []
    for e in ranked[1:]:
        record = files[e.pipeline].out_of_fold if e.pipeline in files else None
        if record is None:
            e.caveats.append(f"{NOT_COMPARED}: its file stores no row-level predictions")
            continue
        rows = rows_of(record)
        why = unpaired(best_rows, rows)
        if why:
            e.caveats.append(f"{NOT_COMPARED}: the two {why}")
            continue
        n = resamples if e.metric in VECTORISED else min(resamples, SLOW_RESAMPLES)
        test = paired_bootstrap(e.metric, best_rows, rows, resamples=n)
        tests.append((e, test.p_drop))
    for (e, _), p in zip(tests, holm([p for _, p in tests]), strict=True):
        e.tied_best = p > alpha
        e.tie_p = p


# --------------------------------------------------------------------------- across datasets


@dataclass
class CriticalDifference:
    """autorank's verdict on the pipelines' ranks across datasets."""

    test: str
    """``friedman`` + ``nemenyi``, or ``wilcoxon``/``t-test`` for two pipelines, as autorank chose."""
    pvalue: float
    cd: float | None
    """The critical difference of mean ranks (Nemenyi); None for other tests."""
    mean_ranks: dict[str, float]
    result: Any
    """autorank's ``RankResult``, for :func:`mmbench.report.charts.critical_difference_svg`."""
    summary: str


def critical_difference(
    scores: np.ndarray, pipelines: Sequence[str], alpha: float = ALPHA
) -> CriticalDifference | None:
    """Friedman + Nemenyi (or Wilcoxon–Holm) over ``scores`` (datasets × pipelines, higher is
    better); None when there are fewer than two pipelines or five complete datasets (too few
    for any of these tests)."""
    import contextlib
    import io
    import warnings

    import pandas as pd
    from autorank import autorank

    if len(pipelines) < 2:
        return None
    frame = pd.DataFrame(scores, columns=list(pipelines)).dropna()
    if len(frame) < 5:
        return None
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")  # autorank prints and warns about its test choice
        result = autorank(
            frame, alpha=alpha, verbose=False, order="descending", force_mode="nonparametric"
        )
    test = result.omnibus + (f" + {result.posthoc}" if result.posthoc else "")
    ranks = {str(k): float(v) for k, v in result.rankdf["meanrank"].items()}
    decided = "differ" if result.pvalue < alpha else "are not shown to differ"
    cd = float(result.cd) if result.cd is not None else None
    summary = (
        f"{test} over {len(frame)} datasets: the {len(pipelines)} pipelines {decided} "
        f"(p = {result.pvalue:.3g}, α = {alpha})"
        + (f"; critical difference of mean ranks {cd:.2f}" if cd is not None else "")
    )
    return CriticalDifference(test, float(result.pvalue), cd, ranks, result, summary)


@dataclass
class WilcoxonHolm:
    """Pairwise Wilcoxon signed-rank tests over datasets, Holm-adjusted (scikit-posthocs): the
    aeon/TabArena critical-difference diagram, whose bars join pipelines not shown to differ."""

    pvalues: Any
    """``pandas.DataFrame`` pipeline × pipeline of adjusted p-values."""
    mean_ranks: dict[str, float]
    summary: str


def wilcoxon_holm(
    scores: np.ndarray, pipelines: Sequence[str], alpha: float = ALPHA
) -> WilcoxonHolm | None:
    """Wilcoxon–Holm over ``scores`` (datasets × pipelines, higher is better); None with fewer
    than two pipelines or five complete datasets."""
    import warnings

    import pandas as pd
    import scikit_posthocs as sp
    from scipy.stats import rankdata

    frame = pd.DataFrame(scores, columns=list(pipelines)).dropna()
    if len(pipelines) < 2 or len(frame) < 5:
        return None
    groups = [frame[p].to_numpy() for p in pipelines]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # identical columns: scipy warns, the p-value is 1
        pvalues = sp.posthoc_wilcoxon(groups, zero_method="zsplit", p_adjust="holm")
    pvalues.index = pvalues.columns = list(pipelines)
    pvalues = pvalues.fillna(1.0)
    ranks = np.mean([rankdata(-row) for row in frame.to_numpy()], axis=0)
    differ = sum(
        1 for i, a in enumerate(pipelines) for b in pipelines[i + 1 :] if pvalues.loc[a, b] < alpha
    )
    pairs = len(pipelines) * (len(pipelines) - 1) // 2
    summary = (
        f"Wilcoxon signed-rank with Holm over {len(frame)} datasets: {differ} of {pairs} "
        f"pairs differ (α = {alpha})"
    )
    return WilcoxonHolm(pvalues, dict(zip(pipelines, map(float, ranks), strict=True)), summary)
