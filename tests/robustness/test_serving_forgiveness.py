"""Forgiveness of the serving files: saved recommenders, ONNX exports, caches, the cascade.

Each case is a mistake a learner makes with a file or a pair of models (a reordered
``router_classes``, a save from a GPU machine, a colleague's read-only copy, an ONNX file without
its sidecar, the wrong model handed to ``check_parity``, a student and a teacher of different
tasks): it must be refused with mtrec's own message naming the fix, or handled correctly.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import itertools
import json
import logging
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

from mtrec.extractors.text_cache import EmbeddingCache, text_hashes
from mtrec.models import MMoE, MMoEConfig, StudentConfig, StudentMLP
from mtrec.serving.cascade import CascadeScorer
from mtrec.serving.recommender import Recommender
from mtrec.utils import umask
from tests.robustness.conftest import assert_clear_error

FEW = settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


def _edit_config(folder: Path, edit) -> None:
    meta = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps(edit(meta)))


# --------------------------------------------------------------------------- saved recommender


def _same_lists(a: Recommender, b: Recommender, user: int) -> None:
    for context in ("", "comedy", "a scary film"):
        assert a.recommend(user, context, k=5).item_ids == b.recommend(user, context, k=5).item_ids


def test_router_classes_are_bound_to_the_router_head(saved):
    meta = json.loads((saved / "config.json").read_text())
    assert isinstance(meta["router_sha256"], str) and len(meta["router_sha256"]) == 64


def _orders(classes: list[str]) -> list[list[str]]:
    return [list(p) for p in itertools.permutations(classes) if list(p) != classes]


@FEW
@given(data=st.data())
def test_reordered_router_classes_are_refused(saved, recommender, tmp_path_factory, data):
    classes = json.loads((saved / "config.json").read_text())["router_classes"]
    order = data.draw(st.sampled_from(_orders(classes)[:200]))
    folder = Path(shutil.copytree(saved, tmp_path_factory.mktemp("reordered") / "copy"))
    _edit_config(folder, lambda m: {**m, "router_classes": order})
    error = assert_clear_error(
        Recommender.load, folder, encoder=recommender.encoder, accept=(ValueError,)
    )
    assert "router_classes" in str(error) and "config.json" in str(error)
    assert "restore" in str(error) or "save the recommender again" in str(error)


def test_old_save_in_the_fitted_order_loads(copy, recommender, user):
    _edit_config(copy, lambda m: {k: v for k, v in m.items() if k != "router_sha256"})
    _same_lists(recommender, Recommender.load(copy, encoder=recommender.encoder), user)


def test_old_save_in_another_order_is_refused_with_the_fix(copy, recommender):
    def edit(meta):
        meta.pop("router_sha256")
        return {**meta, "router_classes": meta["router_classes"][::-1]}

    _edit_config(copy, edit)
    error = assert_clear_error(Recommender.load, copy, encoder=recommender.encoder,
                               accept=(ValueError,))  # fmt: skip
    assert "sorted" in str(error) and "Recommender.save" in str(error)


def test_a_cuda_save_loads_on_a_cpu_only_machine(copy, recommender, user, monkeypatch, caplog):
    from mtrec.serving import persistence

    _edit_config(copy, lambda m: {**m, "device": "cuda"})
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(persistence, "_MAPPED", set())  # as in a fresh process
    with caplog.at_level(logging.WARNING, logger="mtrec.serving.recommender"):
        first = Recommender.load(copy, encoder=recommender.encoder)
        Recommender.load(copy, encoder=recommender.encoder)
    assert first.device == torch.device("cpu")
    notes = [r for r in caplog.records if "cuda" in r.getMessage()]
    assert len(notes) == 1 and "CPU" in notes[0].getMessage()  # warned once
    _same_lists(recommender, first, user)


def test_load_takes_the_device_its_errors_suggest(copy, recommender, monkeypatch):
    import inspect

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert Recommender.load(copy, encoder=recommender.encoder, device="cpu").device.type == "cpu"
    error = assert_clear_error(
        Recommender.load, copy, encoder=recommender.encoder, device="cuda", accept=(ValueError,)
    )
    assert "prefer=" not in str(error) and "device='cpu'" in str(error)
    assert "device" in inspect.signature(Recommender.load).parameters


def test_fit_refuses_an_absent_device_naming_its_own_argument(recommender, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    error = assert_clear_error(Recommender.fit, None, None, None, encoder=recommender.encoder,
                               device="cuda", accept=(ValueError,))  # fmt: skip
    assert "prefer=" not in str(error) and "device='cpu'" in str(error)


def test_saved_files_are_readable_by_colleagues(saved):
    for name in ("tensors.safetensors", "config.json"):
        assert _mode(saved / name) == 0o666 & ~umask(), name


def test_an_unreadable_save_says_so(copy, recommender, monkeypatch):
    from mtrec.serving import persistence

    real_access = os.access
    tensors = copy / "tensors.safetensors"
    monkeypatch.setattr(persistence.os, "access",
                        lambda p, m: False if Path(p) == tensors else real_access(p, m))  # fmt: skip
    error = assert_clear_error(Recommender.load, copy, encoder=recommender.encoder,
                               accept=(PermissionError,))  # fmt: skip
    assert "may not read" in str(error) and "chmod a+r" in str(error)


# --------------------------------------------------------------------------- embedding cache


def test_cache_shards_are_readable_by_colleagues(tmp_path):
    cache = EmbeddingCache(tmp_path / "emb", dim=4)
    cache.store(text_hashes(["a", "b"]), torch.ones(2, 4), persist=True)
    (shard,) = (tmp_path / "emb").glob("shard-*.safetensors")
    assert _mode(shard) == 0o666 & ~umask()


def test_an_unreadable_shard_is_named_as_unreadable(tmp_path, monkeypatch, caplog):
    """A colleague's 0600 shard: safetensors says "No such file"; the warning must not."""
    import safetensors

    from mtrec.extractors import text_cache

    EmbeddingCache(tmp_path, dim=4).store(text_hashes(["a"]), torch.ones(1, 4), persist=True)
    (shard,) = tmp_path.glob("shard-*.safetensors")

    def denied(path, *args, **kwargs):
        raise FileNotFoundError(f"No such file or directory: {path}")  # what safetensors raises

    monkeypatch.setattr(safetensors, "safe_open", denied)
    real_access = os.access
    monkeypatch.setattr(text_cache.os, "access",
                        lambda p, m: False if Path(p) == shard else real_access(p, m))  # fmt: skip
    with caplog.at_level(logging.WARNING, logger="mtrec.extractors.text"):
        assert EmbeddingCache(tmp_path, dim=4).lookup(text_hashes(["a"])) == [None]
    text = " ".join(r.getMessage() for r in caplog.records)
    assert "No such file" not in text and "permission" in text.lower() and "cache_dir=" in text


