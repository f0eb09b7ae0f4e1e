"""The cross-dataset benchmark: every row of ``benchmarks/leaderboard/benchmark.yaml``, one budget.

For each suite (and dataset) of the definition it runs one ``mmbench run`` process per row, into
``benchmarks/leaderboard/results/<suite>/``:

- the suite's own pipeline: its Optuna search with ``--timeout`` seconds, then the final
  ensemble (result files ``search.json`` and ``ensemble.json``);
- each reference pipeline (``--pipeline early-fusion-mlp`` ...): fixed, no search;
- each peer (``--pipeline tfidf-xgboost``, ``--pipeline autogluon``), run by ``--peer-python``:
  its CV folds get ``timeout / folds`` s each and its held-out model the whole ``timeout``
  (AutoGluon's ``time_limit``), the wall-clock budget mmbench's search gets.

Every row gets the suite's folds and held-out rows, the same decision rule (fitted on its own
out-of-fold probabilities) and a cold feature cache of its own, so encoding is paid inside the
row as on a user's first run. Ablations are off: they are not rows. A row that fails, or writes
no result file, is recorded with its exit status and the end of its output, and the run goes on.
Every result file must name this checkout's commit: an interpreter with mmbench installed from
another checkout would otherwise score other code.

Then, per suite, ``mmbench leaderboard SUITE --format markdown`` and ``mmbench report SUITE``,
and ``<results>/<suite>/BENCHMARK.md``: provenance (commit, date, ``uptime``, cores), the
commands that regenerate it, each row's status and wall time, and the leaderboard; an index in
``<results>/README.md``. A suite's folder is emptied before its rows run, so it never mixes
commits. Committed: the result JSON files, the Markdown, the HTML page across suites and the raw
results; not models, trials, Optuna databases, logs or a suite's own HTML report
(``.gitignore``).

A published number must come from a clean commit: the script refuses a dirty tree unless
``--allow-dirty`` (then recorded as ``<sha>+dirty``). ``--max-rows`` (a stratified subsample of
every dataset) and ``--trials`` are for smoke runs: their files say so, and they cannot be
written to the committed folder.

    python benchmarks/leaderboard.py [--timeout 120] [--peer-python PATH] [--suite NAME ...]
        [--mirror ../shared/mirror] [--results DIR] [--max-rows N] [--trials N]
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml
from _common import COMMIT, REPO, cpu_model, parse_args, table

HERE = REPO / "benchmarks" / "leaderboard"
DEFINITION = HERE / "benchmark.yaml"
RESULTS = HERE / "results"
DEFAULT_MIRROR = REPO.parent / "shared" / "mirror"
TAIL = 600  # characters of a failed row's output kept in the summary


@dataclass
class Row:
    """One ``mmbench run`` process: a pipeline (or the search) on one dataset."""

    suite: str  # the suite's name (its results folder)
    dataset: str
    name: str  # "search" or a --pipeline name
    command: list[str]
    expects: list[str]  # result files it must write, by pipeline name
    status: str = "not run"
    wall_s: float | None = None
    detail: str = ""
    files: list[str] = field(default_factory=list)


def load_definition(path: Path) -> dict[str, Any]:
    raw = yaml.safe_load(path.read_text())
    known = {"suites", "search", "references", "peers"}
    if not isinstance(raw, dict) or set(raw) - known or not raw.get("suites"):
        raise SystemExit(f"{path}: expected a mapping with 'suites' and only keys {sorted(known)}")
    for entry in raw["suites"]:
        if set(entry) - {"suite", "datasets"} or not (REPO / entry.get("suite", "")).is_file():
            raise SystemExit(f"{path}: bad suite entry {entry} (needs an existing 'suite' file)")
    return raw


def subsampled(suite: Path, max_rows: int, into: Path) -> Path:
    """A copy of ``suite`` whose every dataset has ``max_rows``; relative paths made absolute."""
    raw = yaml.safe_load(suite.read_text())
    for dataset in raw["datasets"]:
        dataset["max_rows"] = max_rows
        for key in ("source", "test_source"):
            source = dataset.get(key) or {}
            for name in ("path", "registry"):
                value = source.get(name)
                if isinstance(value, str):
                    source[name] = str((suite.parent / value).resolve())
                elif isinstance(value, list):
                    source[name] = [str((suite.parent / v).resolve()) for v in value]
    out = into / suite.name
    out.write_text(yaml.safe_dump(raw, sort_keys=False))
    return out


def rows_of(
    entry: dict[str, Any], definition: dict[str, Any], args: argparse.Namespace, suite_file: str
) -> list[Row]:
    """The rows of one suite entry, in order: search, references, peers; per dataset."""
    spec = yaml.safe_load((REPO / entry["suite"]).read_text())
    datasets = entry.get("datasets") or [d["name"] for d in spec["datasets"]]
    results = where(args.results)
    jobs = [("search", args.python, ["search", "ensemble"])] if definition.get("search") else []
    jobs += [(n, args.python, [n]) for n in definition.get("references") or []]
    jobs += [(n, args.peer_python, [n]) for n in definition.get("peers") or []]
    out = []
    for dataset in datasets:
        for name, python, expects in jobs:
            command = [python, "-m", "mmbench.cli", "run", suite_file, "--dataset", dataset]
            command += ["--timeout", f"{args.timeout:g}", "--results", results]
            command += ["--no-track", "--no-ablate"]  # not --quiet: it hides why a row is skipped
            command += [] if name == "search" else ["--pipeline", name]
            command += ["--trials", str(args.trials)] if args.trials else []
            command += ["--mirror", str(args.mirror)] if args.mirror else []
            out.append(Row(spec["name"], dataset, name, command, expects))
    return out


def execute(command: list[str], limit: float) -> tuple[int | None, float, str]:
    """Run ``command`` from the repository root with this checkout first on ``PYTHONPATH``;
    kill its process group after ``limit`` s. Returns (exit status or None if killed, wall s,
    output)."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
    }
    start = time.monotonic()
    with tempfile.TemporaryFile("w+") as log:
        proc = subprocess.Popen(
            command, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            rc: int | None = proc.wait(timeout=limit)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            rc = None
        log.seek(0)
        return rc, time.monotonic() - start, log.read()


def run_row(row: Row, args: argparse.Namespace, head: str) -> None:
    """Run one row with a fresh feature cache; record its status, wall time and result files."""
    results = Path(args.results) / row.suite / row.dataset
    with tempfile.TemporaryDirectory(prefix="mmbench-cache-") as cache:
        rc, row.wall_s, output = execute([*row.command, "--cache-dir", cache], args.row_limit)
    logs = Path(args.results) / row.suite / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    (logs / f"{row.dataset}.{row.name}.log").write_text(output)
    row.files = [f"{n}.json" for n in row.expects if (results / f"{n}.json").is_file()]
    missing = [f"{n}.json" for n in row.expects if f"{n}.json" not in row.files]
    foreign = [f for f in row.files if not _same_commit(results / f, head)]
    if rc is None:
        row.status, row.detail = "killed", f"still running after --row-limit {args.row_limit:g} s"
    elif rc != 0 or missing:
        row.status = f"failed (exit {rc})" if rc else "no result file"
        row.detail = f"missing {', '.join(missing)}: " if missing else ""
    elif foreign:
        row.status, row.detail = "wrong code", f"{', '.join(foreign)} name another commit"
    else:
        row.status = "ok"
    if row.status.startswith(("failed", "no result")):
        row.detail += last_line(output)
    print(f"  {row.dataset} {row.name}: {row.status} in {row.wall_s:.0f} s", flush=True)


def last_line(output: str) -> str:
    """What a failed row said last: from mmbench's last ``error:`` line on (any case) (a message the
    terminal width wrapped, and what followed), else the last line (a traceback's exception)."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    errors = [i for i, line in enumerate(lines) if line.lower().startswith("error:")]
    said = " ".join(lines[errors[-1] :]) if errors else (lines[-1] if lines else "no output")
    return said[-TAIL:]


def where(path: Path) -> str:
    """``path`` relative to the repository when inside it (as the regenerate commands run)."""
    path = Path(path).resolve()
    return os.path.relpath(path, REPO) if path.is_relative_to(REPO) else str(path)


def _same_commit(path: Path, head: str) -> bool:
    commit = json.loads(path.read_text()).get("provenance", {}).get("git_commit") or ""
    return bool(commit) and head.startswith(commit.removesuffix("+dirty")[:7])


def run_mmbench(args: argparse.Namespace, command: list[str]) -> list[str]:
    """The output lines of a quick ``mmbench`` command (leaderboard, report) on the results."""
    rc, _, output = execute([args.python, "-m", "mmbench.cli", *command], 600)
    if rc != 0:
        return [f"(`mmbench {command[0]}` failed, exit {rc}: {last_line(output)})"]
    return output.strip().splitlines()


def provenance(args: argparse.Namespace, started: str, load_start: str) -> list[str]:
    smoke = []
    if args.max_rows or args.trials:
        smoke = [
            f"- **smoke run, not benchmark figures**: max_rows={args.max_rows}, "
            f"trials={args.trials}"
        ]
    return [
        f"- mmbench commit: {COMMIT}",
        f"- started: {started}; finished: {time.strftime('%Y-%m-%d %H:%M %Z')}",
        f"- machine: {os.cpu_count()} CPU cores ({cpu_model()})",
        f"- uptime at start: `{load_start}`; at the end: `{uptime()}`",
        f"- budget: {args.timeout:g} s per row (search: --timeout; peers: AutoGluon time_limit "
        f"{args.timeout:g} s for the held-out model, timeout/folds per CV fold)",
        f"- python: `{args.python}` (mmbench rows), `{args.peer_python}` (peers), "
        "both with this checkout first on PYTHONPATH",
        *smoke,
    ]


def uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def shell(command: list[str]) -> str:
    return "PYTHONPATH=. " + shlex.join(command) + ' --cache-dir "$(mktemp -d)"'


def write_suite_summary(
    args: argparse.Namespace, suite_file: str, rows: list[Row], header: list[str]
) -> None:
    """``<results>/<suite>/BENCHMARK.md``: provenance, commands, rows, the leaderboard."""
    results = where(args.results)
    # one call per suite here; the ranking across every suite is in the index (write_index)
    board = ["leaderboard", suite_file, "--results", results, "--format", "markdown"]
    report = ["report", suite_file, "--results", results]
    tools = [shlex.join([args.python, "-m", "mmbench.cli", *c]) for c in (board, report)]
    lines = [f"# Benchmark: suite {rows[0].suite}", "", *header, "", "## Regenerate", "", "```sh"]
    lines += [*(shell(r.command) for r in rows), *tools, "```", ""]
    lines += ["## Rows", "", row_table(rows), "", "## Leaderboard", ""]
    # its headings one level under this file's
    lines += nested(run_mmbench(args, board), 2)
    lines += [
        "",
        f"HTML report (not committed; the last command above): {' '.join(run_mmbench(args, report))}",
    ]
    (Path(args.results) / rows[0].suite / "BENCHMARK.md").write_text("\n".join(lines) + "\n")


def rerender_suite_board(args: argparse.Namespace, suite_file: str) -> None:
    """``--summarize``: a suite's BENCHMARK.md keeps its provenance, commands and rows; its
    leaderboard section is rendered again from the result files (the rows are not rerun)."""
    path = Path(args.results) / name_of(suite_file) / "BENCHMARK.md"
    if not path.is_file():
        return
    text = path.read_text()
    head = text.split("\n## Leaderboard\n", 1)[0]
    board = ["leaderboard", suite_file, "--results", where(args.results), "--format", "markdown"]
    lines = [head, "## Leaderboard", ""]
    lines += nested(run_mmbench(args, board), 2)
    path.write_text("\n".join(lines) + "\n")


def nested(lines: list[str], levels: int) -> list[str]:
    """Markdown ``lines`` with their headings ``levels`` deeper, to sit under a file's own."""
    return [f"{'#' * levels}{line}" if line.startswith("#") else line for line in lines]


def row_table(rows: list[Row]) -> str:
    body = [
        [
            r.dataset,
            r.name,
            r.status,
            f"{r.wall_s:.0f}" if r.wall_s is not None else "",
            ", ".join(r.files),
            r.detail.replace("|", "\\|"),
        ]
        for r in rows
    ]
    return table(["dataset", "row", "status", "wall s", "result files", "detail"], body)


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--definition", type=Path, default=DEFINITION)
    parser.add_argument("--timeout", type=float, default=120.0, help="budget per row, s")
    parser.add_argument("--python", default=sys.executable, help="interpreter of mmbench's rows")
    parser.add_argument(
        "--peer-python", default=sys.executable, help="interpreter of the peer rows"
    )
    parser.add_argument(
        "--mirror", type=Path, default=DEFAULT_MIRROR if DEFAULT_MIRROR.is_dir() else None
    )
    parser.add_argument(
        "--shared", type=Path, default=REPO.parent / "shared", help="for real_data.py"
    )
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--suite", action="append", help="only this suite, by name (repeatable)")
    parser.add_argument("--max-rows", type=int, help="smoke run: subsample every dataset")
    parser.add_argument("--trials", type=int, help="smoke run: override the suites' trials")
    parser.add_argument(
        "--row-limit", type=float, help="kill a row after this many s (default 10 x timeout + 600)"
    )
    parser.add_argument(
        "--summarize",
        action="store_true",
        help="run nothing: write the index, the leaderboard across every suite, its HTML report "
        "and the raw results again from the result files there",
    )
    args = parse_args(parser, argv)
    args.results = args.results.resolve()
    if args.trials is not None and args.trials < 2:
        raise SystemExit(
            "--trials must be 2 or more: with 1 the suite runs its default pipeline, no search"
        )
    if args.row_limit is None:
        args.row_limit = 10 * args.timeout + 600
    if (args.max_rows or args.trials) and args.results == RESULTS.resolve():
        raise SystemExit(
            "--max-rows and --trials make a smoke run: write it elsewhere with --results DIR, "
            f"not to the committed {RESULTS.relative_to(REPO)}"
        )
    return args


def prepare_data(args: argparse.Namespace) -> None:
    """emoji and adult as benchmarks/suites read them (byte-identical on every run)."""
    command = [args.python, "benchmarks/real_data.py", "--shared", str(args.shared)]
    rc, _, output = execute(command, 600)
    if rc != 0:
        raise SystemExit(f"benchmarks/real_data.py failed (exit {rc}):\n{output}")


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    definition = load_definition(args.definition)
    started, load_start = time.strftime("%Y-%m-%d %H:%M %Z"), uptime()
    if args.summarize:
        for entry in definition["suites"]:
            rerender_suite_board(args, entry["suite"])
        rendered = f"- leaderboards rendered at mmbench commit {COMMIT} on {started} from the "
        rendered += "result files (each suite's rows ran at the commit in the table)"
        write_index(args, [rendered], definition)
        return
    head = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    prepare_data(args)
    with tempfile.TemporaryDirectory(prefix="mmbench-suites-") as scratch:
        for entry in definition["suites"]:
            suite_file = entry["suite"]
            if args.max_rows:
                suite_file = str(subsampled(REPO / suite_file, args.max_rows, Path(scratch)))
            rows = rows_of(entry, definition, args, suite_file)
            if args.suite and rows[0].suite not in args.suite:
                continue
            print(f"{rows[0].suite}: {len(rows)} rows", flush=True)
            shutil.rmtree(Path(args.results) / rows[0].suite, ignore_errors=True)
            for row in rows:
                run_row(row, args, head)
            header = provenance(args, started, load_start)
            write_suite_summary(args, suite_file, rows, header)
            write_rows(args, rows, started)
    write_index(args, provenance(args, started, load_start), definition)


def write_rows(args: argparse.Namespace, rows: list[Row], started: str) -> None:
    """``<results>/<suite>/rows.json``: each row's command, status and wall time, for the index
    (which also lists suites run by an earlier invocation, e.g. with ``--suite``)."""
    record = {
        "commit": COMMIT,
        "started": started,
        "timeout_s": args.timeout,
        "smoke": bool(args.max_rows or args.trials),
        "rows": [asdict(r) for r in rows],
    }
    path = Path(args.results) / rows[0].suite / "rows.json"
    path.write_text(json.dumps(record, indent=1) + "\n")


def write_index(args: argparse.Namespace, header: list[str], definition: dict[str, Any]) -> None:
    """``<results>/README.md``: every suite folder's commit, start, rows that ran and wall; then
    the leaderboard across every suite run so far (``LEADERBOARD.md``), its HTML page with the
    critical-difference diagrams and the Pareto plot (``report.html``) and the raw results, one
    row per fold and metric (``raw.csv``)."""
    command = "python " + shlex.join([os.path.relpath(sys.argv[0], REPO), *sys.argv[1:]])
    body, total, suites = [], 0.0, []
    for path in sorted(Path(args.results).glob("*/rows.json")):
        record = json.loads(path.read_text())
        rows = record["rows"]
        wall = sum(r["wall_s"] or 0 for r in rows)
        total += wall
        ok = sum(r["status"] == "ok" for r in rows)
        suite = path.parent.name
        suites.append(suite)
        body.append(
            [
                f"[{suite}]({suite}/BENCHMARK.md)",
                record["commit"],
                record["started"],
                f"{record['timeout_s']:g}",
                "yes" if record["smoke"] else "",
                f"{ok} of {len(rows)}",
                f"{wall / 60:.1f}",
            ]
        )
    heads = ["suite", "commit", "started", "budget s", "smoke", "rows ok", "wall min"]
    lines = ["# Cross-dataset benchmark", ""]
    if header:
        lines += ["Last invocation:", "", *header, f"- command: `{command}`", ""]
    lines += [
        table(heads, body),
        "",
        f"Rows' wall time, all suites listed: {total / 60:.1f} min.",
        "",
    ]
    files = {name_of(e["suite"]): e["suite"] for e in definition["suites"]}
    ran = [files.get(s, s) for s in suites]
    results = where(args.results)
    across = [
        ["leaderboard", *ran, "--results", results, "--format", "markdown"],
        ["report", *ran, "--results", results, "--output", f"{results}/report.html"],
        ["leaderboard", *ran, "--results", results, "--long", "--output", f"{results}/raw.csv"],
    ]
    board = run_mmbench(args, across[0])
    (Path(args.results) / "LEADERBOARD.md").write_text(
        "# Leaderboard across every dataset\n\n"
        f"Generated by `mmbench {shlex.join(across[0])}` from the result files of the suites "
        "below; the HTML page (`report.html`: sortable table, critical-difference diagrams, "
        "Pareto plot) and the raw results (`raw.csv`) by the commands in README.md.\n\n"
        + "\n".join(nested(board, 1))
        + "\n"
    )
    for extra in across[1:]:
        run_mmbench(args, extra)
    lines += [
        "Across every suite above: [LEADERBOARD.md](LEADERBOARD.md), `report.html` and "
        "`raw.csv`, regenerated from the result files by",
        "",
        "```sh",
        *("PYTHONPATH=. " + shlex.join(["python", "-m", "mmbench.cli", *c]) for c in across),
        "```",
    ]
    Path(args.results).mkdir(parents=True, exist_ok=True)
    (Path(args.results) / "README.md").write_text("\n".join(lines) + "\n")
    print(f"wrote {Path(args.results) / 'README.md'}", flush=True)


def name_of(suite_file: str) -> str:
    """A suite file's name (its results folder)."""
    return yaml.safe_load((REPO / suite_file).read_text())["name"]


if __name__ == "__main__":
    main()
