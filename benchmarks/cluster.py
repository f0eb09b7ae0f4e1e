"""Trials per minute with 1, 2 and 4 workers launched as Dask tasks (``run --cluster local``).

Same measure as ``benchmarks/workers.py`` (the study's own span, first trial start to last trial
end, so start-up and the final model are not counted), with the workers submitted to a Dask
``LocalCluster`` of one-thread workers; the command's wall time shows the launcher's overhead.
On a 2-core machine more than 2 workers can only share the cores: the table says what the
launcher costs, not how a cluster scales.

    python benchmarks/cluster.py [--trials 24]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from _common import emit, table
from workers import SUITE, measure


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--trials", type=int, default=24)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for workers in (1, 2, 4):
            results = Path(tmp) / f"dask-{workers}"
            results.mkdir()
            extra = ("--cluster", "local", "--worker-threads", "1")
            storage = f"sqlite:///{results / 'optuna.db'}"
            m = measure(SUITE, storage, workers, args.trials, results, extra)
            print(workers, m, flush=True)
            rows.append(
                [
                    workers,
                    m["trials"],
                    f"{m['span']:.1f}",
                    f"{m['per_min']:.1f}",
                    f"{m['wall']:.1f}",
                ]
            )
    body = table(["Dask workers", "trials", "search span s", "trials/min", "command wall s"], rows)
    print(body)
    emit("cluster", "Dask launcher: trials per minute on one study", body)


if __name__ == "__main__":
    main()
