"""Bad input to the extractors (audio, image, text): property-based and explicit cases.

A case passes when it returns a correct result (the documented shape, finite, unit or zero
norm) or raises an exception raised from mtrec's own code with a message.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.robustness.conftest import assert_clear_error, result_or_clear_error

FEW = settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def assert_unit_or_zero_rows(vectors: torch.Tensor, rows: int) -> None:
    assert vectors.shape[0] == rows and torch.isfinite(vectors).all()
    norms = vectors.norm(dim=1)
    assert bool(((norms - 1).abs() < 1e-4).logical_or(norms == 0).all()), norms


# --------------------------------------------------------------------------- audio


@pytest.fixture(scope="module")
def audio():
    from mtrec.extractors.audio import AudioEncoder

    torch.manual_seed(0)
    return AudioEncoder(hidden_size=8, n_mels=8, device="cpu")


@pytest.mark.parametrize("samples", [1, 2, 3, 128, 129, 300])
def test_audio_short_clips_are_padded(audio, samples):
    clip = np.sin(np.arange(samples, dtype=np.float32)) * 0.5
    assert_unit_or_zero_rows(audio.encode([clip]), 1)


def test_audio_short_clip_next_to_a_long_one_is_unchanged(audio):
    long = np.sin(np.arange(4000, dtype=np.float32) / 7) * 0.5
    both = audio.encode([long, long[:2]])
    torch.testing.assert_close(both[0], audio.encode([long])[0])


@pytest.mark.parametrize(
    ("clips", "words"),
    [
        ([], "clips is empty"),
        ([np.zeros(0)], "empty"),
        ([np.full(100, np.nan)], "NaN"),
        ([np.full(400, 1e30, dtype=np.float32)], "too loud"),
        ([np.sin(np.arange(400)) * 1e25], "too loud"),
        ([["a", "b"]], "must be a waveform"),
        ([object()], "must be a waveform"),
        (np.zeros(100), "wrap one clip"),
        ("clip.wav", "wrap one file path"),
        ([np.zeros((2, 2, 2))], "not 1-D/2-D"),
    ],
)
def test_audio_bad_clips(audio, clips, words):
    assert words in str(assert_clear_error(audio.encode, clips))


def test_audio_missing_and_unreadable_files(audio, tmp_path):
    missing = tmp_path / "no-such.wav"
    error = assert_clear_error(audio.encode, [str(missing)])
    assert isinstance(error, FileNotFoundError) and str(missing) in str(error)
    fake = tmp_path / "fake.wav"
    fake.write_text("not audio")
    error = assert_clear_error(audio.encode, [fake])
    assert "not a sound file" in str(error) and str(fake) in str(error)
    assert "is a folder" in str(assert_clear_error(audio.encode, [tmp_path]))


@pytest.mark.parametrize("rate", [0, -8000, 2.5, "8000"])
def test_audio_bad_sample_rates(audio, rate):
    assert_clear_error(audio.encode, [np.zeros(400)], sample_rates=rate)


@pytest.mark.parametrize("batch_size", [0, -1, 1.5])
def test_audio_bad_batch_size(audio, batch_size):
    assert_clear_error(audio.encode, [np.zeros(400)], batch_size=batch_size)


samples_st = st.floats(allow_nan=True, allow_infinity=True, width=32)


@FEW
@given(
    lengths=st.lists(st.integers(0, 600), min_size=0, max_size=3),
    scale=st.sampled_from([0.0, 1e-6, 0.5, 1.0, 32767.0, 1e20, 1e30]),
    special=st.one_of(st.none(), samples_st),
    channels=st.sampled_from([None, 1, 2]),
)
def test_audio_property(audio, lengths, scale, special, channels):
    rng = np.random.default_rng(len(lengths))
    clips = []
    for length in lengths:
        clip = (rng.standard_normal(length) * scale).astype(np.float32)
        if special is not None and length:
            clip[length // 2] = special
        if channels:
            clip = np.stack([clip] * channels, axis=1)  # (T, C)
        clips.append(clip)
    vectors = result_or_clear_error(audio.encode, clips)
    if not isinstance(vectors, Exception):  # else refused clearly
        assert_unit_or_zero_rows(vectors, len(clips))


# --------------------------------------------------------------------------- image


@pytest.fixture(scope="module")
def image():
    from mtrec.extractors.image import ImageEncoder

    torch.manual_seed(0)
    return ImageEncoder(image_size=8, device="cpu")


def test_one_hwc_image_is_not_read_as_grey_images(image):
    one = np.random.default_rng(0).integers(0, 256, (28, 28, 3), dtype=np.uint8)
    error = assert_clear_error(image.encode, one)
    assert "(N, C, H, W)" in str(error) and "image[None]" in str(error)
    assert_unit_or_zero_rows(image.encode(one[None]), 1)
    assert_unit_or_zero_rows(image.encode([one, one]), 2)  # a list of HWC images stacks


def test_image_file_paths_are_read(image, tmp_path):
    from PIL import Image

    pixels = np.random.default_rng(0).integers(0, 256, (10, 12, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(tmp_path / "a.png")
    from_file = image.encode(str(tmp_path / "a.png"))
    torch.testing.assert_close(from_file, image.encode(pixels[None]))
    assert image.encode([tmp_path / "a.png", tmp_path / "a.png"]).shape == (2, image.dim)
    error = assert_clear_error(image.encode, str(tmp_path / "missing.png"))
    assert isinstance(error, FileNotFoundError) and "missing.png" in str(error)
    (tmp_path / "text.png").write_text("hello")
    assert "not an image file" in str(assert_clear_error(image.encode, tmp_path / "text.png"))


@pytest.mark.parametrize(
    ("content", "suffix"),
    [(b"hello world\n", ".pt"), (b"hello world\n", ".safetensors"), (b"", ".bin")],
)
def test_image_weights_that_are_not_weights(tmp_path, content, suffix):
    from mtrec.extractors.image import ImageEncoder

    path = tmp_path / f"weights{suffix}"
    path.write_bytes(content)
    error = assert_clear_error(ImageEncoder, image_size=8, weights=path, device="cpu")
    assert str(path) in str(error)


def test_image_weights_of_another_backbone(tmp_path):
    from safetensors.torch import save_file

    from mtrec.extractors.image import ImageEncoder

    save_file({"w": torch.zeros(3)}, str(tmp_path / "other.safetensors"))
    error = assert_clear_error(
        ImageEncoder, image_size=8, weights=tmp_path / "other.safetensors", device="cpu"
    )
    assert "do not fit this backbone" in str(error)


@pytest.mark.parametrize(
    ("images", "words"),
    [
        ([], "images is empty"),
        (np.zeros((0, 8, 8)), "non-empty"),
        (np.full((1, 8, 8), 255, dtype=np.int64), "uint8"),
        (np.zeros((1, 8, 8), dtype=bool), "real pixel values"),
        (np.array([["a"]], dtype=object), "numeric array"),
        ([np.zeros((8, 8)), np.zeros((9, 9))], "different shapes"),
        (np.full((1, 8, 8), np.inf), "NaN or inf"),
    ],
)
def test_image_bad_batches(image, images, words):
    assert words in str(assert_clear_error(image.encode, images))


@pytest.mark.parametrize("batch_size", [0, -3, 2.0])
def test_image_bad_batch_size(image, batch_size):
    assert_clear_error(image.encode, np.zeros((2, 8, 8), dtype=np.uint8), batch_size=batch_size)


@FEW
@given(
    shape=st.lists(st.integers(0, 9), min_size=1, max_size=5),
    dtype=st.sampled_from(["uint8", "float32", "float64", "int64", "int16"]),
    special=st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True)),
)
def test_image_property(image, shape, dtype, special):
    rng = np.random.default_rng(len(shape))
    images = rng.random(shape)
    if dtype in ("uint8", "int64", "int16"):
        images = (images * 255).astype(dtype)
    else:
        images = images.astype(dtype)
        if special is not None and images.size:
            with np.errstate(over="ignore"):  # a float64 too large for float32 becomes inf
                images.flat[0] = special
    vectors = result_or_clear_error(image.encode, images)
    if not isinstance(vectors, Exception):  # else refused clearly
        assert_unit_or_zero_rows(vectors, shape[0])
        assert len(shape) in (3, 4)


# --------------------------------------------------------------------------- text


@pytest.fixture(scope="module")
def text(tmp_path_factory):
    from mtrec.extractors.text import TextEncoder

    enc = TextEncoder(cache_dir=tmp_path_factory.mktemp("emb"), device="cpu")
    enc.encode(["warm up"])
    return enc


def test_lone_surrogates_are_replaced(text):
    vectors = text.encode(["bad \ud800 text", "\udfff"])
    torch.testing.assert_close(vectors, text.encode(["bad \ufffd text", "\ufffd"]))
    pair = "\ud83d\ude00"  # a valid surrogate pair written as two code points: one emoji
    torch.testing.assert_close(text.encode([pair]), text.encode(["\U0001f600"]))


@pytest.mark.parametrize("path", ["/no/such/model", "./missing-model", "~/nope/model"])
def test_missing_model_folder(path):
    from mtrec.extractors.text import TextEncoder

    error = assert_clear_error(TextEncoder, path)
    assert isinstance(error, FileNotFoundError) and "no model folder at" in str(error)


def test_model_path_without_a_model(tmp_path):
    from mtrec.extractors.text import TextEncoder

    assert "without config.json" in str(assert_clear_error(TextEncoder, tmp_path))
    (tmp_path / "file").write_text("x")
    assert "not a model folder" in str(assert_clear_error(TextEncoder, tmp_path / "file"))
    error = assert_clear_error(TextEncoder, "nobody-here/no-such-model-xyz")
    assert isinstance(error, FileNotFoundError) and "local cache" in str(error)


def test_empty_list_gives_zero_rows(text):
    assert text.encode([]).shape == (0, text.dim)


@pytest.mark.parametrize(
    "texts",
    ["one string", ["ok", None], ["ok", float("nan")], [b"bytes"], [3], None, 42],
)
def test_text_bad_inputs(text, texts):
    assert_clear_error(text.encode, texts)


@pytest.mark.parametrize("kwargs", [{"batch_size": -1}, {"batch_size": 0.5}])
def test_text_bad_batch_size(text, kwargs):
    assert_clear_error(text.encode, ["hello"], **kwargs)


@pytest.mark.parametrize(
    "kwargs",
    [{"max_length": 1}, {"max_length": "64"}, {"batch_size": 0}, {"batch_size": "8"},
     {"pooling": "median"}, {"precision": "fp8"}, {"max_length": 100_000}],
)  # fmt: skip
def test_text_bad_settings(kwargs, tmp_path):
    from mtrec.extractors.text import TextEncoder

    assert_clear_error(TextEncoder, cache_dir=tmp_path, device="cpu", **kwargs)


texts_st = st.lists(
    st.one_of(
        st.text(max_size=30),
        st.text(st.characters(codec=None, categories=["Cs", "Co", "Cn", "Zs", "Mn"]), max_size=8),
        st.sampled_from(["", " ", "\x00", "\ud800", "\U0010ffff", "a" * 2000]),
        st.none(),
        st.integers(),
    ),
    max_size=4,
)


@FEW
@given(texts=texts_st)
def test_text_property(text, texts):
    vectors = result_or_clear_error(text.encode, texts)
    if not isinstance(vectors, Exception):  # else refused clearly
        assert vectors.shape == (len(texts), text.dim)
        assert_unit_or_zero_rows(vectors, len(texts))


# --------------------------------------------------------------------------- fusion

DIMS = {"text": 6, "image": 4}


@pytest.mark.parametrize("kind", ["concat", "gated", "attention"])
@pytest.mark.parametrize(
    ("features", "present", "words"),
    [
        ({"text": torch.zeros(2, 6)}, None, "lack modalities ['image']"),
        ({"text": torch.zeros(2, 6), "image": torch.zeros(3, 4)}, None, "must be (B=2, 4)"),
        ({"text": torch.zeros(2, 5), "image": torch.zeros(2, 4)}, None, "must be (B=2, 6)"),
        ({"text": np.zeros((2, 6)), "image": torch.zeros(2, 4)}, None, "torch.as_tensor"),
        ({"text": torch.zeros(6), "image": torch.zeros(2, 4)}, None, "2-D"),
        ({"text": torch.full((2, 6), float("nan")), "image": torch.zeros(2, 4)}, None, "NaN"),
        ({"text": torch.zeros(2, 6, dtype=torch.bool), "image": torch.zeros(2, 4)}, None,
         "real numbers"),
        ({"text": torch.zeros(2, 6), "image": torch.zeros(2, 4)}, torch.zeros(2, 2), "at least one"),
        ({"text": torch.zeros(2, 6), "image": torch.zeros(2, 4)}, torch.ones(2, 3), "(B, M)"),
        ([torch.zeros(2, 6)], None, "must map modality names"),
    ],
)  # fmt: skip
def test_fusion_bad_inputs(kind, features, present, words):
    from mtrec.extractors.fusion import FUSIONS

    fusion = FUSIONS[kind](DIMS, 8)
    assert words in str(assert_clear_error(fusion, features, present=present))


@pytest.mark.parametrize(
    "kwargs",
    [{"dims": {}, "d_model": 8}, {"dims": {"a": 0}, "d_model": 8}, {"dims": {"a": 2.5}, "d_model": 8},
     {"dims": {"a": 3}, "d_model": 0}, {"dims": {"a": 3}, "d_model": "8"}, {"dims": [3], "d_model": 8},
     {"dims": {"a": 3}, "d_model": 8, "num_heads": 0}, {"dims": {"a": 3}, "d_model": 8, "num_heads": 3}],
)  # fmt: skip
def test_fusion_bad_settings(kwargs):
    from mtrec.extractors.fusion import AttentionFusion

    assert_clear_error(AttentionFusion, **kwargs)


@FEW
@given(
    kind=st.sampled_from(["concat", "gated", "attention"]),
    batch=st.integers(0, 4),
    dtype=st.sampled_from([torch.float32, torch.float64, torch.int64]),
    present=st.one_of(st.none(), st.lists(st.booleans(), min_size=2, max_size=2)),
    special=st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True, width=32)),
)
def test_fusion_property(kind, batch, dtype, present, special):
    from mtrec.extractors.fusion import FUSIONS

    torch.manual_seed(0)
    fusion = FUSIONS[kind](DIMS, 8)
    features = {m: torch.randn(batch, d).to(dtype) for m, d in DIMS.items()}
    if special is not None and batch and dtype != torch.int64:
        features["text"][0, 0] = special
    mask = None if present is None else torch.tensor([present] * batch).reshape(batch, 2)
    out = result_or_clear_error(fusion, features, present=mask, return_weights=True)
    if not isinstance(out, Exception):  # else refused clearly
        fused, weights = out
        assert fused.shape == (batch, 8) and weights.shape == (batch, 2)
        assert torch.isfinite(fused).all() and torch.isfinite(weights).all()
        torch.testing.assert_close(weights.sum(dim=1), torch.ones(batch))
