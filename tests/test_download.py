"""url sources through the real download path: a local HTTP server serves a generated mirror.

The server (``http.server`` in a thread, on 127.0.0.1 only) serves a folder laid out as
``HOST/PATH`` — a csv, a parquet file, a zip holding a table and its images, and a many-file
registry of WAV clips — so ``MMBENCH_MIRROR=http://127.0.0.1:PORT`` maps every
``https://data.example.org/...`` URL of the suite to it. Each failure of a bad source is checked
with the time bound a user is promised.
"""

from __future__ import annotations

import hashlib
import http.server
import io
import socket
import threading
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mmbench.data import download, load_source, load_table
from mmbench.data.fetch import fetch_dataset
from mmbench.errors import DataError
from mmbench.suite import Suite, load_suite

HOST = "data.example.org"
SHARED_MIRROR = Path(__file__).resolve().parents[2] / "shared" / "mirror"


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@pytest.fixture(autouse=True)
def _data_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MMBENCH_DATA_DIR", str(tmp_path / "data-cache"))
    monkeypatch.delenv("MMBENCH_MIRROR", raising=False)


# ---------------------------------------------------------------- the generated mirror


def _wav(freq: float) -> bytes:
    import soundfile as sf

    t = np.arange(800) / 8000
    buf = io.BytesIO()
    sf.write(buf, (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32), 8000, format="WAV")
    return buf.getvalue()


