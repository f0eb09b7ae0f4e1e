"""The synthetic generator's video column: a shape circling the frame, its label in the motion.

Every class shows the same things: a shape of random form, colour and size on a random
background, at ``frames`` equally spaced positions around a circle (random centre, radius and
starting angle). What differs is the *order* in which it visits them: class ``c`` moves
``step(c)`` positions per frame (1 = one slot counter-clockwise, -1 = clockwise, then 2, -2, ...,
only steps coprime with ``frames``, so every class visits every slot once). Each frame on its
own, and the set of frames, therefore have exactly the same distribution for every class: a
single frame, mean or max pooling over frames is at chance, and only a model of the frame order
(a temporal tower) can read the label.

Videos are lossless FFV1 in Matroska, written bit-exact (:func:`mmbench.data.video.write_video`),
so the same seed gives the same bytes.
"""

from __future__ import annotations

import colorsys
import math

import numpy as np

from mmbench.errors import DataError

VIDEO_DEFAULT_SIGNAL = 0.9
"""Signal of the video column when a recipe asks for one (``video_frames > 0``)."""


def motion_steps(frames: int) -> list[int]:
    """Slots moved per frame, one per class: 1, -1, 2, -2, ... coprime with ``frames``, distinct
    modulo ``frames`` (so ``frames`` slots tell ``len(motion_steps(frames))`` classes apart)."""
    steps: list[int] = []
    seen: set[int] = set()
    for size in range(1, frames):
        for step in (size, -size):
            if math.gcd(size, frames) == 1 and step % frames not in seen:
                seen.add(step % frames)
                steps.append(step)
    return steps


def check_video(frames: int, n_classes: int) -> None:
    """Enough distinct motions for every class, or an error saying how many frames would do."""
    if frames == 0:
        return
    if frames < 3:
        raise DataError(
            f"synthetic option 'video_frames' must be 0 (no video) or >= 3, got {frames}"
        )
    available = len(motion_steps(frames))
    if n_classes > available:
        prime = next(p for p in range(n_classes + 1, 10 * n_classes + 2) if _is_prime(p))
        raise DataError(
            f"synthetic option 'video_frames'={frames} tells {available} classes apart by motion, "
            f"fewer than n_classes={n_classes}; use a prime number of frames such as {prime}"
        )


def render_video(c: int, frames: int, size: int, rng: np.random.Generator) -> bytes:
    """One video whose motion (``motion_steps(frames)[c]`` slots per frame) encodes class ``c``."""
    from PIL import Image, ImageDraw

    from mmbench.data.video import write_video

    step = motion_steps(frames)[c]
    background = rng.uniform(40, 215, size=3)
    hue, sat, val = rng.uniform(0, 1), rng.uniform(0.6, 1.0), rng.uniform(0.6, 1.0)
    fill = tuple(int(255 * v) for v in colorsys.hsv_to_rgb(hue, sat, val))
    square = rng.random() < 0.5
    radius = size * rng.uniform(0.12, 0.18)
    orbit = size * rng.uniform(0.22, 0.3)
    cx, cy = size / 2 + rng.uniform(-0.05, 0.05, size=2) * size
    start = rng.uniform(0, 2 * math.pi)
    out = []
    for t in range(frames):
        angle = start + 2 * math.pi * step * t / frames
        x, y = cx + orbit * math.cos(angle), cy - orbit * math.sin(angle)
        img = Image.new("RGB", (size, size), tuple(int(v) for v in background))
        box = [x - radius, y - radius, x + radius, y + radius]
        draw = ImageDraw.Draw(img)
        (draw.rectangle if square else draw.ellipse)(box, fill=fill)
        pixels = np.asarray(img, dtype=np.float64) + rng.normal(0, 8, size=(size, size, 3))
        out.append(np.clip(pixels, 0, 255).astype(np.uint8))
    return write_video(out)


def _is_prime(n: int) -> bool:
    return n > 1 and all(n % d for d in range(2, int(n**0.5) + 1))
