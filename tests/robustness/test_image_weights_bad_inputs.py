"""Bad input to the pretrained image encoder: weights that are missing, damaged or refused,
backbones without ImageNet weights, bad ``freeze`` values and bad precomputed features.

A case passes when a good input gives a correct result and a bad one raises an error from mtrec's
own code with a message that names the fix (:func:`assert_clear_error`). The real weights come
from the cache (``mtrec data fetch mobilenet-v2``); damaged copies live in a fresh cache.
"""

from __future__ import annotations

import hashlib
from functools import partial

import pytest
import torch
from hypothesis import event, given
from hypothesis import strategies as st

from mtrec.data import registry
from mtrec.data.registry import DataError, DatasetSpec
from mtrec.extractors.image import ImageEncoder
from mtrec.extractors.image_weights import PRETRAINED
from tests.robustness.conftest import CLEAR, REPLAYABLE, assert_clear_error, result_or_clear_error

pytestmark = pytest.mark.usefixtures("one_thread")
DATASET, FILE = PRETRAINED["mobilenet_v2"]
pretrained = partial(ImageEncoder, "mobilenet_v2", weights="imagenet", image_size=32, device="cpu")


@pytest.fixture(scope="module")
def weights_file():
    """The real, verified weights file (read before a test points MTREC_DATA elsewhere)."""
    return registry.path(DATASET, FILE)


@pytest.fixture(scope="module")
def frozen():
    torch.manual_seed(0)
    return pretrained(freeze=True, num_classes=3)


def _cache_with(tmp_cache, payload: bytes):
    """A fresh cache whose weights file holds ``payload``."""
    target = tmp_cache / DATASET / FILE
    target.parent.mkdir(parents=True)
    target.write_bytes(payload)
    return target


def _trust(monkeypatch, payload: bytes) -> None:
    """Make the manifest's sha256 that of ``payload``: the file passes the checksum, so what is
    tested is what happens after it (a file torch cannot read, or keys that do not fit)."""
    spec = registry.spec(DATASET)
    files = {FILE: {**spec.files[FILE], "sha256": hashlib.sha256(payload).hexdigest()}}
    monkeypatch.setitem(
        registry.DATASETS, DATASET, DatasetSpec(**{**spec.__dict__, "files": files})
    )


# --------------------------------------------------------------------------- the weights file


def test_weights_not_fetched_name_the_fetch_command(tmp_cache):
    error = assert_clear_error(pretrained, accept=(DataError,))
    assert f"mtrec data fetch {DATASET}" in str(error) and "not in the cache" in str(error)


@pytest.mark.parametrize("damage", ["flip", "truncate", "empty"])
def test_damaged_weights_fail_their_checksum(tmp_cache, weights_file, damage):
    blob = bytearray(weights_file.read_bytes())
    if damage == "flip":
        blob[len(blob) // 2] ^= 0xFF
    payload = {"flip": bytes(blob), "truncate": bytes(blob[:1000]), "empty": b""}[damage]
    target = _cache_with(tmp_cache, payload)
    error = assert_clear_error(pretrained, accept=(DataError,), match="sha256")
    assert f"rm {target}" in str(error) and f"mtrec data fetch {DATASET}" in str(error)


def test_a_folder_in_the_weights_place(tmp_cache):
    (tmp_cache / DATASET / FILE).mkdir(parents=True)
    assert_clear_error(pretrained, accept=(DataError,), match=["folder", "rm -r"])


@pytest.mark.parametrize("payload", [b"not a torch file", b"PK\x03\x04broken zip"])
def test_checksummed_file_that_torch_cannot_read(tmp_cache, monkeypatch, payload):
    _cache_with(tmp_cache, payload)
    _trust(monkeypatch, payload)
    assert_clear_error(pretrained, accept=(DataError,), match=["cannot read", "constraints.txt"])


@pytest.mark.parametrize("edit", ["drop", "extra", "shape"])
def test_checksummed_weights_whose_keys_do_not_fit(tmp_cache, monkeypatch, weights_file, edit):
    """Strict loading: a missing key, an unexpected one or a wrong shape is refused."""
    state = torch.load(weights_file, map_location="cpu", weights_only=True)
    if edit == "drop":
        del state["features.0.0.weight"]
    elif edit == "extra":
        state["features.99.weight"] = torch.zeros(1)
    else:
        state["classifier.1.bias"] = torch.zeros(10)
    target = _cache_with(tmp_cache, b"")
    torch.save(state, target)
    _trust(monkeypatch, target.read_bytes())
    assert_clear_error(pretrained, accept=(DataError,), match=["do not fit", "torchvision"])


# --------------------------------------------------------------------------- arguments


@pytest.mark.parametrize("backbone", ["resnet18-small", "resnet18", "mobilenet_v3_small", "nope"])
def test_imagenet_weights_for_a_backbone_without_them(backbone):
    error = assert_clear_error(
        ImageEncoder, backbone, weights="imagenet", image_size=32, device="cpu", accept=CLEAR
    )
    assert f"{backbone!r}" in str(error) and "'mobilenet_v2'" in str(error)


def test_imagenet_is_a_name_not_a_path(tmp_path):
    """A file called ``imagenet`` is read as a weights file only when passed as a Path."""
    from pathlib import Path

    path = tmp_path / "imagenet"
    path.write_text("not weights")
    assert_clear_error(ImageEncoder, "mobilenet_v2", weights=Path(path), accept=CLEAR,
                       match="not a readable weights file")  # fmt: skip


@pytest.mark.parametrize("freeze", [1, 0, "yes", None, 1.0])
def test_freeze_must_be_a_bool(freeze):
    assert_clear_error(ImageEncoder, freeze=freeze, device="cpu", accept=CLEAR, match="freeze")


# --------------------------------------------------------------------------- features batches

FEATURES = st.one_of(
    st.just((4, 1280)),
    st.tuples(st.integers(0, 5), st.sampled_from([1279, 1280, 1281, 3])),
    st.tuples(st.integers(1, 3), st.integers(1, 3), st.integers(1, 3)),
    st.tuples(st.integers(1, 5)),
)


@REPLAYABLE
@given(shape=FEATURES, dtype=st.sampled_from([torch.float32, torch.float64, torch.int64]))
def test_loss_on_features_battery(frozen, shape, dtype):
    features = torch.ones(shape, dtype=dtype)
    labels = torch.zeros(shape[0] if shape else 0, dtype=torch.long)
    good = len(shape) == 2 and shape[1] == 1280 and shape[0] > 0
    event("good input" if good else "bad input")
    result = result_or_clear_error(frozen.loss, {"features": features, "labels": labels},
                                   accept=CLEAR)  # fmt: skip
    if not good:
        assert isinstance(result, Exception), (shape, result)
        return
    assert result.ndim == 0 and bool(torch.isfinite(result)), result


def test_features_not_a_tensor(frozen):
    assert_clear_error(frozen.loss, {"features": [[0.0] * 1280], "labels": torch.zeros(1)},
                       accept=CLEAR, match="torch.Tensor")  # fmt: skip


def test_untouched_real_cache_still_loads(weights_file):
    """The damage above happened in fresh caches: the real file is intact."""
    assert registry.path(DATASET, FILE) == weights_file  # verified again (sha256)
    enc = pretrained(freeze=True)
    assert enc.dim == 1280 and not enc.backbone.training
