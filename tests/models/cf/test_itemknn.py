import pytest
import torch
from sklearn.metrics.pairwise import cosine_similarity

from mtrec.models.cf.itemknn import ItemKNN, KNNConfig, topk_cosine


def _interactions():
    return (torch.rand(25, 10, generator=torch.Generator().manual_seed(1)) < 0.4).float()


def test_similarity_matches_sklearn_when_unpruned():
    x = _interactions()
    sim = topk_cosine(x.T, KNNConfig(neighbours=10))
    expected = torch.tensor(cosine_similarity(x.T.numpy()), dtype=torch.float32)
    expected.fill_diagonal_(0)
    torch.testing.assert_close(sim, expected, atol=1e-5, rtol=1e-5)


def test_pruning_and_scores():
    x = _interactions()
    model = ItemKNN(KNNConfig.tiny()).fit(x)
    assert ((model.similarity != 0).sum(dim=1) <= 3).all()
    scores = model.scores(x)
    torch.testing.assert_close(scores, x @ model.similarity)
    assert scores.shape == x.shape


def test_item_with_more_shared_users_scores_higher():
    x = torch.tensor([[1.0, 1, 0], [1, 1, 0], [1, 0, 1], [0, 0, 0]])
    x_new = torch.tensor([[1.0, 0, 0]])
    scores = ItemKNN(KNNConfig(neighbours=2)).fit(x).scores(x_new)
    assert scores[0, 1] > scores[0, 2]


def test_bad_inputs():
    with pytest.raises(ValueError, match="neighbours"):
        KNNConfig(neighbours=0)
    model = ItemKNN().fit(_interactions())
    with pytest.raises(ValueError, match="item columns"):
        model.scores(torch.zeros(2, 3))
    with pytest.raises(RuntimeError, match="fit"):
        ItemKNN().scores(torch.zeros(2, 3))
