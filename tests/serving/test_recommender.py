"""The end-to-end Recommender: filtering, routing, save/load without pickle, bad input."""

import json

import numpy as np
import pytest
import torch

from mtrec.serving.recommender import Recommender, RecommenderConfig

STAGES = {
    "feature extraction",
    "scenario classification",
    "task mapping",
    "multi-task scoring",
    "fusion + filter + dedup",
    "MMR re-ranking",
    "explanation",
}


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
    assert set(comedy.scenario_probs) == set(RecommenderConfig.movielens().scenarios)


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


def same_lists(a, b, user, contexts=("", "a scary film for tonight", "comedy")):
    for context in contexts:
        x, y = a.recommend(user, context, k=8), b.recommend(user, context, k=8)
        assert x.item_ids == y.item_ids and x.scores == y.scores
        assert x.scenario_probs == y.scenario_probs and x.explanations == y.explanations


def test_config_is_saved_and_format_1_still_loads(recommender, tmp_path):
    recommender.save(tmp_path)
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved["version"] == 2
    assert RecommenderConfig.from_dict(saved["recommender"]) == RecommenderConfig.movielens()
    # mtrec 0.2.0 wrote format 1: the same tensors, the task table and text width at the top
    # level, and the MovieLens scenarios and tasks built into the code
    old = {k: v for k, v in saved.items() if k != "recommender"}
    old.update(version=1, task_table=saved["recommender"]["task_table"], text_dim=32)
    (tmp_path / "config.json").write_text(json.dumps(old))
    loaded = Recommender.load(tmp_path, encoder=recommender.encoder)
    assert loaded.config == RecommenderConfig.movielens()
    same_lists(recommender, loaded, 1)
    (tmp_path / "config.json").write_text(json.dumps({**old, "version": 7}))
    with pytest.raises(ValueError, match="format version 7, expected 1 or 2; re-fit and save"):
        Recommender.load(tmp_path, encoder=recommender.encoder)


def test_fit_follows_its_config(movielens, recommender, tmp_path):
    ml, split = movielens
    config = RecommenderConfig(scenarios=RecommenderConfig.movielens().scenarios,
                               tasks=("like",), text_dim=8)  # fmt: skip
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        liked = Recommender.fit(split.train, ml.users, ml.items, encoder=recommender.encoder,
                                config=config, epochs=1)  # fmt: skip
    finally:
        torch.set_num_threads(threads)
    assert liked.model.config.num_tasks == 1 and liked.items["item_text"].shape[1] == 8
    result = liked.recommend(1, "family", k=5)
    assert result.scenario == "family" and result.tasks == ["like"]
    liked.save(tmp_path)
    loaded = Recommender.load(tmp_path, encoder=recommender.encoder)
    assert loaded.config == config
    same_lists(liked, loaded, 1)
    with pytest.raises(ValueError, match="config scenarios without items"):
        Recommender.fit(split.train, ml.users, ml.items, encoder=recommender.encoder,
                        config=RecommenderConfig(scenarios=(*config.scenarios, "western"),
                                                 tasks=("like",)))  # fmt: skip


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
