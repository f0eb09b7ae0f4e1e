"""The dataset fingerprint identifies the data, not the machine that generated or loaded it.

The CI gate refuses to compare a rerun whose fingerprint differs from its baseline's, so a
fingerprint that moved with the CPU's floating-point rounding made the gate fail on every
machine but the one that wrote the baseline (AVX-512 ``np.exp`` vs AVX2 ``np.exp``
differ in the last bit of the synthetic ``num_2`` column).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mmbench.data import load_table
from mmbench.data.media import wav_bytes
from mmbench.data.table import MultiModalTable
from mmbench.pipeline.cache import FeatureCache
from mmbench.suite import DatasetSpec

ROOT = Path(__file__).resolve().parents[1]


def _table(tabular: pd.DataFrame, labels: np.ndarray | None = None) -> MultiModalTable:
    labels = np.arange(len(tabular)) % 2 if labels is None else labels
    return MultiModalTable("t", labels, ["a", "b"], text=["x"] * len(tabular), tabular=tabular)


def _frame(rng: np.random.Generator, n: int = 200) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "exp": np.exp(rng.normal(0, 1, n)),
            "sin": np.sin(rng.uniform(0, 7, n)),
            "big": rng.normal(0, 1, n) * 1e9,
            "count": rng.integers(0, 50, n),
            "colour": rng.choice(["red", "green", "blue"], n),
        }
    )


def test_fingerprint_ignores_last_bit_jitter_of_every_float() -> None:
    frame = _frame(np.random.default_rng(0))
    jittered = frame.copy()
    for col in ("exp", "sin", "big"):  # one ulp up or down, as another CPU's libm may give
        values = jittered[col].to_numpy()
        direction = np.where(np.arange(len(values)) % 2 == 0, np.inf, -np.inf)
        jittered[col] = np.nextafter(values, direction)
    assert not frame.equals(jittered)
    assert _table(jittered).fingerprint == _table(frame).fingerprint


@pytest.mark.parametrize(
    "change",
    [
        lambda f: f.assign(exp=f["exp"] + np.r_[1e-4, np.zeros(len(f) - 1)]),
        lambda f: f.assign(count=f["count"] + np.r_[1, np.zeros(len(f) - 1, dtype=int)]),
        lambda f: f.assign(colour=["red", *f["colour"].iloc[1:]]).assign(
            colour=lambda g: g["colour"].where(g.index != 0, "violet")
        ),
        lambda f: f.rename(columns={"sin": "cos"}),
        lambda f: f.assign(sin=f["sin"].where(f.index != 3, np.nan)),
    ],
    ids=["float moved 1e-4", "count +1", "category", "column renamed", "cell missing"],
)
def test_any_change_a_person_would_see_changes_the_fingerprint(change) -> None:
    frame = _frame(np.random.default_rng(1))
    assert _table(change(frame)).fingerprint != _table(frame).fingerprint


def test_fingerprint_ignores_dtype_spelling() -> None:
    """pandas 2 reads strings as object, pandas 3 as ``str``; both are the same data."""
    frame = _frame(np.random.default_rng(2))
    respelled = frame.astype({"colour": "string", "count": "Int64", "exp": "float32"})
    respelled["exp"] = frame["exp"]  # back to float64 after the round trip through float32
    assert _table(respelled).fingerprint == _table(frame).fingerprint
    assert _table(frame.astype({"colour": object})).fingerprint == _table(frame).fingerprint


def test_labels_and_media_bytes_are_part_of_the_fingerprint() -> None:
    frame = _frame(np.random.default_rng(3), n=10)
    base = _table(frame)
    flipped = np.array(base.labels)
    flipped[0] = 1 - flipped[0]
    assert _table(frame, flipped).fingerprint != base.fingerprint


def _recordings(folder: Path, n: int = 8) -> DatasetSpec:
    """``folder/rows.csv`` listing ``n`` WAV files under ``folder/clips`` by relative path."""
    (folder / "clips").mkdir(parents=True)
    t = np.linspace(0, 0.05, 400, endpoint=False)
    for i in range(n):
        wave = 0.3 * np.sin(2 * np.pi * (200 + 50 * i) * t)
        (folder / "clips" / f"{i}.wav").write_bytes(wav_bytes(wave, 8000))
    rows = pd.DataFrame(
        {"audio": [f"clips/{i}.wav" for i in range(n)], "label": ["a", "b"] * (n // 2)}
    )
    rows.to_csv(folder / "rows.csv", index=False)
    return DatasetSpec.model_validate(
        {
            "name": "clips",
            "source": {"kind": "csv", "path": "rows.csv"},
            "target": "label",
            "modalities": {"audio": "audio"},
            "protocol": {"folds": 2},
        }
    )


def _age(folder: Path, seconds: float = 60.0) -> None:
    """Date every file back, as data fetched in an earlier run is (so its hash is remembered)."""
    for path in folder.rglob("*"):
        stat = path.stat()
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns - int(seconds * 1e9)))


def test_media_files_are_fingerprinted_by_content_wherever_they_lie(tmp_path: Path) -> None:
    """The same recordings under another folder (another ``MMBENCH_DATA_DIR``, another
    machine's checkout) are the same data; one byte changed in one file is other data."""
    dataset = _recordings(tmp_path / "here")
    _age(tmp_path / "here")
    here = load_table(dataset, tmp_path / "here")
    shutil.move(tmp_path / "here", tmp_path / "there")
    there = load_table(dataset, tmp_path / "there")
    assert here.audio[0]["path"] != there.audio[0]["path"]
    assert there.fingerprint == here.fingerprint

    clip = tmp_path / "there" / "clips" / "5.wav"
    data = bytearray(clip.read_bytes())
    data[-1] ^= 0x01  # one bit of the last sample: same size, still a valid WAV
    clip.write_bytes(bytes(data))
    edited = load_table(dataset, tmp_path / "there")
    assert edited.fingerprint != here.fingerprint
    assert load_table(dataset, tmp_path / "there").fingerprint == edited.fingerprint


def test_an_edit_in_place_is_seen_even_within_the_mtime_clocks_resolution(tmp_path: Path) -> None:
    """Two writes a millisecond apart may leave size and mtime equal: a file that recent is
    hashed again rather than taken from the process's memory of it."""
    dataset = _recordings(tmp_path / "d", n=4)
    first = load_table(dataset, tmp_path / "d")
    clip = tmp_path / "d" / "clips" / "0.wav"
    stamp = clip.stat().st_mtime_ns
    data = bytearray(clip.read_bytes())
    data[-1] ^= 0x01
    clip.write_bytes(bytes(data))
    os.utime(clip, ns=(stamp, stamp))  # the second write got the same coarse timestamp
    assert load_table(dataset, tmp_path / "d").fingerprint != first.fingerprint


def test_moved_media_still_hit_the_feature_cache(tmp_path: Path) -> None:
    """Feature-cache keys derive from the fingerprint: frozen features of the moved folder's
    recordings are the ones already computed."""
    from mmbench.encoders.base import create_encoder
    from mmbench.pipeline import frozen_features

    dataset = _recordings(tmp_path / "a")
    cache = FeatureCache(tmp_path / "cache")
    encoder = create_encoder("logmel", sample_rate=8000)
    first = frozen_features(load_table(dataset, tmp_path / "a"), "audio", encoder, cache)
    assert (cache.hits, cache.misses) == (0, 1)
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    again = frozen_features(load_table(dataset, tmp_path / "b"), "audio", encoder, cache)
    assert (cache.hits, cache.misses) == (1, 1)
    np.testing.assert_array_equal(again, first)


def test_in_memory_media_and_unreadable_paths_keep_their_fingerprints() -> None:
    """Media given as bytes (the generator's) hash as before; a path with no file behind it
    (a serving request's URL) is known by its name alone."""
    clip = {"path": None, "bytes": b"RIFF1234"}
    gone = {"path": "/nonexistent/clip.wav", "bytes": None}
    table = MultiModalTable("m", np.array([0, 1]), ["a", "b"], audio=[clip, gone])
    assert table.fingerprint == "7a3ade5ad79a373f"  # as computed before files were read


_PROBE = """
import hashlib, json, sys
import numpy as np
from mmbench.data.synthetic import generate
ds = generate(n_rows=400, n_classes=3, seed=0, image_size=16, audio_seconds=0.1)
from mmbench.suite import load_suite
from mmbench.data import load_table
suite = load_suite(sys.argv[1])
raw = {c: hashlib.sha256(np.asarray(ds[c], dtype=float).tobytes()).hexdigest()
       for c in ("num_0", "num_1", "num_2", "num_3")}
prints = {d.name: load_table(d, suite.root).fingerprint for d in suite.datasets}
print(json.dumps({"raw": raw, "fingerprints": prints}))
"""


def _generate_under(env_extra: dict[str, str]) -> dict:
    env = {**os.environ, **env_extra}
    out = subprocess.run(
        [sys.executable, "-c", _PROBE, str(ROOT / "suites" / "ci.yaml")],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_generated_data_and_ci_fingerprints_are_the_same_on_another_simd_path() -> None:
    """numpy picks its ``exp``/``sin``/``cos`` kernels by CPU; switching its AVX-512 kernels
    off here is what an AVX2-only runner (the CI machine that broke the gate) does. The stored
    floats, hence the fingerprints, must not move, and they must equal the committed baseline's
    (what ``mmbench regress`` in ``.ci/run`` checks first)."""
    native = _generate_under({})
    avx2 = _generate_under({"NPY_DISABLE_CPU_FEATURES": "AVX512_SPR AVX512_ICL X86_V4"})
    assert avx2 == native
    baseline = json.loads((ROOT / "benchmarks" / "baselines" / "ci.json").read_text())
    recorded = {name: d["fingerprint"] for name, d in baseline["datasets"].items()}
    assert native["fingerprints"] == recorded
