import pytest
import torch

from mtrec.models.kg.cke import CKE, CKEConfig, WarmItemSampler
from mtrec.train import fit

pytestmark = pytest.mark.usefixtures("one_thread")


def _interactions():
    # two user groups, each likes its own half of the items; item 7 is cold (no interaction)
    x = torch.zeros(6, 8)
    x[:3, :4] = (torch.rand(3, 4, generator=torch.Generator().manual_seed(0)) < 0.7).float()
    x[3:, 4:7] = (torch.rand(3, 3, generator=torch.Generator().manual_seed(1)) < 0.7).float()
    x[0, 0] = x[3, 4] = 1
    return x


def _side():
    # a 5-d "KG vector" per item: which half it belongs to, plus noise
    side = torch.randn(8, 5, generator=torch.Generator().manual_seed(2)) * 0.1
    side[:4, 0] += 1
    side[4:, 1] += 1
    return {"kg": side}


def test_tiny_shapes():
    model = CKE(CKEConfig.tiny(), _side())
    batch = next(iter(WarmItemSampler(_interactions(), 5, seed=0)))
    assert model(batch["user_ids"], batch["pos_item_ids"]).shape == (5,)
    assert model.loss(batch).ndim == 0 and model.scores().shape == (6, 8)
    q, b = model.item_vectors()
    assert q.shape == (8, 4) and b.shape == (8,)


def test_without_side_it_is_bpr_mf():
    model = CKE(CKEConfig(num_users=6, num_items=8, d_model=4))
    expected = model.user_embedding.weight @ model.item_embedding.weight.T
    torch.testing.assert_close(model.scores(), expected + model.item_bias.weight.T)


def test_warm_sampler_never_draws_cold_items():
    x = _interactions()
    sampler = WarmItemSampler(x, 4, seed=0)
    assert sampler.warm.tolist() == [True] * 7 + [False]
    for batch in sampler:
        assert (batch["neg_item_ids"] != 7).all() and (batch["pos_item_ids"] != 7).all()
        assert x[batch["user_ids"], batch["pos_item_ids"]].bool().all()
        assert not x[batch["user_ids"], batch["neg_item_ids"]].bool().any()


def test_loss_decreases_and_side_vectors_score_a_cold_item():
    x = _interactions()
    model = CKE(CKEConfig.tiny(), _side())
    sampler = WarmItemSampler(x, 64, seed=0)
    losses = fit(model, sampler, epochs=150, lr=0.05, progress=False).frame().train_loss
    assert losses.iloc[-1] < 0.5 * losses.iloc[0]
    model.set_warm(sampler.warm)
    scores = model.scores()
    # cold item 7 has only its side vector ("second half"): group 2 users rank it above group 1's
    assert scores[3:, 7].mean() > scores[:3, 7].mean()
    assert scores[0, :4].mean() > scores[0, 4:7].mean()


def test_cold_items_ignore_their_untrained_id_vectors():
    model = CKE(CKEConfig.tiny(), _side())
    warm = torch.tensor([True] * 7 + [False])
    model.set_warm(warm)
    before = model.scores()[:, 7]
    with torch.no_grad():
        model.item_embedding.weight[7] += 5.0
    torch.testing.assert_close(model.scores()[:, 7], before)


def test_bad_side_vectors_raise_with_a_fix():
    with pytest.raises(ValueError, match=r"expected side vectors .*received .*side_dims"):
        CKE(CKEConfig.tiny(), {"kg": torch.zeros(8, 3)})  # declared width 5
    with pytest.raises(ValueError, match="received"):
        CKE(CKEConfig.tiny(), {"text": torch.zeros(8, 5)})  # undeclared source
    with pytest.raises(ValueError, match="warm must be"):
        CKE(CKEConfig.tiny(), _side()).set_warm(torch.ones(3, dtype=torch.bool))
    with pytest.raises(KeyError, match="neg_item_ids"):
        CKE(CKEConfig.tiny(), _side()).loss({"user_ids": torch.zeros(2, dtype=torch.long),
                                             "pos_item_ids": torch.zeros(2, dtype=torch.long)})  # fmt: skip
