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

import csv
import io
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mmbench._io import atomic_write
from mmbench.errors import MMBenchError
from mmbench.evaluation import METRICS, undefined_note
from mmbench.results import ResultLayout, RunResult

if TYPE_CHECKING:
    from mmbench.suite import Suite

CSV_COLUMNS = (
    "scope",
    "dataset",
    "pipeline",
    "metric",
    "higher_is_better",
    "rank",
    "mean",
    "std",
    "test",
    "chance",
    "normalized",
    "n_datasets",
    "description",
    "encoders",
    "head",
    "members",
    "fit_s",
    "predict_ms_per_row",
    "caveats",
    "decision",
)


@dataclass
class Entry:
    """One pipeline on one dataset: its score and what it is (see :mod:`mmbench.results.identity`).

    A row that is not one of mmbench's own result files (a published reference score) fills
    what it knows and leaves the rest empty.
    """

    dataset: str
    pipeline: str
    metric: str
    higher_is_better: bool
    mean: float
    std: float
    test: float | None
    chance: float
    rank: float = math.nan
    normalized: float = math.nan
    failed_folds: int = 0
    undefined_folds: int = 0
    """Folds that ran but whose metric is undefined (NaN), left out of :attr:`mean`."""
    description: str = ""
    """What the pipeline is: head and encoders, or an ensemble's members."""
    short: str = ""
    """The same in a few words, for the terminal."""
    encoders: str = ""
    head: str = ""
    members: str = ""
    caveats: list[str] = field(default_factory=list)
    fit_s: float | None = None
    predict_ms: float | None = None
    fingerprint: str = ""
    """The data fingerprint of the rows its CV ran on (``dataset.fingerprint``)."""
    comparable: bool = True
    """False when its CV ran on other rows than the dataset's ranked ones: shown, not ranked."""
    decision: str = ""
    """The decision rule its label metrics were counted with (the same rule for every row)."""


@dataclass
class Overall:
    """One pipeline across the datasets it was run on."""

    pipeline: str
    mean_rank: float
    mean_normalized: float
    n_datasets: int


@dataclass
class Leaderboard:
    suite: str
    datasets: dict[str, list[Entry]]
    """Dataset -> entries, best first."""
    overall: list[Overall]
    """Best first: lowest mean rank, then highest mean normalized score."""
    provenance: dict[str, Any]
    skipped: list[str] = field(default_factory=list)
    """One line per result file that could not be read and was left out."""
    published: dict[str, list[PublishedRow]] = field(default_factory=dict)
    """Dataset -> scores published elsewhere (from the suite file), shown beside the entries."""

    def to_markdown(self, title: bool = True) -> str:
        return render_markdown(self, title=title)

    def to_csv(self) -> str:
        return render_csv(self)

    def to_rich(self) -> list[Any]:
        return render_rich(self)


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
    other = mark_other_rows(entries, reference_fingerprint(results))
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


def load_leaderboard(results_dir: Path, suite: str, suite_spec: Suite | None = None) -> Leaderboard:
    """The leaderboard of ``suite`` from its result files under ``results_dir``; with the
    suite's ``suite_spec``, its published scores are shown beside (see :func:`published_rows`)."""
    layout = ResultLayout(results_dir, suite)
    results, skipped = layout.load_readable()
    if not results:
        where = layout.root
        raise MMBenchError(
            f"no result files for suite {suite!r} in {where}/ (expected <dataset>/<pipeline>.json); "
            f"run the suite first, e.g. `mmbench run suites/{suite}.yaml --results {results_dir}`"
            + "".join(f"\n  skipped {p}" for p in skipped)
        )
    board = build_leaderboard(results, suite)
    board.skipped = skipped
    if suite_spec is not None:
        board.published = published_rows(suite_spec, board)
    return board


# --------------------------------------------------------------------------- rendering


def _num(value: float | None, digits: int = 3) -> str:
    return "—" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


def _rank(value: float) -> str:
    return "—" if not math.isfinite(value) else f"{value:g}"


def _score(e: Entry) -> str:
    """``0.712 ± 0.030``, and `` (1 fold undefined)`` when its mean left folds out."""
    score = "—" if not math.isfinite(e.mean) else f"{e.mean:.3f} ± {_num(e.std)}"
    return score + undefined_note({"undefined": e.undefined_folds})


CAVEAT = "⚠"


