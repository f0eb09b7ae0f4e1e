from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from mmbench.errors import SuiteError
from mmbench.evaluation import metric_names
from mmbench.suite import load_suite, parse_suite

ROOT = Path(__file__).resolve().parent.parent


def minimal(**dataset_overrides: object) -> dict:
    dataset = {
        "name": "toy",
        "source": {"kind": "synthetic", "options": {"n_rows": 60}},
        "target": "label",
        "modalities": {"text": "text", "tabular": ["num_0", "cat_0"]},
    }
    dataset.update(dataset_overrides)
    return {"name": "s", "datasets": [dataset]}


def write(tmp_path: Path, data: dict) -> Path:
    path = tmp_path / "suite.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_shipped_suites_are_valid() -> None:
    for path in sorted((ROOT / "suites").glob("*.yaml")):
        suite = load_suite(path)
        assert suite.datasets, path


def test_defaults_and_string_shorthands() -> None:
    suite = parse_suite(minimal())
    ds = suite.datasets[0]
    assert ds.modalities.text == ["text"]
    assert ds.modalities.present() == ["text", "tabular"]
    assert ds.protocol.folds == 5 and ds.protocol.primary_metric == "f1_macro"
    assert ds.budget.trials == 1


def test_typo_names_file_key_and_closest(tmp_path: Path) -> None:
    data = minimal(protocol={"fodls": 3})
    path = write(tmp_path, data)
    with pytest.raises(SuiteError) as err:
        load_suite(path)
    msg = str(err.value)
    assert str(path) in msg
    assert "datasets[0](toy).protocol" in msg
    assert "'fodls'" in msg and "did you mean 'folds'" in msg


def test_top_level_typo_suggests_closest() -> None:
    data = minimal()
    data["sed"] = 3
    with pytest.raises(SuiteError, match="did you mean 'seed'"):
        parse_suite(data)


def test_wrong_type_is_reported_with_path() -> None:
    with pytest.raises(SuiteError, match=r"protocol\.folds.*integer"):
        parse_suite(minimal(protocol={"folds": "five"}))


def test_unknown_vocabulary_value_lists_choices() -> None:
    with pytest.raises(SuiteError, match=r"primary_metric.*'f1'") as error:
        parse_suite(minimal(protocol={"primary_metric": "f1"}))
    for name in metric_names():  # the vocabulary is the metric registry
        assert repr(name) in str(error.value)
    with pytest.raises(SuiteError, match=r"source\.kind"):
        parse_suite(minimal(source={"kind": "hubb"}))


def test_hub_source_requires_pinned_revision() -> None:
    with pytest.raises(SuiteError, match="revision"):
        parse_suite(minimal(source={"kind": "hub", "id": "org/data"}))
    suite = parse_suite(minimal(source={"kind": "hub", "id": "org/data", "revision": "abc"}))
    assert suite.datasets[0].source.describe() == "hub:org/data@abc"


def test_modality_rules() -> None:
    with pytest.raises(SuiteError, match="at least one modality"):
        parse_suite(minimal(modalities={}))
    with pytest.raises(SuiteError, match="exactly one column"):
        parse_suite(minimal(modalities={"image": ["a", "b"]}))
    with pytest.raises(SuiteError, match="target column 'label'"):
        parse_suite(minimal(modalities={"tabular": ["label"]}))


def test_duplicate_dataset_names_and_lookup() -> None:
    data = minimal()
    data["datasets"].append(dict(data["datasets"][0]))
    with pytest.raises(SuiteError, match="unique"):
        parse_suite(data)
    suite = parse_suite(minimal())
    with pytest.raises(SuiteError, match="did you mean 'toy'"):
        suite.dataset("tyo")


def test_missing_file_and_bad_yaml(tmp_path: Path) -> None:
    (tmp_path / "smoke.yaml").write_text("name: x\n")
    with pytest.raises(SuiteError, match=r"did you mean 'smoke\.yaml'"):
        load_suite(tmp_path / "smoek.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n")
    with pytest.raises(SuiteError, match="not valid YAML"):
        load_suite(bad)


