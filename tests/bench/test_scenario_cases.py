"""The multi-scenario models in ``mtrec bench``: their cases and the routing-cost goal of each."""

import math

import pytest
import torch

from mtrec.bench.cases import FLOP_MODELS, GROUPS, MODEL_NAMES, model_cases
from mtrec.bench.goals import scenario_routing_cost
from mtrec.bench.measure import Context, environment, flops_per_sample, make_steps, measure_case
from mtrec.bench.scenario_cases import SCENARIO_MODELS, scenario_built
from mtrec.bench.timing import Settings
from mtrec.experiments.multiscenario import MODELS


def test_every_multi_scenario_model_of_the_benchmark_is_a_bench_case():
    assert "scenario" in GROUPS
    names = [case.name for case in model_cases()["scenario"]]
    assert names == list(SCENARIO_MODELS)
    # every model of the quality benchmark that reads scenario ids: STAR has its own case
    assert set(MODELS) - {"one_for_all", "per_scenario", "star"} == set(SCENARIO_MODELS)
    assert set(SCENARIO_MODELS) <= set(MODEL_NAMES) and not set(SCENARIO_MODELS) & set(FLOP_MODELS)


@pytest.mark.parametrize("name", SCENARIO_MODELS)
def test_a_scenario_case_trains_and_predicts_on_its_batch(name):
    case = next(c for c in model_cases()["scenario"] if c.name == name)
    built = case.build(max(case.train_min_batch, 2))
    assert set(built.batch["scenario_ids"].tolist()) <= set(range(8))
    steps = make_steps(built, torch.device("cpu"), "fp32")
    steps["train"]()
    steps["inference"]()


def test_an_unknown_scenario_model_names_the_known_ones():
    with pytest.raises(KeyError, match="choose from"):
        scenario_built("mmoe", 4)


def test_the_routing_cost_goal_covers_every_multi_scenario_model():
    cpu = torch.device("cpu")
    quick = Settings(quick=True, warmup=1, repeats=2, case_budget_s=0.05)
    rows, goals = scenario_routing_cost(Context(cpu, environment(cpu, ""), quick, 10.0))
    assert [g["goal"] for g in goals] == [f"{n} fwd+bwd time, S=128 / S=2" for n in SCENARIO_MODELS]
    assert all(g["kind"] == "routing" and g["target"] == "<= 2.5" for g in goals)
    assert all(g["met"] in ("yes", "no") and g["measured"] > 0 for g in goals)
    assert all("timed on" in g["detail"] for g in goals)  # the machine is named
    # fwd+bwd and train-step rows at S=2 and S=128, for every model
    assert len(rows) == 4 * len(SCENARIO_MODELS)
    assert {r["model"] for r in rows} >= {"pepnet fwd+bwd S=2", "hamur S=128"}


@pytest.mark.parametrize("name", ["m2m", "pepnet"])
def test_scenario_rows_are_measured_without_a_flop_count(name):
    cpu = torch.device("cpu")
    case = next(c for c in model_cases()["scenario"] if c.name == name)
    quick = Settings(quick=True, warmup=1, repeats=2, case_budget_s=0.05)
    rows = measure_case(case, device=cpu, precision="fp32", batch_sizes=(4,),
                        env=environment(cpu, ""), ceiling=10.0, settings=quick)  # fmt: skip
    assert {r["phase"] for r in rows} == {"train", "inference"}
    assert all(r["samples_per_s"] > 0 and math.isnan(r["gflops_per_s"]) for r in rows)


def test_a_failing_flop_counter_leaves_the_flops_empty(toy_built):
    def broken():
        raise AttributeError("'NoneType' object has no attribute 'next_functions'")

    assert flops_per_sample(toy_built(4), "train", broken, 4) is None
