import pytest
import torch

from mtrec.data.synthetic import random_batch, tiny_features
from mtrec.models.multitask.mmoe import MMoE, MMoEConfig


def test_shapes_loss_and_nan_masking(mtl):
    torch.manual_seed(0)
    mtl.check_shapes(MMoE(MMoEConfig.tiny()), 2)
    mtl.check_shapes(MMoE(MMoEConfig.tiny(num_tasks=3)), 3)
    mtl.check_loss_decreases(MMoE(MMoEConfig.tiny()), 2)
    mtl.check_nan_labels_masked(MMoE(MMoEConfig.tiny()), 2)
    mtl.check_bad_labels(MMoE(MMoEConfig.tiny()), 2)


def test_batched_experts_match_a_loop_over_plain_experts():
    """Reference: the textbook MMoE written with nn.Linear experts in a Python loop."""
    torch.manual_seed(0)
    model = MMoE(MMoEConfig.tiny(expert_hidden=(8, 6))).eval()
    batch = random_batch(tiny_features(), 10)
    x = model.embedding(batch)
    experts = torch.stack([model.experts.member(e)(x) for e in range(3)], dim=1)  # (B, E, D)
    gates = model.gates(batch)
    assert gates.shape == (10, 2, 3)
    torch.testing.assert_close(gates.sum(-1), torch.ones(10, 2))
    expected = []
    for t in range(2):
        mixed = (gates[:, t, :, None] * experts).sum(1)
        expected.append(model.towers.member(t)(mixed).squeeze(-1))
    torch.testing.assert_close(model(batch), torch.stack(expected, dim=1))


def test_benchmark_config_is_expressible():
    from mtrec.data.schema import SparseFeature

    features = tuple(SparseFeature(f"f{i}", 100, 16) for i in range(4))
    config = MMoEConfig(features, num_tasks=2, num_experts=8, expert_hidden=(64, 32))
    assert MMoE(config).experts.num == 8


def test_bad_config():
    with pytest.raises(ValueError, match="num_experts"):
        MMoEConfig.tiny(num_experts=0)
    with pytest.raises(ValueError, match="expert_hidden"):
        MMoEConfig.tiny(expert_hidden=())
