"""Pipelines across every dataset of one or more suites: Bradley–Terry/Elo with bootstrap
intervals over datasets, mean rank, win rate, normalized score, failures imputed, cost.

Each dataset is one "tournament": on it every pair of pipelines plays once, the one with the
better primary metric (in the metric's own direction) winning, equal scores a draw. A
Bradley–Terry model fitted on all those games (scikit-learn's logistic regression on the
pairwise design, with a weak ridge so that a pipeline that wins everything stays finite) gives
each pipeline a strength, shown as an Elo rating with the ``anchor`` pipeline at 1000. Its 95 %
interval comes from resampling *datasets* with replacement and refitting: the uncertainty a
reader cares about is "on other datasets of this kind", not row noise.

A pipeline that failed on a dataset (every fold failed, or no readable result file where other
pipelines of the dataset have one) is not dropped: it is scored as the chance predictor
(``RunResult.chance``: the class prior, the TabArena/AMLB practice of imputing from a named
baseline), and its row shows the imputed share. ``complete_only`` keeps only datasets every
pipeline ran on instead.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from mmbench.errors import MMBenchError
from mmbench.leaderboard.ranking import normalized_score
from mmbench.leaderboard.stats import (
    CriticalDifference,
    WilcoxonHolm,
    critical_difference,
    wilcoxon_holm,
)
from mmbench.leaderboard.table import Entry, Leaderboard
from mmbench.results import RunResult

ANCHOR_ELO = 1000.0
ELO_SCALE = 400.0 / math.log(10.0)
BOOTSTRAPS = 200
IMPUTED_WITH = "chance (class-prior predictor)"


@dataclass
class Cell:
    """One pipeline's score on one dataset, as the aggregate counts it."""

    suite: str
    dataset: str
    pipeline: str
    score: float
    """In the metric's units and direction; the chance level when imputed."""
    higher_is_better: bool
    chance: float
    imputed: str = ""
    """Why it was imputed ("failed", "no result"); empty when measured."""
    fit_s: float | None = None
    predict_ms: float | None = None
    hardware: str = ""
    tied_best: bool = False


@dataclass
class Standing:
    """One pipeline across the datasets of the board."""

    pipeline: str
    elo: float
    elo_low: float
    elo_high: float
    mean_rank: float
    win_rate: float
    mean_normalized: float
    n_datasets: int
    """Datasets it ran on (measured, not imputed)."""
    imputed_share: float
    fit_s: float | None
    """Median fit seconds over the datasets it ran on."""
    predict_ms_1k: float | None
    """Median milliseconds to predict 1,000 rows."""
    hardware: str
    pareto: bool = False
    tied_best: int = 0
    """Datasets where it is statistically tied with the dataset's best (see :mod:`.stats`)."""


@dataclass
class CrossBoard:
    """The aggregate of every dataset of ``suites``; :attr:`cells` hold what it was fitted on."""

    suites: list[str]
    anchor: str
    standings: list[Standing]
    cells: list[Cell]
    datasets: list[tuple[str, str]]
    """(suite, dataset) pairs the aggregate covers."""
    dropped: list[tuple[str, str]] = field(default_factory=list)
    """Datasets left out by ``complete_only`` (some pipeline did not run there)."""
    notes: list[str] = field(default_factory=list)
    critical: CriticalDifference | None = None
    """autorank's Friedman/Nemenyi over the datasets (:mod:`.stats`); None: too few."""
    wilcoxon: WilcoxonHolm | None = None
    """Pairwise Wilcoxon–Holm over the datasets (:mod:`.stats`); None: too few."""


