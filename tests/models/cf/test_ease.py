import pytest
import torch
from sklearn.linear_model import Ridge

from mtrec.models.cf.ease import EASE, EASEConfig


def _interactions(users=30, items=12, seed=0):
    return (torch.rand(users, items, generator=torch.Generator().manual_seed(seed)) < 0.3).float()


def test_shapes_and_zero_diagonal():
    x = _interactions()
    model = EASE(EASEConfig.tiny()).fit(x)
    assert model.scores(x).shape == x.shape
    assert torch.all(model.weights.diagonal() == 0)


def test_matches_per_column_ridge_regression():
    """Column j of B is the ridge regression of item j on all other items (Steck, eq. 3)."""
    x = _interactions()
    l2 = 3.0
    model = EASE(EASEConfig(l2=l2)).fit(x)
    xn = x.double().numpy()
    for j in range(x.shape[1]):
        others = [c for c in range(x.shape[1]) if c != j]
        ridge = Ridge(alpha=l2, fit_intercept=False).fit(xn[:, others], xn[:, j])
        expected = torch.tensor(ridge.coef_, dtype=torch.float32)
        torch.testing.assert_close(model.weights[others, j], expected, atol=1e-4, rtol=1e-4)


def test_bad_inputs():
    with pytest.raises(ValueError, match="l2 must be > 0"):
        EASEConfig(l2=0)
    with pytest.raises(RuntimeError, match="fit"):
        EASE().scores(_interactions())
    model = EASE(EASEConfig.tiny()).fit(_interactions())
    with pytest.raises(ValueError, match="item columns"):
        model.scores(torch.zeros(2, 5))
