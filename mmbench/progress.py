"""Progress bars and messages on a rich console, silent when disabled (library use, tests)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rich.markup import escape


class Reporter:
    """Progress and messages on a rich console; silent when disabled (library use, tests)."""

    def __init__(self, enabled: bool = True, console: Any = None) -> None:
        self.enabled = enabled
        self.console = console
        if enabled and console is None:
            from rich.console import Console

            self.console = Console(stderr=True)

    def info(self, message: str) -> None:
        if self.enabled:
            self.console.print(message)

    def error(self, message: str) -> None:
        """``message`` is printed as written: an install hint such as ``pip install
        'mmbench[text]'`` is not console markup."""
        if self.enabled:
            self.console.print(f"[red]error:[/] {escape(message)}")

    def warning(self, message: str) -> None:
        """Something went wrong beside the result (e.g. tracking), which is still written."""
        if self.enabled:
            self.console.print(f"[yellow]warning:[/] {escape(message)}")

    def task(self, description: str, total: int) -> _Task:
        return _Task(self, description, total)


def _ignore(_result: Any = None) -> None:
    return None


class _Task:
    """Context manager yielding ``advance(fold_result)`` that moves a progress bar."""

    def __init__(self, reporter: Reporter, description: str, total: int) -> None:
        self.reporter, self.description, self.total = reporter, description, total
        self.progress: Any = None

    def __enter__(self) -> Callable[[Any], None]:
        if not self.reporter.enabled:
            return _ignore
        if not self.reporter.console.is_terminal:
            return self._lines()
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

        self.progress = Progress(
            "[progress.description]{task.description}",
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            "{task.fields[status]}",
            console=self.reporter.console,
            transient=False,
        )
        self.progress.start()
        task = self.progress.add_task(self.description, total=self.total, status="")

        def advance(result: Any = None) -> None:
            self.progress.update(task, advance=1, status=_status(result))

        return advance

    def _lines(self) -> Callable[[Any], None]:
        """A log file (a worker's output, CI) gets one line per step: a live bar there is
        drawn once, at the end, and says nothing of the steps while they run."""
        done = 0

        def advance(result: Any = None) -> None:
            nonlocal done
            done += 1
            status = _status(result)
            self.reporter.console.print(f"{self.description} {done}/{self.total} {status}".rstrip())

        return advance

    def __exit__(self, *exc: object) -> None:
        if self.progress is not None:
            self.progress.stop()


def _status(result: Any) -> str:
    """What a step's result says beside the bar: a fold's score or failure, a trial's text."""
    status = getattr(result, "text", "") if not isinstance(result, str) else result
    if result is not None and getattr(result, "error", None):
        status = f"[red]{result.key} failed[/]"
    elif result is not None and getattr(result, "metrics", None):
        status = f"{result.key} macro-F1 {result.metrics.get('f1_macro', float('nan')):.3f}"
    return str(status or "")
