import pytest
import torch
import torch.nn.functional as F

from mtrec.data.synthetic import random_batch, tiny_features
from mtrec.models.scenario.sarnet import SARNet, SARNetConfig


@pytest.mark.parametrize("shared", [0, 2])
def test_shapes_loss_and_nan_masking(shared, mtl):
    torch.manual_seed(0)
    make = lambda **kw: SARNet(SARNetConfig.tiny(num_shared_experts=shared, **kw))  # noqa: E731
    mtl.check_shapes(make(num_tasks=2), 2)
    mtl.check_loss_decreases(make(num_tasks=2), 2)
    mtl.check_nan_labels_masked(make(num_tasks=2), 2)
    mtl.check_bad_labels(make(num_tasks=2), 2)
    mtl.check_bad_scenarios(make())


def test_routed_experts_equal_a_loop_over_scenarios():
    """Each scenario's rows meet its own transform, its own experts (as nn.Sequential) only."""
    torch.manual_seed(0)
    model = SARNet(SARNetConfig.tiny(num_tasks=2, num_scenarios=4, num_specific_experts=2))
    with torch.no_grad():  # move the per-scenario transforms away from their init
        model.scale.add_(0.3 * torch.randn_like(model.scale))
        model.shift.add_(0.3 * torch.randn_like(model.shift))
    model.eval()
    batch = random_batch(tiny_features(), 64, num_tasks=2, num_scenarios=4)
    logits = model(batch)
    for s in range(4):
        rows = batch["scenario_ids"] == s
        x = model.embedding({k: v[rows] for k, v in batch.items()})
        x = x * model.scale[s] + model.shift[s]
        e = model.scenario_embedding.weight[s].expand(len(x), -1)
        own = F.relu(model.specific.tower(s)(x)).view(len(x), 2, -1)
        experts = torch.cat([model.shared(x), own], 1)  # (n, E + K, D)
        gates = torch.softmax(model.gate(torch.cat([x, e], -1)).view(len(x), 2, -1), -1)
        for t in range(2):
            mixed = (gates[:, t].unsqueeze(-1) * experts).sum(1)
            expected = model.towers.member(t)(mixed).squeeze(-1) + model.debias(e)[:, t]
            torch.testing.assert_close(logits[rows, t], expected)


def test_bad_config():
    with pytest.raises(ValueError, match="num_specific_experts"):
        SARNetConfig.tiny(num_specific_experts=0)