# --------------------------------------------------------------------------- ONNX

needs_serve = pytest.mark.skipif(
    any(importlib.util.find_spec(m) is None for m in ("onnxruntime", "onnxscript")),
    reason="the serve extra (pip install 'mtrec[serve]')",
)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    from mtrec.serving.export import export_onnx

    torch.manual_seed(0)
    model = StudentMLP(StudentConfig.tiny()).eval()
    return model, export_onnx(model, tmp_path_factory.mktemp("onnx") / "student.onnx")


@pytest.fixture
def exported_copy(exported, tmp_path):
    model, path = exported
    target = tmp_path / path.name
    shutil.copy(path, target)
    shutil.copy(path.with_suffix(".onnx.json"), target.with_suffix(".onnx.json"))
    return model, target


@needs_serve
def test_an_onnx_file_without_its_sidecar_is_refused(exported_copy):
    from mtrec.serving.export import OnnxScorer

    _, path = exported_copy
    path.with_suffix(".onnx.json").unlink()
    error = assert_clear_error(OnnxScorer, path)
    assert ".onnx.json" in str(error) and "export_onnx" in str(error)


@needs_serve
def test_a_sidecar_without_vocabularies_is_refused(exported_copy):
    from mtrec.serving.export import OnnxScorer

    _, path = exported_copy
    sidecar = path.with_suffix(".onnx.json")
    meta = json.loads(sidecar.read_text())
    meta.pop("vocab_sizes")
    sidecar.write_text(json.dumps(meta))
    error = assert_clear_error(OnnxScorer, path)
    assert "vocab_sizes" in str(error) and "export_onnx" in str(error)


@needs_serve
@FEW
@given(users=st.lists(st.integers(-60, 100), min_size=1, max_size=4))
def test_onnx_ids_are_checked_by_mtrec(exported, users):
    from mtrec.serving.export import OnnxScorer

    model, path = exported
    batch = {"user_id": torch.tensor(users), "item_id": torch.ones(len(users), dtype=torch.long)}
    if all(0 <= u < model.config.features[0].vocab_size for u in users):
        with torch.no_grad():
            torch.testing.assert_close(OnnxScorer(path)(batch), model(batch), atol=1e-5, rtol=0)
    else:
        error = assert_clear_error(OnnxScorer(path), batch, accept=(ValueError,))
        assert "user_id" in str(error) and "outside" in str(error)


@needs_serve
def test_check_parity_against_another_architecture_says_so(exported):
    from mtrec.serving.export import check_parity, example_batch

    model, path = exported
    other = StudentMLP(dataclasses.replace(StudentConfig.tiny(), hidden=(16,)))
    error = assert_clear_error(check_parity, other, path, example_batch(model, 3), atol=1e-5)
    assert "is this the model you exported" in str(error) and "report" not in str(error)


