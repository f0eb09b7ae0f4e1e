"""A leaderboard's rows and how they are written: Markdown and CSV.

:class:`Leaderboard` renders itself (``to_markdown``, ``to_csv``), so the row types
(:class:`Entry`, :class:`Overall`, :class:`PublishedRow`), these renderers and the cells of
published rows live in one module: splitting them would make the types and their renderers
import each other. The terminal's rich tables are :mod:`.terminal`; how rows are ranked,
:mod:`.ranking`; reading and writing the files, :mod:`.files`.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass, field
from typing import Any

from mmbench.evaluation import METRICS, format_score, undefined_note

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
    fold_keys: tuple[str, ...] = ()
    """The folds its CV scored (``r0f0`` …): every fold, or a large table's hold-out fold."""
    comparable: bool = True
    """False when its CV ran on other rows than the dataset's ranked ones: shown, not ranked."""
    decision: str = ""
    """The decision rule its label metrics were counted with (the same rule for every row)."""
    tied_best: bool | None = None
    """Statistically tied with the dataset's best row (:mod:`.stats`); None: not compared."""
    tie_p: float = math.nan
    """Holm-adjusted p-value of "worse than the best row" (row-level paired bootstrap)."""


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


NOT_RANKED = "not ranked"
"""The rank cell of a row whose CV ran on other rows than the dataset's ranked ones."""


def rank_cell(e: Entry) -> str:
    """The rank (``2 ≈`` when tied with the best row), or :data:`NOT_RANKED` for a row scored
    on other rows."""
    if not e.comparable:
        return NOT_RANKED
    return _rank(e.rank) + (" ≈" if e.tied_best and e.rank != 1 else "")


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


# --------------------------------------------------------------------------- rendering


def _num(value: float | None, digits: int = 3) -> str:
    return "—" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


def _rank(value: float) -> str:
    return "—" if not math.isfinite(value) else f"{value:g}"


def _score(e: Entry) -> str:
    """``0.712 ± 0.030``, and `` (1 fold undefined)`` when its mean left folds out."""
    score = format_score(e.mean, e.std, len(e.fold_keys) or 2)  # no keys: an older entry
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


def metric_title(entries: list[Entry]) -> str:
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
        lines += ["", f"## {name} — {metric_title(entries)}", ""]
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
    """Long format: one ``scope=dataset`` row per (dataset, pipeline), one ``scope=published``
    per published score, one ``scope=overall`` per pipeline; a column a row has no value for is
    empty."""
    rows = [_entry_csv(e) for entries in board.datasets.values() for e in entries]
    rows += [_published_csv(p) for published in board.published.values() for p in published]
    rows += [_overall_csv(o) for o in board.overall]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, restval="", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def _entry_csv(e: Entry) -> dict[str, Any]:
    optional = {"test": e.test, "fit_s": e.fit_s, "predict_ms_per_row": e.predict_ms}
    return {
        "scope": "dataset" if e.comparable else "dataset-not-comparable",
        **{k: getattr(e, k) for k in ("dataset", "pipeline", "metric", "higher_is_better")},
        **{k: getattr(e, k) for k in ("rank", "mean", "std", "chance", "normalized")},
        **{k: getattr(e, k) for k in ("description", "encoders", "head", "members", "decision")},
        **{k: "" if v is None else v for k, v in optional.items()},
        "n_datasets": 1,
        "caveats": "; ".join(e.caveats),
    }


def _published_csv(p: PublishedRow) -> dict[str, Any]:
    return {
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


def _overall_csv(o: Overall) -> dict[str, Any]:
    return {
        "scope": "overall",
        "pipeline": o.pipeline,
        "rank": o.mean_rank,
        "normalized": o.mean_normalized,
        "n_datasets": o.n_datasets,
    }


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
