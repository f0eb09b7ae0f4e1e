from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest
from conftest import crafted_report

from mmbench.ablation import (
    fold_shapley,
    plan_subsets,
    render_markdown,
    report_frame,
    run_ablation,
    shapley_values,
    write_report,
)
from mmbench.config import PipelineSpec
from mmbench.errors import MMBenchError
from mmbench.results import read_ablation

# --------------------------------------------------------------------------- Shapley arithmetic


def test_additive_game_gives_individual_contributions() -> None:
    worth = {"image": 0.3, "text": 0.05, "tabular": 0.12, "audio": 0.0}
    phi = shapley_values(list(worth), lambda s: 0.25 + sum(worth[m] for m in s))
    assert phi == pytest.approx(worth)


def test_symmetry_efficiency_and_pure_synergy() -> None:
    # image and text are interchangeable; audio adds nothing anywhere (a dummy player)
    def value(s: frozenset[str]) -> float:
        return {0: 0.0, 1: 0.4, 2: 1.0}[len(s - {"audio"})]

    phi = shapley_values(["image", "text", "audio"], value)
    assert phi["image"] == pytest.approx(phi["text"]) == pytest.approx(0.5)
    assert phi["audio"] == pytest.approx(0.0)
    assert sum(phi.values()) == pytest.approx(value(frozenset({"image", "text", "audio"})))
    synergy = shapley_values(["a", "b"], lambda s: 1.0 if len(s) == 2 else 0.0)
    assert synergy == pytest.approx({"a": 0.5, "b": 0.5})


def test_fold_shapley_uses_each_folds_chance_level() -> None:
    mods = ["a", "b"]
    scores = {frozenset("a"): [0.6, 0.7], frozenset("b"): [0.4, 0.4], frozenset("ab"): [0.7, 0.8]}
    per_fold = fold_shapley(mods, scores, chance=[0.3, 0.2])
    # fold 0: phi_a = ((0.6-0.3) + (0.7-0.4)) / 2
    assert per_fold["a"] == pytest.approx([0.3, 0.45])
    for i, chance in enumerate([0.3, 0.2]):
        total = per_fold["a"][i] + per_fold["b"][i]
        assert total == pytest.approx(scores[frozenset("ab")][i] - chance)


def test_plan_covers_every_subset_or_falls_back_to_loo_and_singles() -> None:
    mods = ["image", "text", "tabular", "audio"]
    plan = plan_subsets(mods, max_subset_modalities=5)
    assert len(plan) == 15 and plan[0] == (tuple(mods), "full")
    assert {s for s, _ in plan} == {c for k in range(1, 5) for c in itertools.combinations(mods, k)}
    kinds = {s: k for s, k in plan}
    assert kinds[("image", "text", "tabular")] == "leave-one-out"
    assert kinds[("image", "text")] == "subset" and kinds[("audio",)] == "single"
    fallback = plan_subsets(mods, max_subset_modalities=3)
    assert [k for _, k in fallback] == ["full"] + ["leave-one-out"] * 4 + ["single"] * 4


# --------------------------------------------------------------------------- report from crafted folds


def test_report_attribution_from_crafted_scores(tmp_path: Path) -> None:
    report = crafted_report()
    assert report.ranking() == ["image", "text"]
    assert report.shapley_folds is not None
    assert report.shapley_folds["image"] == pytest.approx([0.45, 0.45])  # ((.7-.2) + (.8-.4))/2
    assert report.leave_one_out["image"]["mean"] == pytest.approx(0.4)  # full − text alone
    assert report.robustness["image"]["drop"] == pytest.approx(0.45)
    assert report.robustness["text"]["mean"] == pytest.approx(0.55)
    frame = report_frame(report)
    assert list(frame["modalities"]) == ["image+text", "image", "text"]
    assert "| image | +0.450 ± 0.000 | +0.400 ± 0.000 | +0.450 ± 0.071 |" in render_markdown(report)
    paths = write_report(report, tmp_path)
    assert {p.name for p in paths.values()} == {
        "ablation.csv",
        "ablation.json",
        "ablation.md",
        "ablation.png",
    }
    assert paths["png"].read_bytes()[:4] == b"\x89PNG"
    assert read_ablation(paths["json"]) == report
    data = json.loads(paths["json"].read_text())
    assert data["schema_version"] == 2 and data["rows"][0]["modalities"] == ["image", "text"]
    assert data["pipeline"]["encoders"]["text"] == {"name": "tfidf", "options": {}}
    old = {k: v for k, v in data.items() if k not in ("pipeline_name", "skipped")}
    paths["json"].write_text(json.dumps({**old, "schema_version": 1}))
    assert read_ablation(paths["json"]).pipeline_name is None  # version 1 still reads
    paths["json"].write_text(json.dumps({**data, "schema_version": 3}))
    with pytest.raises(MMBenchError, match="ablation report schema version 3"):
        read_ablation(paths["json"])


