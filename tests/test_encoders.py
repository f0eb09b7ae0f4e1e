"""Built-in encoders on tiny generated data: shapes, missing rows, determinism, no fold leakage."""

from __future__ import annotations

import io
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from mmbench.data.media import wav_bytes
from mmbench.encoders.base import create_encoder
from mmbench.errors import MMBenchError, UnknownNameError

torch = pytest.importorskip("torch")
torch.set_num_threads(1)

SR = 16000


def png_ref(seed: int, size: tuple[int, int] = (40, 30)) -> dict:
    from PIL import Image

    pixels = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="PNG")
    return {"path": None, "bytes": buf.getvalue()}


def wav_ref(freq: float, seconds: float = 0.5, sample_rate: int = SR) -> dict:
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    return {"path": None, "bytes": wav_bytes(0.5 * np.sin(2 * np.pi * freq * t), sample_rate)}


@pytest.fixture(scope="module")
def images() -> list:
    return [png_ref(0), None, png_ref(1, (20, 50)), png_ref(2)]


@pytest.fixture(scope="module")
def clips() -> list:
    return [wav_ref(440), None, wav_ref(2000), wav_ref(440, sample_rate=8000)]


def grads_flow(tower: torch.nn.Module, x: np.ndarray) -> torch.Tensor:
    tower.train()
    out = tower(torch.from_numpy(x))
    out.float().pow(2).mean().backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in tower.parameters())
    return out


# -- registry and contract ----------------------------------------------------------------


def test_unknown_names_suggest_closest() -> None:
    with pytest.raises(UnknownNameError, match="did you mean 'tfidf'"):
        create_encoder("tfidff")
    with pytest.raises(UnknownNameError, match="did you mean 'test_resnet'"):
        create_encoder("timm/test_resnett")


def test_bad_option_is_a_user_error() -> None:
    with pytest.raises(MMBenchError, match="svd"):
        create_encoder("tfidf", svd=3)
    with pytest.raises(MMBenchError, match="categorical"):
        create_encoder("tabular", categorical="hash")


def test_spec_tracks_output_options_only() -> None:
    base = create_encoder("timm/test_resnet").spec()
    assert create_encoder("timm/test_resnet", batch_size=3, device="cpu").spec() == base
    assert create_encoder("timm/test_resnet", pool="max").spec() != base
    assert create_encoder("tfidf", svd_dim=8).spec() != create_encoder("tfidf").spec()
    assert create_encoder("logmel").spec()["version"] >= 1


def test_importing_encoders_is_cheap() -> None:
    code = (
        "import sys, mmbench.encoders.base as b, mmbench.pipeline.cache;"
        "heavy = {'torch', 'timm', 'sklearn', 'librosa', 'sentence_transformers'};"
        "print(sorted(heavy & set(sys.modules)), 'tfidf' in b.ENCODERS)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[] True"  # every built-in registered, nothing heavy imported


# -- image ------------------------------------------------------------------------------


def test_timm_frozen_features(images: list) -> None:
    enc = create_encoder("timm/test_resnet", image_size=64, device="cpu")
    feats = enc.transform(images)
    assert feats.shape == (4, enc.feature_dim) and feats.dtype == np.float32
    assert not feats[1].any() and feats[[0, 2, 3]].any(axis=1).all()
    again = create_encoder("timm/test_resnet", image_size=64, device="cpu").transform(images)
    np.testing.assert_array_equal(feats, again)  # seeded random init: reproducible, cacheable


def test_timm_checkpoint_loads_local_weights(tmp_path, images: list) -> None:
    import timm
    from safetensors.torch import save_file

    torch.manual_seed(123)
    model = timm.create_model("test_resnet", pretrained=False).eval()  # with classifier
    path = tmp_path / "weights.safetensors"
    save_file(model.state_dict(), str(path))
    enc = create_encoder("timm/test_resnet", checkpoint=str(path), image_size=64, device="cpu")
    feats = enc.transform(images)
    with torch.inference_mode():
        pixels = torch.from_numpy(
            create_encoder("timm/test_resnet", frozen=False, image_size=64).transform(images)
        )
        expected = model.forward_head(model.forward_features(pixels), pre_logits=True).numpy()
    np.testing.assert_allclose(feats[[0, 2, 3]], expected[[0, 2, 3]], rtol=1e-5, atol=1e-5)
    assert enc.spec()["options"]["checkpoint"] != str(path)  # keyed by content


def test_timm_checkpoint_mismatch_is_clear(tmp_path) -> None:
    import timm

    path = tmp_path / "vit.pth"
    torch.save(timm.create_model("test_vit", pretrained=False).state_dict(), path)
    enc = create_encoder("timm/test_resnet", checkpoint=str(path))
    with pytest.raises(MMBenchError, match="does not fit"):
        enc.transform([png_ref(0)])
    with pytest.raises(MMBenchError, match="not found"):
        create_encoder("timm/test_resnet", checkpoint=str(tmp_path / "nope.pth")).spec()


def test_timm_pretrained_offline_suggests_alternatives(monkeypatch, tmp_path) -> None:
    constants = pytest.importorskip("huggingface_hub.constants")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))
    for enc in (
        create_encoder("timm/test_resnet", pretrained=True),
        create_encoder("timm/hf-hub:timm/no-such-model"),
    ):
        with pytest.raises(MMBenchError, match="pretrained: false"):
            enc.transform([png_ref(0)])


