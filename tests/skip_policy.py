"""``--strict-skips``: where CI runs, a test that skips is a test that did not run.

A skip is silent: a missing server binary, a missing extra or a missing browser turns a test
into an ``s`` and the run still passes, so the README's "tested" would quietly stop being true.
With ``--strict-skips=gpu,shared`` a test that skips fails instead, unless it carries one of
the named markers — the skips that are expected where it runs (no CUDA device, no ``../shared``
beside the clone). ``--strict-skips=`` (empty) allows no skip at all. Without the option
nothing changes: a developer's machine may lack PostgreSQL or Chromium.

A module that skips while it is imported (a module-level ``importorskip``) cannot show its
markers, so under ``--strict-skips`` it is always an error; skip inside the tests instead
where a skip is legitimate.
"""

from __future__ import annotations

from typing import Any

import pytest

ALLOWED = pytest.StashKey[frozenset[str]]()
"""The markers whose tests may skip; absent from the stash: strict skips are off."""


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--strict-skips",
        metavar="MARKERS",
        default=None,
        help="a test that skips fails, unless it carries one of these comma-separated markers "
        "(e.g. gpu,shared); an empty value allows no skip",
    )


def pytest_configure(config: pytest.Config) -> None:
    value = config.getoption("strict_skips")
    if value is not None:
        config.stash[ALLOWED] = parse_allowed(value, registered_markers(config))


def parse_allowed(value: str, registered: set[str]) -> frozenset[str]:
    """The marker names in ``value``; a name that is not a registered marker is a usage error
    (a typo would otherwise allow nothing, or silently allow a skip nobody meant)."""
    names = frozenset(name.strip() for name in value.split(",") if name.strip())
    unknown = sorted(names - registered)
    if unknown:
        raise pytest.UsageError(
            f"--strict-skips: {', '.join(map(repr, unknown))} is not a registered marker "
            f"(registered: {', '.join(sorted(registered))})"
        )
    return names


def registered_markers(config: pytest.Config) -> set[str]:
    """Marker names from the ``markers`` ini lines (``name: text`` or ``name(args): text``)."""
    lines = config.getini("markers")
    return {line.split(":", 1)[0].split("(", 1)[0].strip() for line in lines}


def skip_reason(report: pytest.TestReport | pytest.CollectReport) -> str:
    """The reason a skip report gives (its longrepr is ``(path, line, "Skipped: reason")``)."""
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2]).removeprefix("Skipped: ")
    return str(longrepr)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Any:
    """A skip (in setup, by a fixture, or in the test) of a test without an allowed marker
    becomes a failure that says why it skipped; an ``xfail`` stays what it is."""
    report = yield
    allowed = item.config.stash.get(ALLOWED, None)
    if allowed is None or not report.skipped or hasattr(report, "wasxfail"):
        return report
    if any(item.get_closest_marker(name) for name in allowed):
        return report
    report.outcome = "failed"
    report.longrepr = (
        f"skipped under --strict-skips: {skip_reason(report)}\n"
        "This test must run here: install what it needs"
        + (f", or mark it with one of: {', '.join(sorted(allowed))}" if allowed else "")
    )
    return report


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> Any:
    """A module that skips while imported: an error under ``--strict-skips``."""
    report = yield
    if ALLOWED in collector.config.stash and report.skipped:
        report.outcome = "failed"
        report.longrepr = (
            f"skipped while collected, under --strict-skips: {skip_reason(report)}\n"
            "Every test of this module would have skipped: install what it needs"
        )
    return report
