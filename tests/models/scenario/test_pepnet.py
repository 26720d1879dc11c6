import pytest
import torch
import torch.nn.functional as F

from mtrec.data.synthetic import random_batch, tiny_features
from mtrec.models.scenario.pepnet import PEPNet, PEPNetConfig


@pytest.mark.parametrize("tasks", [1, 2])
def test_shapes_loss_and_nan_masking(tasks, mtl):
    torch.manual_seed(0)
    mtl.check_shapes(PEPNet(PEPNetConfig.tiny(num_tasks=tasks)), tasks)
    mtl.check_loss_decreases(PEPNet(PEPNetConfig.tiny(num_tasks=tasks)), tasks)
    mtl.check_nan_labels_masked(PEPNet(PEPNetConfig.tiny(num_tasks=tasks)), tasks)
    mtl.check_bad_labels(PEPNet(PEPNetConfig.tiny(num_tasks=tasks)), tasks)
    mtl.check_bad_scenarios(PEPNet(PEPNetConfig.tiny(num_tasks=tasks)))


def test_vectorised_forward_equals_a_loop_over_scenarios_and_tasks():
    """Each scenario's rows, each task's tower as plain matmuls, from the same parameters."""
    torch.manual_seed(0)
    model = PEPNet(PEPNetConfig.tiny(num_tasks=2, num_scenarios=4, tower_hidden=(8, 6))).eval()
    batch = random_batch(tiny_features(), 64, num_tasks=2, num_scenarios=4)
    logits = model(batch)
    gamma = model.config.gamma
    for s in range(4):
        rows = batch["scenario_ids"] == s
        x = model.embedding({k: v[rows] for k, v in batch.items()})
        e = model.scenario_embedding.weight[s].expand(len(x), -1)
        x = x * gamma * torch.sigmoid(model.epnet(torch.cat([e, x], -1)))
        prior = torch.cat([e, x], -1)
        for t in range(2):
            h = x
            for i, (w, b) in enumerate(zip(model.towers.weights, model.towers.biases)):
                delta = gamma * torch.sigmoid(model.ppnet[i](prior)).view(len(x), 2, -1)[:, t]
                h = (h * delta) @ w[t] + b[t]
                h = F.relu(h) if i < len(model.towers.weights) - 1 else h
            torch.testing.assert_close(logits[rows, t], h.squeeze(-1))


def test_gates_depend_on_the_scenario():
    torch.manual_seed(0)
    model = PEPNet(PEPNetConfig.tiny()).eval()
    batch = random_batch(tiny_features(), 4)
    a = model({**batch, "scenario_ids": torch.zeros(4, dtype=torch.long)})
    b = model({**batch, "scenario_ids": torch.ones(4, dtype=torch.long)})
    assert not torch.allclose(a, b)


def test_bad_config():
    with pytest.raises(ValueError, match="gamma"):
        PEPNetConfig.tiny(gamma=0.0)
    with pytest.raises(ValueError, match="num_tasks"):
        PEPNetConfig.tiny(num_tasks=0)
