"""``mmbench run --workers N``: N local worker processes on each dataset's study, then one
finalize.

The parent process prepares what workers would otherwise race for (Optuna's tables, the
MLflow store and experiment, and the name of each dataset's study: the latest one with
``--resume``, else a new ``#k``), starts N ``mmbench worker`` processes told which study to
join, waits for them, and finalizes every study once (refit, ensemble, held-out scores, result
files), from every trial the workers ran. Each worker's output goes to a log file under
``<results>/<suite>/runs/workers/``. Workers on other machines join the same way with
``mmbench worker SUITE --storage URL``; see the README for that recipe.
"""

from __future__ import annotations

import contextlib
import dataclasses
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from mmbench.errors import MMBenchError
from mmbench.results import ResultLayout
from mmbench.run.runner import DatasetOutcome, Reporter, RunOptions, run_suite
from mmbench.suite import DatasetSpec, Suite


@dataclasses.dataclass(frozen=True)
class WorkerPlan:
    """What every worker of one ``run --workers`` shares."""

    storage: str
    studies: dict[str, str]
    """Dataset → the study its workers join."""
    log_dir: Path
    trials: int = 0
    """The trial budget of all the studies together: the parent's progress bar counts to it."""


@dataclasses.dataclass(frozen=True)
class Cluster:
    """Where workers run: local processes (``address`` None), or tasks on a Dask cluster —
    ``"local"`` starts a ``LocalCluster`` on this machine, else the scheduler's address
    (``tcp://host:8786``). ``threads``: CPU threads per worker (OMP/MKL/OpenBLAS and torch);
    ``gpus``: GPUs per worker, as the Dask resource ``GPU`` (start GPU workers with
    ``dask worker ... --resources GPU=1``)."""

    address: str | None = None
    threads: int | None = None
    gpus: int = 0


def run_with_workers(
    suite_path: Path,
    suite: Suite,
    options: RunOptions,
    n: int,
    reporter: Reporter,
    cluster: Cluster | None = None,
) -> list[DatasetOutcome]:
    """Search every dataset with ``n`` workers, then finalize in this process, which holds
    the results folder's run lock throughout (:func:`~mmbench.results.hold_results`)."""
    with ResultLayout(options.results_dir, suite.name).exclusive():
        return _search_and_finalize(suite_path, suite, options, n, reporter, cluster)


def _search_and_finalize(
    suite_path: Path,
    suite: Suite,
    options: RunOptions,
    n: int,
    reporter: Reporter,
    cluster: Cluster | None,
) -> list[DatasetOutcome]:
    plan = prepare(suite, options)
    cluster = cluster or Cluster()
    if plan.studies:
        commands = [worker_command(suite_path, options, plan, i) for i in range(n)]
        launch = _run_workers if cluster.address is None else _run_on_dask
        codes = launch(commands, plan, reporter, cluster)
        failed = [i for i, code in enumerate(codes) if code not in (0, 1)]
        if failed:
            reporter.error(
                f"workers {failed} exited with an error; see their logs in {plan.log_dir}"
            )
    final = dataclasses.replace(
        options, storage=plan.storage, studies=plan.studies, finalize="only", resume=True
    )
    return run_suite(suite, final, reporter)


def prepare(suite: Suite, options: RunOptions) -> WorkerPlan:
    """Create the shared storage's tables and MLflow's store once, and name each study."""
    from mmbench.search.settings import SearchSettings
    from mmbench.search.storage import make_storage
    from mmbench.search.study import study_name

    layout = ResultLayout(options.results_dir, suite.name)
    url = options.storage or layout.study_storage()
    storage = make_storage(url, heartbeat_s=30)
    studies, trials = {}, 0
    for spec in _selected(suite, options):
        if (options.trials or spec.budget.trials) <= 1:
            continue  # a single candidate: the finalize step evaluates it
        base = SearchSettings(study_name=f"{suite.name}.{spec.name}", resume=options.resume)
        studies[spec.name] = study_name(storage, base)
        trials += options.trials or spec.budget.trials
    if options.track and studies:
        _prepare_tracking(suite, options)
    log_dir = layout.root / "runs" / "workers"
    log_dir.mkdir(parents=True, exist_ok=True)
    return WorkerPlan(storage=url, studies=studies, log_dir=log_dir, trials=trials)


def _selected(suite: Suite, options: RunOptions) -> list[DatasetSpec]:
    names = options.datasets
    return [suite.dataset(n) for n in names] if names else list(suite.datasets)


def _prepare_tracking(suite: Suite, options: RunOptions) -> None:
    """Create the MLflow store and experiment before workers race to (a failure is left to
    the workers, which run untracked with one warning)."""
    from mmbench.tracking.client import Tracker

    with contextlib.suppress(MMBenchError):
        Tracker(options.tracking_uri, f"mmbench/{suite.name}")


def worker_command(
    suite_path: Path, options: RunOptions, plan: WorkerPlan, index: int
) -> list[str]:
    """The ``mmbench worker`` command line of worker ``index``: the parent's options
    (:func:`~mmbench.run.context.option_args`) on the plan's storage and studies."""
    from mmbench.run.context import option_args

    cmd = [sys.executable, "-m", "mmbench.cli", "worker", str(suite_path)]  # its log: progress
    cmd += option_args(dataclasses.replace(options, storage=plan.storage))
    cmd += ["--worker-index", str(index), "--finalize", "never"]
    for dataset, study in plan.studies.items():
        cmd += ["--dataset", dataset, "--study", f"{dataset}={study}"]
    return cmd


