from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from mmbench.suite import Suite, parse_suite

if TYPE_CHECKING:
    from mmbench.results import AblationReport, RunResult

pytest_plugins = ["pytester", "skip_policy"]


@pytest.fixture(autouse=True)
def _isolated_caches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep feature caches, HF caches and MLflow stores of tests inside tmp_path."""
    monkeypatch.setenv("MMBENCH_CACHE_DIR", str(tmp_path / "feature-cache"))
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "hf-datasets"))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="module")
def one_torch_thread() -> Iterator[None]:
    """Toy models: a thread pool only adds overhead, and stalls when other jobs share the CPU."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny_suite(
    tmp_path: Path,
    *,
    modalities: dict[str, Any] | None = None,
    n_rows: int = 150,
    folds: int = 3,
    trials: int = 1,
    pipeline: dict[str, Any] | None = None,
    search: dict[str, Any] | None = None,
    signal: dict[str, float] | None = None,
    protocol: dict[str, Any] | None = None,
) -> Suite:
    """A one-dataset suite on small generated data with fast, cheap encoders; ``protocol``:
    settings beside ``folds``."""
    options: dict[str, Any] = {"n_rows": n_rows, "n_classes": 3, "seed": 1}
    if signal:
        options["signal"] = signal
    dataset: dict[str, Any] = {
        "name": "tiny",
        "source": {"kind": "synthetic", "options": options},
        "target": "label",
        "modalities": modalities
        or {"text": "text", "tabular": ["num_0", "num_1", "num_2", "num_3", "cat_0", "cat_1"]},
        "protocol": {"folds": folds, **(protocol or {})},
        "budget": {"trials": trials},
    }
    if pipeline is not None:
        dataset["pipeline"] = pipeline
    if search is not None:
        dataset["search"] = cheap_search(search)
    suite = parse_suite({"name": "tiny-suite", "seed": 0, "datasets": [dataset]})
    suite.path = tmp_path / "suite.yaml"
    return suite


FAST_TRAINING = {"epochs": 6, "batch_size": 32, "patience": 3}

CHEAP_ENCODERS = {
    "image": "timm/test_resnet",
    "text": "tfidf",
    "tabular": "tabular",
    "audio": "logmel",
}
"""One cheap encoder per modality: the default search space also tries pretrained ones."""


def cheap_search(search: dict[str, Any]) -> dict[str, Any]:
    """A search section that keeps its own encoders, or else uses :data:`CHEAP_ENCODERS`."""
    return {"encoders": CHEAP_ENCODERS, "encoder_options": {}, **search}


def make_result(
    dataset: str = "d",
    pipeline: str = "default",
    mean: float = 0.5,
    *,
    scores: Sequence[float] | None = None,
    std: float = 0.01,
    metric: str = "f1_macro",
    chance: float = 0.2,
    test: float | None = None,
    suite: str = "toy",
    fingerprint: str = "f" * 16,
    keys: list[str] | None = None,
    seed: int = 0,
    lr: float = 0.003,
    created: str = "2025-01-01T00:00:00+00:00",
    commit: str | None = "a" * 40,
) -> RunResult:
    """A hand-made result of ``metric``: two folds at ``mean`` summarized as ``mean ± std``, or
    the given fold ``scores`` with their own mean and sample std (what the regression gate reads).

    Results of one test differ only where the caller says, e.g. the pipeline's learning rate.
    """
    import numpy as np

    from mmbench.results import DatasetInfo, FoldRecord, Provenance, RunResult

    if scores is None:
        scores = [mean, mean]
    else:
        mean = float(np.mean(scores))
        std = float(np.std(scores, ddof=1)) if len(scores) > 1 else 0.0
    keys = keys or [f"r0f{i}" for i in range(len(scores))]
    return RunResult(
        suite=suite,
        dataset=DatasetInfo(
            name=dataset,
            source="synthetic",
            fingerprint=fingerprint,
            n_rows=100,
            n_classes=3,
            classes=["a", "b", "c"],
            modalities=["image", "text"],
        ),
        pipeline_name=pipeline,
        pipeline={"fusion": {"name": "early"}, "training": {"lr": lr}},
        seed=seed,
        protocol={"folds": max(2, len(scores)), "repeats": 1, "primary_metric": metric},
        metrics={metric: {"mean": mean, "std": std}},
        chance={metric: chance},
        folds=[
            FoldRecord(key=k, metrics={metric: s}, seconds=1.0)
            for k, s in zip(keys, scores, strict=True)
        ],
        test_metrics=None if test is None else {metric: test},
        provenance=Provenance(
            mmbench_version="0.1.0",
            git_commit=commit,
            python="3.11",
            packages={},
            hardware={},
            created_at=created,
        ),
    )


def crafted_report(metric: str = "f1_macro") -> AblationReport:
    """An ablation of two modalities over two folds; fold scores are chosen by hand, not trained."""
    import numpy as np

    from mmbench.ablation import build_report, plan_subsets, row_from_cv
    from mmbench.config import PipelineSpec
    from mmbench.evaluation import METRICS, Fold
    from mmbench.pipeline import CVResult, FoldResult

    spec = PipelineSpec(encoders={"image": "timm/test_resnet", "text": "tfidf"})
    scores = {("image", "text"): [0.8, 0.7], ("image",): [0.7, 0.7], ("text",): [0.4, 0.3]}
    folds = [Fold(0, k, np.arange(4), np.arange(4, 6), seed=k) for k in range(2)]

    def cv(subset: tuple[str, ...]) -> CVResult:
        results = [
            FoldResult(key=f.key, metrics={metric: s})
            for f, s in zip(folds, scores[subset], strict=True)
        ]
        if len(subset) == 2:
            for r, (img, txt) in zip(results, [(0.3, 0.6), (0.3, 0.5)], strict=True):
                r.missing_metrics = {"image": {metric: img}, "text": {metric: txt}}
        return CVResult(spec, list(subset), results, np.zeros((1, 6, 3)), {"total": 1.0}, {})

    rows = [row_from_cv(s, k, cv(s)) for s, k in plan_subsets(["image", "text"], 5)]
    return build_report(
        "toy",
        spec,
        METRICS.get(metric),
        ["image", "text"],
        folds,
        [0.2, 0.2],
        rows,
        cv(("image", "text")),
    )


