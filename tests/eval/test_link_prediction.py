import math

import torch

from mtrec.eval.link_prediction import RandomScorer, evaluate_link_prediction, filtered_ranks


class FixedScorer:
    """Entity e scores e for every query: higher ids rank first."""

    def __init__(self, num_entities):
        self.row = torch.arange(num_entities, dtype=torch.float)

    def score_tails(self, heads, relations):
        return self.row.expand(len(heads), -1)

    def score_heads(self, relations, tails):
        return self.row.expand(len(tails), -1)


def test_filtered_ranks_by_hand():
    # 6 entities (0 = OOV); test (1, 0, 3); known also (1, 0, 5): tail 5 is filtered, 4 is not
    test = torch.tensor([[1, 0, 3]])
    known = torch.tensor([[1, 0, 3], [1, 0, 5]])
    ranks = filtered_ranks(FixedScorer(6), test, known=known)
    # tail query: candidates above 3 are 4 (5 filtered) → rank 2; head query: 2, 3, 4, 5 above 1
    assert ranks.tolist() == [2, 5]
    metrics = evaluate_link_prediction(FixedScorer(6), test, known=known, ks=(1, 2))
    assert math.isclose(metrics["mrr"], (1 / 2 + 1 / 5) / 2, rel_tol=1e-6)
    assert metrics["hits@1"] == 0 and metrics["hits@2"] == 0.5 and metrics["queries"] == 2


def test_a_top_ranked_answer_scores_hits_at_1_and_random_is_near_chance():
    test = torch.tensor([[1, 0, 999], [2, 1, 999]])
    perfect = evaluate_link_prediction(FixedScorer(1000), test[:, [0, 1, 2]][:1], known=test)
    assert perfect["hits@1"] == 0.5  # the tail query is perfect, the head query is not
    queries = torch.randint(1, 1000, (200, 3), generator=torch.Generator().manual_seed(0))
    queries[:, 1] = 0
    chance = evaluate_link_prediction(RandomScorer(1000, seed=0), queries, known=queries)
    assert chance["mrr"] < 0.03 and chance["hits@10"] < 0.03
