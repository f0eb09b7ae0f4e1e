"""Results: the typed result files of a run, where they live, and what their pipelines are.

- :mod:`.schema` — :class:`RunResult`, :class:`AblationReport` and their parts (pydantic, with
  schema versions); files older than the current version still read.
- :mod:`.provenance` — package versions, commit and hardware written into every file.
- :mod:`.layout` — :class:`ResultLayout`: where every file of a suite lives; reading, writing,
  :func:`attach_tracking`, the results folder's run lock.
- :mod:`.build` — a cross-validation result built into a :class:`RunResult`.
- :mod:`.identity` — what a result's pipeline is, in words, with caveats.
"""

from __future__ import annotations

from mmbench.results.layout import (
    ResultLayout,
    attach_tracking,
    hold_results,
    load_results,
    read_ablation,
    read_result,
    write_result,
)
from mmbench.results.provenance import (
    PACKAGES,
    SCORE_PACKAGES,
    package_versions,
    provenance,
)
from mmbench.results.schema import (
    ABLATION_READABLE_VERSIONS,
    ABLATION_SCHEMA_VERSION,
    READABLE_VERSIONS,
    SCHEMA_VERSION,
    AblationKind,
    AblationReport,
    AblationRow,
    AblationSummary,
    BudgetSummary,
    ClassMetrics,
    Curve,
    DatasetInfo,
    DecisionRecord,
    Diagnostics,
    EnsembleMember,
    EnsembleSummary,
    FoldRecord,
    MeanStd,
    Provenance,
    RunResult,
    SearchSummary,
    TrackingIds,
    TrialPoint,
    TrialStoreReads,
)

__all__ = [
    "ABLATION_READABLE_VERSIONS",
    "ABLATION_SCHEMA_VERSION",
    "PACKAGES",
    "READABLE_VERSIONS",
    "SCHEMA_VERSION",
    "SCORE_PACKAGES",
    "AblationKind",
    "AblationReport",
    "AblationRow",
    "AblationSummary",
    "BudgetSummary",
    "ClassMetrics",
    "Curve",
    "DatasetInfo",
    "DecisionRecord",
    "Diagnostics",
    "EnsembleMember",
    "EnsembleSummary",
    "FoldRecord",
    "MeanStd",
    "Provenance",
    "ResultLayout",
    "RunResult",
    "SearchSummary",
    "TrackingIds",
    "TrialPoint",
    "TrialStoreReads",
    "attach_tracking",
    "hold_results",
    "load_results",
    "package_versions",
    "provenance",
    "read_ablation",
    "read_result",
    "write_result",
]