POSTGRES_BIN_GLOBS = ("/usr/lib/postgresql/*/bin", "/usr/pgsql-*/bin")
"""Where packages put the server binaries off PATH: Debian and Ubuntu (``postgresql-<major>``),
and the PostgreSQL project's RPMs."""


def postgres_bindir(globs: Sequence[str] = POSTGRES_BIN_GLOBS) -> Path | None:
    """The folder holding ``initdb`` and ``pg_ctl``: on PATH, else the newest major version
    under ``globs`` (Debian's package puts them only in ``/usr/lib/postgresql/<major>/bin``)."""
    import glob
    import re
    import shutil

    on_path = shutil.which("initdb")
    if on_path and shutil.which("pg_ctl", path=str(Path(on_path).parent)):
        return Path(on_path).parent
    found = [Path(d) for pattern in globs for d in glob.glob(pattern)]
    found = [d for d in found if (d / "initdb").is_file() and (d / "pg_ctl").is_file()]

    def version(folder: Path) -> tuple[int, ...]:  # "15", "9.6" or "pgsql-16" above bin/
        return tuple(int(n) for n in re.findall(r"\d+", folder.parent.name))

    return max(found, key=version, default=None)


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A throwaway PostgreSQL cluster on 127.0.0.1 (skipped where the server is not installed).

    As root it runs as the ``postgres`` user (``initdb`` refuses root), which the server's
    package creates."""
    import os
    import pwd
    import shutil
    import subprocess
    import tempfile

    pytest.importorskip("psycopg2")
    bindir = postgres_bindir()
    if bindir is None:
        pytest.skip(
            "PostgreSQL server binaries (initdb, pg_ctl) not installed: apt-get install postgresql"
        )
    as_root = os.geteuid() == 0
    if as_root and not shutil.which("runuser"):
        pytest.skip("running as root without runuser: cannot start PostgreSQL")
    if as_root:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and no 'postgres' user to start PostgreSQL as")
    prefix = ["runuser", "-u", "postgres", "--"] if as_root else []
    root = Path(tempfile.mkdtemp(prefix="mmbench-pg-"))  # not under pytest's 0700 tmp dir
    data = root / "data"
    root.chmod(0o755)
    if as_root:
        shutil.chown(root, "postgres")
    port = _free_port()

    def run(tool: str, *args: str, check: bool = True) -> None:
        cmd = [*prefix, str(bindir / tool), *args]
        subprocess.run(cmd, check=check, capture_output=True, timeout=120)

    try:
        run("initdb", "-D", str(data), "-U", "mmbench", "--auth=trust")
        options = f"-p {port} -h 127.0.0.1 -k {root}"
        run("pg_ctl", "-D", str(data), "-l", str(root / "log"), "-w", "start", "-o", options)
        yield f"postgresql+psycopg2://mmbench@127.0.0.1:{port}/postgres"
    finally:
        run("pg_ctl", "-D", str(data), "-m", "fast", "stop", check=False)
        shutil.rmtree(root, ignore_errors=True)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class TrackedSearch:
    """A tiny search, tracked: its MLflow store, results directory and Optuna storage."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.results = root / "res"
        self.tracking_uri = f"sqlite:///{root / 'mlflow.db'}"
        self.storage = f"sqlite:///{self.results / 'tiny-suite' / 'optuna.db'}"
        self.study_name = "tiny-suite.tiny"


@pytest.fixture(scope="session")
def tracked_search(tmp_path_factory: pytest.TempPathFactory) -> TrackedSearch:
    """Four trials of the early-fusion MLP: three complete, then ``lr=1e-6`` (no learning),
    which the median pruner stops after two folds — what the MLflow and Optuna views are
    checked on (one score per trial, flat names, a pruned beside a complete trial)."""
    import optuna
    import torch

    from mmbench.run import RunOptions, run_suite

    root = tmp_path_factory.mktemp("tracked-search")
    search = TrackedSearch(root)
    suite = tiny_suite(
        root,
        trials=4,
        search={
            "fusion": "early",
            "sampler": "random",
            "pruner": "median",
            "training": {**FAST_TRAINING, "lr": [1e-2, 3e-3, 1e-6]},
            "fusion_options": {"early": {"hidden": [8, 32]}},
        },
    )
    # the trials, in order (a sampler would repeat configurations of so small a space, and
    # repeats are skipped): three that learn, then one that cannot, which the pruner stops
    (search.results / "tiny-suite").mkdir(parents=True)
    study = optuna.create_study(
        storage=search.storage, study_name=search.study_name, direction="maximize"
    )
    for hidden, lr in [(32, 1e-2), (8, 3e-3), (32, 3e-3), (8, 1e-6)]:
        study.enqueue_trial({"fusion.early.hidden": hidden, "lr": lr})
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MMBENCH_CACHE_DIR", str(root / "feature-cache"))
        mp.setenv("HF_HUB_OFFLINE", "1")
        options = RunOptions(
            results_dir=search.results,
            tracking_uri=search.tracking_uri,
            progress=False,
            resume=True,
        )
        outcomes = run_suite(suite, options)
    torch.set_num_threads(threads)
    assert all(o.error is None for o in outcomes), [o.error for o in outcomes]
    return search


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now (for a server a test starts)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
