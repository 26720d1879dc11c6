"""SASRec: shapes, causality, padding invariance, loss decreases, bad input; sequence building."""

import numpy as np
import pandas as pd
import pytest
import torch

from mtrec.data.sequences import build_sequences, left_pad
from mtrec.data.splits import leave_last_out
from mtrec.models.sequential.sasrec import SASRec, SASRecConfig

pytestmark = pytest.mark.usefixtures("one_thread")


def _batch(n=6, length=8, items=30, seed=0):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(1, items + 1, (n, length + 1), generator=g)
    ids[0, :3] = 0  # left padding
    inputs, targets = ids[:, :-1].clone(), ids[:, 1:].clone()
    targets[inputs == 0] = 0
    return {"item_ids": inputs, "targets": targets}


@pytest.mark.parametrize("loss", ["ce", "bce"])
def test_shapes_and_finite(loss):
    model = SASRec(SASRecConfig.tiny(loss=loss))
    batch = _batch()
    assert model(batch["item_ids"]).shape == (6, 8, 16)
    scores = model.scores(batch["item_ids"])
    assert scores.shape == (6, 31) and scores[:, 0].eq(float("-inf")).all()
    assert torch.isfinite(scores[:, 1:]).all() and torch.isfinite(model.loss(batch))
    top = model.recommend(batch["item_ids"], k=5)
    assert top.shape == (6, 5) and not any(
        set(t.tolist()) & set(h.tolist()) for t, h in zip(top, batch["item_ids"])
    )


def test_causal_and_left_padding_invariant():
    model = SASRec(SASRecConfig.tiny()).eval()
    ids = torch.tensor([[0, 0, 3, 4, 5, 6, 7, 8]])
    out = model(ids)
    changed = ids.clone()
    changed[0, -1] = 9
    torch.testing.assert_close(model(changed)[:, :-1], out[:, :-1])  # no peeking ahead
    short = torch.tensor([[0, 0, 0, 0, 3, 4, 5, 6]])
    # scores depend on the items and their positions, padding rows give no NaN
    assert torch.isfinite(model(short)).all()


def test_loss_decreases():
    torch.manual_seed(0)
    model = SASRec(SASRecConfig.tiny())
    batch = _batch(n=32)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    first = model.loss(batch).item()
    for _ in range(40):
        loss = model.loss(batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert model.loss(batch).item() < 0.7 * first


def test_bad_inputs():
    model = SASRec(SASRecConfig.tiny())
    with pytest.raises(ValueError, match="exceeds max_len 8"):
        model(torch.ones(2, 9, dtype=torch.long))
    with pytest.raises(ValueError, match=r"item_ids has ids outside 0..30: got \[31\]"):
        model(torch.tensor([[1, 31]]))
    with pytest.raises(ValueError, match="int64"):
        model(torch.ones(2, 3))
    with pytest.raises(ValueError, match="loss must be"):
        SASRecConfig.tiny(loss="mse")
    with pytest.raises(ValueError, match="divisible"):
        SASRecConfig.tiny(d_model=10, num_heads=3)


def test_build_sequences_leave_last_out():
    ratings = pd.DataFrame(
        {
            "user_id": [1] * 5 + [2] * 3,
            "item_id": [5, 3, 9, 2, 7, 4, 6, 1],
            "timestamp": [1, 2, 3, 4, 5, 1, 2, 3],
        }
    )
    seq = build_sequences(leave_last_out(ratings), max_len=4, num_items=10)
    assert seq.test_target.tolist() == [7, 1] and seq.valid_target.tolist() == [2, 6]
    assert seq.valid_history.tolist() == [[0, 5, 3, 9], [0, 0, 0, 4]]
    assert seq.test_history.tolist() == [[5, 3, 9, 2], [0, 0, 4, 6]]
    assert seq.train_inputs.tolist() == [[0, 0, 5, 3], [0, 0, 0, 0]]
    assert seq.train_targets.tolist() == [[0, 0, 3, 9], [0, 0, 0, 0]]
    assert seq.test_seen[0, [0, 5, 3, 9, 2]].all() and not seq.test_seen[0, 7]
    assert not seq.valid_seen[0, 2] and seq.valid_seen.sum().item() == 4 + 2
    assert left_pad([np.array([1, 2, 3])], 2).tolist() == [[2, 3]]


def test_train_windows_hold_every_transition_once():
    rows = [(0, i, t) for t, i in enumerate([4, 7, 2, 9, 5, 8, 1, 3])] + [
        (1, i, t) for t, i in enumerate([6, 2, 5, 1])
    ]
    ratings = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"])
    seq = build_sequences(leave_last_out(ratings), max_len=2, num_items=9)
    # user 0 trains on 4 7 2 9 5 8 (5 transitions), user 1 on 6 2 (1 transition)
    windows = seq.train_windows()
    assert windows["item_ids"].tolist() == [[9, 5], [7, 2], [0, 4], [0, 6]]
    assert windows["targets"].tolist() == [[5, 8], [2, 9], [0, 7], [0, 2]]
    pairs = {(a, b) for x, y in zip(windows["item_ids"].tolist(), windows["targets"].tolist())
             for a, b in zip(x, y) if b}  # fmt: skip
    assert pairs == {(4, 7), (7, 2), (2, 9), (9, 5), (5, 8), (6, 2)}
    assert int((windows["targets"] > 0).sum()) == 6  # each once
    assert int((seq.train_batch()["targets"] > 0).sum()) == 3  # the last L=2 of user 0 + user 1
