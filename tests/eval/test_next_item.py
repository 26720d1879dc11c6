"""Next-item evaluation (leave-last-out, full ranking): limits, exclusions, cut-offs, inputs."""

import numpy as np
import pytest
import torch

from mtrec.eval.metrics import hit_ndcg_from_rank
from mtrec.eval.next_item import evaluate_next_item
from mtrec.models import Popularity


def _case():
    history = torch.zeros(2, 3, dtype=torch.long)
    target = torch.tensor([2, 4])
    seen = torch.zeros(2, 6, dtype=torch.bool)
    seen[:, 0] = True
    return history, target, seen


def test_perfect_and_worst_ranking_and_bad_scores():
    history, target, seen = _case()

    def oracle(h):
        return torch.nn.functional.one_hot(target, 6).float()

    assert evaluate_next_item(oracle, history, target, seen) == {"hr@10": 1.0, "ndcg@10": 1.0}
    worst = evaluate_next_item(lambda h: -oracle(h), history, target, seen, k=2)
    assert worst == {"hr@2": 0.0, "ndcg@2": 0.0}
    with pytest.raises(ValueError, match=r"\(B, N\+1\) = \(2, 6\)"):
        evaluate_next_item(lambda h: torch.zeros(2, 5), history, target, seen)
    with pytest.raises(ValueError, match="same U users"):
        evaluate_next_item(oracle, history[:1], target, seen)


def test_a_model_its_scores_and_several_cutoffs_agree():
    """A model (its ``scores`` is used) equals ``model.scores``; seen items are excluded."""
    pop = Popularity(5).fit(np.array([1, 1, 1, 2, 2, 3, 4, 4, 4, 4]))
    history = torch.tensor([[0, 4], [0, 1], [2, 3]])
    target = torch.tensor([1, 2, 5])
    seen = torch.zeros(3, 6, dtype=torch.bool)
    seen[torch.arange(3)[:, None], history] = True  # the history and the padding column
    # popularity order 4, 1, 2, 3, 5; minus each user's history: ranks 0, 1, 2
    both = evaluate_next_item(pop, history, target, seen, k=(1, 3), batch_size=2)
    assert list(both) == ["hr@1", "ndcg@1", "hr@3", "ndcg@3"]
    ranks = np.array([0, 1, 2])
    for k in (1, 3):
        hr, ndcg = hit_ndcg_from_rank(ranks, k)
        assert both[f"hr@{k}"] == pytest.approx(hr) and both[f"ndcg@{k}"] == pytest.approx(ndcg)
    assert evaluate_next_item(pop.scores, history, target, seen, k=3) == {
        "hr@3": both["hr@3"], "ndcg@3": both["ndcg@3"]
    }  # fmt: skip


def test_histories_may_be_lists_for_text_models():
    """Any sliceable sequence of histories works (P5 scores lists of item ids)."""
    _, target, seen = _case()
    histories = [[1], [3, 5]]
    calls = []

    def scores(part):
        calls.append(part)
        return torch.nn.functional.one_hot(target[: len(part)], 6).float()

    result = evaluate_next_item(scores, histories, target, seen, batch_size=len(histories))
    assert result == {"hr@10": 1.0, "ndcg@10": 1.0} and calls == [histories]
