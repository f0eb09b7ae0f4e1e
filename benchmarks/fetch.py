"""Download + verify time of ``suites/fsdd.yaml`` (3,000 WAV files) from a mirror, cold and warm.

Two mirrors of the same bytes (``../shared/mirror``): the folder itself, and the folder served
over HTTP by a local ``http.server`` (127.0.0.1, threaded), which exercises the real download
path. Cold: an empty data cache, every file fetched and its SHA-256 checked; warm: every file
already cached, every hash checked again, nothing fetched. Skips (exit 0) without the mirror.

    python benchmarks/fetch.py            # 3 repeats of each
"""

from __future__ import annotations

import argparse
import functools
import http.server
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

from _common import REPO, emit, median, table

from mmbench.data.fetch import fetch_dataset
from mmbench.suite import load_suite

MIRROR = REPO.parent / "shared" / "mirror"


def serve(root: Path) -> tuple[http.server.ThreadingHTTPServer, str]:
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    handler = functools.partial(Quiet, directory=str(root))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd, f"http://127.0.0.1:{httpd.server_address[1]}"


def timed_fetch(mirror: str, cache: Path) -> tuple[float, int, int]:
    os.environ["MMBENCH_DATA_DIR"] = str(cache)
    suite = load_suite(REPO / "suites" / "fsdd.yaml")
    start = time.perf_counter()
    rows = fetch_dataset(suite.datasets[0], suite.root, mirror=mirror)
    seconds = time.perf_counter() - start
    bad = [r.error for r in rows if r.error]
    if bad:
        sys.exit(f"fetch failed: {bad[0]}")
    train = rows[0]  # the test source shares the registry: found in the cache, verified again
    return seconds, train.files, sum(r.downloaded for r in rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    if not MIRROR.is_dir():
        print(f"skipped: no mirror at {MIRROR}")
        return
    httpd, url = serve(MIRROR)
    rows = []
    try:
        for label, mirror in (("folder", str(MIRROR)), ("HTTP (local server)", url)):
            cold, warm = [], []
            for _ in range(args.repeats):
                with tempfile.TemporaryDirectory() as tmp:
                    seconds, files, downloaded = timed_fetch(mirror, Path(tmp))
                    assert files == 3000 and downloaded == 3000, (files, downloaded)
                    cold.append(seconds)
                    seconds, _, downloaded = timed_fetch(mirror, Path(tmp))
                    assert downloaded == 0
                    warm.append(seconds)
            rows.append(
                [
                    label,
                    "3,000 (21.1 MB)",
                    f"{median(cold):.1f}",
                    f"{median(warm):.1f}",
                    f"{min(cold):.1f}–{max(cold):.1f}",
                    f"{min(warm):.1f}–{max(warm):.1f}",
                ]
            )
    finally:
        httpd.shutdown()
    body = (
        "`mmbench fetch suites/fsdd.yaml --mirror M` as a library call (train and test sources; "
        "the test source shares the registry, so its files are found in the cache and verified "
        f"again). Median of {args.repeats} runs, seconds.\n\n"
        + table(["mirror", "files", "cold s", "warm s", "cold range", "warm range"], rows)
    )
    emit("fetch", "Fetch: suites/fsdd.yaml from a mirror, cold and warm cache", body)


if __name__ == "__main__":
    main()
