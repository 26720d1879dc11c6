import pytest
import torch
import torch.nn.functional as F

from mtrec.data.synthetic import random_batch, tiny_features
from mtrec.models.scenario.star import STAR, STARConfig


@pytest.mark.parametrize("tasks", [1, 2])
def test_shapes_loss_and_nan_masking(tasks, mtl):
    torch.manual_seed(0)
    mtl.check_shapes(STAR(STARConfig.tiny(num_tasks=tasks)), tasks)
    mtl.check_loss_decreases(STAR(STARConfig.tiny(num_tasks=tasks)), tasks)
    mtl.check_nan_labels_masked(STAR(STARConfig.tiny(num_tasks=tasks)), tasks)
    mtl.check_bad_labels(STAR(STARConfig.tiny(num_tasks=tasks)), tasks)
    mtl.check_bad_scenarios(STAR(STARConfig.tiny(num_tasks=tasks)))


def _perturbed(model: STAR) -> STAR:
    with torch.no_grad():  # make scenario parameters differ from their init
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return model.eval()


def test_gathered_routing_equals_each_scenarios_network_on_its_own_rows():
    torch.manual_seed(0)
    model = _perturbed(STAR(STARConfig.tiny(num_scenarios=4, hidden=(8, 6))))
    batch = random_batch(tiny_features(), 64, num_tasks=1, num_scenarios=4)
    logits = model(batch)
    x = model.embedding(batch)
    norm = model.norm
    for s in range(4):
        rows = batch["scenario_ids"] == s
        h = norm.norm(x[rows]) * norm.gamma * norm.gamma_p[s] + norm.beta + norm.beta_p[s]
        for i, layer in enumerate(model.layers):
            h = h @ layer.scenario_weight(s) + layer.bias + layer.bias_p[s]
            h = F.relu(h) if i < len(model.layers) - 1 else h
        ids = torch.full((int(rows.sum()),), s)
        aux = model.aux(torch.cat([x[rows], model.scenario_embedding(ids)], dim=-1))
        torch.testing.assert_close(logits[rows], h + aux)


def test_scenario_weights_start_equal_to_shared():
    model = STAR(STARConfig.tiny())
    torch.testing.assert_close(model.layers[0].scenario_weight(2), model.layers[0].weight)


def test_missing_scenarios_key():
    batch = random_batch(tiny_features(), 4)
    del batch["scenario_ids"]
    with pytest.raises(KeyError, match="scenario_ids"):
        STAR(STARConfig.tiny())(batch)


@pytest.mark.parametrize("init", ["shared", "mean", "nearest"])
def test_add_scenario_keeps_the_trained_scenarios_bit_identical(init):
    torch.manual_seed(0)
    model = _perturbed(STAR(STARConfig.tiny(num_scenarios=3, hidden=(8, 6))))
    batch = random_batch(tiny_features(), 64, num_tasks=1, num_scenarios=3)
    before = model(batch)
    nearest = 1 if init == "nearest" else None
    assert model.add_scenario(init, nearest=nearest) == 3
    assert model.config.num_scenarios == 4
    assert all(p.shape[0] == 4 for p in model.scenario_parameters())
    assert torch.equal(model(batch), before)
    new = {**batch, "scenario_ids": torch.full_like(batch["scenario_ids"], 3)}
    assert model(new).shape == (64, 1)
    if init == "nearest":  # a copy of scenario 1
        one = {**batch, "scenario_ids": torch.full_like(batch["scenario_ids"], 1)}
        assert torch.equal(model(new), model(one))


def test_add_scenario_shared_starts_from_the_shared_weights_alone():
    torch.manual_seed(0)
    model = _perturbed(STAR(STARConfig.tiny(num_scenarios=3)))
    model.add_scenario("shared")
    for layer in model.layers:
        assert torch.equal(layer.weight_p[3], torch.ones_like(layer.weight_p[3]))
        assert torch.equal(layer.bias_p[3], torch.zeros_like(layer.bias_p[3]))
        assert torch.equal(layer.scenario_weight(3), layer.weight)
    emb = model.scenario_embedding.weight
    torch.testing.assert_close(emb[3], emb[:3].mean(0))


def test_add_scenario_bad_inputs_say_what_to_do():
    model = STAR(STARConfig.tiny(num_scenarios=3))
    with pytest.raises(ValueError, match="already exists.*next id, 3"):
        model.add_scenario("shared", scenario_id=1)
    with pytest.raises(ValueError, match="init must be one of"):
        model.add_scenario("random")
    with pytest.raises(ValueError, match="needs nearest="):
        model.add_scenario("nearest")
    with pytest.raises(ValueError, match="needs nearest="):
        model.add_scenario("nearest", nearest=3)
    assert model.config.num_scenarios == 3  # nothing was added
