"""The one generic registry: lookups with did-you-mean, and metadata declared at registration."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import FrozenInstanceError, dataclass
from pathlib import Path

import pytest

from mmbench.errors import UnknownNameError
from mmbench.registry import Entry, Registry


@dataclass(frozen=True)
class Info:
    fast: bool = False
    size: int = 1


def test_lookup_names_and_did_you_mean() -> None:
    reg: Registry[str] = Registry("colour")
    reg.register("green")("G")
    reg.register("blue")("B")
    assert reg.get("blue") == "B" and "green" in reg and "red" not in reg
    assert reg.names() == ["blue", "green"] == list(reg)
    with pytest.raises(UnknownNameError, match=r"unknown colour 'gren'.*did you mean 'green'"):
        reg.get("gren")
    with pytest.raises(ValueError, match="already registered"):
        reg.register("blue")("B2")


def test_metadata_is_built_per_entry_and_filters_in_registration_order() -> None:
    reg: Registry[object, Info] = Registry("thing", meta=Info)
    reg.register("zeta", fast=True)("z")
    reg.register("alpha")("a")
    reg.register("mid", fast=True, size=3)("m")
    assert reg.meta("alpha") == Info() and reg.meta("mid") == Info(fast=True, size=3)
    assert reg.entry("zeta") == Entry("zeta", "z", Info(fast=True))
    assert [e.name for e in reg.entries()] == ["zeta", "alpha", "mid"]
    assert [e.name for e in reg.entries(fast=True)] == ["zeta", "mid"]
    assert reg.names(fast=True) == ["mid", "zeta"]
    with pytest.raises(FrozenInstanceError):
        reg.meta("mid").size = 4  # type: ignore[misc]


def test_unknown_metadata_is_an_error_at_registration() -> None:
    reg: Registry[object, Info] = Registry("thing", meta=Info)
    with pytest.raises(TypeError, match="speed"):
        reg.register("x", speed=2)
    plain: Registry[object] = Registry("plain")
    with pytest.raises(TypeError, match="takes no metadata"):
        plain.register("x", fast=True)
    assert plain.names() == []


# -- registry packages: a new built-in is one new file ------------------------------------

NEW_ENCODER = '''
from typing import Any

import numpy as np

from mmbench.encoders.base import Encoder, register_encoder


@register_encoder("length")
class LengthEncoder(Encoder):
    """Characters per text: a one-column feature."""

    modality = "text"

    def __init__(self, scale: float = 1.0) -> None:
        super().__init__("length", scale=scale)

    def transform(self, values: Any) -> np.ndarray:
        lengths = [len(v or "") * self.options["scale"] for v in values]
        return np.asarray(lengths, dtype=np.float32)[:, None]
'''

NEW_FUSION = '''
import numpy as np

from mmbench.config import TrainSpec
from mmbench.fusion.base import FUSIONS, FeatureSet, Head


@FUSIONS.register("prior", torch=False, default_search=False)
class PriorHead(Head):
    """Class frequencies of the training rows, whatever the features."""

    def __init__(self, n_classes: int, seed: int, training: TrainSpec) -> None:
        self.n_classes = n_classes

    def fit(self, train: FeatureSet, valid=None, on_epoch=None) -> "PriorHead":
        self.prior = np.bincount(train.labels, minlength=self.n_classes) / len(train)
        return self

    def predict_proba(self, data: FeatureSet) -> np.ndarray:
        return np.tile(self.prior, (len(data), 1))
'''

USE_THEM = """
import numpy as np
from mmbench.config import FusionSpec, TrainSpec
from mmbench.encoders.base import create_encoder
from mmbench.fusion import FeatureSet, create_head

x = create_encoder("length", scale=2.0).transform(["ab", None, "abcd"])
head = create_head(FusionSpec(name="prior"), TrainSpec(), {"text": 1}, 2, seed=0)
data = FeatureSet({"text": x}, {"text": np.array([True, False, True])}, np.array([0, 1, 1]))
print(x.ravel().tolist(), head.fit(data).predict_proba(data)[0].tolist())
"""


def test_a_new_encoder_or_fusion_is_one_new_file(tmp_path: Path) -> None:
    """The recipe in ARCHITECTURE.md: drop a module into the package, touch nothing else."""
    package = Path(__file__).resolve().parent.parent / "mmbench"
    copy = tmp_path / "mmbench"
    shutil.copytree(package, copy, ignore=shutil.ignore_patterns("__pycache__"))
    (copy / "encoders" / "length.py").write_text(NEW_ENCODER)
    (copy / "fusion" / "prior.py").write_text(NEW_FUSION)
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    out = subprocess.run(
        [sys.executable, "-c", USE_THEM], capture_output=True, text=True, env=env, cwd=tmp_path
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == [
        "[4.0,",
        "0.0,",
        "8.0]",
        "[0.3333333333333333,",
        "0.6666666666666666]",
    ]
