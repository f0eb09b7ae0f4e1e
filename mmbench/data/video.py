"""Video values: decoding files with PyAV, frame-image lists, and uniform frame sampling.

A video value in a :class:`~mmbench.data.table.MultiModalTable` is either a media reference to a
video file (``{"bytes", "path"}``, like an image or a clip) or a *frame list*,
``{"bytes": None, "path": None, "frames": [image ref, ...]}``, for datasets that ship videos as
ordered frame images. Either way an encoder asks for ``k`` frames sampled uniformly over the
video's length (:func:`uniform_indices`) and gets RGB ``PIL.Image``s back; an unreadable value
raises a :class:`~mmbench.errors.DataError` naming the row and the file.

PyAV (the ``av`` package, FFmpeg's bindings) is optional and imported when a file is decoded:
``pip install "mmbench[video]"``. Frame lists need only Pillow.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

import numpy as np

from mmbench.data.media import describe_ref, load_image
from mmbench.errors import DataError, MMBenchError

INSTALL_HINT = 'pip install "mmbench[video]"'
_THREADED_PIXELS = 320 * 240


def require_av() -> Any:
    """The ``av`` module, or an error that says how to install it."""
    try:
        import av
    except ImportError:
        raise MMBenchError(f"decoding video files needs PyAV: {INSTALL_HINT}") from None
    return av


def uniform_indices(total: int, k: int) -> np.ndarray:
    """``k`` frame indices spread uniformly over ``total`` frames: the centre of each of ``k``
    equal segments (TSN's test-time sampling). Fewer frames than ``k`` repeat frames in order."""
    if total < 1 or k < 1:
        raise ValueError(f"need total >= 1 and k >= 1, got total={total}, k={k}")
    return np.minimum(((np.arange(k) + 0.5) * total / k).astype(np.int64), total - 1)


def frame_list_ref(frames: Sequence[Any]) -> dict[str, Any]:
    """A frame list as a video value (``frames``: image references in time order)."""
    return {"bytes": None, "path": None, "frames": list(frames)}


def is_frame_list(feature: Any) -> bool:
    """Whether a ``datasets`` column type is a list of frame images (Image, path strings or
    ``{bytes, path}`` records), the other way a dataset can hold a video."""
    if isinstance(feature, list) and len(feature) == 1:
        inner = feature[0]
    elif type(feature).__name__ in ("List", "LargeList", "Sequence"):
        inner = getattr(feature, "feature", None)
    else:
        return False
    kind = type(inner).__name__
    if kind == "Image":
        return True
    if kind == "Value":
        return getattr(inner, "dtype", None) in ("string", "large_string", "binary")
    return isinstance(inner, dict) and {"bytes", "path"} <= set(inner)


def describe_video(ref: Any) -> str:
    """A video's origin for messages: its path, ``<N bytes>``, or its frame list's first file."""
    if isinstance(ref, dict) and ref.get("frames") is not None:
        frames = ref["frames"]
        first = describe_ref(frames[0]) if frames else "-"
        return f"<{len(frames)} frames from {first}>"
    return describe_ref(ref)


def sample_frames(ref: dict[str, Any], k: int, row: int | None = None) -> list[Any]:
    """``k`` RGB ``PIL.Image`` frames sampled uniformly; DataError names the row and the file."""
    where = f"row {row}: " if row is not None else ""
    if ref.get("frames") is not None:
        frames = [f for f in ref["frames"] if f is not None]
        if not frames:
            raise DataError(f"{where}unreadable video {describe_video(ref)}: no frames")
        return [load_image(frames[i], row=row) for i in uniform_indices(len(frames), k)]
    try:
        return _decode(ref, k)
    except MMBenchError:
        raise
    except Exception as exc:  # FFmpeg, a missing file or a bad container: many types
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(f"{where}unreadable video {describe_video(ref)}: {reason}") from None


def _open(ref: dict[str, Any]) -> Any:
    av = require_av()
    source = io.BytesIO(ref["bytes"]) if ref.get("bytes") is not None else ref["path"]
    if source is None:
        raise ValueError("neither bytes nor path")
    return av.open(source, mode="r")


def _decode(ref: dict[str, Any], k: int) -> list[Any]:
    """``k`` frames at :func:`uniform_indices` of the video's frame count.

    The count comes from the stream header, or from counting packets when a container does not
    store it (GIF, some Matroska files). When the header overstates it (fewer frames decode),
    the frames are sampled again over the count that did decode.
    """
    total = frame_count(ref)
    frames, decoded = _decode_at(ref, uniform_indices(total, k))
    if len(frames) < k:
        if decoded == 0:
            raise ValueError("no decodable frames")
        frames, _ = _decode_at(ref, uniform_indices(decoded, k))
    return frames


def _decode_at(ref: dict[str, Any], wanted: np.ndarray) -> tuple[list[Any], int]:
    """The frames at ``wanted`` (sorted, may repeat) in one pass that stops after the last one,
    and how many frames were decoded."""
    av = require_av()
    reformat = av.video.reformatter.VideoReformatter()  # reused: 5x cheaper than to_image()
    picked: dict[int, Any] = {}
    decoded = 0
    with _open(ref) as container:
        stream = container.streams.video[0]
        if stream.codec_context.width * stream.codec_context.height >= _THREADED_PIXELS:
            stream.thread_type = "AUTO"  # starting threads costs ~20 ms: only for large frames
        for i, frame in enumerate(container.decode(stream)):
            decoded = i + 1
            if i in wanted:
                picked[i] = reformat.reformat(frame, format="rgb24").to_image()
            if i >= wanted[-1]:
                break
    return [picked[int(i)] for i in wanted if int(i) in picked], decoded


def frame_count(ref: dict[str, Any]) -> int:
    """Frames in the first video stream: the header's count, else the number of packets."""
    with _open(ref) as container:
        if not container.streams.video:
            raise ValueError("no video stream")
        stream = container.streams.video[0]
        total = int(stream.frames or 0)
        if total <= 0:
            total = sum(1 for packet in container.demux(stream) if packet.size)
    if total <= 0:
        raise ValueError("no video frames")
    return total


def probe_video(ref: dict[str, Any]) -> str | None:
    """None when the video's first frame decodes (every frame of a frame list), else why not."""
    try:
        if ref.get("frames") is not None:
            frames = [f for f in ref["frames"] if f is not None]
            if not frames:
                return "no frames"
            for frame in frames:
                load_image(frame)
        else:
            _decode(ref, 1)
    except DataError as exc:
        return str(exc).removeprefix("unreadable image ")
    except MMBenchError:
        raise  # PyAV missing: an installation problem, not a bad file
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}".strip()
    return None


def write_video(frames: Sequence[np.ndarray], fps: int = 8, codec: str = "ffv1") -> bytes:
    """Encode ``(H, W, 3)`` uint8 frames as an in-memory video file: lossless FFV1 in Matroska by
    default (``codec="mpeg4"`` or ``"libx264"`` write MP4). Bit-exact mode leaves out FFmpeg's
    version strings and random ids, so the same frames give the same bytes (and fingerprint)."""
    av = require_av()
    height, width = frames[0].shape[:2]
    buf = io.BytesIO()
    fmt = "matroska" if codec == "ffv1" else "mp4"
    exact = {"fflags": "+bitexact"}
    with av.open(buf, mode="w", format=fmt, options=exact) as container:
        stream = container.add_stream(codec, rate=fps, options={"flags": "+bitexact"})
        stream.width, stream.height = width, height
        stream.pix_fmt = "bgr0" if codec == "ffv1" else "yuv420p"
        for pixels in frames:
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(pixels), format="rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return buf.getvalue()