def dataset_rows(entries: list[Entry], short: bool = False) -> list[list[str]]:
    """Cells of one dataset table: rank, pipeline (⚠ when it has caveats), what it is, CV,
    test, decision rule, chance, normalized, fit seconds, predict milliseconds per row, failed
    folds."""
    return [
        [
            rank_cell(e),
            e.pipeline + (f" {CAVEAT}" if e.caveats else ""),
            e.short if short else e.description,
            _score(e),
            _num(e.test),
            (e.decision.split(" ")[0] if short else e.decision) or "—",
            _num(e.chance),
            _num(e.normalized),
            _num(e.fit_s, 1),
            _num(e.predict_ms, 3),
            str(e.failed_folds),
        ]
        for e in entries
    ]


def caveat_lines(entries: list[Entry]) -> list[str]:
    """``⚠ <pipeline>: <caveat>; <caveat>`` for each row that has caveats."""
    return [f"{CAVEAT} {e.pipeline}: {'; '.join(e.caveats)}" for e in entries if e.caveats]


DATASET_HEADER = [
    "rank",
    "pipeline",
    "what it is",
    "CV mean ± std",
    "test",
    "decision",
    "chance",
    "normalized",
    "fit s",
    "predict ms/row",
    "failed folds",
]
_SHORT = {
    "decision": "rule",
    "normalized": "norm.",
    "predict ms/row": "ms/row",
    "failed folds": "failed",
}
TERMINAL_HEADER = [_SHORT.get(col, col) for col in DATASET_HEADER]
""":data:`DATASET_HEADER` in a few letters, so a row fits 120 columns."""
OVERALL_HEADER = ["pipeline", "mean rank", "mean normalized score", "datasets"]


def overall_rows(board: Leaderboard) -> list[list[str]]:
    return [
        [o.pipeline, _num(o.mean_rank, 2), _num(o.mean_normalized), str(o.n_datasets)]
        for o in board.overall
    ]


def _metric_title(entries: list[Entry]) -> str:
    e = entries[0]
    arrow = "higher is better" if e.higher_is_better else "lower is better"
    return f"{METRICS.get(e.metric).label} ({arrow})"


def _md_table(header: list[str], rows: list[list[str]]) -> list[str]:
    def esc(cell: str) -> str:
        return cell.replace("|", "\\|")

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(esc(c) for c in row) + " |" for row in rows]


def render_markdown(board: Leaderboard, title: bool = True) -> str:
    lines = [f"# Leaderboard: {board.suite}", ""] if title else []
    lines += ["## Overall", "", *_md_table(OVERALL_HEADER, overall_rows(board)), ""]
    lines.append(
        "Mean rank over the datasets each pipeline ran on; normalized score = "
        "(score − chance) / (best − chance) per dataset, 1 = best pipeline, 0 = chance."
    )
    for name, entries in board.datasets.items():
        lines += ["", f"## {name} — {_metric_title(entries)}", ""]
        published = board.published.get(name, [])
        lines += _md_table(DATASET_HEADER, dataset_rows(entries) + published_cells(published))
        notes = caveat_lines(entries)
        lines += ["", *(f"- {n}" for n in notes)] if notes else []
        lines += published_notes(published)
    if any(e.fit_s is not None for es in board.datasets.values() for e in es):
        lines += [
            "",
            "fit s: encoding and fitting over the CV folds (an ensemble: its members' trials); "
            "predict ms/row: prediction time per row (an ensemble: its members' sum).",
        ]
    if any(e.decision for es in board.datasets.values() for e in es):
        lines += [
            "",
            "decision: the rule of the label metrics, fitted alike on every row's own "
            "out-of-fold probabilities — arg-max, or per-class weights (tuned) adopted when they "
            "beat it on folds they were not tuned on; CV scores each fold with weights tuned on "
            "the other folds, held-out rows with weights tuned on all.",
        ]
    return "\n".join(lines) + "\n"