def cross_board(
    boards: Sequence[Leaderboard],
    results: Sequence[RunResult],
    anchor: str | None = None,
    complete_only: bool = False,
    bootstraps: int = BOOTSTRAPS,
    seed: int = 0,
) -> CrossBoard:
    """Aggregate the ranked datasets of ``boards`` (one per suite; ``results`` their files)."""
    cells = score_cells(boards, results)
    pipelines = sorted({c.pipeline for c in cells})
    datasets = sorted({(c.suite, c.dataset) for c in cells})
    dropped: list[tuple[str, str]] = []
    if complete_only:
        dropped = sorted({(c.suite, c.dataset) for c in cells if c.imputed})
        cells = [c for c in cells if (c.suite, c.dataset) not in dropped]
        datasets = [d for d in datasets if d not in dropped]
    anchor = anchor or ("default" if "default" in pipelines else pipelines[0] if pipelines else "")
    if pipelines and anchor not in pipelines:
        raise MMBenchError(f"--anchor {anchor!r} is not a pipeline of the board: {pipelines}")
    board = CrossBoard([b.suite for b in boards], anchor, [], cells, datasets, dropped)
    if not datasets:
        return board
    scores = score_matrix(cells, datasets, pipelines)
    elo = bradley_terry_elo(scores, pipelines.index(anchor))
    low, high = elo_interval(scores, pipelines.index(anchor), bootstraps, seed)
    ranks = dataset_ranks(scores)
    for i, p in enumerate(pipelines):
        own = [c for c in cells if c.pipeline == p]
        ran = [c for c in own if not c.imputed]
        board.standings.append(
            Standing(
                pipeline=p,
                elo=float(elo[i]),
                elo_low=float(low[i]),
                elo_high=float(high[i]),
                mean_rank=float(np.nanmean(ranks[:, i])),
                win_rate=win_rate(scores, i),
                mean_normalized=_mean(_normalized(c, cells) for c in own),
                n_datasets=len(ran),
                imputed_share=1.0 - len(ran) / len(own) if own else 1.0,
                fit_s=_median(c.fit_s for c in ran),
                predict_ms_1k=_median(
                    None if c.predict_ms is None else 1000 * c.predict_ms for c in ran
                ),
                hardware="; ".join(sorted({c.hardware for c in ran if c.hardware})) or "—",
                tied_best=sum(1 for c in ran if c.tied_best),
            )
        )
    board.standings.sort(key=lambda s: (-s.elo, s.mean_rank, s.pipeline))
    mark_pareto(board.standings)
    board.critical = critical_difference(scores, pipelines)
    board.wilcoxon = wilcoxon_holm(scores, pipelines)
    board.notes += [t.summary for t in (board.critical, board.wilcoxon) if t is not None]
    return board


def score_cells(boards: Sequence[Leaderboard], results: Sequence[RunResult]) -> list[Cell]:
    """Every (dataset, pipeline) of the boards, the failed and the missing ones imputed: a
    pipeline ranked on any dataset of the board is expected on every one (a row shown but not
    ranked there, its CV on other rows, counts as missing)."""
    files = {(r.suite, r.dataset.name, r.pipeline_name): r for r in results}
    expected = sorted(
        {e.pipeline for b in boards for es in b.datasets.values() for e in es if e.comparable}
    )
    cells = []
    for b in boards:
        for name, entries in b.datasets.items():
            ranked = {e.pipeline: e for e in entries if e.comparable}
            if not ranked:
                continue
            first = next(iter(ranked.values()))
            chance = first.chance
            for p in expected:
                e = ranked.get(p)
                cells.append(_cell(b.suite, name, p, e, first, chance, files))
    return cells


def _cell(
    suite: str,
    dataset: str,
    pipeline: str,
    e: Entry | None,
    first: Entry,
    chance: float,
    files: dict[tuple[str, str, str], RunResult],
) -> Cell:
    hib = first.higher_is_better
    if e is None or not math.isfinite(e.mean):
        why = "no result" if e is None else "failed"
        return Cell(suite, dataset, pipeline, chance, hib, chance, imputed=why)
    result = files.get((suite, dataset, pipeline))
    return Cell(
        suite, dataset, pipeline, e.mean, hib, chance,
        fit_s=job_seconds(result, e.fit_s), predict_ms=e.predict_ms,
        hardware=hardware_label(result) if result is not None else "",
        tied_best=bool(e.tied_best),
    )  # fmt: skip


def job_seconds(result: RunResult | None, fit_s: float | None) -> float | None:
    """What a row cost to produce: a search's whole job (the search, its final model and
    held-out scores: ``budget.wall_s``), since its trials are what it spent to find the model;
    a fixed pipeline's or a peer's fit seconds over the CV folds."""
    if result is not None and result.budget is not None:
        return float(result.budget.wall_s)
    return fit_s


def hardware_label(result: RunResult) -> str:
    """``8 CPU, GPU NVIDIA H100`` or ``8 CPU, no GPU``; files older than the ``gpu`` key read as
    no GPU unless their device was CUDA, and an unknown CPU count as ``? CPU``."""
    hw = result.provenance.hardware or {}
    cpus = hw.get("cpu_count") or "?"
    gpu = hw.get("gpu") or ("unknown GPU" if str(hw.get("device", "")).startswith("cuda") else "")
    return f"{cpus} CPU, " + (f"GPU {gpu}" if gpu else "no GPU")


def score_matrix(
    cells: Sequence[Cell], datasets: Sequence[tuple[str, str]], pipelines: Sequence[str]
) -> np.ndarray:
    """``(datasets, pipelines)`` scores oriented so that higher is better (NaN: no cell)."""
    out = np.full((len(datasets), len(pipelines)), np.nan)
    row = {d: i for i, d in enumerate(datasets)}
    col = {p: j for j, p in enumerate(pipelines)}
    for c in cells:
        if (c.suite, c.dataset) in row:
            out[row[(c.suite, c.dataset)], col[c.pipeline]] = (
                c.score if c.higher_is_better else -c.score
            )
    return out


