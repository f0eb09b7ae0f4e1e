"""Leaderboards, built from result files only.

Every number shown comes from a :class:`~mmbench.results.RunResult` file on disk, never from the
memory of a run, so a leaderboard can be regenerated at any time and reviewed in a pull request.

Per dataset, pipelines are ranked by the mean of the dataset's primary metric (in the metric's own
direction: log-loss ranks low first), ties sharing the average rank. Only CV scores of the same
rows are ranked against each other: a result whose CV ran on other rows than the dataset's
reference rows (a budget subsample, or a file from other data: another data fingerprint, see
:func:`reference_fingerprint`) is shown, marked *not ranked* with the reason, and left out of the
ranks, normalized scores and cross-dataset aggregate; its held-out score is still shown (a
budget subsample's final model is scored on the dataset's full test rows). Across datasets, each
pipeline gets its mean rank and its mean *normalized score* ``(score − chance) / (best − chance)``,
where ``best`` is the best pipeline on that dataset and ``chance`` the score of predicting the
class prior: 1 is the best pipeline, 0 is no better than chance, whatever the metric's scale or
direction.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from mmbench.evaluation import METRICS
from mmbench.leaderboard.stats import mark_ties
from mmbench.leaderboard.table import NOT_RANKED, Entry, Leaderboard, Overall, PublishedRow
from mmbench.results import RunResult

if TYPE_CHECKING:
    from mmbench.suite import Suite

# --------------------------------------------------------------------------- building


def build_leaderboard(results: Sequence[RunResult], suite: str) -> Leaderboard:
    """Rank the pipelines of every dataset in ``results`` and aggregate across datasets."""
    by_dataset: dict[str, list[RunResult]] = {}
    for r in results:
        by_dataset.setdefault(r.dataset.name, []).append(r)
    datasets = {name: rank_dataset(rs) for name, rs in sorted(by_dataset.items())}
    return Leaderboard(suite, datasets, aggregate(datasets), provenance_summary(results))


def rank_dataset(results: Sequence[RunResult]) -> list[Entry]:
    """Entries of one dataset, best first, with average ranks for ties and normalized scores.

    The dataset's primary metric is the first result's (results of one suite entry share it); a
    pipeline whose score is NaN (every fold failed) is ranked last and gets no normalized score.
    """
    metric = results[0].protocol.primary_metric
    hib = METRICS.get(metric).higher_is_better
    entries = [_entry(r, metric, hib) for r in results]
    reference = reference_fingerprint(results)
    other = mark_other_rows(entries, reference)
    other += mark_other_folds([e for e in entries if e.comparable], results)
    other += mark_other_rules([e for e in entries if e.comparable])
    entries = [e for e in entries if e.comparable]
    finite = [e for e in entries if math.isfinite(e.mean)]
    finite.sort(key=lambda e: (-e.mean if hib else e.mean, e.pipeline))
    for e in finite:
        tied = [o for o in finite if o.mean == e.mean]
        better = sum(1 for o in finite if (o.mean > e.mean if hib else o.mean < e.mean))
        e.rank = better + (len(tied) + 1) / 2
    chance = next((e.chance for e in entries if math.isfinite(e.chance)), math.nan)
    best = finite[0].mean if finite else math.nan
    for e in finite:
        e.normalized = normalized_score(e.mean, chance, best)
    losers = sorted((e for e in entries if not math.isfinite(e.mean)), key=lambda e: e.pipeline)
    for e in losers:
        e.rank = float(len(entries))
    mark_ties(finite, [r for r in results if r.dataset.fingerprint == reference])
    return finite + losers + other


def normalized_score(score: float, chance: float, best: float) -> float:
    """``(score − chance) / (best − chance)``; NaN when the best is no better than chance."""
    if not (math.isfinite(chance) and math.isfinite(best)) or best == chance:
        return math.nan
    return (score - chance) / (best - chance)


def _entry(r: RunResult, metric: str, hib: bool) -> Entry:
    from mmbench.results.identity import identify

    stats = r.metrics.get(metric, {})
    test = (r.test_metrics or {}).get(metric)
    ident = identify(r)
    return Entry(
        dataset=r.dataset.name,
        pipeline=r.pipeline_name,
        metric=metric,
        higher_is_better=hib,
        mean=float(stats.get("mean", math.nan)),
        std=float(stats.get("std", math.nan)),
        test=None if test is None else float(test),
        chance=float(r.chance.get(metric, math.nan)),
        failed_folds=sum(1 for f in r.folds if f.error),
        undefined_folds=r.undefined_folds(metric),
        description=ident.summary,
        short=ident.short,
        encoders=ident.encoders,
        head=ident.head,
        members=ident.members,
        caveats=ident.caveats,
        fit_s=ident.fit_s,
        predict_ms=ident.predict_ms,
        fingerprint=r.dataset.fingerprint,
        fold_keys=tuple(f.key for f in r.folds),
        decision=ident.decision,
    )


def aggregate(datasets: dict[str, list[Entry]]) -> list[Overall]:
    """Mean rank and mean normalized score per pipeline, over the datasets it appears on."""
    ranks: dict[str, list[float]] = {}
    norms: dict[str, list[float]] = {}
    for entries in datasets.values():
        for e in entries:
            if not e.comparable:
                continue
            ranks.setdefault(e.pipeline, []).append(e.rank)
            if math.isfinite(e.normalized):
                norms.setdefault(e.pipeline, []).append(e.normalized)
    rows = [
        Overall(
            pipeline=p,
            mean_rank=sum(r) / len(r),
            mean_normalized=sum(norms[p]) / len(norms[p]) if norms.get(p) else math.nan,
            n_datasets=len(r),
        )
        for p, r in ranks.items()
    ]
    nan_last = lambda v: -v if math.isfinite(v) else math.inf  # noqa: E731
    return sorted(rows, key=lambda o: (o.mean_rank, nan_last(o.mean_normalized), o.pipeline))


def provenance_summary(results: Sequence[RunResult]) -> dict[str, Any]:
    """Which mmbench versions and commits produced the results, and when."""
    created = sorted(r.provenance.created_at for r in results)
    return {
        "mmbench_versions": sorted({r.provenance.mmbench_version for r in results}),
        "git_commits": sorted({r.provenance.git_commit or "unknown" for r in results}),
        "created_at": [created[0], created[-1]] if created else [],
        "n_results": len(results),
    }


def reference_fingerprint(results: Sequence[RunResult]) -> str:
    """The data fingerprint whose CV scores a dataset ranks: the most common among results on
    the dataset's own training rows (no budget subsample; a suite's ``max_rows`` is the
    dataset's own rows, shared by every job), ties going to the newest result, so that one
    stale file of older data cannot displace the current runs. When every result is on a
    budget subsample, the most common of all of them."""
    own = [r for r in results if not _budget_subsample(r)] or list(results)
    counts = Counter(r.dataset.fingerprint for r in own)
    newest: dict[str, str] = {}
    for r in own:
        fp = r.dataset.fingerprint
        newest[fp] = max(newest.get(fp, ""), r.provenance.created_at)
    return max(counts, key=lambda fp: (counts[fp], newest[fp]))


def _budget_subsample(result: RunResult) -> bool:
    sub = result.dataset.subsample
    return sub is not None and "of" in sub


def mark_other_rows(entries: list[Entry], reference: str) -> list[Entry]:
    """Mark every entry whose CV ran on other rows than ``reference`` as not comparable, with
    the reason among its caveats; returns them (by pipeline name), for the end of the table."""
    return _set_aside(
        [e for e in entries if e.fingerprint != reference],
        lambda e: (
            f"CV on other rows than the ranked ones (data fingerprint {e.fingerprint}, "
            f"not {reference})"
        ),
    )


def _set_aside(other: list[Entry], why: Callable[[Entry], str]) -> list[Entry]:
    """``other`` marked not comparable, each with ``why`` among its caveats, by pipeline name."""
    other = sorted(other, key=lambda e: e.pipeline)
    for e in other:
        e.comparable = False
        e.caveats.append(f"{NOT_RANKED}: {why(e)}")
    return other


def mark_other_folds(entries: list[Entry], results: Sequence[RunResult]) -> list[Entry]:
    """Mark every entry scored on other folds than the dataset's ranked ones (every fold of
    the split beside a large table's hold-out fold: a protocol changed between the files) as
    not comparable; the ranked folds are the most common set, ties going to the newest file.
    Returns them (by pipeline name), for the end of the table."""
    if len({e.fold_keys for e in entries}) < 2:
        return []
    newest = {r.pipeline_name: r.provenance.created_at for r in results}
    counts = Counter(e.fold_keys for e in entries)
    latest: dict[tuple[str, ...], str] = {}
    for e in entries:
        latest[e.fold_keys] = max(latest.get(e.fold_keys, ""), newest.get(e.pipeline, ""))
    reference = max(counts, key=lambda keys: (counts[keys], latest[keys]))
    return _set_aside(
        [e for e in entries if e.fold_keys != reference],
        lambda e: (
            f"scored on {len(e.fold_keys)} fold(s), not the {len(reference)} the ranked "
            "rows were (the protocol changed); run it again"
        ),
    )


def mark_other_rules(entries: list[Entry]) -> list[Entry]:
    """Mark every entry whose file records no decision rule (written before rules were
    recorded: its labels came from its own arg-max or threshold) as not comparable when other
    entries of the dataset record one, so that no two ranked rows decided their labels by
    different rules; returns them (by pipeline name), for the end of the table."""
    if not any(e.decision for e in entries):
        return []  # every row from before rules were recorded: alike among themselves
    return _set_aside(
        [e for e in entries if not e.decision],
        lambda e: (
            "its file records no decision rule (written by an older mmbench); run it "
            "again to rank it beside rows scored with the rule fitted on their own out-of-fold rows"
        ),
    )


def published_rows(suite: Suite, board: Leaderboard | None = None) -> dict[str, list[PublishedRow]]:
    """The suite's published scores per dataset, each marked comparable or not (and why)."""
    rows: dict[str, list[PublishedRow]] = {}
    for d in suite.datasets:
        for ref in d.reference:
            why = ""
            if ref.metric != d.protocol.primary_metric:
                why = f"{ref.metric}, while this suite ranks on {d.protocol.primary_metric}"
            elif ref.split == "cv":
                why = "a cross-validated score on other folds than these"
            elif d.test_source is None:
                why = "a test-split score, and this dataset has no test_source"
            fields = ref.model_dump(include={"system", "metric", "split", "value", "source"})
            fields.update(where=ref.where, resamples=ref.resamples, url=ref.url)
            row = PublishedRow(d.name, **fields, comparable=not why, why=why)
            rows.setdefault(d.name, []).append(row)
    return rows