def test_timm_image_size_resizes_vit_position_embeddings() -> None:
    enc = create_encoder("timm/vit_tiny_patch16_224", image_size=48, device="cpu")
    assert enc.transform([png_ref(0)]).shape == (1, 192)


def test_timm_finetune_tower(images: list) -> None:
    enc = create_encoder("timm/test_resnet", frozen=False, augment=True, image_size=32)
    assert enc.trainable
    pixels = enc.transform(images)
    assert pixels.shape == (4, 3, 32, 32) and pixels.dtype == np.float32
    assert not pixels[1].any()
    tower = enc.build_tower()
    out = grads_flow(tower, pixels)
    assert out.shape == (4, enc.tower_dim) == (4, tower.out_dim)
    tower.eval()
    with torch.no_grad():
        x = torch.from_numpy(pixels)
        torch.testing.assert_close(tower(x), tower(x))  # no augmentation in eval mode
    with pytest.raises(MMBenchError, match="frozen"):
        create_encoder("timm/test_resnet", augment=True)


# -- text -------------------------------------------------------------------------------

TRAIN_TEXT = ["the cat sat on the mat", "a dog barked at the cat", None, "the dog sat"] * 2
VALID_TEXT = ["zebra giraffe", "the cat barked", None]


def test_tfidf_shapes_missing_and_no_leakage() -> None:
    enc = create_encoder("tfidf", svd_dim=4)
    train = enc.fit_transform(TRAIN_TEXT, np.zeros(len(TRAIN_TEXT)))
    valid = enc.transform(VALID_TEXT)
    assert train.shape == (8, 4) and valid.shape == (3, 4) and valid.dtype == np.float32
    assert not train[2].any() and not valid[2].any()
    assert "zebra" not in enc.vocabulary and "cat" in enc.vocabulary
    assert not valid[0].any()  # only validation-only words: nothing to represent
    assert valid[1].any()
    refit = create_encoder("tfidf", svd_dim=4).fit(TRAIN_TEXT, np.zeros(8)).transform(VALID_TEXT)
    np.testing.assert_array_equal(valid, refit)


def test_tfidf_dense_and_tiny_corpora() -> None:
    enc = create_encoder("tfidf", svd_dim=0, ngram_max=1).fit(TRAIN_TEXT, np.zeros(8))
    assert enc.transform(VALID_TEXT).shape == (3, len(enc.vocabulary))
    tiny = create_encoder("tfidf").fit(["one document"], np.zeros(1))  # min_df=2 falls back
    assert tiny.transform(["one", None]).shape == (2, 64)
    empty = create_encoder("tfidf").fit([None, None], np.zeros(2))
    assert not empty.transform(["anything"]).any()


