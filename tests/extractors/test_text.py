"""TextEncoder: agreement with sentence-transformers, the on-disk cache, and awkward input."""

import warnings

import pytest
import torch

from mtrec.extractors.text import TextEncoder, default_model_path, mean_pool

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


def test_matches_sentence_transformers(encoder, reference):
    long_text = "The fabric is soft and the fit runs small. " * 40  # > 128 tokens: truncated
    texts = [*TEXTS, long_text]
    reference.max_seq_length = encoder.max_length
    expected = reference.encode(texts, convert_to_tensor=True, batch_size=3).cpu()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        ours = encoder.encode(texts, batch_size=3)
    cosine = (ours * expected).sum(dim=1)
    assert cosine.min().item() >= 0.9999, cosine


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


def test_cache_key_depends_on_max_length(encoder):
    other = TextEncoder(cache_dir=encoder.cache_path.parent, max_length=16, device="cpu")
    assert other.cache_path != encoder.cache_path


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