def test_directory_or_non_utf8_suite_path_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "smoke.yaml").write_text("name: x\n")
    with pytest.raises(SuiteError, match=r"is a directory, not a suite YAML file.*smoke\.yaml"):
        load_suite(tmp_path)
    latin1 = tmp_path / "latin1.yaml"
    latin1.write_bytes("name: caf\xe9\n".encode("latin-1"))
    with pytest.raises(SuiteError, match=r"not UTF-8 text \(byte 0xe9 at offset 9\)"):
        load_suite(latin1)


@pytest.mark.parametrize("name", ["..", ".", ".hidden", "../../etc", "a/b"])
def test_names_that_could_leave_the_results_folder_are_rejected(name: str) -> None:
    for raw in ({**minimal(), "name": name}, minimal(name=name)):
        with pytest.raises(SuiteError, match=r"is not a safe name: names become folders"):
            parse_suite(raw)
    assert parse_suite(minimal(name="v1.2_ok-name")).datasets[0].name == "v1.2_ok-name"


def test_every_unknown_encoder_fusion_and_option_is_reported_at_once() -> None:
    raw = minimal(
        search={
            "fusion": ["early", "erly"],
            "encoders": {"text": "tfidff"},
            "encoder_options": {"pixels": {"sise": [8]}},
            "fusion_options": {"early": {"hiden": [64]}},
        },
        pipeline={"fusion": {"name": "lineer"}, "encoders": {"text": {"name": "tfidf"}}},
    )
    with pytest.raises(SuiteError) as info:
        parse_suite(raw, source="s.yaml")
    lines = str(info.value).splitlines()[1:]
    expected = [
        "datasets[0](toy).search: unknown encoder 'tfidff' (did you mean 'tfidf'?)",
        "datasets[0](toy).search: unknown option 'sise' for encoder 'pixels' (did you mean 'size'?)",
        "datasets[0](toy).search: unknown fusion 'erly' (did you mean 'early'?)",
        "datasets[0](toy).search: unknown option 'hiden' for fusion 'early' (did you mean 'hidden'?)",
        "datasets[0](toy).pipeline: unknown fusion 'lineer' (did you mean 'linear'?)",
    ]
    assert len(lines) == len(expected)
    for line, start in zip(sorted(lines), sorted(expected), strict=True):
        assert line.strip().startswith(f"s.yaml: {start}")


def test_pipeline_spec_in_suite_is_validated() -> None:
    ok = minimal(
        pipeline={"encoders": {"text": "tfidf"}, "fusion": "late", "training": {"epochs": 3}}
    )
    spec = parse_suite(ok).datasets[0].pipeline
    assert spec is not None and spec.fusion.name == "late" and spec.training.epochs == 3
    assert spec.flat_params()["encoder.text"] == "tfidf"
    with pytest.raises(SuiteError, match="did you mean 'epochs'"):
        parse_suite(minimal(pipeline={"training": {"epoch": 3}}))


