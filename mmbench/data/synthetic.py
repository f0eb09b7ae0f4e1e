"""The embedded default dataset: four modalities with a known amount of label information each.

Real benchmarks cannot tell us how much each modality *should* help, so modality ablations have
no ground truth. This generator can: every modality of every row renders a *shown class*, which
is the true label with probability ``signal[modality]`` and otherwise a class drawn uniformly at
random (which may by chance equal the label). A modality with signal 0 is pure noise; with signal
``s`` its shown class agrees with the label with probability ``s + (1 - s) / n_classes``.

Recipe (``version`` 2; version 1 stored unrounded floats), per row:

- ``label``: class ``k`` has frequency proportional to ``(1 - imbalance) ** k`` (0 = balanced),
  allocated exactly (largest remainder, every class at least one row) and shuffled. Names are
  ``class_0``, ``class_1``, ... (zero-padded past ten classes so string order is class order).
- ``image``: an RGB image of ``image_size`` pixels, stored as BMP (uncompressed, so its bytes and
  the dataset fingerprint do not depend on the zlib build Pillow ships with): a smooth random
  background texture plus pixel noise, and one filled shape whose *form* and *hue* both encode
  the shown class (position, size, rotation, saturation and brightness are random nuisances).
- ``text``: one English sentence from a template; exactly one word comes from the shown class's
  vocabulary (e.g. "stormy", "gloomy"), all other slots are filled with neutral words.
- tabular: ``num_0``/``num_1`` place the shown class on a circle (radius 1.5, unit Gaussian noise),
  ``num_2`` is log-normal with a class-dependent location, ``num_3`` is pure noise on another
  scale; ``cat_0`` names the shown class's category 70% of the time, ``cat_1`` is pure noise.
  Numbers are rounded to 6 decimals (the same on every CPU; see :func:`_portable`).
- ``audio``: a mono 16-bit WAV tone whose pitch encodes the shown class (log-spaced between
  220 Hz and ``min(1760, 0.4 * sample_rate)``), with random glide, harmonics (timbre), envelope
  and additive noise.
- ``missing``: independently per modality, each row's image, text or audio is ``None`` with
  probability ``missing``; a row hit for tabular has one of its six cells blanked (NaN / None).
- sensors (only with ``sensor_length > 0``): columns ``accel`` and ``gyro``, each row a
  ``(3, T)`` series (``T`` between 3/4 of ``sensor_length`` and ``sensor_length``: unequal
  lengths) of noisy sines whose frequency and channel offsets encode the shown class, with
  signals ``sensor_accel`` and ``sensor_gyro`` (:data:`SENSOR_SIGNAL`); ``missing`` blanks
  whole series. Without sensors the recipe and every other column are what they were.
- ``video`` (only with ``video_frames > 0``; the recipe and every other column are then unchanged
  without it): a ``video_size``-pixel video of ``video_frames`` frames whose *motion* encodes the
  shown class, while every frame and the set of frames look alike for all classes
  (:mod:`mmbench.data.synthetic_video`); blanked with probability ``missing`` from its own stream.

Each modality draws its shown classes independently given the label, so the modalities are
conditionally independent: combining them strictly adds information, which is what fusion should
exploit. Each modality uses its own random stream (spawned from ``seed``), so changing one
modality's signal leaves the other modalities' values byte-identical.

Length: the generator's recipe and one renderer per modality (~480 lines) in one file, so the
label information each modality carries is read and changed in one place.
"""

from __future__ import annotations

import io
import json
import math
import re
from typing import TYPE_CHECKING, Any

import numpy as np

from mmbench.data.media import wav_bytes
from mmbench.data.synthetic_video import VIDEO_DEFAULT_SIGNAL, check_video, render_video
from mmbench.errors import DataError, did_you_mean

if TYPE_CHECKING:
    import datasets

RECIPE_VERSION = 2
SYNTHETIC_DEFAULT_SIGNAL: dict[str, float] = {
    "image": 0.75,
    "tabular": 0.6,
    "text": 0.35,
    "audio": 0.0,
}
SENSOR_SIGNAL: dict[str, float] = {"sensor_accel": 0.8, "sensor_gyro": 0.5}
MAX_CLASSES = 20
_MODALITIES = ("image", "text", "tabular", "audio")
_SENSORS = ("accel", "gyro")

