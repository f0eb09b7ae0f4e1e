"""Which device a model runs on: one rule for encoders, heads and the provenance of a result.

Low in the package (it imports only :mod:`mmbench.errors`; torch is imported when a device is
resolved) so that encoders, fusion heads and the runner agree on what ``"auto"`` means and on a
missing GPU being an error rather than a crash deep inside torch.
"""

from __future__ import annotations

from mmbench.errors import MMBenchError


class DeviceError(MMBenchError):
    """A device was asked for that this machine does not have."""


def resolve_device(device: str = "auto", *, option: str = "device") -> str:
    """``"auto"`` becomes ``"cuda"`` when a GPU is visible, else ``"cpu"``.

    Asking for CUDA (``"cuda"``, ``"cuda:1"``) without a visible GPU raises :class:`DeviceError`
    naming ``option`` (e.g. ``training.device``), so the user learns which setting to change.
    Other values (``"cpu"``, ``"mps"``) are returned as they are.
    """
    if device == "cpu":
        return device
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise DeviceError(f"{option} is {device!r} but no CUDA device is available")
    return device


def idle_cores() -> int:
    """Cores this process may use that other processes are not already keeping busy (>= 1).

    For CPU thread pools (torch's intra-op threads): on a shared machine, threads that outnumber
    the idle cores spin-wait on each other and run several times slower than fewer threads.
    Busy cores are the smaller of the 1-minute load average and the tasks runnable right now
    besides the caller: the average alone remembers this process's own last minute of work,
    and would make a long encoding on an idle machine drop to one thread.
    """
    import os

    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    try:
        busy = os.getloadavg()[0]
    except OSError:
        busy = 0.0
    running = _runnable_now()
    if running is not None:
        busy = min(busy, max(0, running - 1))
    return max(1, min(cores, cores - int(busy)))


def _runnable_now() -> int | None:
    """Tasks running or runnable at this instant (``/proc/loadavg``), None where unknown."""
    try:
        with open("/proc/loadavg") as f:
            return int(f.read().split()[3].split("/")[0])
    except (OSError, IndexError, ValueError):
        return None
