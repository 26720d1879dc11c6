import pytest
import torch
import torch.nn.functional as F

from mtrec.data.synthetic import random_batch, tiny_features
from mtrec.models.scenario.adasparse import FORMS, AdaSparse, AdaSparseConfig


@pytest.mark.parametrize("form", FORMS)
def test_shapes_loss_and_nan_masking(form, mtl):
    torch.manual_seed(0)
    mtl.check_shapes(AdaSparse(AdaSparseConfig.tiny(num_tasks=2, form=form)), 2)
    mtl.check_loss_decreases(AdaSparse(AdaSparseConfig.tiny(num_tasks=2, form=form)), 2)
    mtl.check_nan_labels_masked(AdaSparse(AdaSparseConfig.tiny(num_tasks=2, form=form)), 2)
    mtl.check_bad_labels(AdaSparse(AdaSparseConfig.tiny(num_tasks=2, form=form)), 2)
    mtl.check_bad_scenarios(AdaSparse(AdaSparseConfig.tiny(form=form)))


@pytest.mark.parametrize("form", FORMS)
def test_vectorised_forward_equals_a_loop_over_scenarios(form):
    """Each scenario's rows through the pruned MLP written out with that scenario's embedding."""
    torch.manual_seed(0)
    config = AdaSparseConfig.tiny(num_tasks=2, num_scenarios=4, hidden=(8, 6), form=form)
    model = AdaSparse(config).eval()
    batch = random_batch(tiny_features(), 64, num_tasks=2, num_scenarios=4)
    logits = model(batch)
    for s in range(4):
        rows = batch["scenario_ids"] == s
        h = model.embedding({k: v[rows] for k, v in batch.items()})
        e = model.scenario_embedding.weight[s].expand(len(h), -1)
        for i, (pruner, layer) in enumerate(zip(model.pruners, model.layers)):
            z = config.alpha * pruner(torch.cat([e, h], -1))
            if form == "binary":
                pi = (torch.sigmoid(z) > 0.5).float()
            else:
                pi = config.beta * torch.sigmoid(z)
                pi = torch.where(pi < config.epsilon, 0.0, pi) if form == "fusion" else pi
            h = layer(torch.cat([e, h * pi], -1) if i == 0 else h * pi)
            h = F.relu(h) if i < len(model.layers) - 1 else h
        torch.testing.assert_close(logits[rows], h)


def test_fusion_prunes_neurons_to_exact_zero():
    torch.manual_seed(0)
    model = AdaSparse(AdaSparseConfig.tiny(epsilon=1.0)).eval()  # prune factors below 1
    sparsity = model.sparsity(random_batch(tiny_features(), 32, num_scenarios=3))
    assert sparsity.shape == (2,) and bool((sparsity > 0).all()) and bool((sparsity < 1).all())


def test_bad_config():
    with pytest.raises(ValueError, match="form"):
        AdaSparseConfig.tiny(form="magic")
    with pytest.raises(ValueError, match="epsilon"):
        AdaSparseConfig.tiny(epsilon=3.0)
