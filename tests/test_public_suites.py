"""The public suites under ``suites/``: they validate, and what they pin is what their
benchmarks publish.

The AutoMM text + tabular suite cannot be downloaded here; its correctness rests on the hashes
copied from the benchmark's registry (``multimodal_text_benchmark/src/auto_mm_bench/datasets.py``
of sxjscience/automl_multimodal_benchmark at 5a4c3688e662a0c7777a75c1f3c56971ee14af0d, and for
data_scientist_salary at c3478b1f595eeb593f367de42196a31dbf223e1d), listed below as that file
states them, and on the mirror path being the one the tests exercise.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from mmbench.data import download
from mmbench.suite import load_suite

SUITES = Path(__file__).resolve().parents[1] / "suites"
S3 = "https://automl-mm-bench.s3.amazonaws.com/"
SALARY = "machine_hack_competitions/predict_the_data_scientists_salary_in_india_hackathon"

# (registry file key, split) -> the registry's sha1sum
AUTO_MM_BENCH_REGISTRY = {
    "machine_hack_product_sentiment/train.csv": "65f47ed9f760b096f4181d8fefadd4638a75c838",
    "machine_hack_product_sentiment/dev.csv": "8ef955f5ede1a7bd7ee2a0e7cea304026f2bf283",
    "news_channel/train.csv": "ab226210b6a878b449d01f33a195014c65c22311",
    "news_channel/test.csv": "a71516784ce6e168bd9933e9ec50080f65cb05fd",
    "wine_reviews/train.csv": "8d52f8fd16c36f66812ddebd019a4f96651b9bb0",
    "wine_reviews/test.csv": "9ca88272a403bf3cded29ebd64e07a01b353a903",
    "imdb_genre_prediction/train.csv": "56d2d5e3b19663d033fdfb6e33e4eb9c79c67864",
    "imdb_genre_prediction/test.csv": "0e435e917159542d725d21135cfa514ae936d2c1",
    "kick_starter_funding/train.csv": "b0faa47d3e65ff62fbcd105d565b912fce9b004e",
    "kick_starter_funding/test.csv": "454973f5b2866cb27d59f1dff112af9ab2bac8d1",
    "jigsaw_unintended_bias100K/train.pq": "557d0349d6bdd616c8631d6db844855d76810010",
    "jigsaw_unintended_bias100K/test.pq": "5b1d41c8dd36f43f3cd9b50a921a59d422e28774",
    "airbnb_melbourne/train.pq": "49f7d95df663d1199e6d860102d5863e48765caf",
    "airbnb_melbourne/test.pq": "c28611514b659295fe4b345c3995005719499946",
    "fake_job_postings2/train.csv": "df1c4975fce21e71af552626898e63e6a15a8cfa",
    "fake_job_postings2/test.csv": "021fbed4829eac2c5da002d80c00f1ed339ae420",
    # data_scientist_salary is listed from the registry's commit c3478b1f595eeb593f367de42196a31dbf223e1d
    f"{SALARY}/train.csv": "9ea3bb2bcd0396ae6c70d62bad32ef211276b0f6",
    f"{SALARY}/test.csv": "98194e41d1d4ebb251b38c2d474f486b08769a9f",
}
# the registry's ignore_columns of melbourne_airbnb
AIRBNB_IGNORED = [
    "id", "listing_url", "scrape_id", "last_scraped", "picture_url", "host_id", "host_url",
    "host_name", "host_thumbnail_url", "host_picture_url", "monthly_price", "weekly_price",
    "price", "calendar_last_scraped",
]  # fmt: skip


def test_automm_suite_pins_the_registry_hashes_and_metrics() -> None:
    suite = load_suite(SUITES / "automm-text-tabular.yaml")
    pinned = {}
    for d in suite.datasets:
        for source in (d.source, d.test_source):
            assert source is not None and source.kind == "url" and source.url
            assert source.url.startswith(S3) and source.hash
            pinned[source.url.removeprefix(S3)] = source.hash.removeprefix("sha1:")
    assert pinned == AUTO_MM_BENCH_REGISTRY
    metrics = {d.name: d.protocol.primary_metric for d in suite.datasets}
    assert metrics == {
        "prod": "accuracy",
        "channel": "accuracy",
        "wine": "accuracy",
        "imdb": "roc_auc",
        "kick": "roc_auc",
        "jigsaw": "roc_auc",
        "salary": "accuracy",
        "airbnb": "accuracy",
        "fake": "roc_auc",
    }


def test_automm_suite_holds_the_nine_classification_datasets_the_last_three_typed_by_auto() -> None:
    """The benchmark's classification datasets (its README's table: prod, salary, airbnb,
    channel, wine, imdb, fake, kick, jigsaw), each with a hashed training and test file; those
    whose features are every column but the label say ``modalities: auto``."""
    suite = load_suite(SUITES / "automm-text-tabular.yaml")
    names = {"prod", "salary", "airbnb", "channel", "wine", "imdb", "fake", "kick", "jigsaw"}
    assert {d.name for d in suite.datasets} == names and len(suite.datasets) == 9
    for d in suite.datasets:
        for source in (d.source, d.test_source):
            assert source is not None and source.hash and source.hash.startswith("sha1:")
    auto = {d.name: d.modalities for d in suite.datasets if d.modalities.auto}
    assert set(auto) == {"salary", "airbnb", "fake"}
    assert all(not m.present() for m in auto.values())  # no column named: all are typed
    assert auto["airbnb"].ignore == AIRBNB_IGNORED
    assert auto["salary"].ignore == auto["fake"].ignore == []
    assert {d.name: d.target for d in suite.datasets if d.name in auto} == {
        "salary": "salary",
        "airbnb": "price_label",
        "fake": "fraudulent",
    }


def test_a_mirror_serves_the_automm_files_at_their_s3_paths() -> None:
    url = S3 + "imdb_genre_prediction/train.csv"
    assert download.mirrored(url, "/srv/mirror") == (
        "/srv/mirror/automl-mm-bench.s3.amazonaws.com/imdb_genre_prediction/train.csv"
    )
    assert download.mirrored(url, "http://10.0.0.1:8000/").startswith(
        "http://10.0.0.1:8000/automl-mm-bench.s3.amazonaws.com/"
    )


def test_fsdd_suite_pins_3000_files_at_the_published_commit() -> None:
    suite = load_suite(SUITES / "fsdd.yaml")
    source = suite.datasets[0].source
    assert (
        source.base_url is not None
        and "26eb9aaf76e81b692f806f9140c2d2777410d7a1" in source.base_url
    )
    registry = download.read_registry(SUITES / str(source.registry))
    assert len(registry) == 3000 and all(len(h) == 64 for h in registry.values())


# all_datasets.yaml of Harry-zzh/autogluon-bench (815c440264dc4bee8257e9fbb4491892ae8459df):
# key -> (archive under bag-of-tricks/datasets/, label column, image column); sha1sum: None
BAG_OF_TRICKS = {
    "memotion": ("Memotion_processed.zip", "overall_sentiment", "image_name"),
    "food101": ("UPMC-Food101_processed.zip", "label", "image"),
    "aep": ("action_effect_pred_processed.zip", "label", "images"),
    "HAM": ("skin_cancer_processed.zip", "dx", "image_id"),
    "covid": ("covid-chestxray-dataset_processed.zip", "finding", "filename"),
    "artm": ("art-price-dataset_processed.zip", "movement", "images"),
}


def test_bag_of_tricks_suite_follows_its_list_and_pins_unpublished_hashes() -> None:
    suite = load_suite(SUITES / "multimodal-bag-of-tricks.yaml")
    found = {}
    for d in suite.datasets:
        assert d.source.hash == "unpublished" and d.source.url is not None
        assert d.test_source is not None and d.test_source.url == d.source.url
        assert d.card is not None and "pinned on first fetch" in d.card.notes
        assert d.source._lock_path == SUITES / "multimodal-bag-of-tricks.lock"
        archive = d.source.url.removeprefix(S3 + "bag-of-tricks/datasets/")
        found[d.name] = (archive, d.target, d.modalities.image[0])
    assert found == BAG_OF_TRICKS


AEON = "https://raw.githubusercontent.com/aeon-toolkit/aeon/a101ddc8b35a65441609b45c9bcce5aeafa0c131/aeon/datasets/data/"
MIRROR = Path(__file__).resolve().parents[1].parent / "shared" / "mirror"


def test_japanesevowels_suite_pins_the_aeon_files_and_one_12_channel_sensor() -> None:
    suite = load_suite(SUITES / "japanesevowels.yaml")
    [spec] = suite.datasets
    assert spec.source.kind == "url" and spec.test_source is not None
    assert spec.source.url == AEON + "JapaneseVowels/JapaneseVowels_TRAIN.ts"
    assert spec.test_source.url == AEON + "JapaneseVowels/JapaneseVowels_TEST.ts"
    assert spec.source.hash and spec.source.hash.startswith("sha256:")
    assert spec.test_source.hash and spec.test_source.hash != spec.source.hash
    assert spec.modalities.sensor == {"lpc": [f"dim_{k}" for k in range(12)]}
    assert spec.card is not None and spec.card.license and "Kudo" in spec.card.citation


@pytest.mark.shared
@pytest.mark.skipif(not MIRROR.is_dir(), reason=f"no mirror at {MIRROR}")
def test_japanesevowels_loads_from_the_mirror_with_its_unequal_lengths(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The official split as the suite reads it: 270 training and 370 held-out utterances of
    12 channels, each at its own length (7 to 29 frames), the hashes those of the mirrored bytes."""
    pytest.importorskip("aeon")
    from mmbench.data import load_table

    monkeypatch.setenv("MMBENCH_MIRROR", str(MIRROR))
    spec = load_suite(SUITES / "japanesevowels.yaml").datasets[0]
    train = load_table(spec, SUITES)
    test = load_table(spec, SUITES, split="test", classes=train.classes)
    assert (len(train), len(test)) == (270, 370) and train.classes == [str(k) for k in range(1, 10)]
    lengths = [s.shape[1] for t in (train, test) for s in t["sensor_lpc"]]
    assert {s.shape[0] for s in train["sensor_lpc"]} == {12}
    assert (min(lengths), max(lengths)) == (7, 29)
