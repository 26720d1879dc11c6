import pytest
import torch

from mtrec.data.kg import triple_batches
from mtrec.eval.link_prediction import RandomScorer, evaluate_link_prediction
from mtrec.models.kg.transe import TransE, TransEConfig
from mtrec.train import fit


def _batch(n=5):
    g = torch.Generator().manual_seed(0)
    return {
        "heads": torch.randint(1, 12, (n,), generator=g),
        "relations": torch.randint(0, 3, (n,), generator=g),
        "tails": torch.randint(1, 12, (n,), generator=g),
    }


def test_tiny_shapes():
    model = TransE(TransEConfig.tiny())
    batch = _batch()
    assert model.score(batch["heads"], batch["relations"], batch["tails"]).shape == (5,)
    assert model.loss(batch).ndim == 0
    assert model.score_tails(batch["heads"], batch["relations"]).shape == (5, 12)
    assert model.score_heads(batch["relations"], batch["tails"]).shape == (5, 12)
    assert model.entity_vectors().shape == (12, 8)


def test_all_entity_scores_match_pairwise_scores():
    model = TransE(TransEConfig.tiny())
    h, r = torch.tensor([1, 2]), torch.tensor([0, 2])
    every = torch.arange(12)
    expected = model.score(h[:, None], r[:, None], every[None, :])  # (2, 12)
    torch.testing.assert_close(model.score_tails(h, r), expected)
    expected_heads = model.score(every[None, :], r[:, None], h[:, None])
    torch.testing.assert_close(model.score_heads(r, h), expected_heads)


def test_loss_decreases_and_beats_random_on_a_toy_graph(toy):
    config = TransEConfig(toy.kg.num_entities, toy.kg.num_relations, d_model=16, num_negatives=8)
    torch.manual_seed(0)
    model = TransE(config)
    history = fit(model, triple_batches(toy.train, 64), epochs=150, lr=0.02, progress=False)
    losses = history.frame().train_loss
    assert losses.iloc[-1] < 0.3 * losses.iloc[0], (losses.iloc[0], losses.iloc[-1])
    trained = evaluate_link_prediction(model, toy.test, known=toy.kg.triples)
    chance = evaluate_link_prediction(
        RandomScorer(toy.kg.num_entities), toy.test, known=toy.kg.triples
    )
    assert trained["mrr"] > 3 * chance["mrr"], (trained, chance)
    assert trained["hits@10"] > 2 * chance["hits@10"], (trained, chance)


def test_bad_inputs_raise_with_a_fix():
    with pytest.raises(ValueError, match="num_entities"):
        TransEConfig(num_entities=1, num_relations=1)
    with pytest.raises(ValueError, match="p_norm"):
        TransEConfig(num_entities=4, num_relations=1, p_norm=3)
    model = TransE(TransEConfig.tiny())
    batch = _batch()
    batch["relations"][0] = 3  # only 3 relations
    with pytest.raises(ValueError, match=r"relations: expected \(B,\) ids in \[0, 3\)"):
        model.loss(batch)
    with pytest.raises(KeyError, match="heads, relations, tails"):
        model.loss({"heads": batch["heads"]})