_SHAPES = ("circle", "square", "triangle", "diamond", "cross", "star", "pentagon", "hexagon")
_THEMES = (
    ("sunny", "bright", "warm", "golden", "cheerful"),
    ("stormy", "gloomy", "cold", "grey", "dreary"),
    ("noisy", "crowded", "busy", "hectic", "lively"),
    ("quiet", "calm", "peaceful", "still", "serene"),
    ("ancient", "dusty", "faded", "crumbling", "antique"),
    ("modern", "sleek", "shiny", "polished", "futuristic"),
    ("tiny", "small", "narrow", "cramped", "little"),
    ("huge", "enormous", "vast", "giant", "massive"),
    ("sweet", "fragrant", "fresh", "ripe", "juicy"),
    ("bitter", "sour", "stale", "rotten", "burnt"),
)
_TEMPLATES = (
    "The {noun} near the {place} looked {w} this {time}.",
    "We visited a {w} {place} and saw a {adj} {noun} there.",
    "Everyone said the {noun} was rather {w}, though {filler}.",
    "It was a {w} {time} at the {place}, and {filler}.",
    "My {person} described the {place} as {w} and {adj}.",
    "On that {time} the {adj} {noun} by the {place} seemed {w}.",
)
_NEUTRAL = {
    "noun": ("bench", "door", "window", "table", "garden", "road", "boat", "lamp", "wall", "tree"),
    "place": ("station", "market", "river", "library", "harbour", "village", "park", "museum"),
    "time": ("morning", "afternoon", "evening", "weekend", "day", "night"),
    "person": ("friend", "neighbour", "sister", "colleague", "uncle", "teacher"),
    "adj": ("ordinary", "normal", "plain", "typical", "familiar", "simple"),
    "filler": (
        "nobody was sure why",
        "it was hard to tell",
        "we did not stay long",
        "the bus was late again",
        "someone took a photo",
    ),
}
_CATEGORIES = (
    "alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa",
    "lambda", "mu", "nu", "xi", "omicron", "pi", "rho", "sigma", "tau", "upsilon",
)  # fmt: skip
_DIRECTIONS = ("north", "south", "east", "west")


def recipe(
    n_rows: int = 600,
    n_classes: int = 3,
    seed: int = 0,
    imbalance: float = 0.5,
    signal: dict[str, float] | None = None,
    image_size: int = 32,
    audio_seconds: float = 0.5,
    sample_rate: int = 8000,
    missing: float = 0.0,
    sensor_length: int = 0,
    video_frames: int = 0,
    video_size: int = 16,
) -> dict[str, Any]:
    """Validated, fully resolved generator parameters: what a result must record to rebuild it.

    ``signal`` is merged over :data:`SYNTHETIC_DEFAULT_SIGNAL` (and :data:`SENSOR_SIGNAL` with
    sensors), so ``{"audio": 0.9}`` changes only audio. ``agreement`` is the resulting chance
    that a modality shows the true class.
    """
    _check_range("sensor_length", sensor_length, 0, 100_000, integer=True)
    if 0 < sensor_length < 16:
        raise DataError(f"synthetic option 'sensor_length' must be 0 or >= 16, got {sensor_length}")
    merged = _merge_signal(signal, sensors=sensor_length > 0, video=video_frames != 0)
    _check_range("n_classes", n_classes, 2, MAX_CLASSES, integer=True)
    _check_range("n_rows", n_rows, n_classes, 10_000_000, integer=True)
    _check_range("imbalance", imbalance, 0.0, 0.999)
    _check_range("missing", missing, 0.0, 0.999)
    _check_range("image_size", image_size, 8, 1024, integer=True)
    _check_range("audio_seconds", audio_seconds, 0.05, 60.0)
    _check_range("sample_rate", sample_rate, 2000, 96_000, integer=True)
    _check_range("seed", seed, 0, 2**63, integer=True)
    _check_range("video_frames", video_frames, 0, 256, integer=True)
    _check_range("video_size", video_size, 8, 256, integer=True)
    check_video(int(video_frames), int(n_classes))
    params = {
        "generator": "mmbench.data.synthetic",
        "version": RECIPE_VERSION,
        "n_rows": int(n_rows),
        "n_classes": int(n_classes),
        "seed": int(seed),
        "imbalance": float(imbalance),
        "signal": merged,
        "agreement": {m: merged[m] + (1 - merged[m]) / n_classes for m in _ordered(merged)},
        "image_size": int(image_size),
        "audio_seconds": float(audio_seconds),
        "sample_rate": int(sample_rate),
        "missing": float(missing),
    }
    if sensor_length:  # absent otherwise: recipes (and results) without sensors are unchanged
        params["sensor_length"] = int(sensor_length)
    if video_frames:  # absent otherwise, so recipes without video stay as they were
        params.update(video_frames=int(video_frames), video_size=int(video_size))
    return params


