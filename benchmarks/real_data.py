"""Real datasets for the side-by-side benchmark, written as local files with a fixed held-out split.

From ``../shared/data`` (not part of the repository) this writes, under ``benchmarks/data/``
(git-ignored), the two datasets that ``benchmarks/suites/real.yaml`` reads, and the one that
``benchmarks/suites/adult.yaml`` reads:

- ``emoji``: 3,655 emoji — 64×64 PNG (absolute path to the shared file), CLDR ``name`` as text,
  ``n_codepoints``, ``has_skin_tone``, ``has_zwj``, ``emoji_version`` as tabular columns; target
  ``group`` (9 imbalanced classes).
- ``fsdd_digits``: 3,000 spoken-digit WAVs, each paired with one of scikit-learn's bundled 8×8
  ``load_digits`` images of the same digit (written as 32×32 PNG, nearest-neighbour, so an 8×8
  box-downsample gives the original back); target ``digit``. Recordings and digit images are
  split *separately* into the same train/test proportions before pairing, so no digit image
  appears on both sides of the split (1,797 images for 3,000 recordings: within a side, an
  image is reused by about 1.7 recordings). Speakers do appear on both sides.

Each dataset gets ``train.csv`` and ``test.csv``: a stratified 25 % held-out split with seed 0.
The files are byte-identical on every run with the same arguments. Skips (exit 0) without the
shared data.

    python benchmarks/real_data.py [--shared ../shared] [--out benchmarks/data]

(Not named ``datasets.py``: a script's folder comes first on ``sys.path``, so that name would
shadow Hugging Face ``datasets`` for every script in ``benchmarks/``.)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

REPO = Path(__file__).resolve().parents[1]
DEFAULT_SHARED = REPO.parent / "shared"
DEFAULT_OUT = REPO / "benchmarks" / "data"
EMOJI_COLUMNS = ["image", "name", "n_codepoints", "has_skin_tone", "has_zwj", "emoji_version"]
DIGIT_PNG_SIZE = 32


def held_out_split(
    labels: pd.Series | np.ndarray, test_size: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Sorted (train, test) row positions, stratified by ``labels``."""
    import numpy as np
    from sklearn.model_selection import train_test_split

    rows = np.arange(len(labels))
    train, test = train_test_split(
        rows, test_size=test_size, random_state=seed, stratify=np.asarray(labels)
    )
    return np.sort(train), np.sort(test)


def write_split(frame: pd.DataFrame, train: np.ndarray, test: np.ndarray, out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / "train.csv", out / "test.csv"]
    for rows, path in zip((train, test), paths, strict=True):
        frame.iloc[rows].to_csv(path, index=False)
    return paths


def materialize_emoji(
    shared: Path, out: Path, test_size: float = 0.25, seed: int = 0
) -> list[Path]:
    """``emoji/train.csv`` and ``emoji/test.csv`` under ``out``; image paths are absolute."""
    import pandas as pd

    source = shared / "data" / "emoji"
    meta = pd.read_csv(source / "metadata.csv")
    frame = meta[[*EMOJI_COLUMNS, "group"]].copy()
    frame["image"] = [str((source / p).resolve()) for p in frame["image"]]
    train, test = held_out_split(frame["group"], test_size, seed)
    return write_split(frame, train, test, out / "emoji")


def materialize_fsdd_digits(
    shared: Path, out: Path, test_size: float = 0.25, seed: int = 0
) -> list[Path]:
    """``fsdd_digits/{train,test}.csv`` plus the digit PNGs they point at (absolute paths)."""
    import numpy as np
    import pandas as pd
    from sklearn.datasets import load_digits

    source = shared / "data" / "fsdd"
    meta = pd.read_csv(source / "metadata.csv")
    train, test = held_out_split(meta["digit"], test_size, seed)
    digits = load_digits()
    image_train, image_test = held_out_split(digits.target, test_size, seed)
    rng = np.random.default_rng(seed)
    chosen = np.empty(len(meta), dtype=np.int64)
    for rows, pool in ((train, image_train), (test, image_test)):
        for digit in range(10):
            wanted = rows[meta["digit"].to_numpy()[rows] == digit]
            candidates = pool[digits.target[pool] == digit]
            chosen[wanted] = rng.choice(candidates, size=len(wanted), replace=True)
    pngs = write_digit_pngs(digits.images, np.unique(chosen), out / "fsdd_digits" / "images")
    frame = pd.DataFrame(
        {
            "audio": [str((source / f).resolve()) for f in meta["file"]],
            "image": [str(pngs[i]) for i in chosen],
            "digit": meta["digit"].to_numpy(),
        }
    )
    return write_split(frame, train, test, out / "fsdd_digits")


def write_digit_pngs(images: np.ndarray, indices: np.ndarray, out: Path) -> dict[int, Path]:
    """One grayscale PNG per ``load_digits`` image, 0–16 levels scaled to 0–255, upscaled."""
    import numpy as np
    from PIL import Image

    out.mkdir(parents=True, exist_ok=True)
    paths: dict[int, Path] = {}
    for i in indices.tolist():
        pixels = np.round(images[i] * (255 / 16)).astype(np.uint8)
        big = Image.fromarray(pixels, mode="L").resize(
            (DIGIT_PNG_SIZE, DIGIT_PNG_SIZE), Image.Resampling.NEAREST
        )
        paths[i] = (out / f"digit_{i:04d}.png").resolve()
        big.save(paths[i])
    return paths


def materialize_adult(
    shared: Path, out: Path, test_size: float = 0.25, seed: int = 0
) -> list[Path]:
    """``adult/train.csv`` and ``adult/test.csv`` under ``out`` (all columns, tabular only)."""
    import pandas as pd

    frame = pd.read_parquet(shared / "data" / "adult" / "adult.parquet")
    train, test = held_out_split(frame["income"], test_size, seed)
    return write_split(frame, train, test, out / "adult")


def materialize(shared: Path, out: Path, test_size: float = 0.25, seed: int = 0) -> list[Path]:
    """Every dataset (adult only when its file is there); returns the CSV files written."""
    adult = (shared / "data" / "adult" / "adult.parquet").is_file()
    return [
        *materialize_emoji(shared, out, test_size, seed),
        *materialize_fsdd_digits(shared, out, test_size, seed),
        *(materialize_adult(shared, out, test_size, seed) if adult else []),
    ]


def missing_data(shared: Path) -> str | None:
    """Why the shared data cannot be used, or None when both datasets are there."""
    for name in ("emoji", "fsdd"):
        if not (shared / "data" / name / "metadata.csv").is_file():
            return f"skipped: {shared / 'data' / name / 'metadata.csv'} not found"
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=DEFAULT_SHARED, help="the shared folder")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--test-size", type=float, default=0.25)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    reason = missing_data(args.shared)
    if reason is not None:
        print(reason, file=sys.stderr)
        return
    for path in materialize(args.shared, args.out, args.test_size, args.seed):
        rows = sum(1 for _ in path.open()) - 1
        print(f"wrote {path} ({rows} rows)")


if __name__ == "__main__":
    main()
