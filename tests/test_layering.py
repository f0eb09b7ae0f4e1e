"""Dependencies point one way: every module has a layer and imports only its own layer or lower.

:data:`LAYERS` lists every module of the package, bottom layer first (ARCHITECTURE.md draws the
same picture). A module imports modules of its own layer or of layers below it, never above, and
the import graph has no cycles. Every ``import`` counts: module level, inside functions (lazy
imports of heavy code) and under ``if TYPE_CHECKING:`` (an annotation is knowledge too).

A package's ``__init__`` is named after the package (``"encoders"``); the parent packages that
Python initialises before a submodule are not edges. ``from pkg import name`` is an edge to
``pkg.name`` when that is a module, else to ``pkg``. Registry packages (``encoders``, ``fusion``,
``peers``) import their modules with :func:`mmbench.registry.import_submodules`, which this
graph does not see: that is how a new built-in needs no edit elsewhere.

Heavy third-party packages belong to layers too (:data:`EXTERNAL_HOMES`): MLflow is imported
only by ``tracking``, Optuna only where a study is run, read or drawn, and torch/timm are imported
when a module loads only by ``encoders`` and ``fusion`` (elsewhere inside the function that needs
them), so that ``mmbench --help`` stays instant.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "mmbench"

LAYERS: tuple[tuple[str, ...], ...] = (
    # foundation: no knowledge of benchmarking
    ("mmbench", "errors", "_io", "registry", "device", "budget", "progress", "hub"),
    ("config",),  # pipeline and training specs
    (
        "evaluation",
        "evaluation.metrics",
        "evaluation.splits",
        "evaluation.decision",
        "evaluation.protocol",
    ),  # folds, metrics, scoring of out-of-fold probabilities
    (
        "data",
        "data.spec",
        "data.table",
        "data.media",
        "data.video",
        "data.synthetic_video",
        "data.validate",
        "data.synthetic",
        "data.series",
        "data.download",
        "data.remote",
        "data.sources",
        "data.infer",
        "data.loading",
        "data.fetch",
    ),
    (
        "encoders",
        "encoders.base",
        "encoders._util",
        "encoders.towers",
        "encoders._temporal",
        "encoders.video",
        "encoders.audio",
        "encoders.image",
        "encoders.pixels",
        "encoders.pretrained",
        "encoders.tabular",
        "encoders.text",
        "encoders.sentence",
        "encoders.tokens",
        "encoders._series",
        "encoders.sensor_stats",
        "encoders.minirocket",
        "encoders.sensorcnn",
    ),
    (
        "fusion",
        "fusion.base",
        "fusion.catalog",
        "fusion.linear",
        "fusion.modules",
        "fusion.regularisers",
        "fusion.training",
        "fusion.torch_head",
        "fusion.trees",
        "fusion.xgb",
        "fusion.lgbm",
        "fusion.catboost",
    ),
    ("space", "suite"),  # the suite schema and its search space
    ("pipeline.cache",),  # the feature cache between encoders and heads
    (
        "pipeline",
        "pipeline.encode",
        "pipeline.fold",
        "pipeline.cv",
        "pipeline.fitted",
        "pipeline.references",
    ),  # one candidate, scored by cross-validation
    (
        "peers",
        "peers.base",
        "peers.frame",
        "peers.evaluate",
        "peers.autogluon",
        "peers.tfidf_xgboost",
    ),
    (
        "search",
        "search.sampling",
        "search.portfolio",
        "search.fidelity",
        "search.coordination",
        "search.storage",
        "search.settings",
        "search.trials",
        "search.objective",
        "search.study",
        "search.lifecycle",
        "search.report",
    ),  # many candidates
    (
        "results",
        "results.rows",
        "results.schema",
        "results.provenance",
        "results.layout",
        "results.build",
        "results.identity",
        "ablation",
        "ablation.plan",
        "ablation.attribution",
        "ablation.run",
        "ablation.files",
        "run.fixed",
        "final",
        "final.selection",
        "final.stacking",
        "final.model",
    ),  # one dataset's job and its result file
    (
        "leaderboard",
        "leaderboard.table",
        "leaderboard.terminal",
        "leaderboard.ranking",
        "leaderboard.stats",
        "leaderboard.aggregate",
        "leaderboard.export",
        "leaderboard.files",
        "gate",
        "gate.speed",
        "gate.paired",
        "gate.baseline",
        "gate.verdict",
        "gate.rerun",
        "gate.regress",
        "report",
        "report.data",
        "report.charts",
        "report.board",
        "report.page",
    ),  # many result files
    (
        "tracking",
        "tracking.client",
        "tracking.naming",
        "tracking.study",
        "tracking.summary",
        "tracking.ablation",
        "tracking.serving",
        "tracking.pictures",
        "tracking.job",
        "tracking.backfill",
    ),
    ("run.context",),  # what the steps of one dataset's job share
    # a search job (the study, then the final model; the subsample of rows the budget fits);
    # a reference pipeline's or a peer's job
    ("run.search_job", "run.subsample", "run.reference_job"),
    ("run", "run.runner"),  # composes a suite run
    ("run.workers",),  # many local worker processes on one run
    ("cli._common",),  # what every command shares
    ("cli.run", "cli.data", "cli.results"),  # the commands, by group
    ("cli", "cli.__main__"),  # the parser and `mmbench`
)

LAYER_OF = {module: depth for depth, layer in enumerate(LAYERS) for module in layer}


def module_name(path: Path) -> str:
    """``mmbench/data/__init__.py`` -> ``data``; ``mmbench/__init__.py`` -> ``mmbench``."""
    parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts) or "mmbench"


def package_modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _resolve(dotted: str, modules: dict[str, Path]) -> str | None:
    """``mmbench.a.b`` -> the longest known module prefix (``a.b`` or ``a``)."""
    if dotted == "mmbench":
        return "mmbench"
    if not dotted.startswith("mmbench."):
        return None
    parts = dotted.split(".")[1:]
    while parts and ".".join(parts) not in modules:
        parts.pop()
    return ".".join(parts) if parts else "mmbench"


def imports_of(name: str, path: Path, modules: dict[str, Path]) -> dict[str, int]:
    """Modules of the package that ``name`` imports, with the first line of each."""
    found: dict[str, int] = {}
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text())):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolve against this module's package
                anchor = ["mmbench", *package.split(".")] if package else ["mmbench"]
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            targets = [f"{base}.{a.name}" for a in node.names]
        for target in targets:
            resolved = _resolve(target, modules)
            if resolved is not None and resolved != name:
                found.setdefault(resolved, node.lineno)
    return found


def import_graph() -> dict[str, dict[str, int]]:
    modules = package_modules()
    return {name: imports_of(name, path, modules) for name, path in modules.items()}


def cycles(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(graph[root]))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(graph.get(child, {}))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_every_module_has_a_layer() -> None:
    modules = set(package_modules())
    missing = sorted(modules - set(LAYER_OF))
    assert not missing, (
        f"modules without a layer: {missing}; add each to LAYERS in tests/test_layering.py "
        "(the lowest layer whose modules it may import) and to ARCHITECTURE.md"
    )
    stale = sorted(set(LAYER_OF) - modules)
    assert not stale, f"LAYERS names modules that no longer exist: {stale}"
    repeated = sorted(m for m in LAYER_OF if sum(m in layer for layer in LAYERS) > 1)
    assert not repeated, f"modules listed in more than one layer: {repeated}"


def test_imports_point_down() -> None:
    modules = package_modules()
    upward = [
        f"mmbench/{modules[name].relative_to(PACKAGE).as_posix()}:{line}: {name} "
        f"(layer {LAYER_OF[name]}) imports {target} (layer {LAYER_OF[target]})"
        for name, targets in import_graph().items()
        for target, line in targets.items()
        if name in LAYER_OF and target in LAYER_OF and LAYER_OF[target] > LAYER_OF[name]
    ]
    assert not upward, "\n".join(upward)


def test_no_import_cycles() -> None:
    found = cycles(import_graph())
    assert not found, f"import cycles: {found}"


def test_lazy_relative_and_type_only_imports_are_edges(tmp_path: Path) -> None:
    path = tmp_path / "loading.py"
    path.write_text(
        "from typing import TYPE_CHECKING\n"
        "from . import table\n"
        "if TYPE_CHECKING:\n"
        "    from mmbench.suite import Suite\n"
        "def f():\n"
        "    from mmbench.search.study import run_search\n"
        "    import mmbench.cli\n"
    )
    known = dict.fromkeys(["data", "data.table", "suite", "search", "search.study", "cli"], path)
    edges = imports_of("data.loading", path, known)
    assert edges == {"data.table": 2, "suite": 4, "search.study": 6, "cli": 7}


def test_cycle_finder_finds_cycles() -> None:
    graph = {"a": {"b": 1}, "b": {"c": 1}, "c": {"a": 1, "d": 1}, "d": {}, "e": {"e": 1}}
    assert cycles(graph) == [["a", "b", "c"]]


EXTERNAL_HOMES: dict[str, tuple[str, ...]] = {
    "mlflow": ("tracking",),
    # the study: run it, from open to finalize (search), and read it back or draw it for
    # MLflow (tracking)
    "optuna": ("search", "tracking"),
    "autogluon": ("peers",),
    "av": ("data",),
}
"""Top-level package -> the only modules (or packages, with their submodules) that import it."""

MODULE_LEVEL_HOMES: dict[str, tuple[str, ...]] = {
    "torch": ("encoders", "fusion"),
    "timm": ("encoders", "fusion"),
}
"""Top-level package -> where it may be imported when a module loads; elsewhere only lazily."""


def _belongs(module: str, homes: tuple[str, ...]) -> bool:
    return any(module == home or module.startswith(f"{home}.") for home in homes)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _loaded_with_module(body: list[ast.stmt]) -> list[ast.stmt]:
    """The import statements that run when the module loads (not in functions, not under
    ``if TYPE_CHECKING:``)."""
    found: list[ast.stmt] = []
    for node in body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            found.append(node)
        elif isinstance(node, ast.If):
            if not _is_type_checking(node.test):
                found += _loaded_with_module(node.body)
            found += _loaded_with_module(node.orelse)
        elif isinstance(node, ast.Try):
            for block in (node.body, node.orelse, node.finalbody):
                found += _loaded_with_module(block)
            for handler in node.handlers:
                found += _loaded_with_module(handler.body)
        elif isinstance(node, ast.With | ast.ClassDef):
            found += _loaded_with_module(node.body)
    return found


def _top_packages(node: ast.stmt) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name.partition(".")[0] for alias in node.names]
    if isinstance(node, ast.ImportFrom) and not node.level and node.module:
        return [node.module.partition(".")[0]]
    return []


def external_imports(path: Path) -> tuple[dict[str, int], dict[str, int]]:
    """Third-party top-level packages ``path`` imports anywhere, and those it imports when it
    loads, each with its first line."""
    tree = ast.parse(path.read_text())
    anywhere: dict[str, int] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            for package in _top_packages(node):
                anywhere.setdefault(package, node.lineno)
    at_load: dict[str, int] = {}
    for node in _loaded_with_module(tree.body):
        for package in _top_packages(node):
            at_load.setdefault(package, node.lineno)
    return anywhere, at_load


def test_heavy_packages_are_imported_in_their_layers() -> None:
    wrong = []
    for name, path in package_modules().items():
        anywhere, at_load = external_imports(path)
        where = f"mmbench/{path.relative_to(PACKAGE).as_posix()}"
        for package, homes in EXTERNAL_HOMES.items():
            if package in anywhere and not _belongs(name, homes):
                wrong.append(f"{where}:{anywhere[package]}: {package} outside {homes}")
        for package, homes in MODULE_LEVEL_HOMES.items():
            if package in at_load and not _belongs(name, homes):
                wrong.append(
                    f"{where}:{at_load[package]}: {package} imported when the module loads, "
                    f"outside {homes}; import it in the function that needs it"
                )
    assert not wrong, "\n".join(wrong)


def test_external_imports_sees_lazy_and_module_level_imports(tmp_path: Path) -> None:
    path = tmp_path / "m.py"
    path.write_text(
        "from typing import TYPE_CHECKING\n"
        "import numpy as np\n"
        "if TYPE_CHECKING:\n"
        "    import torch\n"
        "try:\n"
        "    import timm.data\n"
        "except ImportError:\n"
        "    pass\n"
        "def f():\n"
        "    import mlflow.pyfunc\n"
        "    from optuna.trial import TrialState\n"
    )
    anywhere, at_load = external_imports(path)
    assert anywhere == {"typing": 1, "numpy": 2, "torch": 4, "timm": 6, "mlflow": 10, "optuna": 11}
    assert at_load == {"typing": 1, "numpy": 2, "timm": 6}


PACKAGE_PATHS = {
    name: path.relative_to(PACKAGE).as_posix() for name, path in package_modules().items()
}


def test_cli_help_does_not_import_heavy_packages() -> None:
    code = (
        "import sys, mmbench.cli\n"
        "heavy = [m for m in ('torch', 'timm', 'mlflow', 'optuna', 'datasets', 'sklearn')"
        " if m in sys.modules]\n"
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
