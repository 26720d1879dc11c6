"""The pieces of ``python -m mtrec.experiments.kg`` that need no dataset (the run itself is the
experiment, not a test)."""

from types import SimpleNamespace

import pytest
import torch

from mtrec.experiments.kg import CKE_SOURCES, KGExperimentConfig, evaluate, top_lists


def test_top_lists_skip_seen_items_non_candidates_and_users_without_tests():
    scores = torch.tensor([[5.0, 4.0, 3.0, 2.0], [1.0, 2.0, 3.0, 4.0], [1.0, 1.0, 1.0, 1.0]])
    train = torch.tensor([[1.0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]])
    test = torch.tensor([[0, 1.0, 0, 0], [1.0, 0, 0, 0], [0, 0, 0, 0]])  # user 2: no test item
    assert top_lists(scores, train, test, k=2).tolist() == [[1, 2], [3, 2]]
    candidates = torch.tensor([True, True, False, False])
    assert top_lists(scores, train, test, k=1, candidates=candidates).tolist() == [[1], [1]]


def test_evaluate_reports_accuracy_coverage_and_diversity():
    scores = torch.tensor([[3.0, 2.0, 1.0], [3.0, 2.0, 1.0]])
    train = torch.zeros(2, 3)
    test = torch.tensor([[1.0, 0, 0], [0, 1.0, 0]])
    data = SimpleNamespace(genres=torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]))
    out = evaluate(scores, train, test, data, k=2)
    assert out["recall@2"] == 1.0 and out["coverage@2"] == pytest.approx(2 / 3)
    assert out["ild@2"] == pytest.approx(1.0)  # items 0 and 1 share no genre


def test_config_names_every_model_and_has_a_tiny_variant():
    config = KGExperimentConfig()
    assert set(CKE_SOURCES) <= set(config.models) and len(config.seeds) >= 3
    assert KGExperimentConfig.tiny().seeds == (0,)
