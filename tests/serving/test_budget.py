"""Per-scenario budgets and the depth controller: names checked, caps learned from a quality
curve, and the deadline rule on a hand-computed queue."""

import numpy as np
import pytest
import torch

from mtrec.serving.budget import BudgetTable, DepthController, ScenarioBudget
from mtrec.serving.cascade import StageCosts

SCENARIOS, TASKS = ["family", "action"], ["watch", "like"]
# 1 ms fixed + 0.01 ms per candidate for the student, 0.1 ms per candidate for the teacher
COSTS = StageCosts(overhead_ms=0.5, student_fixed_ms=0.5, student_ms=0.01, teacher_fixed_ms=0.0,
                   teacher_ms=0.1)  # fmt: skip
DEPTHS = [0, 10, 50, 100, 200]


def table(**caps):
    return BudgetTable(
        {"family": ScenarioBudget(("watch",), caps.get("family")),
         "action": ScenarioBudget(("watch", "like"), caps.get("action"))},
        scenarios=SCENARIOS, tasks=TASKS,
    )  # fmt: skip


def test_task_masks_and_caps():
    t = table(family=50)
    assert t.task_mask("family").tolist() == [True, False]
    assert t.task_mask("action").tolist() == [True, True]
    assert t.max_depth("family") == 50 and t.max_depth("action") is None


def test_unknown_names_raise_with_the_fix():
    with pytest.raises(ValueError, match=r"unknown scenarios \['kids'\].*expected every scenario"):
        BudgetTable({**table().budgets, "kids": ScenarioBudget(("watch",))},
                    scenarios=SCENARIOS, tasks=TASKS)  # fmt: skip
    with pytest.raises(ValueError, match=r"unknown tasks \['click'\]"):
        BudgetTable({"family": ScenarioBudget(("click",)), "action": ScenarioBudget(("watch",))},
                    scenarios=SCENARIOS, tasks=TASKS)  # fmt: skip
    with pytest.raises(ValueError, match=r"scenarios without a budget \['action'\]"):
        BudgetTable({"family": ScenarioBudget(("watch",))}, scenarios=SCENARIOS, tasks=TASKS)
    with pytest.raises(ValueError, match="unknown scenario 'kids': expected one of"):
        table().task_mask("kids")
    controller = DepthController(COSTS, 100.0, depths=DEPTHS, table=table())
    with pytest.raises(ValueError, match="unknown scenario 'comedy'"):
        controller.choose(100, wait_ms=0.0, scenario="comedy")


def test_caps_learned_from_the_quality_curve():
    quality = {"family": {0: 0.9, 10: 0.99, 50: 1.0}, "action": {0: 0.5, 10: 0.8, 50: 0.95}}
    t = BudgetTable.from_quality(quality, {"family": ["watch"], "action": TASKS},
                                 all_tasks=TASKS, target=0.98)  # fmt: skip
    assert t.max_depth("family") == 10  # the student is already good there
    assert t.max_depth("action") is None  # never reaches the target: no cap
    with pytest.raises(ValueError, match=r"target must be in \(0, 1\]"):
        BudgetTable.from_quality(quality, {"family": ["watch"], "action": TASKS},
                                 all_tasks=TASKS, target=0.0)  # fmt: skip


def test_slo_below_the_students_own_cost_raises():
    floor = float(COSTS.request_ms(100, 0))  # 2.0 ms
    with pytest.raises(ValueError, match=r"at least the student-only cost .* 2\.000 ms"):
        DepthController(COSTS, floor - 0.1, depths=DEPTHS, min_candidates=100)
    DepthController(COSTS, floor, depths=DEPTHS, min_candidates=100)  # exactly enough is fine


def test_deadline_rule_on_a_hand_computed_queue():
    c = DepthController(COSTS, 30.0, depths=DEPTHS)
    # 300 candidates: cost(300, N) = 1 + 3 + 0.1 N ms; idle, 30 ms of budget → N = 200 (24 ms)
    assert c.choose(300, wait_ms=0.0) == 200
    # waited 20 ms: 10 ms left → N = 50 (9 ms); N = 100 would take 14 ms
    assert c.choose(300, wait_ms=20.0) == 50
    # idle, one request queued that has waited 15 ms and needs 4 ms: s <= 30 - 15 - 4 = 11
    assert c.choose(300, wait_ms=0.0, queued_waits_ms=np.array([15.0]),
                    queued_min_ms=np.array([4.0])) == 50  # fmt: skip
    # two queued: the second (waited 10 ms) needs both students first: s <= 30 - 10 - 8 = 12
    assert c.choose(300, wait_ms=0.0, queued_waits_ms=np.array([0.0, 10.0]),
                    queued_min_ms=np.array([4.0, 4.0])) == 50  # fmt: skip
    # a queued request that cannot make it anyway (waited 25 ms: 30 - 25 - 4 < 4) is ignored
    assert c.choose(300, wait_ms=0.0, queued_waits_ms=np.array([25.0]),
                    queued_min_ms=np.array([4.0])) == 200  # fmt: skip
    # nothing fits: student only
    assert c.choose(300, wait_ms=29.0) == 0
    # scenario cap
    capped = DepthController(COSTS, 30.0, depths=DEPTHS, table=table(family=50))
    assert capped.choose(300, wait_ms=0.0, scenario="family") == 50
    assert capped.choose(300, wait_ms=0.0, scenario="action") == 200


def test_depths_are_clipped_to_the_candidates():
    c = DepthController(COSTS, 1000.0, depths=DEPTHS)
    assert c.choose(30, wait_ms=0.0) == 30
    with pytest.raises(ValueError, match="depths must be >= 0"):
        DepthController(COSTS, 30.0, depths=[-5, 10])
    assert torch.is_tensor(table().task_mask("family"))
