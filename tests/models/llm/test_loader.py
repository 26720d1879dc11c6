"""Loading SmolLM2: the converted folder equals the GGUF file, is verified, and is rebuilt."""

from __future__ import annotations

import json
import logging
import shutil

import pytest
import torch

from mtrec.data import registry
from mtrec.data.registry import DataError
from mtrec.models.llm import converted_dir, folder_problem, load_language_model
from mtrec.models.llm import loader as llm_loader
from mtrec.utils import umask

pytestmark = pytest.mark.usefixtures("one_thread")
PROMPT = "The capital of France is"


@pytest.fixture(scope="module")
def weights(lm):
    """The real GGUF folder and converted folder (read before a test moves the cache)."""
    return registry.path("smollm2"), converted_dir()


def logits_of(model, tokenizer, text: str = PROMPT) -> torch.Tensor:
    with torch.no_grad():
        return model(tokenizer(text, return_tensors="pt")["input_ids"]).logits  # (1, L, V)


def test_converted_folder_is_verified_and_shared(lm, weights):
    folder = weights[1]
    assert folder_problem(folder) is None
    record = json.loads((folder / "checksums.json").read_text())
    assert set(record["files"]) == {p.name for p in folder.iterdir()} - {"checksums.json"}
    assert "model.safetensors" in record["files"]
    readable = 0o444 & ~umask()
    for file in folder.iterdir():
        assert file.stat().st_mode & 0o777 & readable == readable, file
    assert not list(folder.parent.glob(".smollm2-hf.*"))  # no temporary folder left
    model, tokenizer = lm
    assert not model.training and model.config.vocab_size == len(tokenizer) == 49152


def _cache_with_copy(tmp_cache, weights, *, link_weights: bool):
    """A fresh cache holding the real GGUF folder (a link) and a copy of the converted folder
    (``model.safetensors`` linked, not copied, when ``link_weights``: the test never edits it)."""
    gguf_dir, folder = weights
    tmp_cache.mkdir()
    (tmp_cache / "smollm2").symlink_to(gguf_dir, target_is_directory=True)
    copy = tmp_cache / folder.name
    copy.mkdir()
    for file in folder.iterdir():
        if link_weights and file.name == "model.safetensors":
            (copy / file.name).symlink_to(file)
        else:
            shutil.copy2(file, copy / file.name)
    assert folder_problem(copy) is None
    return copy


def _warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.name == llm_loader.log.name and r.levelno == logging.WARNING]  # fmt: skip


def _record_gguf_loads(monkeypatch, loaded: dict) -> None:
    """Keep what ``from_pretrained(..., gguf_file=...)`` returns: the direct GGUF loads."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    for kind, auto in (("model", AutoModelForCausalLM), ("tokenizer", AutoTokenizer)):
        original = auto.from_pretrained

        def recording(*args, _original=original, _kind=kind, **kwargs):
            result = _original(*args, **kwargs)
            if kwargs.get("gguf_file"):
                loaded[_kind] = result
            return result

        monkeypatch.setattr(auto, "from_pretrained", recording)


def test_truncated_weights_are_rebuilt_and_give_the_gguf_logits(
    lm, weights, tmp_cache, caplog, monkeypatch
):
    """The rebuild (one warning) loads the GGUF file directly, which is the reference: one
    GGUF read (about 20 s) serves both checks."""
    copy = _cache_with_copy(tmp_cache, weights, link_weights=False)
    weights_file = copy / "model.safetensors"
    with open(weights_file, "r+b") as handle:
        handle.truncate(weights_file.stat().st_size // 2)
    direct: dict = {}
    _record_gguf_loads(monkeypatch, direct)
    with caplog.at_level(logging.INFO, logger=llm_loader.log.name):
        model, tokenizer = load_language_model(device="cpu")
    (warning,) = _warnings(caplog)
    assert "model.safetensors has" in warning and "rebuilding" in warning
    assert folder_problem(copy) is None
    assert sorted(p.name for p in tmp_cache.iterdir()) == ["smollm2", "smollm2-hf"]
    assert tokenizer(PROMPT)["input_ids"] == direct["tokenizer"](PROMPT)["input_ids"]
    gguf_logits = logits_of(direct["model"], direct["tokenizer"])  # (1, L, V)
    torch.testing.assert_close(logits_of(model, tokenizer), gguf_logits)
    torch.testing.assert_close(logits_of(*lm), gguf_logits)  # and so does the first conversion


class _Stop(Exception):
    """Raised by the stand-in conversion: the test ends once the warning is logged."""


def _edit_sha256(copy):
    record = json.loads((copy / "checksums.json").read_text())
    record["files"]["tokenizer.json"]["sha256"] = "0" * 64
    (copy / "checksums.json").write_text(json.dumps(record))


def _edit_source(copy):
    record = json.loads((copy / "checksums.json").read_text())
    record["source"]["sha256"] = "f" * 64
    (copy / "checksums.json").write_text(json.dumps(record))


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (_edit_sha256, "tokenizer.json does not match its sha256"),
        (_edit_source, "converted from other weights"),
        (lambda copy: (copy / "checksums.json").unlink(), "no readable checksums.json"),
        (lambda copy: (copy / "config.json").unlink(), "config.json is missing"),
        (lambda copy: (copy / "checksums.json").write_text("{"), "no readable checksums.json"),
    ],
    ids=["edited-sha256", "other-source", "no-checksums", "missing-file", "bad-json"],
)
def test_damaged_folder_is_rebuilt_with_one_warning(
    weights, tmp_cache, caplog, monkeypatch, damage, reason
):
    copy = _cache_with_copy(tmp_cache, weights, link_weights=True)
    damage(copy)
    calls = []

    def stand_in(folder):
        calls.append(folder)
        raise _Stop

    monkeypatch.setattr(llm_loader, "_convert", stand_in)
    with pytest.raises(_Stop):
        load_language_model(device="cpu")
    assert calls == [copy]
    (warning,) = _warnings(caplog)
    assert reason in warning and "rebuilding it" in warning


def test_missing_weights_name_the_fetch_command(tmp_cache, caplog):
    with pytest.raises(DataError, match="mtrec data fetch smollm2"):
        load_language_model(device="cpu")
    assert not _warnings(caplog)  # a first conversion is not a damaged folder


@pytest.mark.parametrize("dtype", [torch.int64, "float32", None])
def test_dtype_must_be_a_floating_torch_dtype(dtype):
    with pytest.raises(TypeError, match="floating torch.dtype"):
        load_language_model(dtype=dtype)
