"""TextEncoder: agreement with sentence-transformers, the on-disk cache, and awkward input."""

import warnings
from collections import Counter

import numpy as np
import pytest
import torch

from mtrec.extractors.text import TextEncoder, default_model_path, mean_pool
from mtrec.extractors.text_model import SentenceConfig, sentence_config

TEXTS = [
    "Toy Story (1995) | Animation, Children's, Comedy",
    "GoldenEye (1995) | Action, Adventure, Thriller",
    "Love this dress! It is sooo pretty. I happened to find it in a store.",
    "a",
    "",
    "Four Rooms (1995) | Thriller",
]


@pytest.fixture(scope="module")
def encoder(tmp_path_factory):
    return TextEncoder(cache_dir=tmp_path_factory.mktemp("emb"), device="cpu")


@pytest.fixture(scope="module")
def reference():
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(default_model_path(), device="cpu")


def test_shape_norm_and_dim(encoder):
    vectors = encoder.encode(TEXTS)
    assert vectors.shape == (len(TEXTS), encoder.dim) == (6, 384)
    assert vectors.dtype == torch.float32
    torch.testing.assert_close(vectors.norm(dim=1), torch.ones(len(TEXTS)))
    assert encoder.encode([]).shape == (0, 384)


LONG_TEXT = "The fabric is soft and the fit runs small. " * 60  # about 600 words: > 256 tokens


def test_defaults_follow_the_model_folder(encoder, reference):
    """max length, pooling and normalisation come from the sentence-transformers files."""
    assert encoder.max_length == reference.max_seq_length == 256
    assert (encoder.pooling, encoder.normalize) == ("mean", True)
    config = sentence_config(default_model_path(), encoder.config)
    assert config == SentenceConfig(max_length=256, pooling="mean", normalize=True)


def test_default_matches_sentence_transformers_without_changes(encoder, reference):
    """TextEncoder() equals SentenceTransformer(path).encode as shipped: short, empty, over-long."""
    texts = [*TEXTS, LONG_TEXT]
    expected = reference.encode(texts, convert_to_tensor=True, batch_size=3).cpu()
    with pytest.warns(UserWarning, match="truncated"):
        ours = encoder.encode(texts, batch_size=3)
    cosine = (ours * expected).sum(dim=1)
    assert cosine.min().item() >= 0.9999, cosine


def test_shorter_max_length_matches_the_same_truncation(tmp_path, reference):
    """The speed option: max_length=128 equals sentence-transformers truncated at 128 too."""
    short = TextEncoder(cache_dir=tmp_path, device="cpu", max_length=128)
    texts = [*TEXTS, LONG_TEXT]
    reference.max_seq_length = 128
    try:
        expected = reference.encode(texts, convert_to_tensor=True, batch_size=3).cpu()
    finally:
        reference.max_seq_length = 256
    with pytest.warns(UserWarning, match="truncated"):
        ours = short.encode(texts, batch_size=3)
    assert ((ours * expected).sum(dim=1).min().item()) >= 0.9999


def test_texts_within_both_lengths_are_equal_under_128_and_256(encoder, tmp_path):
    """Texts of <= 128 tokens (the notebooks' titles and profiles) get the same vectors."""
    short = TextEncoder(cache_dir=tmp_path, device="cpu", max_length=128)
    torch.testing.assert_close(short.encode(TEXTS), encoder.encode(TEXTS), atol=1e-6, rtol=0)


@pytest.mark.parametrize("mode", ["cls", "max", "mean_sqrt_len"])
def test_other_pooling_modes_match_sentence_transformers(tmp_path, mode):
    from sentence_transformers import SentenceTransformer, models

    path = default_model_path()
    word = models.Transformer(path, max_seq_length=256)
    st_mode = {"mean_sqrt_len": "mean_sqrt_len_tokens"}.get(mode, mode)
    pooling = models.Pooling(word.get_embedding_dimension(), pooling_mode=st_mode)
    reference = SentenceTransformer(modules=[word, pooling], device="cpu")
    expected = reference.encode(TEXTS, convert_to_tensor=True).cpu()
    ours = TextEncoder(cache_dir=tmp_path, device="cpu", pooling=mode, normalize=False)
    torch.testing.assert_close(ours.encode(TEXTS), expected, atol=1e-4, rtol=1e-4)


def test_mean_pool_ignores_padding():
    hidden = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [100.0, 100.0]]])  # (1, 3, 2)
    mask = torch.tensor([[1, 1, 0]])
    torch.testing.assert_close(mean_pool(hidden, mask), torch.tensor([[2.0, 3.0]]))


