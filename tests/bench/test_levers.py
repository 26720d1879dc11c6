"""The inexact levers of notebook 10: what fused Adam and a leading-dimension softmax would buy."""

import pytest
import torch

from mtrec.bench.cases import multitask_case
from mtrec.bench.levers import _softmax_shapes, gap_levers, softmax_layouts
from mtrec.bench.measure import make_steps
from mtrec.utils import set_seed


@pytest.mark.parametrize(
    ("kind", "shapes"), [("mmoe", [(64, 2, 8)]), ("ple", [(64, 3, 8), (64, 2, 8)])]
)
def test_the_profile_finds_every_gate_softmax_with_its_shape(kind, shapes):
    set_seed(0)
    step = make_steps(multitask_case(kind).build(64), torch.device("cpu"), "fp32")["train"]
    assert _softmax_shapes(step) == shapes  # MMoE: one gate per task; PLE: a level, then tasks


def test_the_padded_softmax_is_the_same_function_to_rounding():
    timing = softmax_layouts((256, 2, 8), repeats=2)
    assert set(timing) == {"last dim ms", "padded ms", "max |diff|"}
    assert 0 <= timing["max |diff|"] < 1e-6
    assert timing["last dim ms"] > 0 and timing["padded ms"] > 0


def test_the_levers_table_keeps_the_flops_and_marks_what_changes_the_bits():
    table = gap_levers("mmoe", 64, repeats=1)
    assert list(table.index) == ["as it is", "fused Adam", "+ softmax padded to 16 lanes"]
    assert list(table.measured) == ["timed", "timed", "estimated"]
    assert table.loc["as it is", "same bits"] and table.loc["as it is", "its own max |diff|"] == 0
    fused = table.loc["fused Adam"]
    assert fused["same bits"] == (fused["its own max |diff|"] == 0)
    both = table.loc["+ softmax padded to 16 lanes"]  # same bits only if neither lever moved one
    assert both["same bits"] == (fused["same bits"] and both["its own max |diff|"] == 0)
    work = table["of ceiling"] * table["step ms"]  # FLOPs / matmul rate: the same for every row
    assert work.max() == pytest.approx(work.min(), rel=1e-9)
    assert (table["step ms"] > 0).all()


def test_the_levers_refuse_a_model_without_gates():
    with pytest.raises(ValueError, match="kind"):
        gap_levers("star", 64)
