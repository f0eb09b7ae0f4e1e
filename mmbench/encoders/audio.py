"""Audio encoders: pooled log-mel / MFCC statistics, and log-mel inputs for a small CNN tower.

Clips are decoded to mono at ``sample_rate`` and cut to the first ``duration`` seconds. The
pooled families summarise each band by its mean and standard deviation over time (dimension
``2 * n_mels`` or ``2 * n_mfcc``), a cheap, deterministic and length-independent descriptor.
Levels are expressed in units of 20 dB (log10 of amplitude) so that features are O(1) for heads
that do not standardise their inputs.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from mmbench.data.media import load_audio
from mmbench.encoders._util import package_version, present_rows, seeded
from mmbench.encoders.base import Encoder, register_encoder
from mmbench.errors import MMBenchError

_DB_UNIT = 20.0


class _SpectralEncoder(Encoder):
    """Shared decoding and log-mel computation for the audio families."""

    modality = "audio"
    version = 1

    def __init__(
        self,
        family: str,
        sample_rate: int = 16000,
        n_mels: int = 40,
        duration: float = 10.0,
        n_fft: int | None = None,
        hop_length: int | None = None,
        **extra: Any,
    ) -> None:
        if sample_rate < 1000 or n_mels < 1 or duration <= 0:
            raise MMBenchError(f"{family} needs sample_rate >= 1000, n_mels >= 1, duration > 0")
        if n_fft is None:  # ~25 ms window rounded up to a power of two
            n_fft = 2 ** math.ceil(math.log2(0.025 * sample_rate))
        super().__init__(
            family,
            sample_rate=int(sample_rate),
            n_mels=int(n_mels),
            duration=float(duration),
            n_fft=int(n_fft),
            hop_length=int(hop_length or sample_rate // 100),  # 10 ms
            **extra,
        )

    def spec(self) -> dict[str, Any]:
        return {**super().spec(), "librosa": package_version("librosa")}

    def _wave(self, ref: Any, row: int) -> np.ndarray:
        """Decoded clip, cropped to ``duration`` and padded to at least one analysis window."""
        o = self.options
        wave = load_audio(ref, o["sample_rate"], row=row)[: int(o["duration"] * o["sample_rate"])]
        if len(wave) < o["n_fft"]:
            wave = np.pad(wave, (0, o["n_fft"] - len(wave)))
        return wave

    def _log_mel(self, wave: np.ndarray) -> np.ndarray:
        """``(n_mels, frames)`` log-mel power in units of 20 dB."""
        import librosa

        o = self.options
        power = librosa.feature.melspectrogram(
            y=wave,
            sr=o["sample_rate"],
            n_fft=o["n_fft"],
            hop_length=o["hop_length"],
            n_mels=o["n_mels"],
        )
        return (librosa.power_to_db(power, ref=1.0, amin=1e-10, top_db=None) / _DB_UNIT).astype(
            np.float32
        )

    def _frames(self, wave: np.ndarray) -> np.ndarray:
        """``(bands, frames)`` time-frequency representation that gets pooled."""
        return self._log_mel(wave)

    @property
    def feature_dim(self) -> int:
        return 2 * self.options["n_mels"]

    def transform(self, values: Any) -> np.ndarray:
        """Per-band mean and std over time; missing clips are zero rows."""
        values = list(values)
        out = np.zeros((len(values), self.feature_dim), dtype=np.float32)
        for i in present_rows(values):
            frames = self._frames(self._wave(values[i], int(i)))
            out[i] = np.concatenate([frames.mean(axis=1), frames.std(axis=1)])
        return out


@register_encoder("logmel")
class LogMelEncoder(_SpectralEncoder):
    """Mean and std over time of each log-mel band: ``2 * n_mels`` features."""

    def __init__(self, **options: Any) -> None:
        super().__init__("logmel", **options)


@register_encoder("mfcc")
class MFCCEncoder(_SpectralEncoder):
    """Mean and std over time of ``n_mfcc`` MFCCs (computed from ``n_mels`` bands)."""

    def __init__(self, n_mfcc: int = 20, **options: Any) -> None:
        if n_mfcc < 1 or n_mfcc > options.get("n_mels", 40):
            raise MMBenchError("mfcc needs 1 <= n_mfcc <= n_mels")
        super().__init__("mfcc", n_mfcc=int(n_mfcc), **options)

    def _frames(self, wave: np.ndarray) -> np.ndarray:
        import librosa

        # From our log-mel (not the waveform) so the level unit is the same as ``logmel``'s.
        return librosa.feature.mfcc(S=self._log_mel(wave), n_mfcc=self.options["n_mfcc"])

    @property
    def feature_dim(self) -> int:
        return 2 * self.options["n_mfcc"]


@register_encoder("audiocnn")
class AudioCNNEncoder(_SpectralEncoder):
    """Fixed-size log-mel ``(n, 1, n_mels, frames)`` for a small CNN tower trained with the head.

    Clips are cropped or zero-padded to exactly ``duration`` seconds so every row has the same
    number of frames; the tower's input BatchNorm learns the level scale.
    """

    trainable = True

    def __init__(
        self,
        duration: float = 5.0,
        channels: list[int] | tuple[int, ...] = (16, 32),
        seed: int = 0,
        **options: Any,
    ) -> None:
        channels = [int(c) for c in channels]
        super().__init__(
            "audiocnn", duration=duration, channels=channels, seed=int(seed), **options
        )

    @property
    def frames(self) -> int:
        o = self.options
        return 1 + int(o["duration"] * o["sample_rate"]) // o["hop_length"]

    def transform(self, values: Any) -> np.ndarray:
        o = self.options
        values = list(values)
        out = np.zeros((len(values), 1, o["n_mels"], self.frames), dtype=np.float32)
        length = int(o["duration"] * o["sample_rate"])
        for i in present_rows(values):
            wave = self._wave(values[i], int(i))
            wave = np.pad(wave, (0, max(length - len(wave), 0)))[:length]
            out[i, 0] = self._log_mel(wave)[:, : self.frames]
        return out

    @property
    def tower_dim(self) -> int:
        return self.options["channels"][-1]

    def build_tower(self) -> Any:
        from mmbench.encoders.towers import SpectrogramCNN

        with seeded(self.options["seed"]):
            return SpectrogramCNN(self.options["channels"])