def test_names_and_bounds_are_reported_in_one_pass_even_beside_schema_errors() -> None:
    """One round of edit-and-rerun: a schema error in one place does not hide an unknown name
    or an out-of-bounds search range elsewhere, in the same or another dataset."""
    first = minimal(
        search={
            "encoders": {"text": ["tfidf", "minilmm"]},
            "training": {
                "dropout": {"low": 0, "high": 1.5},
                "lr": {"low": 0, "high": 0.1, "log": True},
                "batch_size": [0, 32],
                "epocs": 5,
            },
        },
    )
    first["datasets"][0]["protocl"] = {"folds": 3}  # a schema error in the same dataset
    second = minimal(search={"fusion": ["early", "lat"], "training": {"label_smoothing": [0, 1]}})
    second["datasets"][0]["name"] = "other"
    first["datasets"].append(second["datasets"][0])
    with pytest.raises(SuiteError) as info:
        parse_suite(first, source="s.yaml")
    text = str(info.value)
    for expected in [
        "datasets[0](toy).protocl: unknown key 'protocl' (did you mean 'protocol'?)",
        "datasets[0](toy).search: training: unknown training option 'epocs' (did you mean 'epochs'?)",
        "datasets[0](toy).search: unknown encoder 'minilmm' (did you mean 'minilm'?)",
        "datasets[0](toy).search: training.dropout: high 1.5 is outside the option's bounds",
        "datasets[0](toy).search: training.lr: a log range needs low > 0",
        "datasets[0](toy).search: training.batch_size: choice 0 is outside the option's bounds",
        "datasets[1](other).search: unknown fusion 'lat' (did you mean 'late'?)",
        "datasets[1](other).search: training.label_smoothing: choice 1 is outside the option's",
    ]:
        assert f"s.yaml: {expected}" in text, text
    assert len(text.splitlines()) == 1 + 9  # the header, then one line per problem


def test_a_search_space_out_of_bounds_fails_before_any_trial(tmp_path: Path) -> None:
    """Trials would fail one by one (and the run exit 0); the search refuses to start."""
    from conftest import tiny_suite

    from mmbench.data import load_table
    from mmbench.errors import MMBenchError
    from mmbench.evaluation import cv_folds
    from mmbench.search import SearchSettings, SearchSpace, run_search

    suite = tiny_suite(tmp_path)
    table = load_table(suite.datasets[0], suite.root, seed=0)
    space = SearchSpace.model_validate({"fusion": "early", "training": {"dropout": [0.1, 1.5]}})
    settings = SearchSettings(study_name="s", storage=f"sqlite:///{tmp_path / 'o.db'}", n_trials=3)
    with pytest.raises(MMBenchError, match=r"dropout: choice 1.5 is outside the option's bounds"):
        run_search(table, cv_folds(table.labels, 3, 1, 0), space, settings)


def test_a_bare_name_is_the_shipped_suite_from_any_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from importlib import resources

    from mmbench.suite import resolve_suite

    monkeypatch.chdir(tmp_path)  # no suites/ folder here
    shipped = Path(str(resources.files("mmbench") / "suites" / "smoke.yaml"))
    assert resolve_suite("smoke") == shipped
    assert load_suite("smoke").path == (ROOT / "suites" / "smoke.yaml").resolve()
    assert load_suite("fsdd").name == "fsdd"
    (tmp_path / "smoke.yaml").write_text(yaml.safe_dump(minimal()))
    assert load_suite("smoke.yaml").name == "s"  # a path still names its own file
    assert resolve_suite(tmp_path / "smoke.yaml") == tmp_path / "smoke.yaml"


def test_an_unknown_suite_name_lists_the_shipped_ones_and_the_closest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SuiteError) as err:
        load_suite("smok")
    text = str(err.value)
    assert text.startswith("smok: no such suite file, and no shipped suite of that name")
    assert "(did you mean 'smoke'?)" in text
    assert "shipped suites: " in text and "basicmotions" in text and "fsdd" in text
    with pytest.raises(SuiteError, match=r"nope\.yaml: suite file not found"):
        load_suite("nope.yaml")  # a path is never looked up among the shipped suites


def test_the_package_data_carries_every_shipped_suite_file() -> None:
    """Each file of suites/ matches a package-data pattern and is readable as mmbench data."""
    import fnmatch
    import tomllib
    from importlib import resources

    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["package-data"]["mmbench"]
    folder = resources.files("mmbench") / "suites"
    files = sorted(p for p in (ROOT / "suites").iterdir() if p.is_file())
    assert any(p.name == "fsdd.registry.txt" for p in files)
    for path in files:
        assert any(fnmatch.fnmatch(f"suites/{path.name}", pat) for pat in patterns), path.name
        assert (folder / path.name).read_bytes() == path.read_bytes(), path.name
