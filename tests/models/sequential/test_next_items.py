"""Generative next-items model: shapes, sampler windows, learns a deterministic successor rule."""

import numpy as np
import pytest
import torch

from mtrec.models.sequential.next_items import NextItems, NextItemsConfig, NextItemsSampler

pytestmark = pytest.mark.usefixtures("one_thread")


def test_sampler_windows_are_consistent():
    seqs = [np.arange(1, 11), np.array([3, 4])]
    sampler = NextItemsSampler(seqs, history_len=4, k=2, cuts_per_user=5, batch_size=4)
    batches = list(sampler)
    assert len(batches) == len(sampler) == 3
    for b in batches:
        h, t = b["history"], b["next_items"]
        assert h.shape[1] == 4 and t.shape[1] == 2
        last = h[:, -1]
        assert (last > 0).all() and (t[:, 0] > 0).all()
        assert bool((t[:, 0] == last + 1).all())  # the target follows the history directly
    with pytest.raises(ValueError, match="nothing to predict"):
        NextItemsSampler([np.array([1])], history_len=2, k=1)


def test_shapes_and_generate_excludes_seen():
    model = NextItems(NextItemsConfig.tiny())
    history = torch.tensor([[0, 0, 1, 2, 3, 4], [5, 6, 7, 8, 9, 10]])
    assert model.scores(history).shape == (2, 21)
    assert torch.isfinite(model.loss({"history": history, "next_items": history[:, :2]}))
    for beam in (1, 3):
        out = model.generate(history, beam_size=beam)
        assert out.shape == (2, 2)
        assert all(not set(o.tolist()) & set(h.tolist()) for o, h in zip(out, history))
        assert bool(((out >= 1) & (out <= 20)).all())
    with pytest.raises(ValueError, match="history must be"):
        model.scores(torch.ones(2, 7, dtype=torch.long))


@pytest.mark.slow
def test_learns_successor_rule():
    """Sequences count upwards mod N; the next k items are then determined by the last one."""
    torch.manual_seed(0)
    starts = np.random.default_rng(0).integers(0, 20, 200)
    seqs = [(s + np.arange(10)) % 20 + 1 for s in starts]
    model = NextItems(NextItemsConfig.tiny())
    opt = torch.optim.Adam(model.parameters(), lr=5e-3)
    sampler = NextItemsSampler(seqs, history_len=6, k=2, cuts_per_user=1, batch_size=100)
    for _ in range(40):
        for batch in sampler:
            loss = model.loss(batch)
            opt.zero_grad()
            loss.backward()
            opt.step()
    history = torch.tensor([[3, 4, 5, 6, 7, 8], [0, 0, 0, 18, 19, 20]])
    assert model.generate(history).tolist() == [[9, 10], [1, 2]]
