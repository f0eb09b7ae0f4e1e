"""FSDD with and without speaker grouping: what plain stratified folds overstate.

The Free Spoken Digit Dataset has 6 speakers; plain stratified folds put every speaker's
recordings on both sides of each split, so a model is scored on voices it trained on. With
``protocol.group_column: speaker`` each fold holds out whole speakers (stratified group k-fold).
Both runs use the suite's default pipeline (one candidate, no search: the comparison is of the
protocol, not of a search's luck), the same seed and the same rows, from a mirror (offline).

    python benchmarks/grouping.py [--mirror ../shared/mirror]
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

from _common import REPO, emit, parse_args, table

SUITE = REPO / "suites" / "fsdd.yaml"


def run(group: str | None, results: Path) -> dict:
    from mmbench.run import RunOptions, run_suite
    from mmbench.suite import load_suite, parse_suite

    suite = load_suite(SUITE)
    raw = suite.model_dump(mode="json", exclude={"path"}, exclude_none=True)
    spec = raw["datasets"][0]
    spec["budget"] = {"trials": 1}
    spec["protocol"] = {**spec["protocol"], "group_column": group}
    suite = parse_suite(raw, path=SUITE)
    options = RunOptions(results_dir=results, track=False, ablate=False, progress=False)
    [outcome] = run_suite(suite, options)
    if outcome.error:
        raise SystemExit(f"{group or 'plain'}: {outcome.error}")
    r = outcome.result
    return {
        "f1": r.metrics["f1_macro"],
        "acc": r.metrics["accuracy"],
        "groups": r.dataset.groups,
        "test": r.test_metrics or {},
        "pipeline": f"{r.pipeline.encoders['audio'].name} + {r.pipeline.fusion.name}",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mirror", default=str(REPO.parent / "shared" / "mirror"))
    args = parse_args(parser)
    os.environ["MMBENCH_MIRROR"] = str(Path(args.mirror).resolve())
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for label, group in (("plain stratified", None), ("grouped by speaker", "speaker")):
            m = run(group, Path(tmp) / label.replace(" ", "-"))
            print(label, m, flush=True)
            rows.append(
                [label, m["groups"] or "—", m["pipeline"],
                 f"{m['f1']['mean']:.3f} ± {m['f1']['std']:.3f}",
                 f"{m['acc']['mean']:.3f} ± {m['acc']['std']:.3f}",
                 f"{m['test'].get('f1_macro', float('nan')):.3f}"]
            )  # fmt: skip
    body = table(
        ["5-fold CV", "groups", "pipeline", "CV macro-F1", "CV accuracy", "held-out macro-F1"],
        rows,
    )
    body += (
        "\n\nThe held-out split (takes 0-4) has the same six speakers as training, so it is "
        "speaker-seen like the plain folds."
    )
    emit("grouping", "FSDD: plain vs speaker-grouped cross-validation", body)


if __name__ == "__main__":
    main()
