"""One device rule for encoders, heads and provenance."""

from __future__ import annotations

import pytest
import torch

from mmbench.device import DeviceError, resolve_device
from mmbench.errors import MMBenchError


def test_cpu_and_auto() -> None:
    assert resolve_device("cpu") == "cpu"
    assert resolve_device("auto") == ("cuda" if torch.cuda.is_available() else "cpu")
    assert resolve_device() == resolve_device("auto")


@pytest.mark.gpu
@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
@pytest.mark.parametrize("device", ["cuda", "cuda:1"])
def test_missing_cuda_is_an_error_naming_the_option(device: str) -> None:
    with pytest.raises(DeviceError, match=rf"training\.device is '{device}' but no CUDA"):
        resolve_device(device, option="training.device")
    assert issubclass(DeviceError, MMBenchError)  # a recorded fold failure, not a crash


@pytest.mark.gpu
def test_missing_cuda_fails_a_frozen_encoder_and_an_xgboost_head_alike() -> None:
    """Encoders and heads share the rule: no silent pass-through of a missing GPU."""
    if torch.cuda.is_available():
        pytest.skip("needs a machine without CUDA")
    import numpy as np

    from mmbench.config import FusionSpec, TrainSpec
    from mmbench.encoders.base import create_encoder
    from mmbench.fusion import FeatureSet, create_head

    encoder = create_encoder("timm/test_resnet", device="cuda")
    with pytest.raises(DeviceError, match="encoder 'timm/test_resnet' device is 'cuda'"):
        encoder.transform([np.zeros((8, 8, 3), dtype=np.uint8)])
    head = create_head(FusionSpec(name="xgboost"), TrainSpec(device="cuda"), {"a": 2}, 2, seed=0)
    data = FeatureSet({"a": np.zeros((4, 2))}, {"a": np.ones(4, bool)}, np.array([0, 1, 0, 1]))
    with pytest.raises(DeviceError, match=r"training\.device is 'cuda'"):
        head.fit(data)
