"""Dependencies point one way: the lower layers never import the layers that compose them."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "mmbench"
LOWER = (
    "data",
    "encoders",
    "fusion",
    "device",
    "space",
    "suite",
    "evaluation",
    "cache",
    "config",
    "registry",
    "hub",
)
UPPER = ("search", "tracking", "runner", "cli", "ablation", "leaderboard", "regress", "results")


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def layer_files(layer: str) -> list[Path]:
    folder = PACKAGE / layer
    return sorted(folder.rglob("*.py")) if folder.is_dir() else [PACKAGE / f"{layer}.py"]


def test_lower_layers_do_not_import_upper_layers() -> None:
    offenders = []
    for layer in LOWER:
        for path in layer_files(layer):
            if not path.exists():
                continue
            for mod in imported_modules(path):
                if any(mod == f"mmbench.{u}" or mod.startswith(f"mmbench.{u}.") for u in UPPER):
                    offenders.append(f"{path.relative_to(PACKAGE)} imports {mod}")
    assert not offenders, offenders


def test_cli_help_does_not_import_heavy_packages() -> None:
    code = (
        "import sys, mmbench.cli\n"
        "heavy = [m for m in ('torch', 'timm', 'mlflow', 'optuna', 'datasets', 'sklearn')"
        " if m in sys.modules]\n"
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
