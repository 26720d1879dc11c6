"""The configurations of record: the models exactly as the published benchmark tables build them.

The multi-scenario benchmark (``python -m mtrec.experiments.multiscenario``, notebook 05) and
``mtrec bench``'s multi-scenario cases both build their models from :data:`SCENARIO_BENCHMARK`,
so a speed row and a quality row always describe the same network. Widths are matched: 64 → 32
hidden units in every network. Each builder takes ``(features, num_scenarios, num_tasks)``.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from mtrec.models.multitask.shared_bottom import SharedBottom, SharedBottomConfig
from mtrec.models.scenario.adasparse import AdaSparse, AdaSparseConfig
from mtrec.models.scenario.hamur import HAMUR, HAMURConfig
from mtrec.models.scenario.m2m import M2M, M2MConfig
from mtrec.models.scenario.pepnet import PEPNet, PEPNetConfig
from mtrec.models.scenario.sarnet import SARNet, SARNetConfig
from mtrec.models.scenario.scenario_moe import ScenarioMoE, ScenarioMoEConfig
from mtrec.models.scenario.star import STAR, STARConfig

__all__ = ["SCENARIO_BASELINE", "SCENARIO_BENCHMARK"]

SCENARIO_BASELINE = "sb+scenario"  # Shared-Bottom: shared bottom, scenario embedding and towers

# name → (features, S, T) → model.
SCENARIO_BENCHMARK: dict[str, Callable[[tuple, int, int], nn.Module]] = {
    "one_for_all": lambda f, s, t: SharedBottom(SharedBottomConfig(f, t, bottom_hidden=(64, 32))),
    "per_scenario": lambda f, s, t: SharedBottom(SharedBottomConfig(f, t, bottom_hidden=(64, 32))),
    SCENARIO_BASELINE: lambda f, s, t: SharedBottom(SharedBottomConfig(
        f, t, bottom_hidden=(64, 32), num_scenarios=s, scenario_towers=True)),
    "star": lambda f, s, t: STAR(STARConfig(f, s, t, hidden=(64, 32))),
    "scenario_moe": lambda f, s, t: ScenarioMoE(ScenarioMoEConfig(f, s, t, expert_hidden=(64, 32))),
    "pepnet": lambda f, s, t: PEPNet(PEPNetConfig(f, s, t, tower_hidden=(64, 32))),
    "m2m": lambda f, s, t: M2M(M2MConfig(f, s, t, expert_dim=32, out_hidden=(32,))),
    "adasparse": lambda f, s, t: AdaSparse(AdaSparseConfig(f, s, t, hidden=(64, 32))),
    "sarnet": lambda f, s, t: SARNet(SARNetConfig(f, s, t, expert_dim=32, tower_hidden=(32,))),
    "hamur": lambda f, s, t: HAMUR(HAMURConfig(f, s, t, hidden=(64, 32))),
}  # fmt: skip