def test_lower_is_better_metric_flips_drops_not_shapley() -> None:
    report = crafted_report("log_loss")  # same numbers read as losses: image *hurts*
    assert report.shapley is not None and report.shapley["image"]["mean"] > 0
    assert report.ranking() == ["text", "image"]
    assert report.leave_one_out["image"]["mean"] < 0


# --------------------------------------------------------------------------- ground truth


@pytest.mark.slow
def test_shapley_recovers_the_synthetic_ground_truth(tmp_path: Path) -> None:
    """Synthetic signal: image 0.75, tabular 0.6, text 0.35, audio 0 (pure noise).

    Reliable on 300 rows with a cheap XGBoost pipeline (checked over generator seeds 0-3): image
    and tabular are far above text and audio, and audio's Shapley value is ~0 (|φ| < 0.03).
    Image > tabular, measured at dc1cfec over seeds 0-3: φ 0.307/0.121, 0.192/0.171,
    0.271/0.116, 0.238/0.126 (4 of 4; this test's seed 0 by 0.19, and in each of its 3 folds by
    0.12 or more), so the order is asserted. (An earlier version held it for 3 of 4 seeds.) Text
    vs audio is not: 2 of 4 seeds put audio (pure noise) above text (0.35).
    """
    from mmbench.data import load_table
    from mmbench.evaluation import cv_folds
    from mmbench.pipeline.cache import FeatureCache
    from mmbench.suite import DatasetSpec

    spec = DatasetSpec.model_validate(
        {
            "name": "synthetic",
            "source": {"kind": "synthetic", "options": {"n_rows": 300, "n_classes": 3, "seed": 0}},
            "target": "label",
            "modalities": {
                "image": "image",
                "text": "text",
                "audio": "audio",
                "tabular": ["num_0", "num_1", "num_2", "num_3", "cat_0", "cat_1"],
            },
            "protocol": {"folds": 3},
        }
    )
    table = load_table(spec, tmp_path, seed=0)
    folds = cv_folds(table.labels, 3, 1, seed=0)
    pipeline = PipelineSpec.model_validate(
        {
            "encoders": {
                "image": "timm/test_resnet",
                "text": "tfidf",
                "tabular": "tabular",
                "audio": "logmel",
            },
            "fusion": "xgboost",
            "training": {"device": "cpu"},
        }
    )
    cache = FeatureCache(tmp_path / "cache")
    seen: list[str] = []
    report = run_ablation(
        table, pipeline, folds, cache=cache, progress=lambda label, i, n: seen.append(label)
    )
    assert len(report.rows) == len(seen) == 15 and report.rows[0].kind == "full"
    for row in report.rows[1:]:  # subsets reuse the full run's features: no re-encoding
        assert row.cache["misses"] == 0 and row.cache["hits"] > 0, row.label
    assert not any(r.failures for r in report.rows)

    assert report.shapley is not None
    phi = {m: v["mean"] for m, v in report.shapley.items()}
    assert report.ranking()[:2] == ["image", "tabular"]  # the generator's 0.75 > 0.6
    for strong in ("image", "tabular"):
        assert phi[strong] > 0.05
        assert phi[strong] > max(phi["text"], phi["audio"]) + 0.03
    assert abs(phi["audio"]) < 0.03
    full = report.full.fold_scores("f1_macro")
    assert report.shapley_folds is not None
    for i in range(3):  # efficiency, fold by fold
        total = sum(v[i] for v in report.shapley_folds.values())
        assert total == pytest.approx(full[i] - report.chance[i])
    assert report.leave_one_out["image"]["mean"] > 0.05
    assert report.robustness["image"]["drop"] > report.robustness["audio"]["drop"] + 0.05