def generate(**options: Any) -> datasets.Dataset:
    """Build the dataset described in the module docstring; the recipe is JSON in ``info.description``.

    ``options`` are :func:`recipe`'s keywords (one signature, one set of defaults). Same options
    give byte-identical data. Raises DataError for out-of-range options.
    """
    import datasets
    import pyarrow as pa

    params = recipe(**options)
    n_rows, n_classes, missing = params["n_rows"], params["n_classes"], params["missing"]
    audio_seconds, sample_rate = params["audio_seconds"], params["sample_rate"]
    streams = [np.random.default_rng(s) for s in np.random.SeedSequence(params["seed"]).spawn(6)]
    label_rng, image_rng, text_rng, tab_rng, audio_rng, missing_rng = streams
    labels = _draw_labels(n_rows, n_classes, params["imbalance"], label_rng)

    def shown(rng: np.random.Generator, modality: str) -> np.ndarray:
        keep = rng.random(n_rows) < params["signal"][modality]
        return np.where(keep, labels, rng.integers(0, n_classes, n_rows))

    columns: dict[str, list[Any]] = {}
    images = [
        _render_image(c, n_classes, params["image_size"], image_rng)
        for c in shown(image_rng, "image")
    ]
    texts = [_render_text(c, n_classes, text_rng) for c in shown(text_rng, "text")]
    columns.update(_render_tabular(shown(tab_rng, "tabular"), n_classes, tab_rng))
    waves = [
        _render_audio(c, n_classes, audio_seconds, sample_rate, audio_rng)
        for c in shown(audio_rng, "audio")
    ]
    columns["image"] = [{"bytes": b, "path": None} for b in images]
    columns["text"] = texts
    columns["audio"] = [{"bytes": b, "path": None} for b in waves]
    _blank_missing(columns, missing, missing_rng)
    length = params.get("sensor_length", 0)
    if length:  # its own stream (the 7th): the other modalities' values are unchanged
        sensor_rng = np.random.default_rng(np.random.SeedSequence(params["seed"]).spawn(7)[6])
        for name in _SENSORS:
            series = [
                _render_series(c, n_classes, length, sensor_rng)
                for c in shown(sensor_rng, f"sensor_{name}")
            ]
            blank = sensor_rng.random(n_rows) < missing
            columns[name] = [None if b else s for s, b in zip(series, blank, strict=True)]
    if params.get("video_frames"):
        columns["video"] = _video_column(params, labels, shown)
    width = len(str(n_classes - 1))
    columns["label"] = [f"class_{k:0{width}d}" for k in labels]
    features = _features(sample_rate, sensors=bool(length), video="video" in columns)
    ordered = {name: columns[name] for name in features}
    info = datasets.DatasetInfo(description=json.dumps(params, sort_keys=True), features=features)
    # built from Arrow directly: Dataset.from_dict would run Audio.encode_example, which in
    # datasets 5.x imports torch and torchcodec just to store bytes we already encoded
    table = pa.Table.from_pydict(ordered, schema=features.arrow_schema)
    return datasets.Dataset(table, info=info)


