import pytest
import torch

from mtrec.data import TensorBatcher
from mtrec.data.synthetic import random_batch, tiny_features
from mtrec.models.multitask.shared_bottom import SharedBottom, SharedBottomConfig
from mtrec.train import fit
from mtrec.train.weighting import FixedWeights, GradNorm, UncertaintyWeighting

pytestmark = pytest.mark.usefixtures("one_thread")


def test_fixed_weights():
    losses = torch.tensor([1.0, 2.0, 3.0])
    assert FixedWeights([1, 0, 2])(losses).item() == 7.0
    with pytest.raises(ValueError, match="non-negatives"):
        FixedWeights([1, -1])
    with pytest.raises(ValueError, match=r"\(3,\) vector"):
        FixedWeights([1, 1, 1])(torch.tensor([1.0, 2.0]))


def test_uncertainty_weighting_formula_and_optimum():
    weighting = UncertaintyWeighting(2)
    losses = torch.tensor([1.0, 4.0])
    assert weighting(losses).item() == pytest.approx(0.5 * 5.0)
    # For fixed losses the optimum is s_t = log L_t: the noisier task gets the smaller weight.
    optimizer = torch.optim.Adam(weighting.parameters(), lr=0.05)
    for _ in range(800):
        optimizer.zero_grad()
        weighting(losses).backward()
        optimizer.step()
    torch.testing.assert_close(weighting.log_vars.detach(), losses.log(), atol=2e-2, rtol=0)
    assert weighting.weights[0] > weighting.weights[1]


def test_gradnorm_balances_gradient_norms():
    """Task 1's loss is 10× task 0's: GradNorm shrinks w_1 so both gradient norms meet."""
    shared = torch.nn.Parameter(torch.ones(3))
    weighting = GradNorm(2, [shared], alpha=0.0)
    optimizer = torch.optim.Adam(weighting.parameters(), lr=5e-3)
    for _ in range(600):
        losses = torch.stack([(shared**2).sum(), 10 * (shared**2).sum()])
        optimizer.zero_grad()
        weighting(losses).backward()
        optimizer.step()
    weighting(torch.stack([(shared**2).sum()] * 2).detach())  # renormalises Σ w = T
    w = weighting.weights
    assert w.sum().item() == pytest.approx(2.0, abs=1e-4)
    assert w[0] / w[1] == pytest.approx(10.0, rel=0.15)


def test_gradnorm_model_gradient_is_the_weighted_sum():
    shared = torch.nn.Parameter(torch.tensor([1.0, 2.0]))
    weighting = GradNorm(2, [shared])
    with torch.no_grad():
        weighting.task_weights.copy_(torch.tensor([0.5, 1.5]))
    losses = torch.stack([shared.sum(), (shared**2).sum()])
    weighting(losses).backward()
    torch.testing.assert_close(shared.grad, 0.5 * torch.ones(2) + 1.5 * 2 * shared.detach())


@pytest.mark.parametrize("kind", ["fixed", "uncertainty", "gradnorm"])
def test_pluggable_into_fit(kind):
    torch.manual_seed(0)
    model = SharedBottom(SharedBottomConfig.tiny())
    weighting = {
        "fixed": lambda: FixedWeights([1.0, 0.5]),
        "uncertainty": lambda: UncertaintyWeighting(2),
        "gradnorm": lambda: GradNorm(2, model.shared_parameters()),
    }[kind]()
    data = random_batch(tiny_features(), 256)
    history = fit(model, TensorBatcher(data, 64), epochs=2, weighting=weighting, progress=False)
    assert len(history.epochs) == 2
    assert all(torch.isfinite(torch.tensor(e["train_loss"])) for e in history.epochs)


def test_bad_construction():
    with pytest.raises(ValueError, match="shared layer"):
        GradNorm(2, [])
    with pytest.raises(ValueError, match="num_tasks"):
        UncertaintyWeighting(0)
