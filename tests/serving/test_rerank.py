"""MMR re-ranking against its definition, and attention explanations against softmax(cos / τ)."""

import numpy as np
import pytest
import torch

from mtrec.serving.rerank import RECENT, attention_weights, explain, mmr, unseen_distinct


def naive_mmr(rel, sim, k, lam):
    """MMR written from its definition, one candidate at a time."""
    rel = (rel - rel.min()) / max(float(rel.max() - rel.min()), 1e-9)
    picked = []
    while len(picked) < k:
        best, best_gain = None, -np.inf
        for i in range(len(rel)):
            if i in picked:
                continue
            redundancy = max([float(sim[i, j]) for j in picked] + [0.0])
            gain = lam * float(rel[i]) - (1 - lam) * redundancy
            if gain > best_gain:
                best, best_gain = i, gain
        picked.append(best)
    return picked


def test_mmr_known_case_and_extremes():
    rel = torch.tensor([1.0, 0.95, 0.6])
    sim = torch.tensor([[1.0, 0.99, 0.0], [0.99, 1.0, 0.0], [0.0, 0.0, 1.0]])
    assert mmr(rel, sim, 3, 1.0) == [0, 1, 2]  # λ = 1: plain relevance order
    assert mmr(rel, sim, 3, 0.5) == [0, 2, 1]  # the near-duplicate of item 0 waits
    assert mmr(rel, sim, 2, 0.0) == [0, 2]  # λ = 0: pure diversity after the first pick
    assert mmr(rel, sim, 10, 0.7) == [0, 1, 2]  # k beyond the pool: every candidate once
    with pytest.raises(ValueError, match=r"trade_off must be in \[0, 1\]"):
        mmr(rel, sim, 2, 1.5)


@pytest.mark.parametrize("lam", [0.3, 0.7, 0.9])
def test_mmr_matches_its_definition(lam):
    g = torch.Generator().manual_seed(0)
    vectors = torch.nn.functional.normalize(torch.randn(30, 8, generator=g), dim=1)
    rel = torch.rand(30, generator=g)
    sim = vectors @ vectors.T
    assert mmr(rel, sim, 10, lam) == naive_mmr(rel, sim, 10, lam)


def unit_rows(n: int, d: int = 8) -> torch.Tensor:
    g = torch.Generator().manual_seed(1)
    return torch.nn.functional.normalize(torch.randn(n, d, generator=g), dim=1)


def test_attention_weights_are_a_softmax_of_cosines_over_the_recent_history():
    embeddings = unit_rows(80)
    history = torch.arange(10, 75)  # 65 items: only the last RECENT count
    items = torch.tensor([0, 3, 7])
    weights = attention_weights(embeddings, items, history, tau=0.05)
    assert weights.shape == (3, RECENT)
    recent = history[-RECENT:]
    reference = torch.softmax(embeddings[items] @ embeddings[recent].T / 0.05, dim=1)
    torch.testing.assert_close(weights, reference)


def test_explain_names_the_two_most_attended_history_titles():
    embeddings = unit_rows(6)
    embeddings[5] = embeddings[1]  # item 5 is a copy of history item 1
    titles = [f"film {i}" for i in range(6)]
    (line,) = explain(titles, embeddings, torch.tensor([5]), torch.tensor([1, 2, 3]), tau=0.05)
    first, second = line.split(" + ")
    assert first.startswith("film 1 (") and second.endswith(")")
    assert explain(titles, embeddings, torch.tensor([0, 4]), torch.tensor([], dtype=torch.long),
                   tau=0.05) == ["popular in this context (no history yet)"] * 2  # fmt: skip


def test_the_pool_leaves_out_seen_titles_and_keeps_the_best_copy_of_a_repeated_one():
    scores = torch.tensor([0.1, 0.9, 0.5, 0.7, 0.5, 0.3])
    title_ids = torch.tensor([0, 1, 2, 2, 3, 4])  # rows 2 and 3 are one title
    history = torch.tensor([5])  # title 4 seen
    pool = unseen_distinct(scores, title_ids, history)
    assert pool.tolist() == [1, 3, 4, 0]  # row 3 beats its copy, row 2; row 5 was seen
    tied = unseen_distinct(
        torch.zeros(3), torch.tensor([0, 1, 2]), torch.tensor([], dtype=torch.long)
    )
    assert tied.tolist() == [0, 1, 2]  # ties keep row order
    assert unseen_distinct(scores, title_ids, torch.arange(6)).numel() == 0  # all seen