def _video_column(params: dict[str, Any], labels: np.ndarray, shown: Any) -> list[Any]:
    """The video column from its own random streams (the 8th and 9th; the 7th is the sensors'),
    so asking for it leaves every other column byte-identical."""
    video_rng, blank_rng = (
        np.random.default_rng(s) for s in np.random.SeedSequence(params["seed"]).spawn(9)[7:]
    )
    frames, size = params["video_frames"], params["video_size"]
    videos: list[Any] = [
        {"bytes": render_video(int(c), frames, size, video_rng), "path": None}
        for c in shown(video_rng, "video")
    ]
    if params["missing"] > 0:
        for i in np.flatnonzero(blank_rng.random(len(labels)) < params["missing"]):
            videos[i] = None
    return videos


def _features(sample_rate: int, sensors: bool = False, video: bool = False) -> datasets.Features:
    """Media are stored undecoded: mmbench decodes them itself (see :mod:`mmbench.data.media`)."""
    import datasets

    numeric = {f"num_{j}": datasets.Value("float64") for j in range(4)}
    series = datasets.List(datasets.List(datasets.Value("float32")))
    return datasets.Features(
        {
            "image": datasets.Image(decode=False),
            "text": datasets.Value("string"),
            **numeric,
            "cat_0": datasets.Value("string"),
            "cat_1": datasets.Value("string"),
            "audio": datasets.Audio(sampling_rate=sample_rate, decode=False),
            **({name: series for name in _SENSORS} if sensors else {}),
            **({"video": datasets.Video(decode=False)} if video else {}),
            "label": datasets.Value("string"),
        }
    )


def _merge_signal(
    signal: dict[str, float] | None, sensors: bool = False, video: bool = False
) -> dict[str, float]:
    merged = {**SYNTHETIC_DEFAULT_SIGNAL, **(SENSOR_SIGNAL if sensors else {})}
    if video:
        merged["video"] = VIDEO_DEFAULT_SIGNAL
    for modality, value in (signal or {}).items():
        if modality not in merged:
            valid = list(merged)
            hint = did_you_mean(modality, [*valid, *SENSOR_SIGNAL])
            needs = " (sensor signals need sensor_length > 0)" if modality in SENSOR_SIGNAL else ""
            needs += " ('video' needs video_frames > 0)" if modality == "video" else ""
            raise DataError(
                f"synthetic option 'signal' has unknown modality {modality!r}{hint}{needs}; "
                f"valid: {valid}"
            )
        _check_range(f"signal[{modality!r}]", value, 0.0, 1.0)
        merged[modality] = float(value)
    return merged


def _ordered(merged: dict[str, float]) -> list[str]:
    return [*_MODALITIES, *(m for m in merged if m not in _MODALITIES)]


def _check_range(name: str, value: Any, low: float, high: float, integer: bool = False) -> None:
    kinds = (int, np.integer) if integer else (int, float, np.integer, np.floating)
    if isinstance(value, bool) or not isinstance(value, kinds) or not low <= value <= high:
        what = "an integer" if integer else "a number"
        raise DataError(
            f"synthetic option {name!r} must be {what} in [{low}, {high}], got {value!r}"
        )


def _draw_labels(n: int, k: int, imbalance: float, rng: np.random.Generator) -> np.ndarray:
    """Exact class counts (geometric decay, each class >= 1 row) in random order."""
    weights = (1.0 - imbalance) ** np.arange(k)
    spare = n - k
    ideal = spare * weights / weights.sum()
    counts = 1 + np.floor(ideal).astype(int)
    remainder = n - counts.sum()
    # largest remainders first; stable sort so ties go to the more frequent (lower) class
    order = np.argsort(-(ideal - np.floor(ideal)), kind="stable")
    counts[order[:remainder]] += 1
    return rng.permutation(np.repeat(np.arange(k), counts))