def test_cache_is_reused_from_disk_without_loading_the_model(encoder):
    first = encoder.encode(TEXTS)
    fresh = TextEncoder(cache_dir=encoder.cache_path.parent, device="cpu")
    assert fresh.cache_path == encoder.cache_path
    again = fresh.encode(list(reversed(TEXTS)))
    assert fresh._model is None  # every vector came from the safetensors shards
    torch.testing.assert_close(again, first.flip(0))
    assert list(encoder.cache_path.glob("shard-*.safetensors"))
    assert not list(encoder.cache_path.glob("*.pkl"))


def test_cache_key_depends_on_max_length_and_pooling(encoder):
    other = TextEncoder(cache_dir=encoder.cache_path.parent, max_length=16, device="cpu")
    assert other.cache_path != encoder.cache_path
    cls = TextEncoder(cache_dir=encoder.cache_path.parent, pooling="cls", device="cpu")
    raw = TextEncoder(cache_dir=encoder.cache_path.parent, normalize=False, device="cpu")
    assert len({encoder.cache_key, cls.cache_key, raw.cache_key}) == 3


def test_cache_key_of_the_128_token_encoder_is_unchanged():
    """Embedding caches written before the defaults followed the model stay valid (same key)."""
    import hashlib

    from mtrec.extractors.text_cache import CACHE_VERSION
    from mtrec.extractors.text_cache import model_identity as _model_identity

    enc = TextEncoder(max_length=128, device="cpu")
    identity = _model_identity(enc.model_name_or_path, enc.config)
    old = f"v{CACHE_VERSION}|{identity}|max_length=128|mean|l2"
    assert enc.cache_key == hashlib.sha256(old.encode()).hexdigest()[:20]


def test_loading_prints_no_progress_bar(tmp_path, capfd):
    enc = TextEncoder(cache_dir=tmp_path, cache=False, device="cpu")
    enc.encode(["hello"])
    captured = capfd.readouterr()
    assert "Loading weights" not in captured.err + captured.out


def test_duplicates_and_order(encoder):
    vectors = encoder.encode(["b", "a", "b"])
    torch.testing.assert_close(vectors[0], vectors[2])
    torch.testing.assert_close(vectors[1], encoder.encode(["a"])[0])


def test_empty_string_is_the_empty_sentence_vector(encoder, reference):
    vector = encoder.encode([""])
    assert torch.isfinite(vector).all()
    expected = reference.encode([""], convert_to_tensor=True).cpu()
    assert (vector * expected).sum().item() >= 0.9999


def test_missing_and_wrong_types_raise(encoder):
    with pytest.raises(ValueError, match=r"texts\[1\] is missing"):
        encoder.encode(["ok", None])
    with pytest.raises(ValueError, match="fill missing text"):
        encoder.encode([float("nan")])
    with pytest.raises(TypeError, match=r"wrap it"):
        encoder.encode("a single string")
    with pytest.raises(TypeError, match=r"expected str"):
        encoder.encode([3])
    with pytest.raises(ValueError, match="max_length"):
        TextEncoder(max_length=1)
    with pytest.raises(ValueError, match="position embeddings"):
        TextEncoder(max_length=4096)
    with pytest.raises(ValueError, match="pooling"):
        TextEncoder(pooling="median")


