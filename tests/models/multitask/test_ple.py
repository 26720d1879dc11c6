import pytest
import torch

from mtrec.data.synthetic import random_batch, tiny_features
from mtrec.models.multitask.ple import PLE, PLEConfig


@pytest.mark.parametrize("levels", [1, 2, 3])
def test_shapes_loss_and_nan_masking(levels, mtl):
    torch.manual_seed(0)
    mtl.check_shapes(PLE(PLEConfig.tiny(num_levels=levels)), 2)
    mtl.check_loss_decreases(PLE(PLEConfig.tiny(num_levels=levels)), 2)
    mtl.check_nan_labels_masked(PLE(PLEConfig.tiny(num_levels=levels)), 2)
    mtl.check_bad_labels(PLE(PLEConfig.tiny(num_levels=levels)), 2)


def test_gates_only_see_own_and_shared_experts():
    model = PLE(PLEConfig.tiny(num_specific=2, num_shared=1, num_tasks=3)).eval()
    gates = model.gates(random_batch(tiny_features(), 5, num_tasks=3))  # (B, T, 7)
    assert gates.shape == (5, 3, 7)
    torch.testing.assert_close(gates.sum(-1), torch.ones(5, 3))
    assert gates[:, 0, 2:6].abs().max() == 0  # task 0 ignores tasks 1 and 2's experts
    assert gates[:, 2, 0:4].abs().max() == 0


def test_two_levels_match_a_loop_over_plain_experts():
    """Reference: the CGC recursion written with per-expert nn.Sequential and explicit gates."""
    torch.manual_seed(0)
    model = PLE(PLEConfig.tiny(num_levels=2)).eval()  # T=2, one specific + one shared each
    batch = random_batch(tiny_features(), 6)
    x = model.embedding(batch)
    own = {0: [0, 2], 1: [1, 2], 2: [0, 1, 2]}  # gate → experts it mixes (2 = shared)
    inputs = [x, x, x]
    for level in range(2):
        experts, gate = model.experts[level], model.gate_layers[level]
        group = [0, 1, 2]  # expert e takes group e's input
        outs = [experts.member(e)(inputs[group[e]]) for e in range(3)]
        new = []
        for g in range(gate.num):
            logits = gate.member(g)(inputs[g])[:, own[g]]
            w = torch.softmax(logits, dim=-1)
            new.append(sum(w[:, i : i + 1] * outs[e] for i, e in enumerate(own[g])))
        inputs = new
    expected = torch.stack([model.towers.member(t)(inputs[t]).squeeze(-1) for t in range(2)], 1)
    torch.testing.assert_close(model(batch), expected)


def test_bad_config():
    with pytest.raises(ValueError, match="at least one expert"):
        PLEConfig.tiny(num_specific=0, num_shared=0)