def _png(value: int) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (value, 255 - value, 0)).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def mirror(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``HOST/...``: tab/train.csv, tab/train.parquet, img/images.zip, rec/*.wav (+ registry)."""
    import pandas as pd

    root = tmp_path_factory.mktemp("mirror")
    site = root / HOST
    labels = ["a", "b"] * 12
    frame = pd.DataFrame(
        {"x": np.arange(24, dtype=float), "note": [f"row {i}" for i in range(24)], "y": labels}
    )
    (site / "tab").mkdir(parents=True)
    frame.to_csv(site / "tab" / "train.csv", index=False)
    frame.to_parquet(site / "tab" / "train.parquet", index=False)
    (site / "img").mkdir()
    with zipfile.ZipFile(site / "img" / "images.zip", "w") as zf:
        rows = ["image,y"] + [f"pics/{i}.png,{labels[i]}" for i in range(12)]
        zf.writestr("data/rows.csv", "\n".join(rows) + "\n")
        for i in range(12):
            zf.writestr(f"data/pics/{i}.png", _png(i * 20))
    data = (site / "img" / "images.zip").read_bytes()
    (site / "img" / "truncated.zip").write_bytes(data[: len(data) // 2])
    (site / "rec").mkdir()
    for digit in range(2):
        for take in range(5):
            (site / "rec" / f"{digit}_spk_{take}.wav").write_bytes(_wav(300 + 400 * digit + take))
    return root


def hash_of(mirror: Path, path: str) -> str:
    return sha256((mirror / HOST / path).read_bytes())


class Server:
    """The mirror over HTTP, plus the misbehaviours of item 3 under their own path prefixes."""

    def __init__(self, root: Path) -> None:
        self.requests: list[str] = []
        requests = self.requests

        class Handler(http.server.SimpleHTTPRequestHandler):
            def __init__(self, *args: Any, **kwargs: Any) -> None:
                super().__init__(*args, directory=str(root), **kwargs)

            def do_GET(self) -> None:
                requests.append(self.path)
                if self.path.startswith("/cut/"):  # announce every byte, send half, hang up
                    data = (root / self.path.removeprefix("/cut/")).read_bytes()
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data[: len(data) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                super().do_GET()

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def server(mirror: Path) -> Iterator[Server]:
    s = Server(mirror)
    yield s
    s.close()


def write_suite(folder: Path, datasets: list[dict[str, Any]], name: str = "remote") -> Suite:
    import yaml

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump({"name": name, "seed": 0, "datasets": datasets}))
    return load_suite(path)


def url_dataset(name: str, path: str, hash_: str, **source: Any) -> dict[str, Any]:
    return {
        "name": name,
        "source": {"kind": "url", "url": f"https://{HOST}/{path}", "hash": hash_, **source},
        "target": "y",
        "modalities": {"tabular": ["x"], "text": "note"},
        "protocol": {"folds": 2},
        "pipeline": {"encoders": {"tabular": "tabular"}, "fusion": {"name": "linear"}},
    }


def all_kinds(mirror: Path, folder: Path) -> Suite:
    """csv, parquet, a zip with images, and a registry of WAV files: one dataset each."""
    registry = folder / "rec.registry.txt"
    folder.mkdir(parents=True, exist_ok=True)
    download.write_registry(
        registry, mirror / HOST / "rec", [p.name for p in (mirror / HOST / "rec").iterdir()]
    )
    zipped = url_dataset("zip", "img/images.zip", hash_of(mirror, "img/images.zip"))
    zipped["source"]["path"] = "**/rows.csv"  # found wherever the archive keeps it
    zipped["modalities"] = {"image": "image"}
    recordings = {
        "name": "rec",
        "source": {
            "kind": "url",
            "base_url": f"https://{HOST}/rec/",
            "registry": registry.name,
            "rows_from_names": {
                "file_column": "audio",
                "pattern": r"(?P<digit>\d)_(?P<speaker>[a-z]+)_(?P<take>\d+)\.wav",
            },
        },
        "target": "digit",
        "modalities": {"audio": "audio"},
        "protocol": {"folds": 2},
    }
    return write_suite(
        folder,
        [
            url_dataset("csv", "tab/train.csv", hash_of(mirror, "tab/train.csv")),
            url_dataset("parquet", "tab/train.parquet", hash_of(mirror, "tab/train.parquet")),
            zipped,
            recordings,
        ],
    )


# ---------------------------------------------------------------- what works


def test_every_kind_of_url_source_loads_through_a_mirror_url(
    mirror: Path, server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """csv, parquet, images inside a zip and a many-file registry, all over HTTP."""
    monkeypatch.setenv("MMBENCH_MIRROR", server.url)
    suite = all_kinds(mirror, tmp_path / "suite")
    tables = {d.name: load_table(d, suite.root) for d in suite.datasets}
    assert len(tables["csv"]) == len(tables["parquet"]) == 24
    assert tables["csv"].classes == ["a", "b"] and tables["csv"].tabular is not None
    images = tables["zip"].image
    assert images is not None and len(images) == 12
    unpacked = download.cache_path(f"https://{HOST}/img/images.zip.d")
    assert all(Path(r["path"]).parent == unpacked / "data" / "pics" for r in images if r)
    assert tables["rec"].classes == ["0", "1"] and len(tables["rec"]) == 10
    cached = download.cache_path(f"https://{HOST}/rec/0_spk_0.wav")
    assert cached.read_bytes() == (mirror / HOST / "rec" / "0_spk_0.wav").read_bytes()


def test_fetch_is_idempotent_and_a_mirror_folder_equals_a_mirror_url(
    mirror: Path, server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    suite = all_kinds(mirror, tmp_path / "suite")
    first = [r for d in suite.datasets for r in fetch_dataset(d, suite.root, mirror=server.url)]
    assert all(r.error is None for r in first), [r.error for r in first]
    assert sum(r.downloaded for r in first) == 3 + 10
    served = len(server.requests)
    again = [r for d in suite.datasets for r in fetch_dataset(d, suite.root, mirror=server.url)]
    assert sum(r.downloaded for r in again) == 0 and len(server.requests) == served
    assert [(r.files, r.size) for r in again] == [(r.files, r.size) for r in first]

    by_url = {p.relative_to(tmp_path / "data-cache"): p.read_bytes() for p in _files(tmp_path)}
    monkeypatch.setenv("MMBENCH_DATA_DIR", str(tmp_path / "other-cache"))
    from_folder = [
        r for d in suite.datasets for r in fetch_dataset(d, suite.root, mirror=str(mirror))
    ]
    assert all(r.error is None for r in from_folder) and len(server.requests) == served
    other = tmp_path / "other-cache"
    assert {p.relative_to(other): p.read_bytes() for p in _files(tmp_path, other)} == by_url


def test_fetched_media_keep_their_fingerprint_under_another_data_dir(
    mirror: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Recordings of a registry and images of an archive, fetched into two data caches, are
    the same data: the tables' fingerprints (and feature-cache keys) are the same."""
    suite = all_kinds(mirror, tmp_path / "suite")
    media = [d for d in suite.datasets if d.name in ("rec", "zip")]
    monkeypatch.setenv("MMBENCH_MIRROR", str(mirror))
    first = {d.name: load_table(d, suite.root) for d in media}
    monkeypatch.setenv("MMBENCH_DATA_DIR", str(tmp_path / "elsewhere"))
    second = {d.name: load_table(d, suite.root) for d in media}
    for name, table in first.items():
        assert second[name].audio or second[name].image
        moved = (second[name].audio or second[name].image)[0]["path"]
        assert moved.startswith(str(tmp_path / "elsewhere"))
        assert second[name].fingerprint == table.fingerprint, name


def _files(tmp_path: Path, root: Path | None = None) -> list[Path]:
    root = root or tmp_path / "data-cache"
    return sorted(p for p in root.rglob("*") if p.is_file())


def test_an_unpublished_hash_is_pinned_on_first_fetch_and_then_verified(
    mirror: Path, server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MMBENCH_MIRROR", server.url)
    suite = write_suite(tmp_path, [url_dataset("csv", "tab/train.csv", "unpublished")])
    [row] = fetch_dataset(suite.datasets[0], suite.root)
    assert row.error is None and row.verified == "sha256 (pinned)"
    lock = download.LockFile(tmp_path / "remote.lock").read()
    assert lock == {f"https://{HOST}/tab/train.csv": hash_of(mirror, "tab/train.csv")}
    # the lock now pins it: another file served at that URL is refused
    lock_file = download.LockFile(tmp_path / "remote.lock")
    lock_file.pin(f"https://{HOST}/tab/train.csv", sha256(b"other bytes"))
    monkeypatch.setenv("MMBENCH_DATA_DIR", str(tmp_path / "fresh"))
    [row] = fetch_dataset(suite.datasets[0], suite.root)
    assert row.error is not None and "hash mismatch" in row.error


# ---------------------------------------------------------------- bad sources, with time bounds


def fails_within(seconds: float, fn: Any) -> tuple[str, float]:
    start = time.monotonic()
    with pytest.raises(DataError) as info:
        fn()
    took = time.monotonic() - start
    assert took < seconds, f"took {took:.1f} s: {info.value}"
    return str(info.value), took


def test_unreachable_host_fails_fast_naming_url_cache_and_mirror(tmp_path: Path) -> None:
    with socket.socket() as s:  # a port nothing listens on: connection refused
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"https://{HOST}/tab/train.csv"
    message, _ = fails_within(
        10, lambda: download.fetch_file(url, sha256(b"x"), mirror=f"http://127.0.0.1:{port}")
    )
    assert url in message and str(download.cache_path(url)) in message
    assert "--mirror" in message and "MMBENCH_MIRROR" in message and "unreachable" in message


def test_a_server_that_never_answers_fails_within_30_s() -> None:
    """The connection is accepted (by the kernel's backlog) and no byte ever comes back."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        mirror = f"http://127.0.0.1:{silent.getsockname()[1]}"
        url = f"https://{HOST}/tab/train.csv"
        message, took = fails_within(
            30, lambda: download.fetch_file(url, sha256(b"x"), mirror=mirror)
        )
    assert "sent nothing" in message and url in message and "--mirror" in message
    assert took >= download.READ_TIMEOUT_S  # it did wait for the server, once per attempt


def test_hash_mismatch_names_both_hashes_and_leaves_no_file(
    mirror: Path, server: Server, tmp_path: Path
) -> None:
    url = f"https://{HOST}/tab/train.csv"
    wrong = sha256(b"what the suite pinned")
    message, _ = fails_within(10, lambda: download.fetch_file(url, wrong, mirror=server.url))
    assert wrong in message and hash_of(mirror, "tab/train.csv") in message
    assert not any((tmp_path / "data-cache").rglob("*.csv"))
    assert not [p for p in (tmp_path / "data-cache").rglob("*") if p.is_file()]  # no temp file


def test_a_cached_file_that_no_longer_matches_is_fetched_again(
    mirror: Path, server: Server
) -> None:
    url = f"https://{HOST}/tab/train.csv"
    good = hash_of(mirror, "tab/train.csv")
    path = download.fetch_file(url, good, mirror=server.url).path
    path.write_bytes(b"corrupted on disk")
    again = download.fetch_file(url, good, mirror=server.url)
    assert (
        again.downloaded
        and again.path.read_bytes() == (mirror / HOST / "tab/train.csv").read_bytes()
    )


def test_404_is_named(server: Server) -> None:
    url = f"https://{HOST}/tab/missing.csv"
    message, _ = fails_within(10, lambda: download.fetch_file(url, sha256(b"x"), mirror=server.url))
    assert "HTTP 404" in message and url in message


def test_a_transfer_cut_short_is_an_error(mirror: Path, server: Server) -> None:
    url = f"https://{HOST}/tab/train.parquet"
    message, _ = fails_within(
        10,
        lambda: download.fetch_file(
            url, hash_of(mirror, "tab/train.parquet"), mirror=server.url + "/cut"
        ),
    )
    assert "cut short" in message
    assert not download.cache_path(url).exists()


def test_truncated_archive_and_missing_member(
    mirror: Path, server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A zip whose (pinned) bytes are truncated cannot be unpacked; a member that is not in a
    good zip is named with what the zip holds. Either is a failed row of ``fetch``."""
    monkeypatch.setenv("MMBENCH_MIRROR", server.url)
    truncated = url_dataset("cut", "img/truncated.zip", hash_of(mirror, "img/truncated.zip"))
    truncated["source"]["path"] = "data/rows.csv"
    missing = url_dataset("member", "img/images.zip", hash_of(mirror, "img/images.zip"))
    missing["source"]["path"] = "data/row.csv"
    suite = write_suite(tmp_path / "s", [truncated, missing])
    start = time.monotonic()
    cut, member = (fetch_dataset(d, suite.root)[0] for d in suite.datasets)
    assert time.monotonic() - start < 10
    assert cut.error is not None and "truncated or corrupt" in cut.error
    assert not download.cache_path(f"https://{HOST}/img/truncated.zip").exists()
    assert member.error is not None and "has no member 'data/row.csv'" in member.error
    assert "did you mean 'data/rows.csv'" in member.error


def test_a_failing_dataset_is_a_failed_row_and_the_others_keep_their_results(
    mirror: Path, server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mmbench.run import RunOptions, run_suite

    monkeypatch.setenv("MMBENCH_MIRROR", server.url)
    good = url_dataset("good", "tab/train.csv", hash_of(mirror, "tab/train.csv"))
    gone = url_dataset("gone", "tab/gone.csv", sha256(b"x"))
    suite = write_suite(tmp_path / "s", [gone, good])
    bad, ok = run_suite(
        suite, RunOptions(results_dir=tmp_path / "res", track=False, progress=False)
    )
    assert bad.name == "gone" and bad.error is not None and "HTTP 404" in bad.error
    assert ok.error is None and ok.path is not None and ok.path.is_file()


# A hub source behind a silent HF_ENDPOINT: tests/test_data.py::test_a_hub_endpoint_that_never_
# answers_fails_fast (the same bound, 2 s measured).


# ---------------------------------------------------------------- the command and the real mirror


def test_mmbench_fetch_prints_a_table_and_fails_on_a_bad_source(
    mirror: Path, server: Server, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from mmbench.cli import main

    suite = all_kinds(mirror, tmp_path / "suite")
    path = str(suite.path)
    assert main(["fetch", path, "--dataset", "csv", "--mirror", server.url, "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "csv" in out and "yes" in out
    assert main(["fetch", path, "--dataset", "rec", "--mirror", str(tmp_path), "--quiet"]) == 1
    assert "is not in the mirror" in capsys.readouterr().out


@pytest.mark.shared
@pytest.mark.skipif(
    not (SHARED_MIRROR / "raw.githubusercontent.com").is_dir(), reason="no ../shared/mirror"
)
def test_fsdd_suite_from_the_shared_mirror(monkeypatch: pytest.MonkeyPatch) -> None:
    """suites/fsdd.yaml: 3,000 files verified; the official split; speakers kept."""
    suite = load_suite(Path(__file__).resolve().parents[1] / "suites" / "fsdd.yaml")
    spec = suite.datasets[0]
    rows = fetch_dataset(spec, suite.root, mirror=str(SHARED_MIRROR))
    assert [(r.files, r.error) for r in rows] == [(3000, None), (3000, None)]
    monkeypatch.setenv("MMBENCH_MIRROR", str(SHARED_MIRROR))
    train = load_table(spec, suite.root)
    test = load_table(spec, suite.root, split="test", classes=train.classes)
    assert (len(train), len(test)) == (2700, 300) and train.classes == [str(d) for d in range(10)]
    rows = load_source(spec.source, suite.root)  # the speaker stays a column (grouped CV, later)
    assert {"audio", "digit", "speaker", "take"} <= set(rows.column_names)
    assert len(set(rows["speaker"])) == 6


def test_the_mirror_option_reaches_the_data_layer_as_an_absolute_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--mirror`` on run, worker, finalize, validate and fetch: relative folders are resolved
    (workers may start elsewhere), URLs kept as given."""
    from mmbench.cli import build_parser, use_mirror

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MMBENCH_MIRROR", "")  # restored after the test: use_mirror sets it
    for command in ("run", "worker", "finalize", "validate", "fetch"):
        args = build_parser().parse_args([command, "suite.yaml", "--mirror", "../m"])
        assert args.mirror == "../m"
    use_mirror("../m")
    assert download.mirror_from_env() == str((tmp_path / "../m").resolve())
    use_mirror("http://10.0.0.1:8000")
    assert download.mirror_from_env() == "http://10.0.0.1:8000"
