"""torch.compile against eager, timed in alternation (mtrec bench --compile)."""

import functools

import pytest
import torch

from mtrec.bench.compile_speed import compile_goal, compile_speedups


@pytest.fixture
def cheap_compile(monkeypatch):
    """torch.compile with Dynamo's eager backend: the same tracing, no C++ to build."""
    monkeypatch.setattr(torch, "compile", functools.partial(torch.compile, backend="eager"))


def test_compile_goal_times_both_ways_and_names_the_compiled_row(cheap_compile, toy_case,
                                                                 cpu_context):  # fmt: skip
    torch._dynamo.reset()
    row, goal = compile_goal(toy_case, 16, cpu_context)
    key = (row["model"], row["compiled"], row["phase"], row["batch_size"])
    assert key == ("toy", True, "train", 16)
    assert row["samples_per_s"] > 0
    assert goal["kind"] == "compile" and goal["target"] == ">= 1"
    assert goal["goal"] == "toy train: torch.compile / eager, batch 16"
    compiled, eager = (float(s) for s in goal["detail"].split()[1:5:3])
    assert goal["measured"] == pytest.approx(compiled / eager, rel=1e-2, abs=2e-3)
    assert goal["met"] == ("yes" if goal["measured"] >= 1 else "no")


def test_compile_speedups_skips_batches_a_model_cannot_train_on(cheap_compile, cpu_context,
                                                                monkeypatch):  # fmt: skip
    from mtrec.bench import compile_speed
    from mtrec.bench.built import Built, Case

    def build(batch_size):
        model = torch.nn.Linear(3, 1)
        loss = lambda batch: model(batch["x"]).square().mean()  # noqa: E731
        return Built(model, {"x": torch.randn(batch_size, 3)}, loss=loss, predict=model,
                     count_flops=False)  # fmt: skip

    case = Case("lin", build, (4,), (4,), train_min_batch=8)
    monkeypatch.setattr(compile_speed, "model_cases", lambda: {"g": [case]})
    torch._dynamo.reset()
    rows, goals = compile_speedups(cpu_context, ["g"], (4, 8))
    assert [r["batch_size"] for r in rows] == [8]
    assert [g["goal"] for g in goals] == ["lin train: torch.compile / eager, batch 8"]