def test_ngram_counts_keep_the_most_frequent_terms_of_the_training_rows() -> None:
    from scipy import sparse

    train = ["red red red apple", "red apple", None, "green pear", "green fig"]
    options = {"max_features": 3, "min_df": 1}
    enc = create_encoder("ngrams", **options, ngram_max=1).fit(train, np.zeros(5))
    assert set(enc.vocabulary) == {"red", "apple", "green"}  # 4, 2 and 2 of the training rows
    out = enc.transform(["red apple red", None, "pear fig kiwi"])
    column = enc.vocabulary
    assert out.shape == (3, 3) and out.dtype == np.float32
    assert out[0, column["red"]] == 2 and out[0, column["apple"]] == 1
    assert out[0, column["green"]] == 0
    assert not out[1].any() and not out[2].any()  # missing text; capped-out and unseen words
    both = create_encoder("ngrams", max_features=100, min_df=1).fit(train, np.zeros(5))
    assert {"red red", "red apple"} <= set(both.vocabulary)  # 1-2-grams by default
    binary = create_encoder("ngrams", **options, ngram_max=1, binary=True).fit(train, np.zeros(5))
    assert binary.transform(["red red red"]).max() == 1
    csr = create_encoder("ngrams", **options, ngram_max=1, sparse=True).fit(train, np.zeros(5))
    got = csr.transform(["red apple red", None, "pear fig kiwi"])
    assert sparse.issparse(got)
    np.testing.assert_array_equal(got.toarray(), out)
    assert enc.spec() != create_encoder("ngrams", max_features=4, min_df=1, ngram_max=1).spec()
    assert enc.spec()["name"] == "ngrams"
    with pytest.raises(MMBenchError, match="max_features >= 1"):
        create_encoder("ngrams", max_features=0)


def test_minilm_embeddings_are_normalized_and_semantic() -> None:
    pytest.importorskip("sentence_transformers")
    texts = ["a cat sits on the mat", "a kitten rests on a rug", "stock markets fell sharply", None]
    emb = create_encoder("minilm", device="cpu").transform(texts)
    assert emb.shape == (4, 384) and emb.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(emb[:3], axis=1), 1.0, atol=1e-4)
    assert not emb[3].any()
    sim = emb[:3] @ emb[:3].T
    assert sim[0, 1] > sim[0, 2] + 0.2
    same = create_encoder("st/sentence-transformers/all-MiniLM-L6-v2", device="cpu")
    np.testing.assert_allclose(same.transform(texts), emb, atol=1e-5)  # bundled copy, offline


def test_minilm_speed_options_and_cache_key() -> None:
    """Threads change how fast, not what (not in the key); a token cap and int8 change the
    embeddings, so they are in the key; int8 stays close to fp32 and keeps the meaning."""
    pytest.importorskip("sentence_transformers")
    default = create_encoder("minilm", device="cpu")
    assert set(default.spec()["options"]) == {"model", "normalize"}  # keys of cached features kept
    assert create_encoder("minilm", device="cpu", threads=1).spec() == default.spec()
    capped = create_encoder("minilm", device="cpu", max_tokens=8, threads=1)
    int8 = create_encoder("minilm", device="cpu", quantize="int8")
    specs = [default.spec(), capped.spec(), int8.spec()]
    assert len({repr(s) for s in specs}) == 3
    texts = ["a cat sits on the mat", "a kitten rests on a rug", "stock markets fell sharply"]
    long = ["the quick brown fox jumps over the lazy dog " * 4]
    fp32 = default.transform(texts + long)
    np.testing.assert_allclose(capped.transform(texts[:1]), fp32[:1], atol=1e-5)  # under the cap
    assert float(capped.transform(long)[0] @ fp32[3]) < 0.999  # truncated
    assert float(default.transform(long)[0] @ fp32[3]) > 0.9999  # the cap was for that call only
    q = int8.transform(texts)
    assert np.min(np.sum(q * fp32[:3], axis=1)) > 0.9  # cosine to the fp32 embedding
    sim = q @ q.T
    assert sim[0, 1] > sim[0, 2] + 0.2
    with pytest.raises(MMBenchError, match="quantize"):
        create_encoder("minilm", quantize="int4")


def test_idle_cores_is_at_least_one() -> None:
    from mmbench.device import idle_cores

    assert 1 <= idle_cores() <= (os.cpu_count() or 1)


def test_st_unreachable_model_suggests_minilm(monkeypatch) -> None:
    pytest.importorskip("sentence_transformers")
    constants = pytest.importorskip("huggingface_hub.constants")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    enc = create_encoder("st/no-such-org/no-such-model", device="cpu")
    with pytest.raises(MMBenchError, match="minilm"):
        enc.transform(["hello"])


