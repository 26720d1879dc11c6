"""The benchmarked multi-scenario models: STAR, the other multi-scenario models of
:mod:`mtrec.experiments.multiscenario`, and the scenario router with its every-tower anti-pattern
(the routing-cost goals), each on the click schema plus uniform ``scenario_ids``.
"""

from __future__ import annotations

import functools

import torch
from torch import Tensor

from mtrec.bench.baselines import every_tower_forward
from mtrec.bench.built import TASKS, Built, Case
from mtrec.bench.inputs import click_batch, click_features
from mtrec.bench.timing import SEED
from mtrec.data import Batch
from mtrec.models.of_record import SCENARIO_BENCHMARK
from mtrec.models.scenario.star import STAR, STARConfig
from mtrec.nn.scenario import ScenarioRouter


def star_built(batch_size: int, *, num_scenarios: int = 8) -> Built:
    """STAR on the click schema with ``num_scenarios`` scenarios; batch adds ``scenario_ids``."""
    features = click_features()
    config = STARConfig(features=tuple(features), num_scenarios=num_scenarios, num_tasks=len(TASKS))
    batch = click_batch(features, batch_size, num_tasks=len(TASKS))
    g = torch.Generator().manual_seed(SEED + 1)
    batch["scenario_ids"] = torch.randint(0, num_scenarios, (batch_size,), generator=g)
    return Built(STAR(config), batch)


def star_case() -> Case:
    """STAR with 8 scenarios (:func:`star_built`); its partitioned norm needs two rows to train."""
    sizes = (1, 64, 1024, 4096)
    return Case("star", star_built, sizes, (1, 64, 1024), sizes, train_min_batch=2)


# the multi-scenario models of mtrec.experiments.multiscenario (STAR has its own case above), at
# the benchmark's widths (64 → 32 hidden units in every network), on the click schema
SCENARIO_MODELS = ("sb+scenario", "scenario_moe", "pepnet", "m2m", "adasparse", "sarnet", "hamur")
SCENARIO_TRAIN_MIN_BATCH = {"hamur": 2}  # HAMUR's adapter BatchNorm cannot train on one row


def scenario_built(name: str, batch_size: int, *, num_scenarios: int = 8) -> Built:
    """Multi-scenario model ``name`` (:data:`SCENARIO_MODELS`) with ``num_scenarios`` scenarios.

    The model is built exactly as the multi-scenario benchmark builds it
    (:data:`mtrec.models.of_record.SCENARIO_BENCHMARK`); the batch is a click-log batch plus uniform
    ``scenario_ids``, so at S = 128 a 1024-row batch holds every scenario (about 8 rows each).
    """
    if name not in SCENARIO_MODELS:
        raise KeyError(f"unknown multi-scenario model {name!r}; choose from {SCENARIO_MODELS}")
    features = click_features()
    model = SCENARIO_BENCHMARK[name](tuple(features), num_scenarios, len(TASKS))
    batch = click_batch(features, batch_size, num_tasks=len(TASKS))
    g = torch.Generator().manual_seed(SEED + 1)
    batch["scenario_ids"] = torch.randint(0, num_scenarios, (batch_size,), generator=g)
    return Built(model, batch, count_flops=False)  # compared by routing cost, not the ceiling


def scenario_case(name: str) -> Case:
    """A multi-scenario model of :func:`scenario_built` with 8 scenarios (as STAR's case)."""
    sizes = (1, 64, 1024, 4096)
    min_batch = SCENARIO_TRAIN_MIN_BATCH.get(name, 1)
    return Case(name, functools.partial(scenario_built, name), sizes, (1, 64, 1024), sizes,
                train_min_batch=min_batch)  # fmt: skip


def _router_and_batch(batch_size: int, num_scenarios: int) -> tuple[ScenarioRouter, Batch]:
    """A ScenarioRouter (130 → 64 → 32 → T per scenario) and a seeded (B, 130) batch."""
    router = ScenarioRouter(num_scenarios, 130, (64, 32), len(TASKS))
    g = torch.Generator().manual_seed(SEED)
    batch = {
        "x": torch.randn(batch_size, 130, generator=g),
        "scenario_ids": torch.randint(0, num_scenarios, (batch_size,), generator=g),
    }
    return router, batch


def router_built(batch_size: int, *, num_scenarios: int) -> Built:
    """mtrec.nn.scenario.ScenarioRouter (one MLP per scenario, gathered) on (B, 130) inputs."""
    router, batch = _router_and_batch(batch_size, num_scenarios)

    def forward(b: Batch) -> Tensor:
        return router(b["x"], b["scenario_ids"])

    return Built(router, batch, loss=lambda b: forward(b).square().mean(), predict=forward)


def every_tower_built(batch_size: int, *, num_scenarios: int) -> Built:
    """The anti-pattern, for reference: the weights of :func:`router_built`, every row through
    every scenario's MLP (:func:`~mtrec.bench.baselines.every_tower_forward`): S× the work."""
    router, batch = _router_and_batch(batch_size, num_scenarios)

    def forward(b: Batch) -> Tensor:
        return every_tower_forward(router.weights, router.biases, b["x"], b["scenario_ids"])

    return Built(router, batch, loss=lambda b: forward(b).square().mean(), predict=forward)
