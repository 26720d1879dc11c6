"""The configurations of record: the models exactly as the published benchmark tables build them.

Each configuration that more than one module builds is declared once, here:

* :data:`SCENARIO_BENCHMARK`: the multi-scenario models (below);
* :func:`teacher_config` / :func:`student_config`: the distillation pair of notebooks 09 and 14
  (an MMoE teacher over every feature, an ID-only student), used by the compute-allocation
  study (:mod:`mtrec.experiments.allocation`);
* :func:`throughput_teacher_config`: the wider teacher that ``mtrec bench`` times against the
  student (:func:`mtrec.bench.cases.benchmark_pair`);
* :func:`multitask_mmoe_config`: notebook 06's MMoE, the scoring model of the end-to-end
  system (:func:`mtrec.serving.build.mmoe_config`).

The multi-scenario benchmark (``python -m mtrec.experiments.multiscenario``, notebook 05) and
``mtrec bench``'s multi-scenario cases both build their models from :data:`SCENARIO_BENCHMARK`,
so a speed row and a quality row always describe the same network. Widths are matched: 64 → 32
hidden units in every network. Each builder takes ``(features, num_scenarios, num_tasks)``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from torch import nn

from mtrec.data.schema import Feature, SparseFeature
from mtrec.models.multitask.mmoe import MMoEConfig
from mtrec.models.multitask.shared_bottom import SharedBottom, SharedBottomConfig
from mtrec.models.scenario.adasparse import AdaSparse, AdaSparseConfig
from mtrec.models.scenario.hamur import HAMUR, HAMURConfig
from mtrec.models.scenario.m2m import M2M, M2MConfig
from mtrec.models.scenario.pepnet import PEPNet, PEPNetConfig
from mtrec.models.scenario.sarnet import SARNet, SARNetConfig
from mtrec.models.scenario.scenario_moe import ScenarioMoE, ScenarioMoEConfig
from mtrec.models.scenario.star import STAR, STARConfig
from mtrec.models.student import StudentConfig

__all__ = [
    "SCENARIO_BASELINE",
    "SCENARIO_BENCHMARK",
    "multitask_mmoe_config",
    "student_config",
    "teacher_config",
    "throughput_teacher_config",
]

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


def teacher_config(
    features: Sequence[Feature], num_tasks: int, *, dropout: float = 0.0
) -> MMoEConfig:
    """The distillation teacher: an MMoE with 4 experts of widths (128, 64), towers (32,)."""
    return MMoEConfig(features=tuple(features), num_tasks=num_tasks, num_experts=4,
                      expert_hidden=(128, 64), tower_hidden=(32,), dropout=dropout)  # fmt: skip


def student_config(num_users: int, num_items: int, task_names: Sequence[str]) -> StudentConfig:
    """The distilled student: 16-d user and item id embeddings (vocabularies = largest id + 1),
    one hidden layer of 32."""
    ids = (SparseFeature("user_id", num_users, 16), SparseFeature("item_id", num_items, 16))
    return StudentConfig(features=ids, task_names=tuple(task_names), hidden=(32,))


def throughput_teacher_config(features: Sequence[Feature], num_tasks: int) -> MMoEConfig:
    """The teacher the throughput tables time: 8 experts of widths (512, 256), towers (64,)."""
    return MMoEConfig(features=tuple(features), num_tasks=num_tasks, num_experts=8,
                      expert_hidden=(512, 256), tower_hidden=(64,))  # fmt: skip


def multitask_mmoe_config(features: Sequence[Feature], num_tasks: int) -> MMoEConfig:
    """Notebook 06's MMoE: 4 experts of widths (64, 32), towers (16,)."""
    return MMoEConfig(features=tuple(features), num_tasks=num_tasks, num_experts=4,
                      expert_hidden=(64, 32), tower_hidden=(16,))  # fmt: skip
