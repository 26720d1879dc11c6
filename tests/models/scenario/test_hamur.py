import pytest
import torch
import torch.nn.functional as F

from mtrec.data.synthetic import random_batch, tiny_features
from mtrec.models.scenario.hamur import HAMUR, HAMURConfig


@pytest.mark.parametrize("tasks", [1, 2])
def test_shapes_loss_and_nan_masking(tasks, mtl):
    torch.manual_seed(0)
    mtl.check_shapes(HAMUR(HAMURConfig.tiny(num_tasks=tasks)), tasks)
    mtl.check_loss_decreases(HAMUR(HAMURConfig.tiny(num_tasks=tasks)), tasks)
    mtl.check_nan_labels_masked(HAMUR(HAMURConfig.tiny(num_tasks=tasks)), tasks)
    mtl.check_bad_labels(HAMUR(HAMURConfig.tiny(num_tasks=tasks)), tasks)
    mtl.check_bad_scenarios(HAMUR(HAMURConfig.tiny(num_tasks=tasks)))


def test_routed_forward_equals_a_loop_over_scenarios_with_explicit_adapter_weights():
    """Per scenario: its own backbone and output layer; per row: the adapter's W = U H V formed."""
    torch.manual_seed(0)
    model = HAMUR(HAMURConfig.tiny(num_tasks=2, num_scenarios=4, hidden=(8, 6)))
    model.train()
    model(random_batch(tiny_features(), 64, num_tasks=2, num_scenarios=4, seed=1))  # BN stats
    model.eval()
    batch = random_batch(tiny_features(), 64, num_tasks=2, num_scenarios=4)
    logits = model(batch)
    k = model.config.rank
    for s in range(4):
        rows = batch["scenario_ids"] == s
        x = model.embedding({key: v[rows] for key, v in batch.items()})
        e = model.scenario_embedding.weight[s].expand(len(x), -1)
        hyper = model.hyper(torch.cat([x, e], -1)).view(-1, k, k)  # (n, k, k)
        h = F.relu(model.backbone.tower(s)(x))
        w_down = model.down_u @ hyper @ model.down_v  # (n, D, r): one matrix per row
        w_up = model.up_u @ hyper @ model.up_v  # (n, r, D)
        a = torch.sigmoid(torch.einsum("nd,ndr->nr", h, w_down) + model.down_b)
        h = h + model.norm(torch.einsum("nr,nrd->nd", a, w_up) + model.up_b)
        torch.testing.assert_close(logits[rows], model.out.tower(s)(h))


def test_bad_config():
    with pytest.raises(ValueError, match="rank"):
        HAMURConfig.tiny(rank=0)