def _render_image(c: int, n_classes: int, size: int, rng: np.random.Generator) -> bytes:
    """Noisy textured background with one shape whose form and hue encode class ``c``."""
    import colorsys

    from PIL import Image, ImageDraw

    base = rng.uniform(60, 200, size=3)
    coarse = rng.normal(0, 30, size=(4, 4, 3))
    texture = np.asarray(
        Image.fromarray(np.uint8(np.clip(coarse + 128, 0, 255))).resize(
            (size, size), Image.Resampling.BILINEAR
        ),
        dtype=np.float64,
    )
    background = np.clip(base + texture - 128, 0, 255).astype(np.uint8)
    img = Image.fromarray(background, "RGB")
    hue = (c / n_classes + rng.normal(0, 0.02)) % 1.0
    rgb = colorsys.hsv_to_rgb(hue, rng.uniform(0.65, 1.0), rng.uniform(0.7, 1.0))
    fill = tuple(int(255 * v) for v in rgb)
    radius = size * rng.uniform(0.22, 0.34)
    centre = size / 2 + rng.uniform(-0.12, 0.12, size=2) * size
    _draw_shape(ImageDraw.Draw(img), _SHAPES[c % len(_SHAPES)], centre, radius, rng, fill)
    pixels = np.asarray(img, dtype=np.float64) + rng.normal(0, 12, size=(size, size, 3))
    out = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB")
    buf = io.BytesIO()
    out.save(buf, format="BMP")  # uncompressed: the same bytes under any zlib build
    return buf.getvalue()


def _draw_shape(
    draw: Any,
    shape: str,
    centre: np.ndarray,
    r: float,
    rng: np.random.Generator,
    fill: tuple[int, ...],
) -> None:
    cx, cy = float(centre[0]), float(centre[1])
    angle = rng.uniform(0, 2 * math.pi)
    if shape == "circle":
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=fill)
        return
    if shape == "cross":
        w = r / 3
        for a in (angle, angle + math.pi / 2):
            dx, dy = math.cos(a), math.sin(a)
            px, py = -dy * w, dx * w
            ends = [(cx + dx * r, cy + dy * r), (cx - dx * r, cy - dy * r)]
            pts = [(ends[0][0] + px, ends[0][1] + py), (ends[0][0] - px, ends[0][1] - py),
                   (ends[1][0] - px, ends[1][1] - py), (ends[1][0] + px, ends[1][1] + py)]  # fmt: skip
            draw.polygon(pts, fill=fill)
        return
    corners = {"square": 4, "triangle": 3, "diamond": 4, "star": 10, "pentagon": 5, "hexagon": 6}
    n = corners[shape]
    if shape == "diamond":
        radii = [r if i % 2 == 0 else r * 0.55 for i in range(n)]
    elif shape == "star":
        radii = [r if i % 2 == 0 else r * 0.45 for i in range(n)]
    else:
        radii = [r] * n
    pts = [
        (cx + radii[i] * math.cos(angle + 2 * math.pi * i / n),
         cy + radii[i] * math.sin(angle + 2 * math.pi * i / n))
        for i in range(n)
    ]  # fmt: skip
    draw.polygon(pts, fill=fill)


def _class_vocabulary(c: int, n_classes: int) -> tuple[str, ...]:
    """Theme ``c`` while there are enough themes, else a stride through all theme words."""
    if n_classes <= len(_THEMES):
        return _THEMES[c]
    pool = [w for theme in _THEMES for w in theme]
    return tuple(pool[c::n_classes])


def _render_text(c: int, n_classes: int, rng: np.random.Generator) -> str:
    template = _TEMPLATES[rng.integers(len(_TEMPLATES))]
    vocab = _class_vocabulary(c, n_classes)
    slots = {key: words[rng.integers(len(words))] for key, words in _NEUTRAL.items()}
    sentence = template.format(w=vocab[rng.integers(len(vocab))], **slots)
    return re.sub(r"\b([Aa]) (?=[aeio])", r"\1n ", sentence)  # "a ancient" -> "an ancient"