@pytest.mark.parametrize("name", ["textcnn", "embbag"])
def test_textcnn_vocabulary_and_tower(name: str) -> None:
    enc = create_encoder(name, max_len=6, embed_dim=8, channels=4)
    assert enc.trainable and enc.fits_on_data
    ids = enc.fit_transform(TRAIN_TEXT, np.zeros(8))
    valid = enc.transform(VALID_TEXT)
    assert ids.shape == (8, 6) and ids.dtype == np.int64
    assert not ids[2].any() and not valid[2].any()  # missing: all padding
    assert valid[0, :2].tolist() == [1, 1]  # validation-only words are out of vocabulary
    assert "zebra" not in enc.vocab
    out = grads_flow(enc.build_tower(), np.concatenate([ids, valid]))
    assert out.shape == (11, enc.tower_dim) and torch.isfinite(out).all()
    # towers are built before training seeds itself: their initialisation must be seeded
    torch.testing.assert_close(enc.build_tower().state_dict(), enc.build_tower().state_dict())


# -- tabular ----------------------------------------------------------------------------


def tabular_frames() -> tuple[pd.DataFrame, pd.DataFrame]:
    train = pd.DataFrame(
        {
            "age": [20.0, 30.0, np.nan, 50.0, np.nan],
            "city": ["paris", "lyon", "paris", None, np.nan],
            "member": [True, False, True, True, np.nan],
        }
    )
    valid = pd.DataFrame(
        {"age": [1000.0, np.nan], "city": ["tokyo", np.nan], "member": [False, np.nan]}
    )
    return train, valid


def test_tabular_scaling_uses_training_rows_only() -> None:
    train, valid = tabular_frames()
    enc = create_encoder("tabular")
    feats = enc.fit_transform(train, np.zeros(5))
    names = enc.feature_names
    assert feats.dtype == np.float32 and feats.shape == (5, len(names))
    age = feats[:4, names.index("age")]  # row 4 is entirely missing
    np.testing.assert_allclose(age.mean(), 0.0, atol=1e-6)
    imputed = [20, 30, 30, 50]  # training median of the present rows fills the gap
    mean, std = np.mean(imputed), np.std(imputed)
    out = enc.transform(valid)
    assert out[0, names.index("age")] == pytest.approx((1000 - mean) / std, rel=1e-5)
    assert not feats[4].any() and not out[1].any()  # rows with every cell missing
    city = [i for i, n in enumerate(names) if n.startswith("city_")]
    assert not out[0, city].any()  # category seen only in validation: no column, all zero
    assert "city___missing__" in names and "missingindicator_age" in names


def test_tabular_ordinal_and_rare_categories() -> None:
    train, valid = tabular_frames()
    enc = create_encoder("tabular", categorical="ordinal").fit(train, np.zeros(5))
    assert enc.categorical_columns == ["city", "member"] and enc.numeric_columns == ["age"]
    assert enc.transform(valid)[0, enc.feature_names.index("city")] == -1
    rare = create_encoder("tabular", min_frequency=2).fit(train, np.zeros(5))
    assert "city_infrequent_sklearn" in rare.feature_names


# -- audio ------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "dim"), [("logmel", 32), ("mfcc", 20)])
def test_pooled_audio_features(name: str, dim: int, clips: list) -> None:
    enc = create_encoder(name, n_mels=16, **({"n_mfcc": 10} if name == "mfcc" else {}))
    feats = enc.transform(clips)
    assert feats.shape == (4, dim) and feats.dtype == np.float32
    assert not feats[1].any() and np.isfinite(feats).all()
    # the same tone recorded at 8 kHz (resampled on load) is far closer than another tone
    assert np.linalg.norm(feats[0] - feats[3]) < 0.3 * np.linalg.norm(feats[0] - feats[2])
    np.testing.assert_array_equal(feats, enc.transform(clips))


def test_audio_duration_crops() -> None:
    enc = create_encoder("logmel", n_mels=8, duration=0.25)
    long, short = wav_ref(440, seconds=1.0), wav_ref(440, seconds=0.25)
    np.testing.assert_allclose(*enc.transform([long, short]), atol=1e-4)


