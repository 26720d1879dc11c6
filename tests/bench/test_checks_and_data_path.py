"""The input-check cost and the SASRec data path: goal rows measured in one run."""

import re

import torch

from mtrec.bench import Context, Settings, environment, goal_passes
from mtrec.bench.checks_cost import _Unchecked, check_cost
from mtrec.bench.data_path import sequence_data_path
from mtrec.checks import CheckedBatch, checked_once


def _quick() -> Context:
    cpu = torch.device("cpu")
    return Context(cpu, environment(cpu, ""), Settings(quick=True, warmup=1, repeats=2), 10.0)


def test_check_cost_times_three_epochs_for_mmoe_and_star():
    rows, goals = check_cost(_quick())
    assert rows == [] and [g["goal"].split(" ")[0] for g in goals] == ["mmoe", "star"]
    for goal in goals:
        assert (
            goal["kind"] == "checks"
            and goal["target"] == "<= 0.02"
            and goal["met"] in ("yes", "no")
        )
        assert (
            "checked per batch" in goal["detail"] and "one-time whole-data scan" in goal["detail"]
        )
        assert re.search(r"checked per batch [\d.]+ ms \([+-]\d+\.\d%\)", goal["detail"])
        passes = goal_passes(goal["detail"])  # three fresh passes; the median one counts
        assert len(passes) == 3 and goal["measured"] == sorted(passes)[1]


def test_the_check_goal_reports_its_median_pass_rounded_once(monkeypatch):
    from mtrec.bench import checks_cost
    from mtrec.bench.timing import Timing

    costs = iter([0.03, 0.03, -0.0124999999, -0.0124999999, -0.03, -0.03])  # passes x models

    def timed(epochs, **_):
        once = 100 * (1 + next(costs))
        return {arm: Timing([once if arm == "checked once" else 100.0], 0.0, 8)
                for arm in checks_cost.ARMS}  # fmt: skip

    monkeypatch.setattr(checks_cost, "_epochs", lambda kind, rows, device: ({}, 0.5))
    monkeypatch.setattr(checks_cost, "time_interleaved", timed)
    for goal in check_cost(_quick())[1]:
        assert goal_passes(goal["detail"]) == (0.03, -0.012, -0.03)
        assert goal["measured"] == -0.012 and goal["met"] == "yes"  # not -0.0125 -> -0.013


def test_the_unchecked_floor_skips_every_check():
    origin = _Unchecked({"user": torch.tensor([99])})
    batch = CheckedBatch({"user": torch.tensor([99])}, origin)
    calls = []
    assert checked_once(batch, "key", calls.append) is True and calls == []


def test_sequence_batching_is_timed_beside_a_sasrec_epoch():
    rows, goals = sequence_data_path(_quick())
    (goal,) = goals
    assert rows == [] and goal["kind"] == "data" and goal["target"] == "<= 0.05"
    assert 0 <= goal["measured"] < 1 and "windows (L=50), batch 64" in goal["detail"]