def worker_env(cluster: Cluster) -> dict[str, str]:
    """Environment overrides that give a worker its share of the machine."""
    env = {}
    if cluster.threads is not None:
        for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
            env[name] = str(cluster.threads)
    return env


def _run_workers(
    commands: list[list[str]], plan: WorkerPlan, reporter: Reporter, cluster: Cluster
) -> list[int]:
    """Start a local process per worker command and wait for all of them; their exit codes."""
    import os

    procs = []
    env = {**os.environ, **worker_env(cluster)}
    for i, cmd in enumerate(commands):
        log = (plan.log_dir / f"worker-{i}.log").open("wb")
        procs.append((subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env), log))
    n = len(commands)
    reporter.info(f"{n} workers searching {', '.join(plan.studies)}; logs in {plan.log_dir}")
    start = time.perf_counter()
    try:
        _follow(plan, reporter, lambda: all(p.poll() is not None for p, _ in procs))
        codes = [p.wait() for p, _ in procs]
    finally:
        for p, log in procs:
            if p.poll() is None:
                p.terminate()
            log.close()
    reporter.info(f"workers done in {time.perf_counter() - start:.0f} s (exit codes {codes})")
    return codes


POLL_S = 1.0
"""How often the parent reads the studies for its progress bar while workers search."""


def _follow(plan: WorkerPlan, reporter: Reporter, finished: Callable[[], bool]) -> None:
    """The workers' progress as the parent's bar, until ``finished()``: trials that ended in
    the studies, read from the storage (the workers share nothing else). A read that fails
    (a busy SQLite file, a dropped connection) is said once and tried again at the next poll:
    the bar never ends the workers' search."""
    from mmbench.search.storage import make_storage

    storage: Any = None
    names = ", ".join(plan.studies)
    with reporter.task(f"{names}: search ({plan.trials} trials)", plan.trials) as advance:
        shown, last, said = 0, False, False
        while not last:
            last = finished()  # then one more read: the trials that ended meanwhile
            try:
                storage = storage or make_storage(plan.storage, heartbeat_s=30)
                done = _ended_trials(storage, plan.studies.values())
            except Exception as exc:  # the bar only: the workers and their study are unaffected
                if not said:
                    reporter.warning(f"cannot read the workers' progress ({exc}); they go on")
                said, done = True, shown
            for _ in range(done - shown):
                advance("finished by the workers")
            shown = max(shown, done)
            time.sleep(0 if last else POLL_S)


def _ended_trials(storage: Any, studies: Iterable[str]) -> int:
    """Trials of ``studies`` that ended and used budget (a study not created yet has none)."""
    from mmbench.search.coordination import counts

    done = 0
    for name in studies:
        try:
            study_id = storage.get_study_id_from_name(name)
        except KeyError:
            continue
        trials = storage.get_all_trials(study_id, deepcopy=False)
        done += sum(counts(t) and t.state.is_finished() for t in trials)
    return done


def _run_on_dask(
    commands: list[list[str]], plan: WorkerPlan, reporter: Reporter, cluster: Cluster
) -> list[int]:
    """Submit a task per worker command to a Dask cluster and wait for them; their exit codes.

    Each task runs ``mmbench worker`` as a subprocess of its Dask worker (so a crash or a
    kill costs that task, not the Dask worker), with the cluster's thread and GPU share; its
    output comes back and is written to ``worker-<i>.log`` here. Paths (suite, results,
    cache) and the storage URL must mean the same on the cluster's hosts: use a PostgreSQL
    ``--storage`` for several hosts."""
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError:
        raise MMBenchError(
            "--cluster needs Dask distributed: pip install 'mmbench[cluster]'"
        ) from None
    local, n = None, len(commands)
    if cluster.address == "local":
        local = LocalCluster(
            n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None,
            resources={"GPU": cluster.gpus} if cluster.gpus else None,
        )  # fmt: skip
    start = time.perf_counter()
    try:
        with Client(local if local is not None else cluster.address) as client:
            resources = {"GPU": cluster.gpus} if cluster.gpus else None
            futures = [
                client.submit(
                    run_worker_task,
                    cmd,
                    worker_env(cluster),
                    key=f"mmbench-worker-{i}-{time.time_ns()}",
                    resources=resources,
                    pure=False,
                )
                for i, cmd in enumerate(commands)
            ]
            where = cluster.address if local is None else "a local Dask cluster"
            reporter.info(f"{n} workers on {where} searching {', '.join(plan.studies)}")
            done = client.gather(futures)
    finally:
        if local is not None:
            local.close()
    codes = []
    for i, (code, output) in enumerate(done):
        (plan.log_dir / f"worker-{i}.log").write_bytes(output)
        codes.append(code)
    reporter.info(f"workers done in {time.perf_counter() - start:.0f} s (exit codes {codes})")
    return codes


def run_worker_task(cmd: list[str], env: dict[str, str]) -> tuple[int, bytes]:
    """A Dask task: one ``mmbench worker`` process with this host's Python; its exit code and
    output."""
    import os

    cmd = [sys.executable, *cmd[1:]]  # the interpreter of the host the task landed on
    proc = subprocess.run(cmd, env={**os.environ, **env}, capture_output=True, check=False)
    return proc.returncode, proc.stdout + proc.stderr