def win_matrix(scores: np.ndarray) -> np.ndarray:
    """``W[i, j]``: datasets on which pipeline ``i`` beat ``j`` (a draw: half a win each)."""
    ok = np.isfinite(scores)
    s = np.where(ok, scores, 0.0)
    both = ok[:, :, None] & ok[:, None, :]
    won = (s[:, :, None] > s[:, None, :]) + 0.5 * (s[:, :, None] == s[:, None, :])
    w = np.where(both, won, 0.0).sum(axis=0)
    np.fill_diagonal(w, 0.0)
    return w


def bradley_terry_elo(scores: np.ndarray, anchor: int, ridge: float = 0.05) -> np.ndarray:
    """Elo ratings (anchor at :data:`ANCHOR_ELO`) of a Bradley–Terry fit on the datasets'
    games: the maximum of the log-likelihood (scipy's L-BFGS) with a weak ridge on the
    strengths, so that a pipeline that wins every game stays finite."""
    from scipy.optimize import minimize
    from scipy.special import expit, log_expit

    w = win_matrix(scores)
    n = len(w)

    def loss(beta: np.ndarray) -> tuple[float, np.ndarray]:
        diff = beta[:, None] - beta[None, :]
        nll = -(w * log_expit(diff)).sum() + ridge * (beta**2).sum()
        g = w * expit(-diff)  # d(-log sigma(b_i - b_j)) / d b_i = -sigma(b_j - b_i)
        grad = -g.sum(axis=1) + g.sum(axis=0) + 2 * ridge * beta
        return float(nll), grad

    beta = minimize(loss, np.zeros(n), jac=True, method="L-BFGS-B").x
    return ANCHOR_ELO + ELO_SCALE * (beta - beta[anchor])


def elo_interval(
    scores: np.ndarray, anchor: int, bootstraps: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """95 % percentile interval of each Elo over ``bootstraps`` resamples of the datasets."""
    from threadpoolctl import threadpool_limits

    rng = np.random.default_rng(seed)
    with threadpool_limits(1):  # tiny matrices: BLAS threads only contend
        draws = np.array(
            [
                bradley_terry_elo(scores[rng.integers(0, len(scores), len(scores))], anchor)
                for _ in range(bootstraps)
            ]
        )
    return np.quantile(draws, 0.025, axis=0), np.quantile(draws, 0.975, axis=0)


def dataset_ranks(scores: np.ndarray) -> np.ndarray:
    """Average ranks within each dataset, 1 = best (NaN where there is no cell)."""
    from scipy.stats import rankdata

    ranks = np.full(scores.shape, np.nan)
    for d, s in enumerate(scores):
        ok = np.isfinite(s)
        ranks[d, ok] = rankdata(-s[ok], method="average")
    return ranks


def win_rate(scores: np.ndarray, i: int) -> float:
    """Share of its pairwise games (every dataset, every other pipeline) ``i`` won, draws half."""
    won = played = 0.0
    for s in scores:
        for j in range(scores.shape[1]):
            if j != i and math.isfinite(s[i]) and math.isfinite(s[j]):
                played += 1
                won += 1.0 if s[i] > s[j] else 0.5 if s[i] == s[j] else 0.0
    return won / played if played else math.nan


def mark_pareto(standings: Sequence[Standing]) -> None:
    """Mark the Pareto front of Elo (higher better) vs median fit seconds (lower better): no
    other pipeline is at least as strong and as fast, and strictly better in one."""
    timed = [s for s in standings if s.fit_s is not None]
    for s in timed:
        s.pareto = not any(
            o is not s
            and o.elo >= s.elo
            and o.fit_s <= s.fit_s  # type: ignore[operator]
            and (o.elo > s.elo or o.fit_s < s.fit_s)  # type: ignore[operator]
            for o in timed
        )


def _normalized(c: Cell, cells: Sequence[Cell]) -> float:
    same = [o.score for o in cells if (o.suite, o.dataset) == (c.suite, c.dataset)]
    best = max(same) if c.higher_is_better else min(same)
    return normalized_score(c.score, c.chance, best)


def _mean(values: object) -> float:
    kept = [v for v in values if math.isfinite(v)]  # type: ignore[attr-defined]
    return sum(kept) / len(kept) if kept else math.nan


def _median(values: object) -> float | None:
    kept = [v for v in values if v is not None]  # type: ignore[attr-defined]
    return statistics.median(kept) if kept else None
