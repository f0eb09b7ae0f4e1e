"""The report's HTML: one page, inline CSS, SVG and one small script (the leaderboard's
column sorting), nothing fetched.

Sections: the cross-dataset leaderboard, then per dataset its ranked pipelines, the modality
ablation, the best pipeline's confusion matrix and ROC/PR curves, the search history and the
provenance. A section whose data a result file does not hold says so and why (e.g. a file of
schema 1 predates the curves), instead of vanishing.

Length: the page's sections and their HTML in one file (~400 lines), so the page's structure
reads top to bottom; the charts and the leaderboard board are in ``charts`` and ``board``.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from html import escape
from typing import TYPE_CHECKING, Any

from mmbench.config import PeerSpec
from mmbench.evaluation import METRICS, format_score
from mmbench.leaderboard import rank_cell
from mmbench.report import charts
from mmbench.report.board import board_section

if TYPE_CHECKING:
    from mmbench.report.data import DatasetView, ReportData
    from mmbench.results import AblationReport, RunResult

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:0 auto;
max-width:1100px;padding:1rem 2rem;color:#222;line-height:1.4}
h1{margin-bottom:.2rem}h2{border-bottom:2px solid #ddd;padding-bottom:.2rem;margin-top:2.5rem}
table{border-collapse:collapse;margin:.5rem 0 1rem}th,td{padding:.25rem .6rem;text-align:right;
border-bottom:1px solid #e5e5e5}th{background:#f4f4f4}td.name,th.name{text-align:left}
tr.best td{font-weight:600}.muted{color:#777}.problem{background:#fdecea;border-left:4px solid
#c44e52;padding:.4rem .8rem;margin:.4rem 0}.charts{display:flex;flex-wrap:wrap;gap:1rem}
figure{margin:0}figcaption{font-size:.9rem;color:#555}svg{max-width:100%;height:auto}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.2rem 1rem}dt{color:#555}
dd{margin:0;font-family:ui-monospace,monospace;font-size:.9rem;word-break:break-all}
.tag{font-size:.8rem;background:#eef;border-radius:3px;padding:0 .3rem;margin-left:.3rem}
table.pipelines td:not(.name){white-space:nowrap}.identity{font-size:.85rem;display:inline-block;
max-width:28rem;white-space:normal}.rule{display:block;color:#666;font-size:.8rem}
.caveat{display:block;color:#8a5a00;font-size:.8rem;
white-space:normal}.winner{font-family:ui-monospace,monospace;font-size:.9rem}
.wide{overflow-x:auto;max-width:100%}table.leaderboard{font-size:.85rem}
table.leaderboard td:nth-child(2){white-space:nowrap}
table.sortable th{cursor:pointer}table.sortable th[data-dir=asc]::after{content:" ▲"}
table.sortable th[data-dir=desc]::after{content:" ▼"}
"""


def render_page(data: ReportData) -> str:
    """The whole page."""
    body = [f"<h1>mmbench report: {escape(data.suite)}</h1>", _intro(data)]
    body += [_problem(p) for p in data.problems]
    kinds = {n: _kind_of(r) for v in data.datasets for n, r in v.results.items()}
    body.append(board_section(data, kinds))
    body += [_dataset(view) for view in data.datasets]
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>mmbench report: {escape(data.suite)}</title><style>{CSS}</style></head>"
        f"<body>{''.join(body)}</body></html>\n"
    )


def _intro(data: ReportData) -> str:
    n = sum(len(v.results) for v in data.datasets)
    links = ", ".join(
        f'<a href="#dataset-{escape(v.name)}">{escape(v.name)}</a>' for v in data.datasets
    )
    now = datetime.now(UTC).isoformat(timespec="seconds")
    folders = ", ".join(f"<code>results/{escape(name)}/</code>" for name in data.suite.split(" + "))
    return (
        f'<p class="muted">Built from {n} result file(s) under {folders} on {now} by '
        f"<code>mmbench report</code>. Datasets: {links or '—'}.</p>"
    )


def _problem(text: str) -> str:
    return f'<div class="problem">{escape(text)}</div>'


