"""A fixed reference computation, so that wall times can be compared across machines.

The gate cannot compare a rerun's fit time in seconds with the baseline's: CI machines differ
in speed and load. It compares the *ratio* of the fit time to this reference, timed in the same
process just after the fit, under the same thread settings and competing load. The reference
is the same kind of work as fitting a fusion head on cached features: a small MLP trained with
Adam on one intra-op thread (what :func:`mmbench.fusion.training.small_model_threads` sets on
the CPU), on fixed data, for a fixed number of steps. A slower or busier machine slows both.
"""

from __future__ import annotations

import statistics
import time

REFERENCE_STEPS = 150
REFERENCE_REPEATS = 3


def reference_seconds(repeats: int = REFERENCE_REPEATS, steps: int = REFERENCE_STEPS) -> float:
    """Median wall time of ``repeats`` runs of the reference training loop (about 0.1 s each).

    The median of short runs resists a burst of competing load better than one long run; the
    gate times it after every fold, so it costs about 0.4 s per fold.
    """
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return statistics.median(_one_run(steps) for _ in range(repeats))
    finally:
        torch.set_num_threads(threads)


def _one_run(steps: int) -> float:
    import torch
    from torch import nn

    gen = torch.Generator().manual_seed(0)
    x = torch.randn(256, 128, generator=gen)
    y = torch.randint(0, 4, (256,), generator=gen)
    model = nn.Sequential(nn.Linear(128, 128), nn.ReLU(), nn.Linear(128, 4))
    optim = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    start = time.perf_counter()
    for _ in range(steps):
        optim.zero_grad()
        loss_fn(model(x), y).backward()
        optim.step()
    return time.perf_counter() - start
