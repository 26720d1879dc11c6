import pytest
import torch

from mtrec.eval.diversity import coverage_at_k, intra_list_diversity


def test_coverage_limits():
    assert coverage_at_k(torch.tensor([[0, 1], [0, 1]]), 10) == 0.2
    assert coverage_at_k(torch.arange(10).reshape(5, 2), 10) == 1.0
    with pytest.raises(ValueError, match=r"\(U, K\)"):
        coverage_at_k(torch.arange(3), 10)


def test_intra_list_diversity_limits():
    features = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    assert intra_list_diversity(torch.tensor([[0, 1]]), features) == pytest.approx(0.0)  # same
    assert intra_list_diversity(torch.tensor([[0, 2]]), features) == pytest.approx(1.0)  # disjoint
    assert intra_list_diversity(torch.tensor([[0, 1, 2]]), features) == pytest.approx(2 / 3)
