import pytest
import torch

from mtrec.data.kg import triple_batches
from mtrec.eval.link_prediction import RandomScorer, evaluate_link_prediction
from mtrec.models.kg.distmult import DistMult, DistMultConfig
from mtrec.train import fit


def test_tiny_shapes_and_symmetry():
    model = DistMult(DistMultConfig.tiny())
    h, r, t = torch.tensor([1, 2, 3]), torch.tensor([0, 1, 2]), torch.tensor([4, 5, 6])
    assert model.score(h, r, t).shape == (3,)
    torch.testing.assert_close(model.score(h, r, t), model.score(t, r, h))  # DistMult is symmetric
    every = torch.arange(12)
    torch.testing.assert_close(model.score_tails(h, r), model.score(h[:, None], r[:, None], every))
    torch.testing.assert_close(model.score_heads(r, t), model.score(every, r[:, None], t[:, None]))
    assert model.loss({"heads": h, "relations": r, "tails": t}).ndim == 0


def test_loss_decreases_and_beats_random_on_a_toy_graph(toy):
    # uniform negative weights (α = 0): the self-adversarial loss re-weights towards the hardest
    # negatives as training goes, so its value is not a monotone progress signal
    config = DistMultConfig(
        toy.kg.num_entities,
        toy.kg.num_relations,
        d_model=16,
        num_negatives=8,
        adversarial_temperature=0,
    )
    torch.manual_seed(0)
    model = DistMult(config)
    history = fit(model, triple_batches(toy.train, 64), epochs=150, lr=0.1, progress=False)
    losses = history.frame().train_loss
    assert losses.iloc[-1] < 0.5 * losses.iloc[0], (losses.iloc[0], losses.iloc[-1])
    trained = evaluate_link_prediction(model, toy.test, known=toy.kg.triples)
    chance = evaluate_link_prediction(
        RandomScorer(toy.kg.num_entities), toy.test, known=toy.kg.triples
    )
    assert trained["mrr"] > 3 * chance["mrr"], (trained, chance)


def test_bad_config():
    with pytest.raises(ValueError, match="adversarial_temperature"):
        DistMultConfig(num_entities=4, num_relations=1, adversarial_temperature=-1)
