"""The report's charts: matplotlib figures rendered as inline SVG.

matplotlib is already a dependency and writes SVG with no network and no JavaScript, so the
page stays one self-contained file that any browser opens offline. Text stays text
(``svg.fonttype: none``: searchable, small) and ids are salted deterministically, so the same
results give the same page.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from typing import Any

from mmbench.results import Diagnostics, TrialPoint

STATE_STYLE = {
    "complete": ("o", "#4c72b0"),
    "pruned": ("x", "#dd8452"),
    "fail": ("v", "#c44e52"),
    "declined": ("|", "#8c8c8c"),
}
"""Marker and colour per trial state; a declined trial (no fold ran, no value) is a tick on
the bottom edge of the plot."""


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def to_svg(fig: Any) -> str:
    """The figure as an ``<svg>`` element (no XML prolog, no timestamp); closes the figure."""
    import matplotlib

    plt = _pyplot()
    buf = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "mmbench"}):
        fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None})
    plt.close(fig)
    text = buf.getvalue()
    return text[text.index("<svg") :]


def figure(svg: str, caption: str, chart: str) -> str:
    """A chart and its caption, named by ``data-chart`` (what tests and readers look for)."""
    from html import escape

    return (
        f'<figure class="chart" data-chart="{chart}">{svg}'
        f"<figcaption>{escape(caption)}</figcaption></figure>"
    )


def attribution_svg(
    values: Mapping[str, Mapping[str, float]], key: str, err: str, xlabel: str
) -> str:
    """Horizontal bars ``values[m][key]`` ± ``values[m][err]`` per modality, largest on top."""
    plt = _pyplot()
    names = sorted(values, key=lambda m: values[m].get(key, 0.0))
    means = [values[m].get(key, float("nan")) for m in names]
    errs = [values[m].get(err, 0.0) for m in names]
    fig, ax = plt.subplots(figsize=(5.2, 0.9 + 0.45 * len(names)))
    colors = ["#4c72b0" if v >= 0 else "#c44e52" for v in means]
    ax.barh(names, means, xerr=errs, color=colors, capsize=3, ecolor="#333333")
    ax.axvline(0, color="#555555", linewidth=0.8)
    ax.set_xlabel(xlabel)
    ax.grid(axis="x", alpha=0.3)
    return to_svg(fig)


def confusion_svg(diag: Diagnostics, normalized: bool = False) -> str:
    """The out-of-fold confusion matrix with counts in the cells; ``normalized``: coloured and
    labelled by each true class's share (its recall on the diagonal), counts in brackets."""
    import numpy as np

    plt = _pyplot()
    matrix = np.asarray(diag.confusion)
    shares = np.asarray(diag.normalized_confusion())
    n = len(diag.classes)
    fig, ax = plt.subplots(figsize=(1.6 + 0.9 * n, 1.3 + 0.7 * n))
    ax.imshow(shares if normalized else matrix, cmap="Blues", vmin=0)
    ticks = list(range(n))
    ax.set_xticks(ticks, diag.classes, rotation=45, ha="right")
    ax.set_yticks(ticks, diag.classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    shown = shares if normalized else matrix
    top = shown.max() or 1
    for i in range(n):
        for j in range(n):
            color = "white" if shown[i, j] > top / 2 else "black"
            text = f"{shares[i, j]:.2f}\n({matrix[i, j]})" if normalized else str(matrix[i, j])
            ax.text(j, i, text, ha="center", va="center", color=color, fontsize=9)
    return to_svg(fig)


def curves_svg(diag: Diagnostics) -> str:
    """One-vs-rest ROC and precision-recall curves, one line per class."""
    plt = _pyplot()
    fig, (roc, pr) = plt.subplots(1, 2, figsize=(9, 3.8))
    for name, curve in diag.roc.items():
        roc.plot(curve.x, curve.y, label=f"{name} (AUC {curve.area:.3f})")
    for name, curve in diag.pr.items():
        pr.plot(curve.x, curve.y, label=f"{name} (AP {curve.area:.3f})")
    roc.plot([0, 1], [0, 1], linestyle=":", color="#888888")
    roc.set(xlabel="false-positive rate", ylabel="true-positive rate", title="ROC")
    pr.set(xlabel="recall", ylabel="precision", title="precision-recall")
    for ax in (roc, pr):
        ax.legend(fontsize=8, loc="lower right" if ax is roc else "lower left")
        ax.grid(alpha=0.3)
    return to_svg(fig)


def history_svg(points: Sequence[TrialPoint], higher_is_better: bool, metric: str) -> str:
    """Each trial's value by state, and the best value so far as a step line."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 3.4))
    from matplotlib.transforms import blended_transform_factory

    bottom = blended_transform_factory(ax.transData, ax.transAxes)  # y 0: the plot's floor
    for state, (marker, color) in STATE_STYLE.items():
        if state == "declined":  # no fold ran, so no value: a tick on the bottom edge
            mine = [p for p in points if p.state == state]
            if mine:
                xs, ys = [p.number for p in mine], [0.04] * len(mine)
                label = f"declined ({len(mine)}), no fold ran"
                ax.plot(xs, ys, marker, color=color, label=label, ms=12, mew=2, transform=bottom)
            continue
        scored = [(p.number, p.value) for p in points if p.state == state and p.value is not None]
        if scored:
            xs, values = [n for n, _ in scored], [v for _, v in scored]
            ax.scatter(xs, values, marker=marker, color=color, label=f"{state} ({len(scored)})")
    best, xs, ys = None, [], []
    for p in points:
        better = p.value is not None and (
            best is None or (p.value > best if higher_is_better else p.value < best)
        )
        if p.state == "complete" and better:
            best = p.value
        if best is not None:
            xs.append(p.number)
            ys.append(best)
    if xs:
        ax.step(xs, ys, where="post", color="#55a868", label="best so far")
    from matplotlib.ticker import MaxNLocator

    ax.set(xlabel="trial", ylabel=metric)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return to_svg(fig)


def critical_difference_svg(result: Any) -> str:
    """autorank's critical-difference diagram (Nemenyi) or its confidence-interval plot
    (Wilcoxon–Holm, t-test) of a ``RankResult``."""
    import contextlib
    import warnings

    from autorank import plot_stats

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 2.2))
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        plot_stats(result, allow_insignificant=True, ax=ax)
    return to_svg(fig)


def wilcoxon_holm_svg(mean_ranks: Mapping[str, float], pvalues: Any) -> str:
    """scikit-posthocs' critical-difference diagram: mean ranks, bars joining the pipelines
    whose Holm-adjusted Wilcoxon p-value is not below 0.05."""
    import scikit_posthocs as sp

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 0.9 + 0.3 * len(mean_ranks)))
    sp.critical_difference_diagram(dict(mean_ranks), pvalues, ax=ax)
    return to_svg(fig)


def pareto_svg(points: Sequence[tuple[str, float, float, bool]]) -> str:
    """Elo against median fit seconds (log scale), one labelled point per pipeline; the Pareto
    front (``(name, fit_s, elo, on_front)``) joined and filled."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    front = sorted((p for p in points if p[3]), key=lambda p: p[1])
    if front:
        ax.step([p[1] for p in front], [p[2] for p in front], where="post", color="#55a868", lw=1)
    for name, fit, elo, on in points:
        ax.scatter([fit], [elo], color="#55a868" if on else "#8c8c8c", zorder=3)
        ax.annotate(name, (fit, elo), textcoords="offset points", xytext=(4, 4), fontsize=8)
    ax.set_xscale("log")
    ax.set_xlabel("median fit seconds (log)")
    ax.set_ylabel("Elo")
    ax.grid(alpha=0.3)
    return to_svg(fig)
