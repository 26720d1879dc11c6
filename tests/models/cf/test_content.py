import pytest
import torch
import torch.nn.functional as F

from mtrec.models.cf.content import ContentConfig, ContentRecommender


def test_scores_are_cosines_of_profile_and_items():
    vectors = torch.tensor([[1.0, 0], [0.9, 0.1], [0, 1]])
    model = ContentRecommender(vectors, ContentConfig(center=False))
    x = torch.tensor([[1.0, 0, 0], [0, 0, 0]])
    scores = model.fit(x).scores(x)
    expected = F.normalize(vectors, dim=1)[0] @ F.normalize(vectors, dim=1).T
    torch.testing.assert_close(scores[0], expected)
    assert scores[0, 1] > scores[0, 2]
    assert torch.all(scores[1] == 0)  # cold user: no profile, caller falls back to popularity


def test_cold_items_are_scored_and_shapes():
    vectors = torch.randn(5, 4, generator=torch.Generator().manual_seed(0))
    model = ContentRecommender(vectors, ContentConfig.tiny())
    x = torch.tensor([[1.0, 1, 0, 0, 0]])  # items 2..4 never interacted with
    scores = model.scores(x)
    assert scores.shape == (1, 5) and torch.isfinite(scores).all() and (scores[0, 2:] != 0).all()


def test_bad_inputs():
    with pytest.raises(ValueError, match=r"\(I, D\)"):
        ContentRecommender(torch.zeros(3))
    with pytest.raises(ValueError, match="item vectors"):
        ContentRecommender(torch.randn(3, 2)).scores(torch.zeros(1, 4))
