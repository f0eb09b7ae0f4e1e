"""Command line: a thin layer over :mod:`mmbench.run` and friends.

One module per group of commands (``run``: run, worker, finalize, track; ``data``: validate,
fetch, predict; ``results``: show, leaderboard, report, regress); each adds its parsers and maps
its command names to functions. Imports are deferred to the command being run so that
``mmbench --help`` stays instant. User errors (:class:`~mmbench.errors.MMBenchError`) print one
clear message and exit 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from mmbench import __version__
from mmbench.cli import data, results, run
from mmbench.cli._common import use_mirror
from mmbench.cli.run import print_summary
from mmbench.errors import MMBenchError

__all__ = ["build_parser", "main", "print_summary", "use_mirror"]

QUICKSTART = """\
quickstart (offline, about a minute on 2 cores):
  mmbench run suites/smoke.yaml      # search, final model, ablation; results/smoke/
  mmbench leaderboard suites/smoke.yaml
  mmbench report suites/smoke.yaml   # results/smoke/report.html

`mmbench COMMAND --help` shows each command's options and an example."""

_GROUPS = (run, data, results)
COMMANDS = {name: fn for group in _GROUPS for name, fn in group.COMMANDS.items()}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mmbench",
        description="Benchmark multi-modal classification pipelines on declarative suites.",
        epilog=QUICKSTART,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"mmbench {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for group in _GROUPS:
        group.add_parsers(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:  # bare `mmbench`: where to start
        parser.print_usage()
        print(f"\n{QUICKSTART}")
        return 2
    use_mirror(getattr(args, "mirror", None))
    try:
        return int(COMMANDS[args.command](args) or 0)
    except MMBenchError as exc:
        print(f"mmbench: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("mmbench: interrupted; finished results are kept", file=sys.stderr)
        return 130
