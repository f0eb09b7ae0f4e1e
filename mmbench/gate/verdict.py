"""The gate's decision, one dataset at a time, and the table it prints.

A :class:`Verdict` holds a dataset's score verdict (the paired test, Holm-adjusted) and, beside
it, its fit-time verdict; a :class:`RegressionReport` holds a suite's verdicts and renders them
as Markdown (the CI job summary) or a rich table (the terminal), with :data:`RULE` under it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

from mmbench.gate.paired import PairedTest

Status = Literal["pass", "improved", "regression", "error", "new"]
TimeStatus = Literal["ok", "slower", "faster", ""]


@dataclass
class Verdict:
    """The gate's decision for one dataset: the score verdict and, beside it, the time verdict."""

    dataset: str
    status: Status
    metric: str = ""
    baseline: float = math.nan
    current: float = math.nan
    test: PairedTest | None = None
    p_holm: float = math.nan
    time_growth: float = math.nan
    """(fit / reference seconds now) ÷ (the same ratio in the baseline); 1.0 = unchanged."""
    time_status: TimeStatus = ""
    message: str = ""

    @property
    def delta(self) -> float:
        return math.nan if self.test is None else self.test.delta

    @property
    def failed(self) -> bool:
        return self.status == "regression" or self.time_status == "slower"


@dataclass
class RegressionReport:
    suite: str
    verdicts: list[Verdict]
    notes: list[str] = field(default_factory=list)

    @property
    def regressions(self) -> list[Verdict]:
        return [v for v in self.verdicts if v.failed]

    @property
    def errors(self) -> list[Verdict]:
        return [v for v in self.verdicts if v.status == "error"]

    @property
    def ok(self) -> bool:
        return not self.regressions and not self.errors

    @property
    def exit_code(self) -> int:
        return 2 if self.errors else 1 if self.regressions else 0

    def rows(self) -> list[list[str]]:
        return [_cells(v) for v in self.verdicts]

    def to_markdown(self) -> str:
        lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
        lines += ["| " + " | ".join(c.replace("|", "\\|") for c in r) + " |" for r in self.rows()]
        return "\n".join([*lines, "", *self.notes]).rstrip() + "\n"

    def to_rich(self) -> Any:
        from rich.table import Table

        table = Table(title=f"mmbench regress: {self.suite}")
        for col in HEADER:
            table.add_column(col)
        colour = {"regression": "red", "error": "red", "improved": "green", "new": "yellow"}
        for v, row in zip(self.verdicts, self.rows(), strict=True):
            table.add_row(*row, style="red" if v.failed else colour.get(v.status))
        return table


HEADER = [
    "dataset",
    "metric",
    "baseline",
    "current",
    "Δ [95% CI]",
    "p (Holm)",
    "verdict",
    "fit time",
]
RULE = (
    "rule: FAIL when Holm-adjusted one-sided paired-bootstrap p(drop) <= {alpha} and drop >= "
    "{min_effect}; "
    "fit time FAILS when (fit s / reference s) grows more than x{time_tolerance}"
)


def _cells(v: Verdict) -> list[str]:
    def num(x: float, fmt: str = ".4f") -> str:
        return "—" if not math.isfinite(x) else format(x, fmt)

    delta = "—"
    if v.test is not None:
        t = v.test
        delta = f"{t.delta:+.4f} [{t.low:+.4f}, {t.high:+.4f}]" + _left_out(t)
    verdict = v.status.upper() if v.status in ("regression", "error") else v.status
    timing = "—"
    if math.isfinite(v.time_growth):
        word = v.time_status.upper() if v.time_status == "slower" else v.time_status
        timing = f"x{v.time_growth:.2f} {word}"
    return [
        v.dataset,
        v.metric,
        num(v.baseline),
        num(v.current),
        delta,
        num(v.p_holm, ".3g"),
        f"{verdict}: {v.message}" if v.message else verdict,
        timing,
    ]


def _left_out(t: PairedTest) -> str:
    """What the paired test left out where the metric is undefined (``""`` when nothing)."""
    from mmbench.evaluation import undefined_note

    parts = [undefined_note({"undefined": t.undefined_folds}).strip(" ()")]
    if t.resamples_partial:
        parts.append(f"{t.resamples_partial} resamples on fewer folds")
    if t.resamples_dropped:
        parts.append(f"{t.resamples_dropped} of {t.resamples} resamples dropped")
    parts = [p for p in parts if p]
    return f" ({'; '.join(parts)})" if parts else ""
