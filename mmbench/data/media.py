"""Decoding images and audio, with errors that name the row and the file."""

from __future__ import annotations

import io
from typing import Any

import numpy as np

from mmbench.errors import DataError


def describe_ref(ref: Any) -> str:
    """Human-readable origin of a media value: its path, or ``<N bytes>``."""
    if isinstance(ref, dict):
        if ref.get("path"):
            return str(ref["path"])
        if ref.get("bytes") is not None:
            return f"<{len(ref['bytes'])} bytes>"
    return repr(ref)[:80]


def load_image(ref: dict[str, Any], row: int | None = None) -> Any:
    """Decode an image reference to an RGB ``PIL.Image``; raises DataError naming row and path."""
    from PIL import Image, UnidentifiedImageError

    try:
        source = io.BytesIO(ref["bytes"]) if ref.get("bytes") is not None else ref["path"]
        with Image.open(source) as img:
            img.load()
            return img.convert("RGB")
    except (OSError, UnidentifiedImageError, KeyError, TypeError, ValueError) as exc:
        where = f"row {row}: " if row is not None else ""
        raise DataError(f"{where}unreadable image {describe_ref(ref)}: {exc}") from None


def load_audio(ref: dict[str, Any], sample_rate: int, row: int | None = None) -> np.ndarray:
    """Decode an audio reference to mono float32 at ``sample_rate``; DataError names row and path."""
    import soundfile as sf

    try:
        source = io.BytesIO(ref["bytes"]) if ref.get("bytes") is not None else ref["path"]
        wave, sr = sf.read(source, dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, OSError, KeyError, TypeError, ValueError) as exc:
        where = f"row {row}: " if row is not None else ""
        raise DataError(f"{where}unreadable audio {describe_ref(ref)}: {exc}") from None
    wave = wave.mean(axis=1)
    if sr != sample_rate:
        import librosa

        wave = librosa.resample(wave, orig_sr=sr, target_sr=sample_rate)
    return np.ascontiguousarray(wave, dtype=np.float32)


def wav_bytes(wave: np.ndarray, sample_rate: int) -> bytes:
    """Encode a mono float waveform as 16-bit PCM WAV bytes."""
    import soundfile as sf

    buf = io.BytesIO()
    sf.write(buf, np.asarray(wave, dtype=np.float32), sample_rate, format="WAV", subtype="PCM_16")
    return buf.getvalue()
