import pytest
import torch
from sklearn.metrics.pairwise import cosine_similarity

from mtrec.models.cf.itemknn import KNNConfig
from mtrec.models.cf.userknn import UserKNN


def test_matches_sklearn_neighbourhood_sum():
    x = (torch.rand(12, 9, generator=torch.Generator().manual_seed(2)) < 0.4).float()
    model = UserKNN(KNNConfig(neighbours=12)).fit(x)
    sim = torch.tensor(cosine_similarity(x.numpy()), dtype=torch.float32)
    sim.fill_diagonal_(0)
    torch.testing.assert_close(model.scores(), sim @ x, atol=1e-5, rtol=1e-5)


def test_similar_user_items_are_recommended():
    x = torch.tensor([[1.0, 1, 0, 0], [1, 1, 1, 0], [0, 0, 0, 1]])
    scores = UserKNN(KNNConfig(neighbours=1)).fit(x).scores()
    assert scores[0, 2] > scores[0, 3]


def test_bad_inputs():
    model = UserKNN(KNNConfig.tiny()).fit(torch.ones(4, 3))
    with pytest.raises(ValueError, match="fitted on"):
        model.scores(torch.ones(5, 3))
    with pytest.raises(RuntimeError, match="fit"):
        UserKNN().scores()
