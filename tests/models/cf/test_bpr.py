import pytest
import torch

from mtrec.models.cf.bpr import BPRMF, BPRConfig, BPRSampler
from mtrec.train import fit


def _interactions():
    # two user groups, each likes its own half of the items
    x = torch.zeros(6, 8)
    x[:3, :4] = (torch.rand(3, 4, generator=torch.Generator().manual_seed(0)) < 0.7).float()
    x[3:, 4:] = (torch.rand(3, 4, generator=torch.Generator().manual_seed(1)) < 0.7).float()
    x[0, 0] = x[3, 4] = 1
    return x


def test_shapes_and_sampler_negatives_are_unseen():
    x = _interactions()
    model = BPRMF(BPRConfig.tiny())
    batch = next(iter(BPRSampler(x, 5, seed=0)))
    assert model(batch["user_ids"], batch["pos_item_ids"]).shape == (5,)
    assert model.loss(batch).ndim == 0 and model.scores().shape == (6, 8)
    for b in BPRSampler(x, 100):
        assert not x[b["user_ids"], b["neg_item_ids"]].bool().any()
        assert x[b["user_ids"], b["pos_item_ids"]].bool().all()


def test_loss_decreases_and_ranks_positives_first():
    x = _interactions()
    model = BPRMF(BPRConfig.tiny())
    sampler = BPRSampler(x, 64, seed=0)
    history = fit(model, sampler, epochs=150, lr=0.05, progress=False)
    losses = history.frame().train_loss
    assert losses.iloc[-1] < 0.5 * losses.iloc[0]
    scores = model.scores()
    assert scores[0, :4].mean() > scores[0, 4:].mean()


def test_bad_inputs():
    with pytest.raises(ValueError, match="d_model"):
        BPRConfig(num_users=2, num_items=2, d_model=0)
    with pytest.raises(KeyError, match="neg_item_ids"):
        BPRMF(BPRConfig.tiny()).loss(
            {"user_ids": torch.tensor([0]), "pos_item_ids": torch.tensor([0])}
        )
    with pytest.raises(ValueError, match="at least one"):
        BPRSampler(torch.zeros(2, 2))