def _table(
    header: list[str], rows: list[list[str]], cls: str, row_cls: list[str], left: int = 1
) -> str:
    """Cells are HTML already (escaped by the callers); the first ``left`` columns are
    left-aligned."""
    head = "".join(f"<th{' class=name' if i < left else ''}>{h}</th>" for i, h in enumerate(header))
    lines = [f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>']
    for row, rc in zip(rows, row_cls, strict=True):
        cells = "".join(
            f"<td{' class=name' if i < left else ''}>{c}</td>" for i, c in enumerate(row)
        )
        lines.append(f'<tr class="{rc}">{cells}</tr>')
    return "".join(lines) + "</tbody></table>"


def _num(value: float | None, digits: int = 3) -> str:
    return "—" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


_KIND = {"default": "default", "search": "search: best trial", "ensemble": "final model"}


def _kind_of(result: RunResult) -> str:
    if isinstance(result.pipeline, PeerSpec):
        return "peer"
    return _KIND.get(result.pipeline_name, "reference")


def _dataset(view: DatasetView) -> str:
    out = [f'<section class="dataset" id="dataset-{escape(view.name)}">']
    title = escape(view.name)
    if view.entries:
        e = view.entries[0]
        arrow = "higher is better" if e.higher_is_better else "lower is better"
        title += f" — {escape(METRICS.get(e.metric).label)} ({arrow})"
    out.append(f"<h2>{title}</h2>")
    out += [_problem(p) for p in view.problems]
    if not view.results:
        out.append(_problem(f"missing: no readable result file for dataset {view.name!r}"))
        return "".join([*out, "</section>"])
    out.append(_pipelines(view))
    out.append(_published(view.published))
    out.append(_ablations(view))
    out.append(_best(view))
    out.append(_history(view))
    out.append(_provenance(view))
    return "".join([*out, "</section>"])


def _pipelines(view: DatasetView) -> str:
    from mmbench.results.identity import identify

    header = ["pipeline", "what it is", "rank", "CV mean ± std", "held-out", "chance"]
    header += ["normalized", "fit s", "wall s", "budget", "failed folds"]
    rows, classes = [], []
    for i, e in enumerate(view.entries):
        r = view.results[e.pipeline]
        ident = identify(r)  # the entry's caveats are its own and the leaderboard's
        caveats = "".join(f'<span class="caveat">⚠ {escape(c)}</span>' for c in e.caveats)
        rule = ident.decision or "not recorded"
        caveats += f'<span class="rule">decision: {escape(rule)}</span>'
        rows.append(
            [
                f'{escape(e.pipeline)}<span class="tag">{_kind_of(r)}</span>',
                f'<span class="identity">{escape(ident.summary)}</span>{caveats}',
                rank_cell(e),
                format_score(e.mean, e.std, len(e.fold_keys) or 2),
                _num(e.test),
                _num(e.chance),
                _num(e.normalized),
                _num(ident.fit_s, 1),
                _num(r.durations.get("wall"), 0),
                escape(_budget(r)).replace("; ", ";<br>"),
                str(e.failed_folds),
            ]
        )
        classes.append("pipeline-row best" if i == 0 else "pipeline-row")
    table = _table(header, rows, "pipelines", classes, left=2)
    note = (
        '<p class="muted">fit s: encoding and fitting over the CV folds (an ensemble: its '
        "members' trials); wall s: the whole job, ablation included.</p>"
    )
    return "<h3>Pipelines</h3>" + table + note


def _published(rows: list[Any]) -> str:
    """Scores published elsewhere: beside the measured rows, marked, never ranked."""
    if not rows:
        return ""
    header = ["system", "metric", "split", "resamples", "published value", "source"]
    header.append("compared here")
    cells = [
        [
            escape(p.system) + '<span class="tag">published</span>',
            escape(p.metric),
            escape(p.split),
            str(p.resamples),
            _num(p.value),
            _source_cell(p),
            "yes: held-out column" if p.comparable else escape(f"no: {p.why}"),
        ]
        for p in rows
    ]
    note = (
        '<p class="muted">Published results, not measured here: compared only on the same '
        "metric and test split.</p>"
    )
    classes = ["published-row"] * len(cells)
    return "<h3>Published results</h3>" + note + _table(header, cells, "published", classes)


def _source_cell(p: Any) -> str:
    """The citation with its table or figure, linked when the suite gives a URL."""
    text = escape(p.citation)
    if p.url.startswith(("http://", "https://")):
        return f'<a href="{escape(p.url)}">{text}</a>'
    return text + (f" ({escape(p.url)})" if p.url else "")


def _budget(r: RunResult) -> str:
    if r.budget is None:
        text = "—" if r.search is None else f"{r.search.n_trials} trials"
        ablation = r.durations.get("ablation")
        return text if ablation is None else f"{text}; ablation {ablation:.0f} s"
    b = r.budget
    limit = "no time limit" if b.timeout_s is None else f"{b.timeout_s:g} s limit"
    cut = f", {b.trials_cut} cut" if b.trials_cut else ""
    text = f"{b.trials_run} trials{cut}, {limit}"
    if b.ablation_s is not None:
        reserved = f", {b.ablation_reserved_s:.0f} s reserved" if b.ablation_reserved_s else ""
        skipped = f", {b.ablation_skipped} subsets cut" if b.ablation_skipped else ""
        text += f"; ablation {b.ablation_s:.0f} s{reserved}{skipped}"
    return text


def _ablations(view: DatasetView) -> str:
    """One section per ablated pipeline, named with what that pipeline is."""
    from mmbench.results.identity import describe

    if not view.ablations:
        return '<h3>Modality ablation</h3><p class="muted">no ablation for this dataset.</p>'
    out = []
    for pipeline, report in view.ablations.items():
        out.append(
            f'<div class="ablation-of" data-pipeline="{escape(pipeline)}">'
            f"<h3>Modality ablation of {escape(pipeline)}</h3>"
            f'<p class="muted">{escape(describe(report.pipeline))}</p>'
        )
        if report.skipped:
            out.append(
                _problem(
                    f"{len(report.skipped)} subset(s) not run within the time budget "
                    f"({', '.join(report.skipped)})"
                    + ("; no Shapley values" if report.shapley is None else "")
                )
            )
        out.append(_ablation(report) + "</div>")
    return "".join(out)


def _ablation(report: AblationReport) -> str:
    out = []
    unit = METRICS.get(report.primary).label
    figures = []
    if report.shapley:
        svg = charts.attribution_svg(report.shapley, "mean", "std", f"Shapley value ({unit})")
        figures.append(charts.figure(svg, "Shapley value ± std over folds", "ablation-shapley"))
    svg = charts.attribution_svg(report.leave_one_out, "mean", "std", f"drop ({unit})")
    figures.append(
        charts.figure(svg, "leave-one-out: drop when left out of training", "ablation-loo")
    )
    svg = charts.attribution_svg(report.robustness, "drop", "drop_std", f"drop ({unit})")
    figures.append(
        charts.figure(svg, "missing at test time: drop of the full model", "ablation-missing")
    )
    out.append(f'<div class="charts">{"".join(figures)}</div>')
    out.append(_ablation_table(report))
    return "".join(out)


def _ablation_table(report: AblationReport) -> str:
    def pm(stats: dict[str, float] | None, key: str = "mean", err: str = "std") -> str:
        if not stats:
            return "—"
        return f"{stats.get(key, math.nan):+.3f} ± {_num(stats.get(err))}"

    rows = [
        [
            escape(m),
            pm((report.shapley or {}).get(m)),
            pm(report.leave_one_out.get(m)),
            pm(report.robustness.get(m), "drop", "drop_std"),
        ]
        for m in report.ranking()
    ]
    header = ["modality", "Shapley value", "leave-one-out drop", "drop when missing at test"]
    return _table(header, rows, "ablation", ["ablation-row"] * len(rows))


def _best(view: DatasetView) -> str:
    """Diagnostics of the best pipeline, or of the best one whose file records them."""
    ranked = [view.results[e.pipeline] for e in view.entries]
    if not ranked:
        return ""
    from mmbench.results.identity import identify

    best = ranked[0]
    shown = next((r for r in ranked if r.diagnostics is not None), None)
    out = [
        f"<h3>Best pipeline: {escape(best.pipeline_name)}</h3>",
        f'<p class="winner">{escape(identify(best).summary)}</p>',
    ]
    if shown is not best:
        out.append(
            _problem(
                f"{best.pipeline_name}: its result file (schema {best.schema_version}) records no "
                "confusion matrix or ROC/PR curves; rerun it to record them."
                + (f" Shown instead: {shown.pipeline_name}, the best that does." if shown else "")
            )
        )
    if shown is None or shown.diagnostics is None:
        return "".join(out)
    diag = shown.diagnostics
    out.append(_per_class(shown))
    figures = [
        charts.figure(
            charts.confusion_svg(diag, normalized=True),
            f"{shown.pipeline_name}: out-of-fold, share of each true class (count)",
            "confusion",
        ),
        charts.figure(charts.curves_svg(diag), f"{shown.pipeline_name}: one-vs-rest", "roc-pr"),
    ]
    return "".join([*out, f'<div class="charts">{"".join(figures)}</div>'])


def _per_class(r: RunResult) -> str:
    """Precision, recall, F1 and support per class, with ROC-AUC and average precision."""
    diag = r.diagnostics
    assert diag is not None
    if diag.per_class is None:
        return _problem(
            f"{r.pipeline_name}: its result file (schema {r.schema_version}) records no "
            "per-class precision/recall/F1; rerun it to record them."
        )
    rows = []
    for name, m in diag.per_class.items():
        roc, pr = diag.roc.get(name), diag.pr.get(name)
        rows.append(
            [
                escape(name),
                _num(m.precision),
                _num(m.recall),
                _num(m.f1),
                str(m.support),
                _num(roc.area if roc else None),
                _num(pr.area if pr else None),
            ]
        )
    header = ["class", "precision", "recall", "F1", "support", "ROC-AUC", "avg precision"]
    caption = (
        f'<p class="muted">{escape(r.pipeline_name)}: out-of-fold, arg-max decision; '
        "support = rows of the class.</p>"
    )
    return (
        "<h4>Per class</h4>"
        + _table(header, rows, "per-class", ["class-row"] * len(rows))
        + caption
    )


def _history(view: DatasetView) -> str:
    searched = [r for r in view.results.values() if r.search is not None]
    if not searched:
        return '<h3>Search history</h3><p class="muted">no search for this dataset.</p>'
    r = min(searched, key=lambda r: (not _history_of(r), r.pipeline_name != "search"))
    s = r.search
    assert s is not None
    counts: dict[str, int] = {}
    for p in s.history:  # the history tells declined trials from pruned ones
        counts[p.state] = counts.get(p.state, 0) + 1
    states = ", ".join(f"{n} {state}" for state, n in sorted((counts or s.states).items()))
    out = [
        "<h3>Search history</h3>",
        f"<p>Optuna study <code>{escape(s.study)}</code>: {s.n_trials} trials ({states}); best "
        f"trial {s.best_trial}; {s.seconds:.0f} s searching.</p>",
    ]
    if not s.history:
        out.append(_problem(f"{r.pipeline_name}: its result file records no trial history."))
        return "".join(out)
    metric, hib = r.protocol.primary_metric, METRICS.get(r.protocol.primary_metric).higher_is_better
    svg = charts.history_svg(s.history, hib, metric)
    return "".join([*out, charts.figure(svg, "value of each trial by state", "history")])


def _history_of(r: RunResult) -> list[Any]:
    return list(r.search.history) if r.search is not None else []


def _subsample_note(subsample: dict[str, Any] | None) -> str:
    """What the rows count is a subsample of, and why."""
    if not subsample:
        return ""
    if "of" in subsample:
        return f" (a stratified subsample of {subsample['of']}: {subsample.get('reason', '')})"
    return f" (a stratified subsample: max_rows={subsample.get('max_rows')})"


def _provenance(view: DatasetView) -> str:
    best = view.results[view.entries[0].pipeline] if view.entries else None
    if best is None:
        return ""
    p, d = best.provenance, best.dataset
    commits = sorted({r.provenance.git_commit or "unknown" for r in view.results.values()})
    hardware = ", ".join(f"{k}={v}" for k, v in p.hardware.items())
    items = {
        "git commit(s)": ", ".join(commits),
        "mmbench": p.mmbench_version,
        "python": p.python,
        "packages": ", ".join(f"{k} {v}" for k, v in sorted(p.packages.items())),
        "data": f"{d.source}" + (f" @ {d.revision}" if d.revision else ""),
        "data fingerprint": d.fingerprint,
        "rows × classes": f"{d.n_rows} × {d.n_classes}" + _subsample_note(d.subsample),
        "hardware": hardware,
        "created": ", ".join(sorted({r.provenance.created_at for r in view.results.values()})),
    }
    for key, value in (d.card or {}).items():  # the suite's dataset card
        if value:
            items[f"dataset {key}"] = value
    cells = "".join(f"<dt>{escape(k)}</dt><dd>{escape(str(v))}</dd>" for k, v in items.items())
    return f'<h3>Provenance</h3><dl class="provenance">{cells}</dl>'