def test_long_text_warns_once(tmp_path):
    enc = TextEncoder(cache_dir=tmp_path, max_length=8, device="cpu")
    with pytest.warns(UserWarning, match="truncated"):
        enc.encode(["one two three four five six seven eight nine ten"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        enc.encode(["eleven twelve thirteen fourteen fifteen sixteen seventeen"])


def test_uncached_encoder_writes_nothing(tmp_path):
    enc = TextEncoder(cache_dir=tmp_path, cache=False, device="cpu")
    enc.encode(["hello"])
    assert not list(tmp_path.rglob("*.safetensors"))


@pytest.fixture(scope="module")
def reviews():
    """Real review texts (Women's Clothing) when cached, else the bench's review-like sentences."""
    from mtrec.bench.inputs import review_texts

    return review_texts(48)


def test_int8_fast_path_stays_close_to_fp32(encoder, reviews, tmp_path_factory):
    pytest.importorskip("onnxruntime", reason="the serve extra (pip install 'mtrec[serve]')")
    pytest.importorskip("onnxscript", reason="the serve extra (pip install 'mtrec[serve]')")
    onnx = pytest.importorskip("onnx", reason="the serve extra (pip install 'mtrec[serve]')")
    folder = tmp_path_factory.mktemp("int8")
    fast = TextEncoder(cache_dir=folder, device="cpu", precision="int8")
    assert fast.cache_key != encoder.cache_key  # int8 vectors never answer for fp32 ones
    cosine = (fast.encode(reviews) * encoder.encode(reviews)).sum(dim=1)  # the guard
    assert cosine.min().item() >= 0.99, cosine.min()
    # titles and awkward input: "" (only [CLS] [SEP], nothing to average out the rounding) is
    # the worst case, measured at 0.978; documented in TextEncoder's docstring
    short = (fast.encode(TEXTS) * encoder.encode(TEXTS)).sum(dim=1)
    assert short.min().item() >= 0.97, short
    (path,) = (folder / "onnx").glob("encoder-*-fused-late-ffn-int8.onnx")  # built once, reused
    graph = onnx.load(str(path)).graph
    ops = Counter(node.op_type for node in graph.node)
    layers = fast.model.config.num_hidden_layers  # each layer's attention fused and int8
    assert ops["QAttention"] == layers and ops["SkipLayerNormalization"] == 2 * layers, ops
    assert ops["EmbedLayerNormalization"] == 1 and ops["BiasGelu"] == layers, ops
    # fp32: the feed-forward output projections of the first half of the layers, and only them
    fp32 = [node.name for node in graph.node if node.op_type == "MatMul"]
    assert fp32 == [f"/model/encoder/layer.{i}/output/dense/MatMul" for i in range(3)], fp32
    assert ops["MatMulInteger"] == 3 * layers - len(fp32), ops  # attention out, FFN in and out
    again = TextEncoder(cache_dir=folder, device="cpu", precision="int8", cache=False)
    torch.testing.assert_close(again.encode(TEXTS), fast.encode(TEXTS), atol=1e-5, rtol=0)


def test_unknown_precision_raises():
    with pytest.raises(ValueError, match="precision"):
        TextEncoder(precision="fp8")


def test_a_plain_hugging_face_folder_falls_back_to_mean_l2_and_its_positions(tmp_path, encoder):
    """Without sentence-transformers files: mean pooling, L2, max_position_embeddings tokens."""
    from pathlib import Path

    source = Path(default_model_path())
    for name in ("config.json", "tokenizer.json", "tokenizer_config.json", "vocab.txt"):
        (tmp_path / name).symlink_to(source / name)
    config = sentence_config(str(tmp_path), encoder.config)
    assert config == SentenceConfig(
        max_length=encoder.config.max_position_embeddings, pooling="mean", normalize=True
    )


def test_length_buckets_cover_every_row_once_with_little_padding():
    from mtrec.extractors.onnx_text import BUCKET_RATIO, length_buckets

    lengths = [12, 130, 7, 64, 64, 90, 3, 128, 40, 41]
    buckets = length_buckets(lengths)
    rows = np.concatenate(buckets)
    assert sorted(rows.tolist()) == list(range(len(lengths)))  # every row, once
    assert [lengths[i] for i in rows] == sorted(lengths, reverse=True)  # longest first
    for bucket in buckets:
        longest = lengths[bucket[0]]
        assert all(lengths[i] >= BUCKET_RATIO * longest for i in bucket)
    assert [b.tolist() for b in length_buckets([5, 5, 5])] == [[0, 1, 2]]  # ties keep their order
    assert len(length_buckets(lengths, ratio=0.0)) == 1  # ratio 0: one bucket, the whole batch


def test_run_in_buckets_places_each_bucket_back_and_cuts_its_padding():
    from mtrec.extractors.onnx_text import run_in_buckets

    class Session:  # token states = the token id in every feature, and a log of the calls
        def __init__(self) -> None:
            self.calls: list[tuple[int, int]] = []

        def run(self, _, feeds):
            ids, mask = feeds["input_ids"], feeds["attention_mask"]
            assert mask[:, -1].any()  # cut to the bucket's longest text: no all-padding column
            self.calls.append(ids.shape)
            return [np.repeat(ids[..., None], 3, axis=-1).astype(np.float32)]

    lengths = np.array([2, 9, 8, 3, 9])
    mask = (np.arange(9)[None, :] < lengths[:, None]).astype(np.int64)
    ids = (np.arange(1, 10)[None, :] * 10 + np.arange(5)[:, None]) * mask  # right-padded with 0
    session = Session()
    out = run_in_buckets(session, ids, mask)
    assert out.shape == (5, 9, 3)
    np.testing.assert_array_equal(out[..., 0], ids)  # every row back in place, 0 past its end
    assert session.calls == [(3, 9), (1, 3), (1, 2)]  # 9, 9, 8 | 3 | 2
