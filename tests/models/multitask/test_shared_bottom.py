import pytest
import torch

from mtrec.data.synthetic import random_batch, tiny_features
from mtrec.models.multitask.shared_bottom import SharedBottom, SharedBottomConfig

SCENARIO = dict(num_scenarios=3, scenario_towers=True)


@pytest.mark.parametrize("overrides", [{}, dict(num_scenarios=3), SCENARIO])
def test_shapes_loss_and_nan_masking(overrides, mtl):
    torch.manual_seed(0)
    mtl.check_shapes(SharedBottom(SharedBottomConfig.tiny(**overrides)), 2)
    mtl.check_loss_decreases(SharedBottom(SharedBottomConfig.tiny(**overrides)), 2)
    mtl.check_nan_labels_masked(SharedBottom(SharedBottomConfig.tiny(**overrides)), 2)
    mtl.check_bad_labels(SharedBottom(SharedBottomConfig.tiny(**overrides)), 2)


def test_routed_towers_equal_each_scenarios_tower_on_its_rows():
    torch.manual_seed(0)
    model = SharedBottom(SharedBottomConfig.tiny(**SCENARIO)).eval()
    batch = random_batch(tiny_features(), 40, num_scenarios=3)
    logits = model(batch)
    x = torch.cat([model.embedding(batch), model.scenario_embedding(batch["scenario_ids"])], -1)
    h = model.bottom(x)
    for s in range(3):
        rows = batch["scenario_ids"] == s
        torch.testing.assert_close(logits[rows], model.router.tower(s)(h[rows]))


def test_scenario_ids_checked(mtl):
    mtl.check_bad_scenarios(SharedBottom(SharedBottomConfig.tiny(num_scenarios=3)))
    batch = random_batch(tiny_features(), 4)
    del batch["scenario_ids"]
    with pytest.raises(KeyError, match="scenario_ids"):
        SharedBottom(SharedBottomConfig.tiny(num_scenarios=3))(batch)


def test_bad_config():
    with pytest.raises(ValueError, match="num_scenarios"):
        SharedBottomConfig.tiny(scenario_towers=True)
