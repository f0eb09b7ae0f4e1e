"""Dataset cards: stated in the suite, shown by ``mmbench validate``, kept in the result file,
shown in the HTML report and tagged on the dataset's MLflow runs."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from mlflow import MlflowClient

from mmbench.cli import main
from mmbench.report import render_report
from mmbench.results import read_result
from mmbench.run import RunOptions, run_suite
from mmbench.suite import load_suite

CARD = {
    "homepage": "https://example.org/tiny",
    "license": "CC BY 4.0",
    "citation": "A. Author. Tiny data. 2024.",
    "task": "3-class toy task",
}


def carded_suite(tmp_path: Path) -> Path:
    dataset = {
        "name": "tiny",
        "card": CARD,
        "source": {"kind": "synthetic", "options": {"n_rows": 90, "n_classes": 3, "seed": 1}},
        "target": "label",
        "modalities": {"tabular": ["num_0", "num_1", "num_2", "num_3"]},
        "protocol": {"folds": 2},
        "pipeline": {"encoders": {"tabular": "tabular"}, "fusion": {"name": "linear"}},
    }
    path = tmp_path / "carded.yaml"
    path.write_text(yaml.safe_dump({"name": "carded", "seed": 0, "datasets": [dataset]}))
    return path


def test_a_card_reaches_validate_the_result_the_report_and_mlflow(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = carded_suite(tmp_path)
    assert main(["validate", str(path)]) == 0
    out = capsys.readouterr().out
    assert "CC BY 4.0" in out and "https://example.org/tiny" in out and "A. Author" in out

    uri = f"sqlite:///{tmp_path / 'cards.db'}"
    options = RunOptions(results_dir=tmp_path / "res", tracking_uri=uri, progress=False)
    [outcome] = run_suite(load_suite(path), options)
    assert outcome.error is None and outcome.path is not None
    assert read_result(outcome.path).dataset.card == {**CARD, "notes": ""}

    page = render_report(tmp_path / "res", "carded")
    assert "dataset license" in page and "CC BY 4.0" in page and "A. Author. Tiny data" in page

    client = MlflowClient(uri)
    exp = client.get_experiment_by_name("mmbench/carded")
    assert exp is not None
    runs = client.search_runs([exp.experiment_id])
    assert runs and all(r.data.tags.get("mmbench.dataset.license") == "CC BY 4.0" for r in runs)
    assert all(r.data.tags.get("mmbench.dataset.homepage") == CARD["homepage"] for r in runs)


def test_every_shipped_public_suite_validates_with_a_card_per_dataset() -> None:
    suites = Path(__file__).resolve().parents[1] / "suites"
    public = [p for p in sorted(suites.glob("*.yaml")) if p.stem not in ("smoke", "ci")]
    assert public, "no public suite under suites/"
    for path in public:
        suite = load_suite(path)
        missing = [d.name for d in suite.datasets if d.card is None]
        assert not missing, f"{path.name}: datasets without a card: {missing}"
