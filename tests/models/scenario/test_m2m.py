import pytest
import torch
import torch.nn.functional as F

from mtrec.data.synthetic import random_batch, tiny_features
from mtrec.models.scenario.m2m import M2M, M2MConfig


@pytest.mark.parametrize("tasks", [1, 2])
def test_shapes_loss_and_nan_masking(tasks, mtl):
    torch.manual_seed(0)
    mtl.check_shapes(M2M(M2MConfig.tiny(num_tasks=tasks)), tasks)
    mtl.check_loss_decreases(M2M(M2MConfig.tiny(num_tasks=tasks)), tasks)
    mtl.check_nan_labels_masked(M2M(M2MConfig.tiny(num_tasks=tasks)), tasks)
    mtl.check_bad_labels(M2M(M2MConfig.tiny(num_tasks=tasks)), tasks)
    mtl.check_bad_scenarios(M2M(M2MConfig.tiny(num_tasks=tasks)))


def test_grouped_meta_layers_equal_a_loop_over_scenarios():
    """Per scenario: generate its meta weights once, run its rows through plain matmuls."""
    torch.manual_seed(0)
    model = M2M(M2MConfig.tiny(num_tasks=2, num_scenarios=4, meta_layers=2)).eval()
    batch = random_batch(tiny_features(), 64, num_tasks=2, num_scenarios=4)
    logits = model(batch)
    leaky = lambda x: F.leaky_relu(x, model.config.negative_slope)  # noqa: E731
    for s in range(4):
        rows = batch["scenario_ids"] == s
        e_s = model.scenario_embedding.weight[s : s + 1]  # (1, D_s)
        experts = model.experts(model.embedding({k: v[rows] for k, v in batch.items()}))
        for t in range(2):
            pairs = torch.cat([experts, model.task_embedding[t].expand_as(experts)], -1)
            att = model.attention
            hidden = pairs @ att.weight(e_s)[0] + att.to_bias(e_s)[0]  # (n, E, 2D)
            alpha = torch.softmax(leaky(hidden) @ model.attention_v, -1)  # (n, E)
            h = (alpha.unsqueeze(-1) * experts).sum(1)  # (n, D)
            for layer in model.tower:
                h = leaky(h @ layer.weight(e_s)[0] + layer.to_bias(e_s)[0] + h)
            expected = model.out.member(t)(h).squeeze(-1)
            torch.testing.assert_close(logits[rows, t], expected)


def test_meta_weights_differ_by_scenario():
    model = M2M(M2MConfig.tiny())
    weights = model.attention.weight(model.scenario_embedding.weight)  # (S, 2D, 2D)
    assert weights.shape[0] == 3 and not torch.allclose(weights[0], weights[1])


def test_bad_config():
    with pytest.raises(ValueError, match="meta_layers"):
        M2MConfig.tiny(meta_layers=-1)
