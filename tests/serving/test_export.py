"""ONNX export of the click models and the onnxruntime scorer: parity with torch, the contract."""

import pytest
import torch

pytest.importorskip("onnxruntime", reason="the serve extra (pip install 'mtrec[serve]')")
pytest.importorskip("onnxscript", reason="the serve extra (pip install 'mtrec[serve]')")

from mtrec.cli import main
from mtrec.models.multitask.mmoe import MMoE, MMoEConfig
from mtrec.models.student import StudentConfig, StudentMLP
from mtrec.serving.export import (
    PARITY_ATOL,
    OnnxScorer,
    check_parity,
    example_batch,
    export_onnx,
)

MODELS = {
    "student": lambda: StudentMLP(StudentConfig.tiny()),
    "mmoe": lambda: MMoE(MMoEConfig.tiny()),
}


@pytest.fixture(scope="module", params=sorted(MODELS))
def exported(request, tmp_path_factory):
    torch.manual_seed(0)
    model = MODELS[request.param]().eval()
    path = export_onnx(model, tmp_path_factory.mktemp("onnx") / f"{request.param}.onnx")
    return model, path


@pytest.mark.parametrize("batch_size", [1, 7, 1024])
def test_logits_match_torch_at_any_batch_size(exported, batch_size):
    model, path = exported
    batch = example_batch(model, batch_size)
    with torch.no_grad():
        expected = model(batch)
    logits = OnnxScorer(path)(batch)
    assert logits.shape == expected.shape == (batch_size, model.config.num_tasks)
    assert (logits - expected).abs().max().item() <= PARITY_ATOL


def test_predict_contract_is_the_torch_one(exported):
    model, path = exported
    scorer = OnnxScorer(path)
    batch = example_batch(model, 5)
    batch["labels"] = torch.zeros(5, model.config.num_tasks)  # extra keys are ignored
    probs = scorer.predict(batch)
    assert probs.dtype == torch.float32
    assert ((probs > 0) & (probs < 1)).all()
    torch.testing.assert_close(probs, model.predict(batch), atol=PARITY_ATOL, rtol=0)
    assert scorer.input_names == [f.name for f in model.config.features]


def test_missing_feature_raises_with_the_keys(exported):
    model, path = exported
    batch = example_batch(model, 2)
    first = next(iter(batch))
    del batch[first]
    with pytest.raises(KeyError, match=first):
        OnnxScorer(path).predict(batch)


def test_export_keeps_the_model_mode_and_checks_parity(tmp_path):
    model = StudentMLP(StudentConfig.tiny()).train()
    path = export_onnx(model, tmp_path / "s.onnx")
    assert model.training
    assert (tmp_path / "s.onnx.json").is_file()
    with torch.no_grad():  # a changed weight after export: the check must notice
        model.head.bias.add_(1.0)
    with pytest.raises(AssertionError, match="differ from torch"):
        check_parity(model.eval(), path, example_batch(model, 3), atol=PARITY_ATOL)


def test_model_without_declared_features_is_refused(tmp_path):
    with pytest.raises(TypeError, match="config.features"):
        export_onnx(torch.nn.Linear(2, 2), tmp_path / "x.onnx")


def test_cli_export_writes_both_models(tmp_path, capsys):
    assert main(["export", "--out", str(tmp_path), "--check-batch", "4"]) == 0
    out = capsys.readouterr().out
    assert "student" in out and "mmoe" in out
    assert (tmp_path / "student.onnx").is_file() and (tmp_path / "mmoe.onnx").is_file()
    assert main(["export", "tower", "--out", str(tmp_path)]) == 2
