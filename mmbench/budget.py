"""Wall-clock budgets as a contract: one deadline, checked where long work can stop.

A dataset job's ``timeout_s`` covers the search, the final model and test scoring. Optuna's own
``timeout`` only stops *starting* trials, so a slow trial that begins just before it can overrun
by minutes. A :class:`Deadline` is passed down instead, and the long loops check it between
units of work they can abandon cleanly — folds, epochs, boosting rounds — raising
:class:`DeadlineReached`, which the search records as the trial's reason.

:class:`CostModel` remembers how long finished trials took, per kind of candidate, so the search
can decline a candidate that cannot finish in the time left instead of starting it.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

from mmbench.errors import MMBenchError


class DeadlineReached(MMBenchError):
    """The job's wall-clock budget ran out while this work was in progress."""


@dataclass(frozen=True)
class Deadline:
    """A point on the monotonic clock (``None``: no limit)."""

    at: float | None = None

    @classmethod
    def after(cls, seconds: float | None) -> Deadline:
        return cls(None if seconds is None else time.monotonic() + float(seconds))

    def remaining(self) -> float:
        return math.inf if self.at is None else self.at - time.monotonic()

    def expired(self) -> bool:
        return self.remaining() <= 0

    def check(self, what: str) -> None:
        """Raise :class:`DeadlineReached` naming ``what`` was cut short, once time is up."""
        if self.expired():
            raise DeadlineReached(f"time budget reached during {what}")

    def earlier(self, seconds: float) -> Deadline:
        """The same deadline moved ``seconds`` earlier (time reserved for later steps)."""
        return self if self.at is None else Deadline(self.at - seconds)


NO_DEADLINE = Deadline()


@dataclass
class CostModel:
    """Seconds per finished trial, by candidate kind; predicts the cost of the next one.

    The estimate for a kind is the largest time seen for it (a cautious choice: the budget is a
    contract, and trials of one kind vary with their options). A kind never seen is unknown
    (``None``): the caller decides, usually by trying it.
    """

    seconds: dict[str, list[float]] = field(default_factory=dict)

    def record(self, kind: str, seconds: float) -> None:
        self.seconds.setdefault(kind, []).append(float(seconds))

    def estimate(self, kind: str) -> float | None:
        seen = self.seconds.get(kind)
        return max(seen) if seen else None

    def fits(self, kind: str, deadline: Deadline) -> bool:
        """False only when a finished trial of this kind took longer than the time left."""
        estimate = self.estimate(kind)
        return estimate is None or estimate <= deadline.remaining()
