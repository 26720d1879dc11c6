"""Bad input to the serving stages: cascade, budgets, load simulation, allocation, ONNX export,
recommender building blocks.

A case passes when the call returns a correct, finite result or raises an exception from mtrec's
own code with a message (never a bare torch/numpy/onnxruntime traceback, a NaN, or a hang).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

from mtrec.data import ML_GENRES
from mtrec.experiments import allocation_study as allocation
from mtrec.serving import build, export
from mtrec.serving.budget import BudgetTable, DepthController, ScenarioBudget
from mtrec.serving.cascade import (
    CascadeScorer,
    StageCosts,
    cascade_order,
    check_depth,
    measure_costs,
    task_relevance,
)
from mtrec.serving.simulate import (
    AdaptivePolicy,
    FixedPolicy,
    SimResult,
    load_sweep,
    poisson_arrivals,
    simulate,
)
from tests.robustness.conftest import assert_clear_error, result_or_clear_error

FEW = settings(
    max_examples=20,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
NAN, INF = float("nan"), float("inf")


def clear_error_or_finite(fn):
    """Either a clear error, or a result whose numbers are all finite."""
    result = result_or_clear_error(fn)
    if isinstance(result, Exception):
        return result
    values = result.values() if isinstance(result, dict) else [result]
    for value in values:
        array = value.numpy() if isinstance(value, torch.Tensor) else np.asarray(value, float)
        assert np.isfinite(array).all(), f"non-finite result {result!r}"
    return result


class Linear(nn.Module):
    """A toy click model: batch['x'] (C, 3) → (C, 2) logits."""

    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.layer = nn.Linear(3, 2)

    def forward(self, batch):
        return self.layer(batch["x"])


class NanModel(nn.Module):
    def forward(self, batch):
        return torch.full((batch["x"].shape[0], 2), NAN)


COSTS = StageCosts(0.1, 0.2, 0.001, 0.5, 0.01)
SCENARIOS, TASKS = ["a", "b"], ["watch", "like"]


def _table(**caps):
    return BudgetTable(
        {s: ScenarioBudget(("watch",), caps.get(s)) for s in SCENARIOS},
        scenarios=SCENARIOS,
        tasks=TASKS,
    )


SCORER = CascadeScorer(Linear(0), Linear(1))
BATCH = {"x": torch.randn(8, 3, generator=torch.Generator().manual_seed(0))}
CONTROLLER = DepthController(COSTS, 10.0, depths=[0, 2, 4], table=_table(a=2))
RESULT = SimResult(
    np.array([0.0, 1.0]), np.array([0.0, 1.0]), np.array([1.0, 2.0]), np.array([1, 2])
)
QUALITY = allocation.DepthQuality(
    depths=np.array([0, 2, 8]),
    agreement=np.ones((3, 3)),
    held_out=np.ones((3, 3)),
    teacher_held_out=np.ones(3),
)
TABLES = allocation.FeatureTables(
    user={"user_id": torch.arange(4), "age": torch.zeros(4)},
    item={"item_id": torch.arange(6), "genres": torch.zeros(6, 2)},
)
STATE = {
    "item_scenarios": torch.tensor([0, 1, 0]),
    "item_text": torch.zeros(3, 2),
    "user_gender": torch.tensor([0, 1, 2]),
    "user_occupation": torch.tensor([0, 1, 1]),
    "user_age": torch.zeros(3),
}
CONFIG = build.RecommenderConfig(scenarios=("a", "b"), tasks=("watch",))
ITEMS = pd.DataFrame(
    {"item_id": [1, 2], "title": ["A (1990)", "B (1991)"], "genres": ["Drama", "Comedy|Drama"],
     "scenario": ["a", "b"]}
)  # fmt: skip
USERS = pd.DataFrame({"user_id": [1, 2], "gender": ["M", "F"], "occupation": ["x", "y"],
                      "age": [20, 30]})  # fmt: skip
RATINGS = pd.DataFrame({"user_id": [1, 1, 2], "item_id": [1, 2, 2], "rating": [5, 3, 4]})
ML_ITEMS = pd.DataFrame({"item_id": [1, 2], **{g: [0, 1] for g in ML_GENRES}})


def _sq(**kw):
    return DepthController(COSTS, kw.pop("slo", 10.0), depths=kw.pop("depths", [0, 2]), **kw)


BAD = {
    # cascade
    "relevance list": lambda: task_relevance([[0.1, 0.2]]),
    "relevance 1-D": lambda: task_relevance(torch.zeros(3)),
    "relevance nan": lambda: task_relevance(torch.tensor([[NAN, 0.0]])),
    "relevance inf": lambda: task_relevance(torch.tensor([[-INF, 0.0]])),
    "relevance mask len": lambda: task_relevance(torch.zeros(3, 2), torch.tensor([True])),
    "relevance mask none": lambda: task_relevance(torch.zeros(3, 2), torch.tensor([False, False])),
    "order list": lambda: cascade_order([1.0, 2.0], torch.zeros(0), 0),
    "order teacher list": lambda: cascade_order(torch.zeros(2), [1.0], 1),
    "order 2-D": lambda: cascade_order(torch.zeros(2, 2), torch.zeros(0), 0),
    "order nan": lambda: cascade_order(torch.tensor([NAN, 1.0]), torch.zeros(1), 1),
    "order teacher nan": lambda: cascade_order(torch.zeros(2), torch.tensor([NAN]), 1),
    "order depth float": lambda: cascade_order(torch.zeros(2), torch.zeros(1), 1.0),
    "order depth past": lambda: cascade_order(torch.zeros(2), torch.zeros(3), 3),
    "order depth neg": lambda: cascade_order(torch.zeros(2), torch.zeros(0), -1),
    "order teacher len": lambda: cascade_order(torch.zeros(4), torch.zeros(3), 2),
    "check_depth str": lambda: check_depth("2", 4),
    "check_depth bool": lambda: check_depth(True, 4),
    "scorer not module": lambda: CascadeScorer("student", Linear()),
    "rank not dict": lambda: SCORER.rank([torch.zeros(3, 3)], 1),
    "rank empty dict": lambda: SCORER.rank({}, 0),
    "rank list value": lambda: SCORER.rank({"x": [[0.0] * 3]}, 0),
    "rank 0-D value": lambda: SCORER.rank({"x": torch.tensor(1.0)}, 0),
    "rank mismatched rows": lambda: SCORER.rank({"x": torch.zeros(3, 3), "y": torch.zeros(2)}, 1),
    "rank depth past": lambda: SCORER.rank(BATCH, 9),
    "rank depth float": lambda: SCORER.rank(BATCH, 2.5),
    "rank depth neg": lambda: SCORER.rank(BATCH, -1),
    "rank nan model": lambda: CascadeScorer(NanModel(), Linear()).rank(BATCH, 2),
    "rank nan teacher": lambda: CascadeScorer(Linear(), NanModel()).rank(BATCH, 2),
    "costs nan": lambda: StageCosts(NAN, 0, 0, 0, 0),
    "costs inf": lambda: StageCosts(0, INF, 0, 0, 0),
    "costs neg": lambda: StageCosts(0, 0, -1, 0, 0),
    "costs str": lambda: StageCosts("1", 0, 0, 0, 0),
    "costs none": lambda: StageCosts(0, 0, 0, None, 0),
    "request nan": lambda: COSTS.request_ms(NAN, 0),
    "request neg": lambda: COSTS.request_ms(-5, 0),
    "request depth inf": lambda: COSTS.request_ms(5, INF),
    "request str": lambda: COSTS.request_ms("many", 0),
    "teacher_only neg": lambda: COSTS.teacher_only_ms(np.array([1, -1])),
    "teacher_only nan": lambda: COSTS.teacher_only_ms(np.array([NAN])),
    "measure sizes 1": lambda: measure_costs(SCORER, BATCH, sizes=(4,), repeats=1),
    "measure sizes float": lambda: measure_costs(SCORER, BATCH, sizes=(1.5, 4), repeats=1),
    "measure sizes same": lambda: measure_costs(SCORER, BATCH, sizes=(4, 4), repeats=1),
    "measure sizes past": lambda: measure_costs(SCORER, BATCH, sizes=(2, 9), repeats=1),
    "measure sizes zero": lambda: measure_costs(SCORER, BATCH, sizes=(0, 4), repeats=1),
    "measure repeats 0": lambda: measure_costs(SCORER, BATCH, sizes=(2, 4), repeats=0),
    "measure repeats float": lambda: measure_costs(SCORER, BATCH, sizes=(2, 4), repeats=2.5),
    "measure repeats str": lambda: measure_costs(SCORER, BATCH, sizes=(2, 4), repeats="3"),
    "measure not scorer": lambda: measure_costs(Linear(), BATCH, sizes=(2, 4), repeats=1),
    "measure empty batch": lambda: measure_costs(SCORER, {}, sizes=(2, 4), repeats=1),
    "relevance mask float": lambda: task_relevance(torch.zeros(3, 2), torch.tensor([0.5, 0.0])),
    "relevance mask str": lambda: task_relevance(torch.zeros(3, 2), ["watch", "like"]),
    "relevance mask 2": lambda: task_relevance(torch.zeros(3, 2), [2, 0]),
    "measure overhead str": lambda: measure_costs(
        SCORER, BATCH, sizes=(2, 4), repeats=1, overhead="fast"
    ),
    "scores mask len": lambda: SCORER.student_scores(BATCH, torch.tensor([True])),
    # budget
    "budget queue neg": lambda: CONTROLLER.service_budget_ms(0.0, [1.0], [-5.0]),
    "budget waits neg": lambda: CONTROLLER.service_budget_ms(0.0, [-1.0], [1.0]),
    "mmoe_config users 0": lambda: build.mmoe_config(
        CONFIG, num_users=0, num_items=3, occupations=2
    ),
    "mmoe_config float": lambda: build.mmoe_config(
        CONFIG, num_users=2.5, num_items=3, occupations=2
    ),
    "table tuple budget": lambda: BudgetTable(
        {"a": ("watch",), "b": ("watch",)}, scenarios=SCENARIOS, tasks=TASKS
    ),
    "table list budgets": lambda: BudgetTable(
        [ScenarioBudget(("watch",))], scenarios=["a"], tasks=TASKS
    ),
    "table str scenarios": lambda: BudgetTable(
        {"a": ScenarioBudget(("watch",))}, scenarios="a", tasks=TASKS
    ),
    "table str tasks": lambda: BudgetTable(
        {"a": ScenarioBudget(("watch",))}, scenarios=["a"], tasks="watch"
    ),
    "table str budget tasks": lambda: BudgetTable(
        {"a": ScenarioBudget("watch")}, scenarios=["a"], tasks=TASKS
    ),
    "table float depth": lambda: BudgetTable(
        {"a": ScenarioBudget(("watch",), 2.5)}, scenarios=["a"], tasks=TASKS
    ),
    "table str depth": lambda: BudgetTable(
        {"a": ScenarioBudget(("watch",), "3")}, scenarios=["a"], tasks=TASKS
    ),
    "table neg depth": lambda: _table(a=-1),
    "table unknown task": lambda: BudgetTable(
        {"a": ScenarioBudget(("click",))}, scenarios=["a"], tasks=TASKS
    ),
    "table missing scenario": lambda: BudgetTable(
        {"a": ScenarioBudget(("watch",))}, scenarios=SCENARIOS, tasks=TASKS
    ),
    "mask unknown": lambda: _table().task_mask("zzz"),
    "mask unhashable": lambda: _table().task_mask(["a"]),
    "max_depth unknown": lambda: _table().max_depth(None),
    "controller costs dict": lambda: DepthController({"overhead_ms": 1}, 10.0, depths=[0]),
    "controller slo nan": lambda: _sq(slo=NAN),
    "controller slo str": lambda: _sq(slo="10"),
    "controller slo tiny": lambda: _sq(slo=0.0),
    "controller depths float": lambda: _sq(depths=[2.5]),
    "controller depths nan": lambda: _sq(depths=[NAN]),
    "controller depths int": lambda: _sq(depths=4),
    "controller depths str": lambda: _sq(depths="24"),
    "controller depths neg": lambda: _sq(depths=[-1, 2]),
    "controller min float": lambda: _sq(min_candidates=2.5),
    "controller min neg": lambda: _sq(min_candidates=-3),
    "controller table dict": lambda: _sq(table={"a": 3}),
    "budget wait nan": lambda: CONTROLLER.service_budget_ms(NAN, [], []),
    "budget wait neg": lambda: CONTROLLER.service_budget_ms(-1.0, [], []),
    "budget queue nan": lambda: CONTROLLER.service_budget_ms(0.0, [NAN], [1.0]),
    "budget queue str": lambda: CONTROLLER.service_budget_ms(0.0, ["a"], [1.0]),
    "budget queue lens": lambda: CONTROLLER.service_budget_ms(0.0, [1.0, 2.0], [1.0]),
    "budget queue 2-D": lambda: CONTROLLER.service_budget_ms(0.0, [[1.0]], [[1.0]]),
    "budget own inf": lambda: CONTROLLER.service_budget_ms(0.0, [], [], own_min_ms=INF),
    "choose cands neg": lambda: CONTROLLER.choose(-5, wait_ms=0.0),
    "choose cands float": lambda: CONTROLLER.choose(2.5, wait_ms=0.0),
    "choose cands nan": lambda: CONTROLLER.choose(NAN, wait_ms=0.0),
    "choose wait nan": lambda: CONTROLLER.choose(5, wait_ms=NAN),
    "choose wait inf": lambda: CONTROLLER.choose(5, wait_ms=INF),
    "choose unknown scenario": lambda: CONTROLLER.choose(5, wait_ms=0.0, scenario="zzz"),
    "choose queue lens": lambda: CONTROLLER.choose(5, wait_ms=0.0, queued_waits_ms=[1.0]),
    # simulate
    "arrivals rate 0": lambda: poisson_arrivals(0, 5),
    "arrivals rate neg": lambda: poisson_arrivals(-1.0, 5),
    "arrivals rate nan": lambda: poisson_arrivals(NAN, 5),
    "arrivals rate inf": lambda: poisson_arrivals(INF, 5),
    "arrivals rate str": lambda: poisson_arrivals("10", 5),
    "arrivals num 0": lambda: poisson_arrivals(10.0, 0),
    "arrivals num float": lambda: poisson_arrivals(10.0, 2.5),
    "arrivals num nan": lambda: poisson_arrivals(10.0, NAN),
    "arrivals seed neg": lambda: poisson_arrivals(10.0, 5, seed=-1),
    "arrivals seed float": lambda: poisson_arrivals(10.0, 5, seed=1.5),
    "arrivals max nan": lambda: poisson_arrivals(10.0, 5, max_s=NAN),
    "arrivals max 0": lambda: poisson_arrivals(10.0, 5, max_s=0),
    "arrivals max str": lambda: poisson_arrivals(10.0, 5, max_s="1"),
    "fixed depth neg": lambda: FixedPolicy("f", -1),
    "fixed depth float": lambda: FixedPolicy("f", 2.5),
    "fixed choose neg": lambda: FixedPolicy("f", 2).choose(-3),
    "adaptive not controller": lambda: AdaptivePolicy("a", "controller"),
    "summary slo nan": lambda: RESULT.summary(NAN),
    "summary empty": lambda: SimResult(*(np.zeros(0),) * 4).summary(10.0),
    "simulate empty": lambda: simulate([], [], COSTS, FixedPolicy("f", 1)),
    "simulate lens": lambda: simulate([0.0, 1.0], [3], COSTS, FixedPolicy("f", 1)),
    "simulate nan arrival": lambda: simulate([0.0, NAN], [3, 3], COSTS, FixedPolicy("f", 1)),
    "simulate inf arrival": lambda: simulate([0.0, INF], [3, 3], COSTS, FixedPolicy("f", 1)),
    "simulate unsorted": lambda: simulate([1.0, 0.0], [3, 3], COSTS, FixedPolicy("f", 1)),
    "simulate cands float": lambda: simulate([0.0, 1.0], [2.5, 3], COSTS, FixedPolicy("f", 1)),
    "simulate cands nan": lambda: simulate([0.0, 1.0], [NAN, 3], COSTS, FixedPolicy("f", 1)),
    "simulate cands 0": lambda: simulate([0.0, 1.0], [0, 3], COSTS, FixedPolicy("f", 1)),
    "simulate cands str": lambda: simulate([0.0], ["3"], COSTS, FixedPolicy("f", 1)),
    "simulate arrivals 2-D": lambda: simulate([[0.0]], [3], COSTS, FixedPolicy("f", 1)),
    "simulate costs dict": lambda: simulate([0.0], [3], {"overhead_ms": 1}, FixedPolicy("f", 1)),
    "simulate policy str": lambda: simulate([0.0], [3], COSTS, "teacher"),
    "simulate scen lens": lambda: simulate(
        [0.0, 1.0], [3, 3], COSTS, AdaptivePolicy("a", CONTROLLER), scenarios=["a"]
    ),
    "simulate scen str": lambda: simulate(
        [0.0, 1.0], [3, 3], COSTS, AdaptivePolicy("a", CONTROLLER), scenarios="ab"
    ),
    "simulate scen unknown": lambda: simulate(
        [0.0, 1.0], [3, 3], COSTS, AdaptivePolicy("a", CONTROLLER), scenarios=["a", "zzz"]
    ),
    "sweep no policies": lambda: load_sweep([], [10.0], np.array([3, 3]), COSTS, slo_ms=10.0),
    "sweep no rates": lambda: load_sweep(
        [FixedPolicy("f", 1)], [], np.array([3]), COSTS, slo_ms=10.0
    ),
    "sweep dup names": lambda: load_sweep(
        [FixedPolicy("f", 1), FixedPolicy("f", 2)], [10.0], np.array([3]), COSTS, slo_ms=10.0
    ),
    "sweep slo nan": lambda: load_sweep(
        [FixedPolicy("f", 1)], [10.0], np.array([3]), COSTS, slo_ms=NAN
    ),
    "sweep rate nan": lambda: load_sweep(
        [FixedPolicy("f", 1)], [NAN], np.array([3]), COSTS, slo_ms=10.0
    ),
    "sweep no cands": lambda: load_sweep(
        [FixedPolicy("f", 1)], [10.0], np.array([], int), COSTS, slo_ms=10.0
    ),
    "sweep max_s tiny": lambda: load_sweep(
        [FixedPolicy("f", 1)], [1.0], np.array([3]), COSTS, slo_ms=10.0, max_s=1e-9
    ),
    # allocation
    "tables user past": lambda: TABLES.batch(torch.tensor([4]), torch.tensor([1])),
    "tables item neg": lambda: TABLES.batch(torch.tensor([1]), torch.tensor([-1])),
    "tables float id": lambda: TABLES.batch(torch.tensor([1.5]), torch.tensor([1])),
    "tables lens": lambda: TABLES.batch(torch.tensor([1, 2]), torch.tensor([1])),
    "tables 2-D": lambda: TABLES.batch(torch.ones(2, 2).long(), torch.ones(2, 2).long()),
    "pca list": lambda: allocation.title_pca([[1.0, 2.0]], 1),
    "pca 1-D": lambda: allocation.title_pca(torch.zeros(4), 1),
    "pca empty": lambda: allocation.title_pca(torch.zeros(0, 4), 1),
    "pca nan": lambda: allocation.title_pca(torch.tensor([[NAN, 1.0], [0.0, 2.0]]), 1),
    "pca dim past": lambda: allocation.title_pca(torch.randn(3, 4), 5),
    "pca dim 0": lambda: allocation.title_pca(torch.randn(3, 4), 0),
    "pca dim float": lambda: allocation.title_pca(torch.randn(3, 4), 1.5),
    "ml tables text rows": lambda: allocation.movielens_tables(USERS, ML_ITEMS, torch.zeros(3, 2)),
    "ml tables text nan": lambda: allocation.movielens_tables(
        USERS, ML_ITEMS, torch.full((2, 2), NAN)
    ),
    "ml tables text list": lambda: allocation.movielens_tables(USERS, ML_ITEMS, [[0.0]] * 2),
    "ml tables no cols": lambda: allocation.movielens_tables(
        USERS[["user_id"]], ML_ITEMS, torch.zeros(2, 2)
    ),
    "ml tables empty": lambda: allocation.movielens_tables(
        USERS.iloc[:0], ML_ITEMS, torch.zeros(2, 2)
    ),
    "ml tables dict": lambda: allocation.movielens_tables(
        {"user_id": [1]}, ML_ITEMS, torch.zeros(2, 2)
    ),
    "ml tables id 0": lambda: allocation.movielens_tables(
        USERS.assign(user_id=[0, 1]), ML_ITEMS, torch.zeros(2, 2)
    ),
    "rows num_items 0": lambda: allocation.training_rows(RATINGS, 0, seed=0),
    "rows num_items float": lambda: allocation.training_rows(RATINGS, 2.5, seed=0),
    "rows seed neg": lambda: allocation.training_rows(RATINGS, 3, seed=-1),
    "fit_pair epochs 0": lambda: allocation.fit_pair(TABLES, RATINGS, teacher_epochs=0),
    "fit_pair epochs float": lambda: allocation.fit_pair(TABLES, RATINGS, student_epochs=1.5),
    "fit_pair transfer neg": lambda: allocation.fit_pair(TABLES, RATINGS, transfer_size=-1),
    "fit_pair seed neg": lambda: allocation.fit_pair(TABLES, RATINGS, seed=-1),
    "lookup off grid": lambda: QUALITY.lookup(np.array([0]), np.array([1]), np.array([8])),
    "lookup row past": lambda: QUALITY.lookup(np.array([5]), np.array([0]), np.array([8])),
    "lookup row neg": lambda: QUALITY.lookup(np.array([-1]), np.array([0]), np.array([8])),
    "lookup lens": lambda: QUALITY.lookup(np.array([0, 1]), np.array([0]), np.array([8])),
    "lookup float depth": lambda: QUALITY.lookup(np.array([0]), np.array([2.5]), np.array([8])),
    "lookup nan depth": lambda: QUALITY.lookup(np.array([0]), np.array([NAN]), np.array([8])),
    "lookup neg depth": lambda: QUALITY.lookup(np.array([0]), np.array([-2]), np.array([8])),
    "lookup str": lambda: QUALITY.lookup(np.array(["a"]), np.array([0]), np.array([8])),
    "scenarios unknown user": lambda: allocation.user_scenarios(
        {1: np.array([1])}, torch.tensor([0, 1]), [2]
    ),
    "scenarios empty hist": lambda: allocation.user_scenarios(
        {1: np.array([], int)}, torch.tensor([0, 1]), [1]
    ),
    "scenarios item past": lambda: allocation.user_scenarios(
        {1: np.array([7])}, torch.tensor([0, 1]), [1]
    ),
    "scenarios neg scen": lambda: allocation.user_scenarios(
        {1: np.array([1])}, torch.tensor([0, -1]), [1]
    ),
    "scenarios empty table": lambda: allocation.user_scenarios(
        {1: np.array([0])}, torch.zeros(0, dtype=torch.long), [1]
    ),
    # build
    "config str scenarios": lambda: build.RecommenderConfig(scenarios="ab", tasks=("watch",)),
    "config str tasks": lambda: build.RecommenderConfig(scenarios=("a",), tasks="watch"),
    "config int scenarios": lambda: build.RecommenderConfig(scenarios=5, tasks=("watch",)),
    "config empty": lambda: build.RecommenderConfig(scenarios=(), tasks=("watch",)),
    "config no tasks": lambda: build.RecommenderConfig(scenarios=("a",), tasks=()),
    "config upper": lambda: build.RecommenderConfig(scenarios=("A",), tasks=("watch",)),
    "config dup": lambda: build.RecommenderConfig(scenarios=("a", "a"), tasks=("watch",)),
    "config unknown task": lambda: build.RecommenderConfig(scenarios=("a",), tasks=("click",)),
    "config table list": lambda: build.RecommenderConfig(
        scenarios=("a",), tasks=("watch",), task_table=[("a", ("watch",))]
    ),
    "config table unknown": lambda: build.RecommenderConfig(
        scenarios=("a",), tasks=("watch",), task_table={"zzz": ("watch",)}
    ),
    "config dim 0": lambda: build.RecommenderConfig(scenarios=("a",), tasks=("watch",), text_dim=0),
    "config dim float": lambda: build.RecommenderConfig(
        scenarios=("a",), tasks=("watch",), text_dim=2.0
    ),
    "from_dict list": lambda: build.RecommenderConfig.from_dict([]),
    "from_dict unknown": lambda: build.RecommenderConfig.from_dict({**CONFIG.to_dict(), "x": 1}),
    "from_dict missing": lambda: build.RecommenderConfig.from_dict({"tasks": ["watch"]}),
    "profiles no cols": lambda: build.item_profiles(ITEMS[["item_id"]]),
    "profiles nan genre": lambda: build.item_profiles(ITEMS.assign(genres=[None, "Drama"])),
    "profiles dict": lambda: build.item_profiles({"title": ["a"], "genres": ["b"]}),
    "scenario_ids unknown": lambda: build.scenario_ids(ITEMS.assign(scenario=["a", "c"]), CONFIG),
    "scenario_ids config": lambda: build.scenario_ids(ITEMS, {"scenarios": ["a", "b"]}),
    "scenario_ids no col": lambda: build.scenario_ids(ITEMS[["item_id"]], CONFIG),
    "projection list": lambda: build.text_projection([[1.0, 2.0]], 1),
    "projection nan": lambda: build.text_projection(torch.tensor([[NAN, 1.0], [0.0, 1.0]]), 1),
    "projection empty": lambda: build.text_projection(torch.zeros(0, 4), 1),
    "projection dim past": lambda: build.text_projection(torch.randn(3, 4), 4),
    "projection dim float": lambda: build.text_projection(torch.randn(3, 4), 1.5),
    "projection constant": lambda: build.text_projection(torch.ones(3, 4), 1),
    "user_tensors empty": lambda: build.user_tensors(USERS.iloc[:0]),
    "user_tensors no col": lambda: build.user_tensors(USERS[["user_id"]]),
    "user_tensors neg id": lambda: build.user_tensors(USERS.assign(user_id=[-1, 2])),
    "user_tensors float id": lambda: build.user_tensors(USERS.assign(user_id=[1.5, 2.0])),
    "user_tensors dup id": lambda: build.user_tensors(USERS.assign(user_id=[1, 1])),
    "history unknown item": lambda: build.history_tensors(RATINGS.assign(item_id=[1, 9, 2]), ITEMS),
    "history no col": lambda: build.history_tensors(RATINGS[["user_id"]], ITEMS),
    "rows empty items": lambda: build.training_rows(RATINGS, ITEMS.iloc[:0], ("watch",), 0),
    "rows unknown task": lambda: build.training_rows(RATINGS, ITEMS, ("click",), 0),
    "build rows seed neg": lambda: build.training_rows(RATINGS, ITEMS, ("watch",), -1),
    "rows unknown item": lambda: build.training_rows(
        RATINGS.assign(item_id=[1, 9, 2]), ITEMS, ("watch",), 0
    ),
    "features missing": lambda: build.features({"user_row": torch.tensor([1])}, STATE),
    "features user past": lambda: build.features(
        {"user_row": torch.tensor([3]), "item_row": torch.tensor([0])}, STATE
    ),
    "features item neg": lambda: build.features(
        {"user_row": torch.tensor([1]), "item_row": torch.tensor([-1])}, STATE
    ),
    "features float": lambda: build.features(
        {"user_row": torch.tensor([1.5]), "item_row": torch.tensor([0])}, STATE
    ),
    "features lens": lambda: build.features(
        {"user_row": torch.tensor([1, 2]), "item_row": torch.tensor([0])}, STATE
    ),
    # export (validation that runs before any export)
    "input_names linear": lambda: export.input_names(nn.Linear(2, 2)),
    "example no config": lambda: export.example_batch(nn.Linear(2, 2)),
    "onnx missing file": lambda: export.OnnxScorer("/nonexistent/model.onnx"),
}


@pytest.mark.timeout(60)
@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_gives_a_clear_error(case):
    assert_clear_error(BAD[case])


# BudgetTable.from_quality(quality, tasks, all_tasks=TASKS, target=...): one good call, one change each
FROM_QUALITY = {"quality": {"a": {0: 1.0}}, "tasks": {"a": ["watch"]}, "target": 0.9}
BAD_FROM_QUALITY = {
    "target nan": {"target": NAN},
    "target str": {"target": "0.9"},
    "target 0": {"target": 0.0},
    "empty": {"quality": {}, "tasks": {}},
    "nan": {"quality": {"a": {0: NAN, 4: 1.0}}},
    "neg depth": {"quality": {"a": {-2: 1.0}}},
    "float depth": {"quality": {"a": {1.5: 1.0}}},
    "empty curve": {"quality": {"a": {}}},
    "not dict": {"quality": [("a", {0: 1.0})]},
    "mismatch": {"tasks": {"b": ["watch"]}},
}


@pytest.mark.timeout(60)
@pytest.mark.parametrize("change", list(BAD_FROM_QUALITY.values()), ids=list(BAD_FROM_QUALITY))
def test_budget_from_quality_bad_input_gives_a_clear_error(change):
    assert BudgetTable.from_quality(**FROM_QUALITY, all_tasks=TASKS).max_depth("a") == 0
    assert_clear_error(BudgetTable.from_quality, **{**FROM_QUALITY, **change}, all_tasks=TASKS)


# allocation.depth_quality(teacher, student, TABLES, users, ...): one good call, one change each
DEPTH_QUALITY = {
    "users": [1],
    "seen": {1: []},
    "targets": {1: 2},
    "tasks": torch.ones(1, 2).bool(),
    "depths": [0],
}
BAD_DEPTH_QUALITY = {
    "k 0": {"k": 0},
    "chunk 0": {"chunk": 0},
    "no users": {"users": [], "seen": {}, "targets": {}, "tasks": torch.ones(0, 2).bool()},
    "depth float": {"depths": [1.5]},
    "no depths": {"depths": []},
    "tasks rows": {"tasks": torch.ones(3, 2).bool()},
    "no target": {"targets": {}},
    "padding id in history": {"seen": {1: [0, 3]}},  # 0 would block the last item
    "history id past catalogue": {"seen": {1: [10**6]}},
    "fractional history id": {"seen": {1: [2.7]}},
    "target seen": {"seen": {1: [2]}},  # never a candidate: NDCG 0 whatever the models do
    "target 0": {"targets": {1: 0}},
    "target past catalogue": {"targets": {1: 10**6}},
    "every task masked": {"tasks": torch.zeros(1, 2).bool()},  # agreement would be 1.0
    "tasks not bool": {"tasks": torch.ones(1, 2)},
}


@pytest.mark.timeout(60)
@pytest.mark.parametrize("change", list(BAD_DEPTH_QUALITY.values()), ids=list(BAD_DEPTH_QUALITY))
def test_depth_quality_bad_input_gives_a_clear_error(change):
    args = {**DEPTH_QUALITY, **change}
    assert_clear_error(allocation.depth_quality, Linear(), Linear(), TABLES, **args)


# --- valid edge cases: a correct, finite result ---------------------------------------------


def test_empty_request_ranks_to_nothing():
    assert SCORER.rank({"x": torch.zeros(0, 3)}, 0).shape == (0,)
    assert task_relevance(torch.zeros(0, 2)).shape == (0,)


def test_scenario_budget_choose_respects_caps_and_candidates():
    assert CONTROLLER.choose(1, wait_ms=0.0) <= 1
    assert CONTROLLER.choose(10, wait_ms=0.0, scenario="a") <= 2
    assert CONTROLLER.choose(0, wait_ms=0.0) == 0
    assert CONTROLLER.choose(np.int64(10), wait_ms=np.float32(0.5)) in (0, 2, 4)


def test_load_sweep_short_horizon_is_a_clear_error_or_rows():
    clear_error_or_finite(
        lambda: load_sweep([FixedPolicy("f", 1)], [1.0], np.array([3]), COSTS, slo_ms=10.0)[0][
            ["p50_ms", "p99_ms", "within_slo"]
        ].to_numpy()
    )


# --- property-based -------------------------------------------------------------------------

finite = st.floats(-1e6, 1e6, allow_nan=False)
any_float = st.floats(allow_nan=True, allow_infinity=True)


@pytest.mark.timeout(60)
@FEW
@given(st.lists(any_float, min_size=0, max_size=8), st.integers(-3, 10))
def test_property_cascade_order(scores, depth):
    student = torch.tensor(scores, dtype=torch.float32)
    depth_ok = 0 <= depth <= len(scores)
    teacher = student[: max(depth, 0)].flip(0) if depth_ok else torch.zeros(max(depth, 0))
    if depth_ok and torch.isfinite(student).all():
        order = cascade_order(student, teacher, depth)
        assert sorted(order.tolist()) == list(range(len(scores)))
    else:
        assert_clear_error(lambda: cascade_order(student, teacher, depth))


@pytest.mark.timeout(60)
@FEW
@given(st.lists(any_float, min_size=5, max_size=5))
def test_property_stage_costs(values):
    if all(math.isfinite(v) and v >= 0 for v in values):
        costs = StageCosts(*values)
        assert np.isfinite(costs.request_ms(np.arange(5), np.arange(5))).all()
    else:
        assert_clear_error(lambda: StageCosts(*values))


@pytest.mark.timeout(60)
@FEW
@given(
    st.one_of(st.integers(-5, 50), st.floats(allow_nan=True)),
    st.one_of(finite, any_float),
    st.lists(any_float, max_size=4),
)
def test_property_depth_controller(num, wait, queue):
    def call():
        return CONTROLLER.choose(num, wait_ms=wait, queued_waits_ms=queue,
                                 queued_min_ms=[1.0] * len(queue))  # fmt: skip

    valid = (
        isinstance(num, int) and num >= 0 and math.isfinite(wait) and wait >= 0
        and all(math.isfinite(q) and q >= 0 for q in queue)
    )  # fmt: skip
    if valid:
        depth = call()
        assert 0 <= depth <= num and depth in (0, 2, 4, num)
    else:
        assert_clear_error(call)


@pytest.mark.timeout(60)
@FEW
@given(
    st.lists(st.floats(0, 1e4), min_size=0, max_size=12),
    st.lists(st.one_of(st.integers(-2, 50), any_float), min_size=0, max_size=12),
    st.sampled_from(["fixed", "teacher", "adaptive"]),
)
def test_property_simulate(arrivals, cands, kind):
    policy = {
        "fixed": FixedPolicy("f", 3),
        "teacher": FixedPolicy("t", None, teacher_only=True),
        "adaptive": AdaptivePolicy("a", CONTROLLER),
    }[kind]
    arrivals = sorted(arrivals)
    valid = (
        len(arrivals) >= 1 and len(cands) == len(arrivals)
        and all(math.isfinite(c) and c == int(c) and c >= 1 for c in cands)
    )  # fmt: skip
    if valid:
        result = simulate(arrivals, cands, COSTS, policy)
        summary = result.summary(10.0)
        assert all(math.isfinite(v) for v in summary.values())
        assert (result.depth >= 0).all() and (result.depth <= np.asarray(cands)).all()
    else:
        assert_clear_error(lambda: simulate(arrivals, cands, COSTS, policy))


@pytest.mark.timeout(60)
@FEW
@given(st.one_of(finite, any_float), st.integers(-2, 30), st.one_of(st.none(), any_float))
def test_property_poisson_arrivals(rate, num, max_s):
    valid = (
        math.isfinite(rate) and rate > 0 and num >= 1
        and (max_s is None or (math.isfinite(max_s) and max_s > 0))
    )  # fmt: skip
    if valid:
        arrivals = poisson_arrivals(rate, num, max_s=max_s)
        assert len(arrivals) <= num and np.isfinite(arrivals).all()
        assert (np.diff(arrivals) >= 0).all()
    else:
        assert_clear_error(lambda: poisson_arrivals(rate, num, max_s=max_s))


@pytest.mark.timeout(60)
@FEW
@given(st.lists(st.integers(-3, 8), min_size=1, max_size=6), st.integers(-2, 8))
def test_property_feature_tables_batch(ids, shift):
    users = torch.tensor([max(min(i, 3), -1) for i in ids])
    items = torch.tensor([i + shift for i in ids])
    valid = bool((users >= 0).all() and (items >= 0).all() and (items <= 5).all())
    if valid:
        out = TABLES.batch(users, items)
        assert all(v.shape[0] == len(ids) for v in out.values())
    else:
        assert_clear_error(lambda: TABLES.batch(users, items))


@pytest.mark.timeout(60)
@FEW
@given(
    st.lists(st.integers(-2, 4), min_size=1, max_size=5),
    st.lists(st.integers(-2, 12), min_size=1, max_size=5),
)
def test_property_depth_quality_lookup(rows, depths):
    n = min(len(rows), len(depths))
    rows_a, depths_a, cands = np.array(rows[:n]), np.array(depths[:n]), np.full(n, 8)
    on_grid = all(d >= 8 or d in (0, 2) for d in depths_a)
    valid = on_grid and all(0 <= r < 3 for r in rows_a) and all(d >= 0 for d in depths_a)
    if valid:
        agree, held = QUALITY.lookup(rows_a, depths_a, cands)
        assert agree.shape == (n,) and np.isfinite(held).all()
    else:
        assert_clear_error(lambda: QUALITY.lookup(rows_a, depths_a, cands))


@pytest.mark.timeout(60)
@FEW
@given(
    st.integers(0, 6).flatmap(
        lambda n: st.tuples(st.just(n), st.lists(any_float, min_size=n * 3, max_size=n * 3))
    ),
    st.one_of(st.integers(-1, 5), st.floats(0, 3)),
)
def test_property_text_projection(rows_values, dim):
    n, values = rows_values
    embeddings = torch.tensor(values, dtype=torch.float32).reshape(n, 3)

    def call():
        torch.manual_seed(0)
        return build.text_projection(embeddings, dim)

    out = clear_error_or_finite(call)
    if isinstance(out, torch.Tensor):
        assert out.shape == (n, dim)


# --- ONNX serving: a real exported model, fed bad batches ------------------------------------


@pytest.fixture(scope="module")
def onnx_scorer(tmp_path_factory):
    pytest.importorskip("onnxruntime", reason="the serve extra (pip install 'mtrec[serve]')")
    pytest.importorskip("onnxscript", reason="the serve extra (pip install 'mtrec[serve]')")
    from mtrec.models.student import StudentConfig, StudentMLP

    torch.manual_seed(0)
    model = StudentMLP(StudentConfig.tiny()).eval()
    path = export.export_onnx(model, tmp_path_factory.mktemp("onnx") / "s.onnx", check=False)
    return model, export.OnnxScorer(path, threads=1)


@pytest.mark.timeout(120)
def test_onnx_scorer_bad_batches(onnx_scorer, tmp_path):
    model, scorer = onnx_scorer
    good = export.example_batch(model, 4)
    assert torch.isfinite(scorer.predict(good)).all()
    names = list(good)
    first = names[0]
    ints = [n for n in names if not good[n].is_floating_point()]
    cases = {
        "not dict": lambda: scorer(list(good.values())),
        "missing key": lambda: scorer({k: v for k, v in good.items() if k != first}),
        "list value": lambda: scorer({**good, first: good[first].tolist()}),
        "extra dim": lambda: scorer({**good, first: good[first][:, None]}),
        "batch sizes": lambda: scorer({**good, first: good[first][:2]}),
        "float ids": lambda: scorer({**good, first: good[first].float() + 0.5}),
        "id past vocab": lambda: scorer({**good, ints[0]: good[ints[0]] + 10**6}),
        "negative id": lambda: scorer({**good, ints[0]: -good[ints[0]] - 1}),
        "missing file": lambda: export.OnnxScorer(tmp_path / "absent.onnx"),
        "example not dict": lambda: export.export_onnx(model, tmp_path / "x.onnx", example=[1]),
        "example missing": lambda: export.export_onnx(model, tmp_path / "x.onnx", example={}),
        "example list": lambda: export.export_onnx(
            model, tmp_path / "x.onnx", example={**good, first: good[first].tolist()}
        ),
        "example sizes": lambda: export.export_onnx(
            model, tmp_path / "x.onnx", example={**good, first: good[first][:2]}
        ),
        "atol nan": lambda: export.export_onnx(model, tmp_path / "x.onnx", atol=NAN),
        "atol neg": lambda: export.check_parity(model, scorer.path, good, atol=-1.0),
        "batch size 0": lambda: export.example_batch(model, 0),
        "batch size float": lambda: export.example_batch(model, 2.5),
        "threads neg": lambda: export.OnnxScorer(scorer.path, threads=-1),
        "threads float": lambda: export.OnnxScorer(scorer.path, threads=1.5),
        "empty model": lambda: export.export_onnx(_NoParams(), tmp_path / "x.onnx"),
    }
    floats = [n for n in names if good[n].is_floating_point()]
    if floats:
        cases["nan feature"] = lambda: scorer({**good, floats[0]: good[floats[0]] * NAN})
    failures = []
    for name, call in cases.items():
        try:
            assert_clear_error(call)
        except AssertionError as error:
            failures.append(f"{name}: {error}")
    assert not failures, "\n".join(failures)


class _NoParams(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.config = type("C", (), {"features": [type("F", (), {"name": "x"})()]})()
