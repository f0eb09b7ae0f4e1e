"""How long resolving ``pip install -e ".[EXTRA]"`` takes, per installer and per extra.

Each case is a fresh virtual environment (``python3 -m venv``) and one resolution of the
project's dependencies from the indexes this machine's pip is configured with, unpinned (no
``.ci/constraints.txt``: what a user's first install does). Installers:

- ``pip-venv``: the pip that ``python3 -m venv`` ships (23.2.1 with Python 3.11), left as is;
- ``pip-latest``: the same venv after ``pip install --upgrade pip`` (not timed);
- ``uv``: ``uv pip install`` (uv from PyPI, into a tools venv beside the cases), given the same
  extra indexes, find-links folders and constraint files as pip's configuration.

What is timed is resolution alone: ``pip install --dry-run --ignore-installed --report`` (uv:
``--dry-run``) resolves and fetches each candidate's metadata, and installs nothing: torch and the
CUDA wheels are never unpacked (pip copies the wheels of a local file index it reads; the
``(torch alone)`` row, torch and torchvision at the pins without mmbench, is that floor). A candidate whose index serves no separate metadata is still
downloaded to read it, into pip's (uv's) cache; the run starts with a warm-up resolution of the
biggest case (``dev``) per installer, not reported, so the timed runs read wheels from the
cache, as a second install or a CI with a cache would, and a backtracking resolver pays per
version it tries, not per megabyte. The table counts the distributions each run fetched and the
projects fetched at more than one version (backtracking).

    python benchmarks/install.py                          # every installer, dev and each extra
    python benchmarks/install.py --installers pip-venv --extras dev,s3
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from _common import REPO, emit, parse_args, table

INSTALLERS = ("uv", "pip-venv", "pip-latest")
EXTRAS = ("dev", "torch", "", "s3", "cluster", "sensor", "text", "video", "postgres", "peers")
# not an extra: torch and torchvision alone (the pins' versions), the floor every case pays for
# reading their and the CUDA wheels' metadata (multi-GB wheels on a local index are copied)
TORCH = ["torch==2.14.1", "torchvision==0.29.1"]
# pip's log line per distribution it reads: "Downloading aiobotocore-3.9.2-py3-none-any.whl"
FETCHED = re.compile(
    r"(?:Downloading|Processing|Using cached)\s+\S*?([A-Za-z0-9_.]+?)-(\d[^-\s]*?)"
    r"(?:-py|-cp|\.tar|\.zip)"
)


def pip_config() -> dict[str, list[str]]:
    """pip's configured extra indexes, find-links and constraint files (``pip config list``)."""
    out = subprocess.run(
        [sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True
    ).stdout
    found: dict[str, list[str]] = {"extra-index-url": [], "find-links": [], "constraint": []}
    for line in out.splitlines():
        key, _, value = line.partition("=")
        name = key.rsplit(".", 1)[-1]
        if name in found:
            found[name] += [v for v in value.strip().strip("'\"").split() if v not in found[name]]
    return found


def make_venv(folder: Path, upgrade_pip: bool) -> Path:
    subprocess.run(["python3", "-m", "venv", str(folder)], check=True)
    python = folder / "bin" / "python"
    if upgrade_pip:
        subprocess.run([str(python), "-m", "pip", "install", "-q", "--upgrade", "pip"], check=True)
    return python


def tools_uv(scratch: Path) -> Path | None:
    """uv from PyPI in its own venv, or None when it cannot be installed."""
    python = make_venv(scratch / "uv-tools", upgrade_pip=False)
    done = subprocess.run([str(python), "-m", "pip", "install", "-q", "uv"], capture_output=True)
    uv = scratch / "uv-tools" / "bin" / "uv"
    return uv if done.returncode == 0 and uv.exists() else None


def resolve(
    installer: str, extra: str, scratch: Path, uv: Path | None, timeout: float
) -> dict[str, object]:
    """One fresh venv, one timed resolution of ``-e .[extra]``."""
    venv = Path(tempfile.mkdtemp(dir=scratch, prefix="venv-"))
    python = make_venv(venv, upgrade_pip=installer == "pip-latest")
    target = ["-e", f".[{extra}]" if extra else "."] if extra != "torch" else TORCH
    report = venv / "report.json"
    if installer == "uv":
        assert uv is not None
        config = pip_config()
        command = [str(uv), "pip", "install", "--dry-run", "--python", str(python), *target]
        for url in config["extra-index-url"]:
            command += ["--extra-index-url", url]
        for folder in config["find-links"]:
            command += ["--find-links", folder]
        for path in config["constraint"]:
            command += ["--constraint", path]
        # pip takes the best version across all its indexes; uv by default only the first
        # index that has the project (this machine's local index holds a few versions only)
        command += ["--index-strategy", "unsafe-best-match"]
    else:
        command = [str(python), "-m", "pip", "install", "--dry-run", "--ignore-installed"]
        command += ["--report", str(report), *target]
    version = subprocess.run(
        [str(uv), "--version"] if installer == "uv" else [str(python), "-m", "pip", "--version"],
        capture_output=True,
        text=True,
    ).stdout.split(" from ")[0]
    start = time.perf_counter()
    try:
        done = subprocess.run(
            command, cwd=REPO, capture_output=True, text=True, timeout=timeout, env=os.environ
        )
        seconds, status = time.perf_counter() - start, "ok" if done.returncode == 0 else "failed"
        log = done.stdout + done.stderr
    except subprocess.TimeoutExpired as exc:
        seconds, status = time.perf_counter() - start, f"> {timeout:.0f} s, stopped"
        log = (exc.stdout or b"").decode() + (exc.stderr or b"").decode()
    versions: dict[str, set[str]] = {}
    for name, ver in FETCHED.findall(log):
        versions.setdefault(name.lower().replace("_", "-"), set()).add(ver)
    many = Counter({n: len(v) for n, v in versions.items() if len(v) > 1})
    packages: int | str = "-"
    if report.exists():
        packages = len(json.loads(report.read_text())["install"])
    elif installer == "uv" and status == "ok":
        packages = len(re.findall(r"^ \+ ", log, flags=re.M))
    if status == "failed":
        print(log[-3000:], file=sys.stderr)
    return {
        "installer": version.strip(),
        "extra": {"": "(none)", "torch": "(torch alone)"}.get(extra, extra),
        "seconds": seconds,
        "status": status,
        "packages": packages,
        # uv prints no line per distribution it reads: its counts are unknown, not zero
        "fetched": sum(len(v) for v in versions.values()) if installer != "uv" else "-",
        "backtracked": (", ".join(f"{n} ×{c}" for n, c in many.most_common(4)) or "none")
        if installer != "uv"
        else "-",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--installers", default=",".join(INSTALLERS))
    parser.add_argument("--extras", default=",".join(EXTRAS), help="'' is the core alone")
    parser.add_argument("--timeout", type=float, default=600, help="seconds per case")
    parser.add_argument("--name", default="install")
    args = parse_args(parser)
    installers = [i for i in args.installers.split(",") if i]
    unknown = sorted(set(installers) - set(INSTALLERS))
    if unknown:
        parser.error(f"unknown installer(s) {unknown}; known: {', '.join(INSTALLERS)}")
    extras = args.extras.split(",")
    rows, notes = [], []
    with tempfile.TemporaryDirectory(prefix="mmbench-install-") as tmp:
        scratch = Path(tmp)
        uv = tools_uv(scratch) if "uv" in installers else None
        if "uv" in installers and uv is None:
            notes.append("uv could not be installed from the index: its rows are missing.")
            installers.remove("uv")
        total = len(installers) * len(extras)
        for installer in installers:
            if not (installer == "pip-latest" and "pip-venv" in installers):  # same pip cache
                warm = resolve(installer, "dev", scratch, uv, args.timeout)
                print(f"warm-up {installer}: {warm['seconds']:.1f} s ({warm['status']})")
            for extra in extras:
                rows.append(resolve(installer, extra, scratch, uv, args.timeout))
                print(rows[-1], flush=True)
                if len(rows) < total:  # what is measured so far survives an interrupted run
                    write(args.name, rows, [*notes, f"Partial: {len(rows)} of {total} cases."])
    write(args.name, rows, notes)


def write(name: str, rows: list[dict[str, object]], notes: list[str]) -> None:
    body = (
        'Resolution of `pip install -e ".[EXTRA]"` (uv: `uv pip install -e`) in a fresh venv, '
        "unpinned, `--dry-run`: nothing is installed or unpacked, after one warm-up resolution "
        "of `dev` per pip cache (candidates' wheels come from the cache). pip still copies "
        "each wheel of this machine's local index it reads, torch's CUDA wheels (GBs) among "
        "them: `(torch alone)` (`torch==2.14.1 torchvision==0.29.1`, nothing to backtrack) is "
        "that floor, which every case pays. fetched: distributions whose metadata the resolver "
        "read; backtracked: projects read at more than one version (uv prints neither). "
        "Target: every case under 120 s.\n\n"
    )
    body += table(
        ["installer", "extra", "resolve s", "status", "packages", "fetched", "backtracked"],
        [
            [
                r["installer"],
                r["extra"],
                f"{r['seconds']:.1f}",
                r["status"],
                r["packages"],
                r["fetched"],
                r["backtracked"],
            ]
            for r in rows
        ],
    )
    if notes:
        body += "\n\n" + "\n".join(notes)
    emit(name, "Install: resolver time per installer and extra", body)


if __name__ == "__main__":
    main()
