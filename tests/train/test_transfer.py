"""mtrec.train.transfer: add a scenario, freeze the rest, adapt from a few rows."""

import pytest
import torch

from mtrec.data import TensorBatcher
from mtrec.data.synthetic import random_batch, tiny_features
from mtrec.eval.metrics import auc
from mtrec.models.multitask.shared_bottom import SharedBottom, SharedBottomConfig
from mtrec.models.scenario.star import STAR, STARConfig
from mtrec.train import fit
from mtrec.train.transfer import add_scenario, nearest_scenario, prepare_adaptation

pytestmark = pytest.mark.usefixtures("one_thread")
NAMES = ["a", "b", "c"]


def _rows(n: int, scenario: int, *, seed: int, shift: bool = False) -> dict:
    """2 tasks, labels = dense[:, 0] > 0; the shifted scenario's labels follow dense[:, 1]."""
    batch = random_batch(tiny_features(), n, num_tasks=2, num_scenarios=3, seed=seed)
    y = batch["dense"][:, 1 if shift else 0] > 0
    batch["labels"] = torch.stack([y, y], 1).float()
    if scenario >= 0:
        batch["scenario_ids"] = torch.full((n,), scenario)
    return batch


def _trained_star() -> STAR:
    torch.manual_seed(0)
    model = STAR(STARConfig.tiny(num_scenarios=3, num_tasks=2))
    fit(model, TensorBatcher(_rows(512, -1, seed=1), 64, shuffle=True), epochs=8, lr=2e-2,
        progress=False)  # fmt: skip
    return model.eval()


def test_add_scenario_by_profile_picks_the_nearest_and_keeps_the_others():
    model = _trained_star()
    batch = _rows(64, -1, seed=2)
    before = model(batch)
    profiles = torch.eye(3, 4)
    assert nearest_scenario(torch.tensor([0.1, 0.9, 0.2, 0.0]), profiles) == 1
    new = add_scenario(model, name="d", names=NAMES, profile=torch.tensor([0.1, 0.9, 0.2, 0.0]),
                       profiles=profiles)  # fmt: skip
    assert new == 3 and torch.equal(model(batch), before)
    as_new, as_b = (dict(batch, scenario_ids=torch.full((64,), s)) for s in (3, 1))
    assert torch.equal(model(as_new), model(as_b))  # zero-shot: scenario b's parameters


def test_new_strategy_trains_only_the_new_scenarios_rows():
    model = _trained_star()
    new = model.add_scenario("shared")
    other = _rows(64, -1, seed=3)
    before, state = model(other), {k: v.clone() for k, v in model.state_dict().items()}
    rows = _rows(64, new, seed=4, shift=True)
    adapting = prepare_adaptation(model, rows, scenario=new, strategy="new")
    fit(adapting, TensorBatcher(rows, 16, shuffle=True), epochs=3, lr=1e-2, progress=False)
    adapting.release()
    stacked = {id(p) for p in model.scenario_parameters()}
    for name, p in model.named_parameters():
        if id(p) in stacked:
            assert torch.equal(p[:new], state[name][:new]), name
            assert not torch.equal(p[new], state[name][new]), name
        else:
            assert torch.equal(p, state[name]), name
    for name, buf in model.named_buffers():  # batch-norm running statistics stay as trained
        assert torch.equal(buf, state[name]), name
    assert torch.equal(model(other), before)
    assert all(p.requires_grad for p in model.parameters())  # release restores requires_grad


def test_adapter_freezes_the_model_and_all_moves_it():
    model = _trained_star()
    new = model.add_scenario("mean")
    rows, state = (
        _rows(64, new, seed=5, shift=True),
        {k: v.clone() for k, v in model.state_dict().items()},
    )
    adapting = prepare_adaptation(model, rows, scenario=new, strategy="adapter")
    assert torch.equal(adapting(rows), model(rows))  # the adapter starts at zero
    fit(adapting, TensorBatcher(rows, 16, shuffle=True), epochs=3, lr=1e-2, progress=False)
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())
    assert not torch.equal(adapting(rows), model(rows))
    other = _rows(32, 0, seed=6)
    assert torch.equal(adapting(other), model(other))  # the adapter touches the new rows only
    adapting.release()
    everything = prepare_adaptation(model, rows, scenario=new, strategy="all")
    fit(everything, TensorBatcher(rows, 16, shuffle=True), epochs=2, lr=1e-2, progress=False)
    assert not torch.equal(model.layers[0].weight, state["layers.0.weight"])


@pytest.mark.parametrize("strategy", ["new", "adapter", "all"])
def test_adaptation_learns_a_shifted_scenario(strategy):
    model = _trained_star()
    new = model.add_scenario("shared")
    test = _rows(400, new, seed=7, shift=True)
    zero_shot = auc(test["labels"][:, 0], model.predict(test)[:, 0])
    rows = _rows(128, new, seed=8, shift=True)
    adapting = prepare_adaptation(model, rows, scenario=new, strategy=strategy)
    fit(adapting, TensorBatcher(rows, 32, shuffle=True), epochs=15, lr=3e-2, progress=False)
    adapted = auc(test["labels"][:, 0], adapting.predict(test)[:, 0])
    assert zero_shot < 0.65 and adapted > 0.85, (zero_shot, adapted)


def test_shared_bottom_towers_gain_a_scenario():
    torch.manual_seed(0)
    model = SharedBottom(SharedBottomConfig.tiny(num_scenarios=3, scenario_towers=True)).eval()
    batch = random_batch(tiny_features(), 64, num_tasks=2, num_scenarios=3)
    before = model(batch)
    assert add_scenario(model, name="d", names=NAMES, init="mean") == 3
    assert torch.equal(model(batch), before)
    assert model(dict(batch, scenario_ids=torch.full((64,), 3))).shape == (64, 2)
    with pytest.raises(ValueError, match="no shared weights"):
        model.add_scenario("shared")
    with pytest.raises(ValueError, match="num_scenarios=0"):
        SharedBottom(SharedBottomConfig.tiny()).add_scenario("mean")


def test_bad_inputs_say_what_was_expected_and_the_fix():
    model = _trained_star()
    with pytest.raises(ValueError, match="'b' already exists.*new name"):
        add_scenario(model, name="b", names=NAMES, init="mean")
    with pytest.raises(ValueError, match="needs profile"):
        add_scenario(model, name="d", names=NAMES, init="nearest")
    with pytest.raises(ValueError, match="3 trained scenarios"):
        add_scenario(model, name="d", names=["a"], init="mean")
    new = model.add_scenario("shared")
    empty = _rows(0, new, seed=9)
    with pytest.raises(ValueError, match="got 0 rows.*zero-shot"):
        prepare_adaptation(model, empty, scenario=new, strategy="new")
    rows = _rows(8, new, seed=9)
    with pytest.raises(ValueError, match=r"labels must be \(B, 2\)"):
        prepare_adaptation(model, dict(rows, labels=rows["labels"][:, :1]), scenario=new)
    with pytest.raises(ValueError, match="must all be of the new scenario 3"):
        prepare_adaptation(model, dict(rows, scenario_ids=torch.zeros(8, dtype=torch.long)),
                           scenario=new)  # fmt: skip
    with pytest.raises(ValueError, match="strategy must be one of"):
        prepare_adaptation(model, rows, scenario=new, strategy="head")
    with pytest.raises(ValueError, match="add it first"):
        prepare_adaptation(model, dict(rows, scenario_ids=torch.full((8,), 5)), scenario=5)