def render_csv(board: Leaderboard) -> str:
    """Long format: one ``scope=dataset`` row per (dataset, pipeline), one ``scope=overall`` per pipeline."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for entries in board.datasets.values():
        for e in entries:
            writer.writerow(
                {
                    "scope": "dataset" if e.comparable else "dataset-not-comparable",
                    "dataset": e.dataset,
                    "pipeline": e.pipeline,
                    "metric": e.metric,
                    "higher_is_better": e.higher_is_better,
                    "rank": e.rank,
                    "mean": e.mean,
                    "std": e.std,
                    "test": "" if e.test is None else e.test,
                    "chance": e.chance,
                    "normalized": e.normalized,
                    "n_datasets": 1,
                    "description": e.description,
                    "encoders": e.encoders,
                    "head": e.head,
                    "members": e.members,
                    "fit_s": "" if e.fit_s is None else e.fit_s,
                    "predict_ms_per_row": "" if e.predict_ms is None else e.predict_ms,
                    "caveats": "; ".join(e.caveats),
                    "decision": e.decision,
                }
            )
    for rows in board.published.values():
        for p in rows:
            writer.writerow(
                {
                    "scope": "published" if p.comparable else "published-not-comparable",
                    "dataset": p.dataset,
                    "pipeline": p.label,
                    "metric": p.metric,
                    "higher_is_better": METRICS.get(p.metric).higher_is_better,
                    "mean": p.value if p.split == "cv" else "",
                    "test": p.value if p.split == "test" else "",
                    "n_datasets": 1,
                    "description": f"{p.citation} ({p.measured})" + (f" {p.url}" if p.url else ""),
                }
            )
    for o in board.overall:
        writer.writerow(
            {
                "scope": "overall",
                "dataset": "",
                "pipeline": o.pipeline,
                "metric": "",
                "higher_is_better": "",
                "rank": o.mean_rank,
                "mean": "",
                "std": "",
                "test": "",
                "chance": "",
                "normalized": o.mean_normalized,
                "n_datasets": o.n_datasets,
                **{k: "" for k in CSV_COLUMNS[12:]},
            }
        )
    return buf.getvalue()


def render_rich(board: Leaderboard) -> list[Any]:
    """Rich tables (overall first, then one per dataset) for the terminal; cells are text, not
    markup (a published row's ``[published: source]`` is shown as written)."""
    from rich.markup import escape
    from rich.table import Table

    tables = []
    overall = Table(title=f"{board.suite}: overall")
    for col in OVERALL_HEADER:
        overall.add_column(col, justify="left" if col == "pipeline" else "right")
    for row in overall_rows(board):
        overall.add_row(*row)
    tables.append(overall)
    for name, entries in board.datasets.items():
        published = board.published.get(name, [])
        notes = "\n".join([*caveat_lines(entries), *published_notes(published)]).strip()
        caption = escape(notes) if notes else None
        table = Table(title=f"{name}: {_metric_title(entries)}", caption=caption)
        rows = dataset_rows(entries, short=True)
        extra = published_cells(published, short=True)
        optional = ("test", "decision", "predict ms/row")  # left out when no row has one
        keep = [
            i
            for i, col in enumerate(DATASET_HEADER)
            if col not in optional or any(row[i] != "—" for row in rows + extra)
        ]
        for i in keep:
            col = DATASET_HEADER[i]
            table.add_column(
                TERMINAL_HEADER[i],
                justify="left" if col in ("pipeline", "what it is") else "right",
                min_width={"what it is": 24}.get(col),
                no_wrap=col == "CV mean ± std",
                overflow="fold",
            )
        for n, row in enumerate(rows):
            table.add_row(*(escape(row[i]) for i in keep), style="bold" if n == 0 else None)
        for row in extra:
            table.add_row(*(escape(row[i]) for i in keep), style="italic")
        tables.append(table)
    return tables


def render(board: Leaderboard, fmt: str) -> str:
    """``markdown`` or ``csv`` text, or the rich tables rendered as plain text (``table``)."""
    if fmt == "markdown":
        return render_markdown(board)
    if fmt == "csv":
        return render_csv(board)
    if fmt == "table":
        from rich.console import Console

        console = Console(file=io.StringIO(), width=120, color_system=None)
        for t in render_rich(board):
            console.print(t)
        return console.file.getvalue()  # type: ignore[attr-defined]
    raise MMBenchError(f"unknown leaderboard format {fmt!r}; use table, markdown or csv")


# --------------------------------------------------------------------------- LEADERBOARD.md


def write_leaderboard(
    results_dir: Path,
    suite_name: str,
    path: Path | None = None,
    command: str | None = None,
    suite_spec: Suite | None = None,
) -> Path:
    """Regenerate ``results/<suite>/LEADERBOARD.md`` (or ``path``) from the result files.

    The header says the file is generated (and by which command) so nobody edits it by hand, and
    the provenance lines say which mmbench versions and commits produced the numbers.
    """
    board = load_leaderboard(results_dir, suite_name, suite_spec)
    path = Path(path) if path else ResultLayout(results_dir, suite_name).leaderboard_file
    command = command or f"mmbench leaderboard suites/{suite_name}.yaml --write"
    prov = board.provenance
    created = prov["created_at"]
    header = [
        f"<!-- generated by `{command}` — do not edit -->",
        f"# Leaderboard: {suite_name}",
        "",
        f"_Generated by `{command}` from {prov['n_results']} result file(s) — do not edit._",
        "",
        f"- mmbench versions: {', '.join(prov['mmbench_versions'])}",
        f"- git commits: {', '.join(c[:12] + ('-dirty' if c.endswith('-dirty') else '') for c in prov['git_commits'])}",
        f"- results created: {created[0]} … {created[-1]}" if created else "- results created: —",
        *(f"- **skipped, unreadable:** {problem}" for problem in board.skipped),
        "",
    ]
    text = "\n".join(header) + "\n" + render_markdown(board, title=False)
    atomic_write(path, lambda f: f.write(text.encode()))
    return path


# --------------------------------------------------------------------------- like with like

NOT_RANKED = "not ranked"
"""The rank cell of a row whose CV ran on other rows than the dataset's ranked ones."""


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
    other = sorted((e for e in entries if e.fingerprint != reference), key=lambda e: e.pipeline)
    for e in other:
        e.comparable = False
        e.caveats.append(
            f"{NOT_RANKED}: CV on other rows than the ranked ones (data fingerprint "
            f"{e.fingerprint}, not {reference})"
        )
    return other


def mark_other_rules(entries: list[Entry]) -> list[Entry]:
    """Mark every entry whose file records no decision rule (written before rules were
    recorded: its labels came from its own arg-max or threshold) as not comparable when other
    entries of the dataset record one, so that no two ranked rows decided their labels by
    different rules; returns them (by pipeline name), for the end of the table."""
    if not any(e.decision for e in entries):
        return []  # every row from before rules were recorded: alike among themselves
    other = sorted((e for e in entries if not e.decision), key=lambda e: e.pipeline)
    for e in other:
        e.comparable = False
        e.caveats.append(
            f"{NOT_RANKED}: its file records no decision rule (written by an older mmbench); "
            "run it again to rank it beside rows scored with the rule fitted on their own "
            "out-of-fold rows"
        )
    return other


def rank_cell(e: Entry) -> str:
    """The rank, or :data:`NOT_RANKED` for a row scored on other rows."""
    return _rank(e.rank) if e.comparable else NOT_RANKED


# --------------------------------------------------------------------------- published rows


@dataclass
class PublishedRow:
    """A score published elsewhere (a suite's ``reference:``), shown beside measured rows.

    It is never ranked or normalized: it was not measured here. It is *comparable* only on the
    dataset's primary metric and on its held-out test split (the benchmark's own test file),
    and then sits in the held-out column; otherwise it is listed with the reason.
    """

    dataset: str
    system: str
    metric: str
    split: str
    value: float
    source: str
    comparable: bool
    why: str = ""
    where: str = ""
    """The table or figure of :attr:`source` the number is read in."""
    resamples: int = 1
    """Train/test resamples the published figure averages."""
    url: str = ""

    @property
    def label(self) -> str:
        return f"{self.system} [published: {self.citation}]"

    @property
    def citation(self) -> str:
        """``<source>, <where>``: enough to open the source at the number."""
        return ", ".join(part for part in (self.source, self.where) if part)

    @property
    def measured(self) -> str:
        """What the number is: ``accuracy, test split, mean of 30 resamples`` (train/test
        resamples of the data that the published figure averages)."""
        over = f"mean of {self.resamples} resamples" if self.resamples > 1 else "1 resample"
        return f"{self.metric}, {self.split} split, {over}"


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


def published_cells(rows: list[PublishedRow], short: bool = False) -> list[list[str]]:
    """Comparable published scores as rows of a dataset table: held-out column only; ``short``
    (the terminal) names the system alone, its source being listed under the table."""
    out = []
    for p in rows:
        if not p.comparable:
            continue
        cells = dict.fromkeys(DATASET_HEADER, "—")
        cells.update(
            {
                "rank": "published",
                "pipeline": f"{p.system} [published]" if short else p.label,
                "what it is": f"published, not measured here: {p.measured}",
            }
        )
        cells["test"] = _num(p.value)
        out.append([cells[c] for c in DATASET_HEADER])
    return out


def published_notes(rows: list[PublishedRow]) -> list[str]:
    lines = []
    if any(p.comparable for p in rows):
        lines.append(
            "\n_published_ rows were not measured here: scores on the same metric and test split, "
            "as their source reports them (not ranked)."
        )
    lines += [
        f"\n- published, not comparable here: {p.label} {p.metric} = {p.value:g} ({p.why})"
        for p in rows
        if not p.comparable
    ]
    return lines + source_lines(rows)


def source_lines(rows: list[PublishedRow]) -> list[str]:
    """Where each published number can be checked: source, table or figure, split, metric,
    resamples and link."""
    if not rows:
        return []
    lines = ["\nSources of the published rows:"]
    for p in rows:
        link = f" — {p.url}" if p.url else ""
        lines.append(f"- {p.system}: {p.citation} ({p.measured}){link}")
    return lines