@needs_serve
def test_check_parity_against_other_weights_says_so(exported):
    from mtrec.serving.export import check_parity, example_batch

    model, path = exported
    torch.manual_seed(1)
    other = StudentMLP(StudentConfig.tiny()).eval()
    error = assert_clear_error(check_parity, other, path, example_batch(model, 3), atol=1e-5,
                               accept=(AssertionError,))  # fmt: skip
    assert "is this the model you exported" in str(error) and "report" not in str(error)


@needs_serve
def test_check_parity_of_the_exported_model_passes(exported):
    from mtrec.serving.export import check_parity, example_batch

    model, path = exported
    assert check_parity(model, path, example_batch(model, 3), atol=1e-5) <= 1e-5


class _TinyEncoder(nn.Module):
    """A Hugging Face-like encoder: (input_ids, attention_mask) → .last_hidden_state."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.embed, self.proj = nn.Embedding(30, 16), nn.Linear(16, 16)

    def forward(self, input_ids, attention_mask):
        states = self.proj(self.embed(input_ids)) * attention_mask[..., None]
        return type("Out", (), {"last_hidden_state": states})()


def _tokenizer(texts, padding=True, return_tensors="pt"):
    length = max(len(t.split()) for t in texts) + 1
    ids = torch.tensor([[1 + len(w) % 29 for w in t.split()] + [0] * (length - len(t.split()))
                        for t in texts])  # fmt: skip
    return {"input_ids": ids, "attention_mask": (ids > 0).long()}


def _run(session) -> np.ndarray:
    ids = np.array([[3, 4, 5]], dtype=np.int64)
    return session.run(None, {"input_ids": ids, "attention_mask": np.ones_like(ids)})[0]


@pytest.fixture
def int8_folder(tmp_path):
    from mtrec.extractors.onnx_text import int8_session

    folder = tmp_path / "onnx"
    expected = _run(int8_session(_TinyEncoder(), _tokenizer, folder, "tiny"))
    return folder, expected


@needs_serve
def test_the_int8_encoder_file_is_readable_by_colleagues(int8_folder):
    folder, _ = int8_folder
    (path,) = folder.glob("encoder-*-int8.onnx")
    assert _mode(path) == 0o666 & ~umask()


@needs_serve
def test_a_damaged_int8_encoder_is_rebuilt(int8_folder, caplog):
    from mtrec.extractors.onnx_text import int8_session

    folder, expected = int8_folder
    (path,) = folder.glob("encoder-*-int8.onnx")
    blob = bytearray(path.read_bytes())
    blob[len(blob) // 2] ^= 0x40
    path.write_bytes(bytes(blob))
    with caplog.at_level(logging.WARNING, logger="mtrec.extractors.onnx_text"):
        session = int8_session(_TinyEncoder(), _tokenizer, folder, "tiny")
    assert any("sha256" in r.getMessage() for r in caplog.records)
    np.testing.assert_array_equal(_run(session), expected)
    assert hashlib.sha256(path.read_bytes()).hexdigest() != hashlib.sha256(blob).hexdigest()


@needs_serve
def test_an_unwritable_onnx_folder_still_gives_a_session(tmp_path, caplog):
    from mtrec.extractors.onnx_text import int8_session

    (tmp_path / "file").write_text("not a folder")
    folder = tmp_path / "file" / "onnx"  # cannot be created: as a read-only cache
    with caplog.at_level(logging.WARNING, logger="mtrec.extractors.onnx_text"):
        session = int8_session(_TinyEncoder(), _tokenizer, folder, "tiny")
    assert _run(session).shape == (1, 3, 16)
    assert any("cache_dir=" in r.getMessage() for r in caplog.records)


# --------------------------------------------------------------------------- cascade


def test_a_cascade_of_different_task_counts_is_refused():
    student = StudentMLP(StudentConfig.tiny())  # 2 tasks
    teacher = MMoE(MMoEConfig.tiny(num_tasks=3))
    error = assert_clear_error(CascadeScorer, student, teacher, accept=(ValueError,))
    assert "2" in str(error) and "3" in str(error) and "tasks" in str(error)


def test_a_cascade_of_different_task_names_is_refused():
    student = StudentMLP(StudentConfig.tiny())
    names = dataclasses.replace(StudentConfig.tiny(), task_names=("like", "watch"))
    error = assert_clear_error(CascadeScorer, student, StudentMLP(names), accept=(ValueError,))
    assert "order" in str(error)


class _Fixed(nn.Module):
    """A model without a config: T logits per candidate."""

    def __init__(self, tasks: int) -> None:
        super().__init__()
        self.tasks = tasks

    def forward(self, batch):
        return torch.zeros(len(batch["x"]), self.tasks)


def test_undeclared_task_counts_are_compared_at_the_first_call():
    scorer = CascadeScorer(_Fixed(2), _Fixed(3))
    error = assert_clear_error(scorer.rank, {"x": torch.zeros(5)}, 3, accept=(ValueError,))
    assert "tasks" in str(error)
    assert CascadeScorer(_Fixed(2), _Fixed(2)).rank({"x": torch.zeros(5)}, 3).shape == (5,)
