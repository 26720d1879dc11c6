"""The end-to-end Recommender: MMR, filtering, routing, save/load without pickle, bad input."""

import numpy as np
import pytest
import torch

from mtrec.serving.recommender import SCENARIOS, Recommender, mmr

STAGES = {
    "feature extraction",
    "scenario classification",
    "task mapping",
    "multi-task scoring",
    "fusion + filter + dedup",
    "MMR re-ranking",
    "explanation",
}


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
    with pytest.raises(ValueError, match=r"trade_off must be in \[0, 1\]"):
        mmr(rel, sim, 2, 1.5)


@pytest.mark.parametrize("lam", [0.3, 0.7, 0.9])
def test_mmr_matches_its_definition(lam):
    g = torch.Generator().manual_seed(0)
    vectors = torch.nn.functional.normalize(torch.randn(30, 8, generator=g), dim=1)
    rel = torch.rand(30, generator=g)
    sim = vectors @ vectors.T
    assert mmr(rel, sim, 10, lam) == naive_mmr(rel, sim, 10, lam)


@pytest.fixture(scope="module")
def movielens():
    from mtrec.data import leave_last_out, load_movielens

    ml = load_movielens()
    users = ml.ratings.user_id.drop_duplicates().to_numpy()[:120]
    split = leave_last_out(ml.ratings[ml.ratings.user_id.isin(users)])
    return ml, split


@pytest.fixture(scope="module")
def recommender(movielens):
    from mtrec.extractors.text import TextEncoder

    ml, split = movielens
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a tiny MMoE on a shared CPU
    yield Recommender.fit(split.train, ml.users, ml.items, encoder=TextEncoder(), epochs=1)
    torch.set_num_threads(threads)


def test_lists_are_unseen_unique_and_timed(recommender, movielens):
    _, split = movielens
    user = int(split.train.user_id.iloc[0])
    seen = set(split.train[split.train.user_id == user].item_id)
    result = recommender.recommend(user, "", k=10)
    assert len(result.item_ids) == 10 and not seen & set(result.item_ids)
    assert len(set(result.titles)) == 10  # ML-100k repeats some titles; they are removed
    assert set(result.timings_ms) == STAGES and all(v >= 0 for v in result.timings_ms.values())
    assert len(result.explanations) == 10 and all(result.explanations)
    assert list(result.frame().columns) == ["item_id", "title", "score", "because"]


def test_page_context_routes_and_maps_tasks(recommender, movielens):
    _, split = movielens
    user = int(split.train.user_id.iloc[0])
    comedy = recommender.recommend(user, "comedy", k=5)
    assert comedy.scenario == "comedy" and comedy.tasks == ["watch", "like"]
    assert recommender.recommend(user, "family", k=5).tasks == ["watch"]
    assert set(comedy.scenario_probs) == set(SCENARIOS)


def test_new_user_history_and_trade_off(recommender):
    history = [50, 181, 172]  # three films, by item id
    result = recommender.recommend(history, "space adventure", k=5)
    assert not set(history) & set(result.item_ids)
    plain = recommender.recommend(history, "space adventure", k=5, trade_off=1.0)
    assert plain.scores == sorted(plain.scores, reverse=True)  # λ = 1: relevance order


def test_save_load_round_trip_without_pickle(recommender, movielens, tmp_path):
    _, split = movielens
    user = int(split.train.user_id.iloc[0])
    recommender.save(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json", "tensors.safetensors"]
    loaded = Recommender.load(tmp_path, encoder=recommender.encoder)
    for context in ("", "a scary film for tonight", "comedy"):
        a, b = recommender.recommend(user, context, k=8), loaded.recommend(user, context, k=8)
        assert a.item_ids == b.item_ids and np.allclose(a.scores, b.scores)


def test_bad_input_gets_clear_errors(recommender, tmp_path):
    with pytest.raises(ValueError, match="unknown user id 99999"):
        recommender.recommend(99999, "", k=5)
    with pytest.raises(ValueError, match="unknown item ids .*expected ids in 1..1682"):
        recommender.recommend([1, 5000], "", k=5)
    with pytest.raises(ValueError, match="history is empty.*pass a few item ids"):
        recommender.recommend([], "comedy", k=5)
    with pytest.raises(ValueError, match=r"k must be an int in 1..100 .*got 0; ask for fewer"):
        recommender.recommend(1, "", k=0)
    with pytest.raises(ValueError, match="1682-item catalogue.*got 1000"):
        recommender.recommend(1, "", k=1000)
    with pytest.raises(ValueError, match=r"unknown page 'comdy': expected one of \['family'"):
        recommender.recommend(1, "page:comdy", k=5)
    assert recommender.recommend(1, "page:comedy", k=3).scenario == "comedy"
    with pytest.raises(TypeError, match="context must be a string"):
        recommender.recommend(1, None, k=5)
    with pytest.raises(FileNotFoundError, match="does not hold a saved pipeline.*Recommender.save"):
        Recommender.load(tmp_path, encoder=recommender.encoder)


def test_duplicate_titles_are_removed(recommender):
    titles = recommender.titles
    copies = [r for r, t in enumerate(titles) if titles.count(t) > 1]
    assert copies, "ML-100k lists some films twice"
    pool = recommender.candidate_pool(1, "")
    pool_titles = [titles[r] for r in pool.rows.tolist()]
    assert len(pool_titles) == len(set(pool_titles)) == 100
    assert pool.scores.tolist() == sorted(pool.scores.tolist(), reverse=True)
    seen = recommender.candidate_pool([int(recommender.item_ids[copies[0]])], "")
    assert titles[copies[0]] not in {titles[r] for r in seen.rows.tolist()}  # nor its copy
