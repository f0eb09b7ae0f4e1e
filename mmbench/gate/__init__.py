"""The CI regression gate: rerun a suite's fixed pipelines and compare them row by row with a
committed baseline (``mmbench regress``).

- :mod:`.regress` — :func:`regress`: the rule (paired test, Holm, size, fit time) and the run.
- :mod:`.rerun` — each dataset's fixed pipeline cross-validated once, rows and timing kept.
- :mod:`.verdict` — a dataset's :class:`Verdict` and the suite's :class:`RegressionReport`.
- :mod:`.baseline` — the versioned baseline file of row-level predictions.
- :mod:`.paired` — the paired bootstrap over rows within folds, and Holm's correction.
- :mod:`.speed` — the reference computation fit times are divided by, across machines.
"""

from __future__ import annotations

from mmbench.gate.baseline import BASELINE_SCHEMA_VERSION, Baseline, read_baseline, write_baseline
from mmbench.gate.regress import baseline_from_reruns, compare, regress
from mmbench.gate.rerun import Rerun
from mmbench.gate.verdict import RULE, RegressionReport, Verdict

__all__ = [
    "BASELINE_SCHEMA_VERSION",
    "RULE",
    "Baseline",
    "RegressionReport",
    "Rerun",
    "Verdict",
    "baseline_from_reruns",
    "compare",
    "read_baseline",
    "regress",
    "write_baseline",
]
