"""Checks shared by the multi-task / multi-scenario model tests, served as the ``mtl`` fixture.

(pytest runs with ``--import-mode=importlib``, so test modules cannot import each other; a fixture
hands the check functions of this conftest to every test that asks for ``mtl``.)"""

from __future__ import annotations

import sys
from types import ModuleType

import pytest
import torch

from mtrec.data.synthetic import random_batch, tiny_features


def learnable_batch(num_tasks: int, num_scenarios: int = 3, size: int = 256) -> dict:
    """Labels that depend on the user id and the scenario, so a model can fit them."""
    batch = random_batch(tiny_features(), size, num_tasks=num_tasks, num_scenarios=num_scenarios)
    user, scen = batch["user"], batch["scenario_ids"]
    cols = [((user + t + scen) % 2).float() for t in range(num_tasks)]
    if num_tasks == 2:  # keep task 1 ⊆ task 0 so ESMM's CTCVR label stays valid
        cols[1] = cols[0] * (user % 3 == 0).float()
    batch["labels"] = torch.stack(cols, dim=1)
    return batch


def check_shapes(model, num_tasks: int, num_scenarios: int = 3) -> None:
    batch = random_batch(tiny_features(), 7, num_tasks=num_tasks, num_scenarios=num_scenarios)
    logits = model(batch)
    assert logits.shape == (7, num_tasks)
    probs = model.predict(batch)
    assert probs.shape == (7, num_tasks) and bool(((probs >= 0) & (probs <= 1)).all())
    check_predict_without_grad(model, batch)
    losses = model.loss(batch)
    assert losses.shape == (num_tasks,) and bool(torch.isfinite(losses).all())


def check_predict_without_grad(model, batch: dict, method: str = "predict") -> None:
    """``predict`` runs under ``torch.no_grad()``: no graph is kept, even in train mode."""
    model.train()
    assert any(p.requires_grad for p in model.parameters())
    with torch.enable_grad():
        out = getattr(model, method)(batch)
    assert out.grad_fn is None and not out.requires_grad, f"{type(model).__name__}.{method}"
    assert torch.is_grad_enabled()  # and grad mode is restored afterwards


def check_loss_decreases(model, num_tasks: int, steps: int = 60) -> None:
    torch.manual_seed(0)
    batch = learnable_batch(num_tasks)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    first = model.loss(batch).sum().item()
    for _ in range(steps):
        loss = model.loss(batch).sum()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    last = model.loss(batch).sum().item()
    assert last < 0.8 * first, (first, last)


def check_nan_labels_masked(model, num_tasks: int) -> None:
    """A NaN label leaves that row out of that task only; the loss stays finite."""
    batch = random_batch(tiny_features(), 16, num_tasks=num_tasks, num_scenarios=3)
    model.eval()
    masked = {**batch, "labels": batch["labels"].clone()}
    masked["labels"][:8, 0] = float("nan")
    dropped = {k: v[8:] for k, v in batch.items()}
    losses = model.loss(masked)
    assert bool(torch.isfinite(losses).all())
    torch.testing.assert_close(losses[0], model.loss(dropped)[0])
    if num_tasks > 1:
        torch.testing.assert_close(losses[1:], model.loss(batch)[1:])
    masked["labels"][:, 0] = float("nan")  # a task without any label contributes 0
    assert model.loss(masked)[0].item() == 0.0
    losses = model.loss(masked)
    losses.sum().backward()  # still differentiable


def check_bad_labels(model, num_tasks: int) -> None:
    batch = random_batch(tiny_features(), 4, num_tasks=num_tasks + 1, num_scenarios=3)
    with pytest.raises(ValueError, match="labels must be"):
        model.loss(batch)
    del batch["labels"]
    with pytest.raises(KeyError, match="labels"):
        model.loss(batch)


def check_bad_scenarios(model, num_scenarios: int = 3) -> None:
    batch = random_batch(tiny_features(), 4, num_tasks=1, num_scenarios=num_scenarios)
    batch["scenario_ids"][0] = num_scenarios
    with pytest.raises(ValueError, match="outside the trained range"):
        model(batch)
    batch["scenario_ids"][0] = -1
    with pytest.raises(ValueError, match="outside the trained range"):
        model(batch)


@pytest.fixture
def mtl(one_thread: None) -> ModuleType:
    """This module: ``mtl.check_shapes(model, T)``, ``mtl.check_loss_decreases(model, T)``, ...

    Runs the test on one intra-op thread (the ``one_thread`` fixture): these models are tiny.
    """
    return sys.modules[__name__]