def _render_tabular(
    shown: np.ndarray, n_classes: int, rng: np.random.Generator
) -> dict[str, list[Any]]:
    n = len(shown)
    theta = 2 * math.pi * shown / n_classes
    num_0 = 1.5 * np.cos(theta) + rng.normal(0, 1, n)
    num_1 = 1.5 * np.sin(theta) + rng.normal(0, 1, n)
    num_2 = np.exp(rng.normal(0.4 * shown / max(1, n_classes - 1), 0.5, n))
    num_3 = rng.normal(50, 10, n)
    linked = rng.random(n) < 0.7
    cat_0 = np.where(linked, shown, rng.integers(0, n_classes, n))
    cat_1 = rng.integers(0, len(_DIRECTIONS), n)
    return {
        "num_0": _portable(num_0),
        "num_1": _portable(num_1),
        "num_2": _portable(num_2),
        "num_3": _portable(num_3),
        "cat_0": [_CATEGORIES[k] for k in cat_0],
        "cat_1": [_DIRECTIONS[k] for k in cat_1],
    }


def _portable(values: np.ndarray) -> list[float]:
    """``values`` rounded to 6 decimals, so the stored floats are the same on every CPU.

    numpy's vectorised ``exp``/``sin``/``cos`` take different SIMD paths on different CPUs
    (AVX-512 vs AVX2 vs NEON) and may differ in the last bit; rounding far above that bit makes
    the generated table, its fingerprint and every score computed from it machine-independent.
    """
    return np.round(values, 6).tolist()


def _render_audio(
    c: int, n_classes: int, seconds: float, sr: int, rng: np.random.Generator
) -> bytes:
    """A gliding harmonic tone whose base pitch encodes class ``c``, in noise."""
    n = round(seconds * sr)
    t = np.arange(n) / sr
    f_lo, f_hi = 220.0, min(1760.0, 0.4 * sr)
    f0 = f_lo * (f_hi / f_lo) ** (c / (n_classes - 1)) * 2 ** rng.normal(0, 0.05)
    glide = 2 ** rng.uniform(-0.1, 0.1)
    freq = f0 * glide ** (t / seconds)
    phase = 2 * math.pi * np.cumsum(freq) / sr + rng.uniform(0, 2 * math.pi)
    decay = rng.uniform(1.0, 3.0)
    wave = np.zeros(n)
    for h in (1, 2, 3):
        if f0 * h * max(glide, 1.0) < 0.45 * sr:
            wave += np.sin(h * phase) / h**decay
    onset = rng.uniform(0, 0.2) * seconds
    envelope = np.clip((t - onset) / 0.02, 0, 1) * np.exp(-rng.uniform(0.5, 3.0) * t / seconds)
    wave = wave * envelope + rng.normal(0, 0.25, n)
    wave = 0.9 * wave / max(1e-9, float(np.abs(wave).max()))
    return wav_bytes(wave, sr)


def _render_series(c: int, n_classes: int, length: int, rng: np.random.Generator) -> list[Any]:
    """Three noisy sines whose frequency and channel offsets encode class ``c``, ``(3, T)``."""
    t_len = int(rng.integers(length * 3 // 4, length + 1))
    t = np.arange(t_len) / length
    cycles = 2.0 + 1.5 * c * rng.uniform(0.9, 1.1)
    phase = rng.uniform(0, 2 * math.pi)
    channels = [
        rng.uniform(0.8, 1.2) * np.sin(2 * math.pi * cycles * t + phase + k)
        + 0.5 * math.cos(2 * math.pi * c / n_classes + k)
        + rng.normal(0, 0.5, t_len)
        for k in range(3)
    ]
    return [_portable(ch) for ch in channels]


def _blank_missing(columns: dict[str, list[Any]], rate: float, rng: np.random.Generator) -> None:
    """Blank media/text rows and one tabular cell per hit row, each modality independently."""
    if rate <= 0:
        return
    n = len(columns["text"])
    for name in ("image", "text", "audio"):
        for i in np.flatnonzero(rng.random(n) < rate):
            columns[name][i] = None
    tab_cols = ["num_0", "num_1", "num_2", "num_3", "cat_0", "cat_1"]
    hits = np.flatnonzero(rng.random(n) < rate)
    for i, j in zip(hits, rng.integers(0, len(tab_cols), len(hits)), strict=True):
        col = tab_cols[j]
        columns[col][i] = None  # a null cell: NaN once in pandas