def test_audiocnn_fixed_size_inputs_and_tower(clips: list) -> None:
    enc = create_encoder("audiocnn", n_mels=16, duration=0.3, channels=[4, 8])
    x = enc.transform(clips)
    assert x.shape == (4, 1, 16, enc.frames) and x.dtype == np.float32
    assert not x[1].any()
    out = grads_flow(enc.build_tower(), x)
    assert out.shape == (4, enc.tower_dim) == (4, 8)


def test_tabular_learned_categorical_embeddings() -> None:
    """``categorical: embedding``: codes fitted on training rows, a tower that trains."""
    import pandas as pd
    import torch

    train = pd.DataFrame({"x": [1.0, 2.0, None, 4.0], "city": ["a", "b", "a", None]})
    valid = pd.DataFrame({"x": [3.0, 5.0], "city": ["zzz-unseen", "b"]})
    enc = create_encoder("tabular", categorical="embedding", embed_dim=4, hidden=16)
    assert enc.trainable and enc.fits_on_data
    enc.fit(train, np.array([0, 1, 0, 1]))
    codes = enc.transform(valid)[:, -1]
    assert codes[0] == 0.0  # a category unseen in training rows gets the reserved code
    assert codes[1] >= 1.0 and float(codes[1]).is_integer()
    tower = enc.build_tower()
    assert tower.out_dim == enc.tower_dim == 16
    out = tower(torch.tensor(enc.transform(train)))
    assert out.shape == (4, 16)
    out.sum().backward()
    assert tower.embeddings[0].weight.grad is not None


def test_tfidf_sparse_keeps_every_ngram_and_marks_missing_rows() -> None:
    from scipy import sparse

    enc = create_encoder("tfidf", sparse=True, min_df=1).fit(TRAIN_TEXT, np.zeros(8))
    out = enc.transform([*VALID_TEXT, None])
    assert sparse.issparse(out) and out.shape == (len(VALID_TEXT) + 1, len(enc.vocabulary))
    assert {"cat", "the cat", "dog barked"} <= set(enc.vocabulary)  # every 1-2-gram, no SVD
    assert out[2].nnz == 0 and out[len(VALID_TEXT)].nnz == 0  # missing texts: all-zero rows
    assert out[1].nnz == 4  # "the", "cat", "barked", "the cat"; unseen "cat barked" dropped
    dense = create_encoder("tfidf", svd_dim=0, max_features=20000, min_df=1)
    assert np.allclose(out[:-1].toarray(), dense.fit(TRAIN_TEXT, np.zeros(8)).transform(VALID_TEXT))
    assert create_encoder("tfidf").spec() != create_encoder("tfidf", sparse=True).spec()


def test_pixels_thumbnail_values_and_missing_rows(images: list) -> None:
    from PIL import Image

    enc = create_encoder("pixels", size=4)
    out = enc.transform(images)
    assert out.shape == (4, 4 * 4 * 3) and out.dtype == np.float32
    assert not out[1].any()  # the missing image
    assert out.min() >= 0.0 and out.max() <= 1.0
    red = io.BytesIO()
    Image.new("RGB", (9, 7), (255, 0, 0)).save(red, format="PNG")
    gray = create_encoder("pixels", size=2, color=False).transform([{"bytes": red.getvalue()}])
    assert gray.shape == (1, 4) and np.allclose(gray, 76 / 255, atol=0.01)  # luma of pure red
    with pytest.raises(MMBenchError, match="size"):
        create_encoder("pixels", size=1)


def test_tabular_ordinal_declares_its_trailing_category_codes() -> None:
    frame = pd.DataFrame(
        {"x": [1.0, 2.0, None, 4.0], "city": ["a", "b", "a", None], "ok": [True, False, True, True]}
    )
    ordinal = create_encoder("tabular", categorical="ordinal").fit(frame, np.zeros(4))
    x = ordinal.transform(frame)
    k = ordinal.categorical_codes(frame)
    assert k == 2 and ordinal.feature_names[-k:] == ["city", "ok"]
    assert set(np.unique(x[:, -k:])) <= {0.0, 1.0, 2.0}
    assert create_encoder("tabular").categorical_codes(frame) == 0  # one-hot: no codes
