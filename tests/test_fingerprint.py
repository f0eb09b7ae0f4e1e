"""The dataset fingerprint identifies the data, not the machine that generated or loaded it.

The CI gate refuses to compare a rerun whose fingerprint differs from its baseline's, so a
fingerprint that moved with the CPU's floating-point rounding made the gate fail on every
machine but the one that wrote the baseline (AVX-512 ``np.exp`` vs AVX2 ``np.exp``
differ in the last bit of the synthetic ``num_2`` column).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mmbench.data.table import MultiModalTable

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