class _Countdown:
    """A deadline that passes once ``stop`` is set (duck-types :class:`~mmbench.budget.Deadline`)."""

    at = 0.0

    def __init__(self) -> None:
        self.stop = False

    def remaining(self) -> float:
        return 0.0 if self.stop else 1e9

    def expired(self) -> bool:
        return self.stop

    def check(self, what: str) -> None:
        from mmbench.budget import DeadlineReached

        if self.stop:
            raise DeadlineReached(f"time budget reached during {what}")

    def earlier(self, seconds: float) -> _Countdown:
        return self


def test_a_deadline_cuts_the_ablation_keeping_the_most_telling_rows(tmp_path: Path) -> None:
    """The full set, then leave-one-out, then single modalities: a deadline after four rows
    keeps the full and leave-one-out rows, lists what it cut, and names the ablated pipeline;
    Shapley values, which need every subset, are left out rather than guessed."""
    from conftest import FAST_TRAINING, tiny_suite

    from mmbench.data import load_table
    from mmbench.evaluation import cv_folds

    suite = tiny_suite(
        tmp_path,
        n_rows=90,
        folds=2,
        modalities={"text": "text", "tabular": ["num_0", "num_1"], "image": "image"},
    )
    table = load_table(suite.datasets[0], suite.root, seed=0)
    folds = cv_folds(table.labels, 2, 1, seed=0)
    pipeline = PipelineSpec.model_validate(
        {
            "encoders": {"text": "tfidf", "tabular": "tabular", "image": "pixels"},
            "fusion": "linear",
            "training": FAST_TRAINING,
        }
    )
    deadline = _Countdown()

    def progress(label: str, done: int, total: int) -> None:
        deadline.stop = done >= 4

    report = run_ablation(
        table, pipeline, folds, progress=progress, deadline=deadline, pipeline_name="search"
    )  # type: ignore[arg-type]
    assert [r.kind for r in report.rows] == ["full"] + ["leave-one-out"] * 3
    assert report.skipped == ["image", "text", "tabular"]  # the table's modality order
    assert report.shapley is None and set(report.leave_one_out) == set(report.modalities)
    assert report.pipeline_name == "search"
    text = render_markdown(report)
    assert "# Modality ablation: tiny — pipeline search" in text
    assert "Ablated pipeline: linear on text=tfidf tabular=tabular image=pixels" in text
    assert "Not run within the job's time budget: image, text, tabular" in text


def test_the_documented_ablation_table_is_the_committed_default_ablation() -> None:
    """The ablations page's attribution table (docs/ablations.md) is checked against real
    output: the default pipeline's ablation in ``results/smoke`` (keyed by pipeline, or the
    single folder of older runs when it ablated the default). After regenerating the results,
    paste the table this prints."""
    repo = Path(__file__).resolve().parent.parent
    folder = repo / "results" / "smoke" / "synthetic"
    keyed = folder / "ablation" / "default" / "ablation.json"
    report = read_ablation(keyed if keyed.exists() else folder / "ablation" / "ablation.json")
    default = json.loads((folder / "default.json").read_text())
    assert report.pipeline.model_dump(mode="json") == default["pipeline"], "not the default's"
    rendered = render_markdown(report).splitlines()
    start = rendered.index(
        "| modality | Shapley value | leave-one-out drop | drop when missing at test time |"
    )
    table = rendered[start : start + 2 + len(report.modalities)]
    page = (repo / "docs" / "ablations.md").read_text()
    assert "\n".join(table) in page, "docs/ablations.md's table should read:\n" + "\n".join(table)
