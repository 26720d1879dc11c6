import pytest
import torch

from mtrec.data.synthetic import random_batch, tiny_features
from mtrec.models.scenario.scenario_moe import ScenarioMoE, ScenarioMoEConfig


@pytest.mark.parametrize("epnet", [True, False])
def test_shapes_loss_and_nan_masking(epnet, mtl):
    torch.manual_seed(0)
    mtl.check_shapes(ScenarioMoE(ScenarioMoEConfig.tiny(num_tasks=2, epnet=epnet)), 2)
    mtl.check_loss_decreases(ScenarioMoE(ScenarioMoEConfig.tiny(num_tasks=2, epnet=epnet)), 2)
    mtl.check_nan_labels_masked(ScenarioMoE(ScenarioMoEConfig.tiny(num_tasks=2, epnet=epnet)), 2)
    mtl.check_bad_labels(ScenarioMoE(ScenarioMoEConfig.tiny(num_tasks=2, epnet=epnet)), 2)
    mtl.check_bad_scenarios(ScenarioMoE(ScenarioMoEConfig.tiny(epnet=epnet)))


def test_mixed_batch_equals_each_scenario_alone():
    """Routing by scenario embedding: a row's output does not depend on other rows' scenarios."""
    torch.manual_seed(0)
    model = ScenarioMoE(ScenarioMoEConfig.tiny(num_tasks=2)).eval()
    batch = random_batch(tiny_features(), 48, num_tasks=2, num_scenarios=3)
    logits = model(batch)
    for s in range(3):
        rows = batch["scenario_ids"] == s
        alone = model({k: v[rows] for k, v in batch.items()})
        torch.testing.assert_close(logits[rows], alone)


def test_gates_depend_on_scenario():
    torch.manual_seed(0)
    model = ScenarioMoE(ScenarioMoEConfig.tiny()).eval()
    batch = random_batch(tiny_features(), 4)
    gates0 = model.gates({**batch, "scenario_ids": torch.zeros(4, dtype=torch.long)})
    gates1 = model.gates({**batch, "scenario_ids": torch.ones(4, dtype=torch.long)})
    assert gates0.shape == (4, 1, 3) and not torch.allclose(gates0, gates1)
    torch.testing.assert_close(gates0.sum(-1), torch.ones(4, 1))


def test_bad_config():
    with pytest.raises(ValueError, match="num_experts"):
        ScenarioMoEConfig.tiny(num_experts=0)
