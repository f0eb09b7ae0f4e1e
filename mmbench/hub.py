"""Talking to the Hugging Face hub without hanging when there is no network.

``datasets``, ``timm`` and ``sentence-transformers`` all retry hub requests for a long time
before giving up. mmbench probes the hub once with a short timeout and, when it is unreachable,
puts the libraries in offline mode so that a missing cache entry fails at once.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator

HUB_PROBE_TIMEOUT_S = 2.0
_TRUE = {"1", "ON", "YES", "TRUE"}


def hub_offline_forced() -> bool:
    """Whether the environment asks for offline mode (``HF_HUB_OFFLINE``/``HF_DATASETS_OFFLINE``)."""
    names = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE")
    return any(os.environ.get(n, "").upper() in _TRUE for n in names)


def hub_reachable(timeout: float = HUB_PROBE_TIMEOUT_S) -> bool:
    """Whether the hub *answers* an HTTP request within ``timeout`` (DNS and TLS included).

    Any HTTP response counts, an error status too; a refused connection, a failed lookup or an
    endpoint that accepts the connection but never answers (a proxy or firewall that swallows
    requests) does not — with those, the libraries' own timeouts and retries take minutes. The
    probe runs in a daemon thread because name resolution ignores socket timeouts.
    """
    import urllib.error
    import urllib.request

    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
    result: list[bool] = []

    def probe() -> None:
        try:
            with urllib.request.urlopen(endpoint, timeout=timeout) as resp:
                resp.read(1)
            result.append(True)
        except urllib.error.HTTPError:
            result.append(True)  # it answered
        except (OSError, ValueError):
            result.append(False)

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(timeout)
    return bool(result and result[0])


@contextlib.contextmanager
def offline_mode(enabled: bool) -> Iterator[None]:
    """Temporarily put datasets and huggingface_hub in offline mode (both read it at import)."""
    if not enabled:
        yield
        return
    import datasets.config
    import huggingface_hub.constants as hub_constants

    saved = (datasets.config.HF_HUB_OFFLINE, hub_constants.HF_HUB_OFFLINE)
    datasets.config.HF_HUB_OFFLINE = hub_constants.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        datasets.config.HF_HUB_OFFLINE, hub_constants.HF_HUB_OFFLINE = saved


@contextlib.contextmanager
def offline_unless_reachable() -> Iterator[bool]:
    """Offline mode when forced by the environment or when the hub does not answer quickly.

    Yields whether offline mode is on, so that callers can word their error messages.
    """
    offline = hub_offline_forced() or not hub_reachable()
    with offline_mode(offline):
        yield offline
