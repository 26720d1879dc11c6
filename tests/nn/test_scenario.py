"""Scenario blocks: adding a scenario to ScenarioRouter / StarLinear leaves the others unchanged."""

import pytest
import torch

from mtrec.nn.scenario import (
    ScenarioGroups,
    ScenarioRouter,
    StarLinear,
    append_row,
    new_scenario_row,
)


@pytest.mark.parametrize("init", ["mean", "nearest"])
def test_router_add_scenario_keeps_trained_towers_and_inits_the_new_one(init):
    torch.manual_seed(0)
    router = ScenarioRouter(3, 6, (5,), 2)
    x, ids = torch.randn(40, 6), torch.randint(0, 3, (40,))
    before = router(x, ids)
    nearest = 2 if init == "nearest" else None
    assert router.add_scenario(init, nearest=nearest) == 3
    assert router.num_scenarios == 3 + 1 and router.weights[0].shape == (4, 6, 5)
    assert torch.equal(router(x, ids), before)
    new = router(x, torch.full((40,), 3))
    if init == "nearest":
        assert torch.equal(new, router(x, torch.full((40,), 2)))
    else:
        for w in router.weights:
            torch.testing.assert_close(w[3], w[:3].mean(0))
    torch.testing.assert_close(new, router.tower(3)(x))


def test_router_refuses_shared_init_and_existing_ids():
    router = ScenarioRouter(3, 6, (5,), 2)
    with pytest.raises(ValueError, match="no shared weights"):
        router.add_scenario("shared")
    with pytest.raises(ValueError, match="already exists"):
        router.add_scenario("mean", scenario_id=0)
    with pytest.raises(ValueError, match="outside the trained range"):
        router(torch.randn(2, 6), torch.tensor([0, 3]))


def test_star_linear_add_scenario_shared_is_the_shared_layer():
    torch.manual_seed(0)
    layer = StarLinear(2, 4, 3)
    with torch.no_grad():
        layer.weight_p.add_(torch.randn_like(layer.weight_p))
    x, ids = torch.randn(10, 4), torch.randint(0, 2, (10,))
    before = layer(x, ids)
    assert layer.add_scenario("shared") == 2
    assert torch.equal(layer(x, ids), before)
    torch.testing.assert_close(layer(x, torch.full((10,), 2)), x @ layer.weight + layer.bias)


def test_new_scenario_row_and_append_row():
    table = torch.arange(6.0).reshape(3, 2)
    assert torch.equal(new_scenario_row(table, "mean"), torch.tensor([2.0, 3.0]))
    assert torch.equal(new_scenario_row(table, "nearest", nearest=0), table[0])
    assert torch.equal(new_scenario_row(table, "shared", shared=torch.ones(2)), torch.ones(2))
    with pytest.raises(ValueError, match="only used with init='nearest'"):
        new_scenario_row(table, "mean", nearest=1)
    grown = append_row(torch.nn.Parameter(table), torch.zeros(2))
    assert grown.shape == (4, 2) and torch.equal(grown[:3], table) and grown.requires_grad


def test_star_linear_with_groups_computed_once_equals_grouping_per_call():
    g = torch.Generator().manual_seed(0)
    layer = StarLinear(5, 6, 3)
    with torch.no_grad():
        layer.weight_p.uniform_(0.5, 1.5, generator=g)
    x, ids = torch.randn(40, 6, generator=g), torch.randint(0, 5, (40,), generator=g)
    groups = ScenarioGroups.of(ids)
    assert torch.equal(layer(x, ids, groups), layer(x, ids))
    assert groups.present.tolist() == sorted(set(ids.tolist()))
    with pytest.raises(ValueError, match="ScenarioGroups.of"):
        layer(x[:39], ids[:39], groups)  # groups of other rows: refused, not misrouted
