import numpy as np
import pandas as pd
import pytest
import torch

from mtrec.data.kg import (
    OOV_ENTITY,
    build_kg,
    check_triples,
    corrupt,
    item_kg_vectors,
    kg_item_feature,
    sequel_order_check,
    split_triples,
)
from mtrec.data.schema import PretrainedFeature
from mtrec.models.multitask.mmoe import MMoE, MMoEConfig
from mtrec.nn.layers import FeatureEmbedding


def _raw(num_films=40, seed=0):
    """Films with actors and genres, every relation with its inverse (as in ML-100k)."""
    rng = np.random.default_rng(seed)
    rows = []
    for f in range(num_films):
        for actor in rng.choice(30, size=3, replace=False):
            rows += [(f"film{f}", "film.actor", f"actor{actor}"), (f"actor{actor}", "actor.film", f"film{f}")]  # fmt: skip
        rows += [(f"film{f}", "film.genre", f"genre{f % 4}"), (f"genre{f % 4}", "genre.film", f"film{f}")]  # fmt: skip
    triples = pd.DataFrame(rows, columns=["head", "relation", "tail"])
    links = pd.DataFrame({"item_id": np.arange(1, num_films + 1), "entity": [f"film{f}" for f in range(num_films)]})  # fmt: skip
    return links, triples


def test_encoding_reserves_the_oov_entity_and_round_trips():
    links, triples = _raw()
    kg = build_kg(links, triples)
    assert kg.entities[0] == OOV_ENTITY and kg.num_relations == 4
    assert len(kg.triples) == len(triples) and int(kg.triples[:, [0, 2]].min()) >= 1
    decoded = [(kg.entities[h], kg.relations[r], kg.entities[t]) for h, r, t in kg.triples.tolist()]
    assert decoded == list(triples.itertuples(index=False, name=None))


def test_items_without_a_link_get_the_oov_entity_and_a_zero_vector():
    links, triples = _raw()
    kg = build_kg(links, triples)
    ids = kg.item_entity_ids([1, 2, 999])  # 999: no link
    assert ids[2] == 0 and (ids[:2] > 0).all()
    vectors = torch.randn(kg.num_entities, 6)
    items = item_kg_vectors(kg, vectors, np.array([1, 999]))
    torch.testing.assert_close(items[0], vectors[ids[0]])
    assert (items[1] == 0).all()


def test_unknown_entities_or_relations_raise_with_a_fix():
    links, triples = _raw()
    kg = build_kg(links, triples)
    bad = pd.DataFrame([("film0", "film.director", "film1")], columns=["head", "relation", "tail"])
    with pytest.raises(ValueError, match=r"relation names are not in the graph .*film\.director"):
        kg.encode_triples(bad)
    bad = pd.DataFrame([("film0", "film.actor", "nobody")], columns=["head", "relation", "tail"])
    with pytest.raises(ValueError, match=r"entity names are not in the graph .*Build the graph"):
        kg.encode_triples(bad)
    with pytest.raises(ValueError, match="missing columns"):
        build_kg(links, triples.rename(columns={"tail": "object"}))
    with pytest.raises(ValueError, match="appear twice"):
        build_kg(pd.concat([links, links.head(1)]), triples)
    with pytest.raises(ValueError, match=r"relations: expected \(B,\) ids"):
        check_triples({"heads": torch.tensor([1]), "relations": torch.tensor([9]), "tails": torch.tensor([1])}, 10, 4)  # fmt: skip


def test_link_prediction_split_is_leak_free():
    links, triples = _raw(num_films=80)
    kg = build_kg(links, triples)
    split = split_triples(kg.triples, valid_fraction=0.1, test_fraction=0.1, seed=3)
    parts = [split.train, split.valid, split.test]
    assert sum(len(p) for p in parts) == len(kg.triples) and len(split.test) > 0

    def pairs(x):
        return {(min(h, t), max(h, t)) for h, _, t in x.tolist()}

    # a held-out triple's inverse (or any triple between the same two entities) is never trained on
    assert not pairs(split.train) & pairs(split.test)
    assert not pairs(split.train) & pairs(split.valid) and not pairs(split.valid) & pairs(
        split.test
    )
    trained = set(split.train[:, [0, 2]].flatten().tolist())
    assert set(split.test[:, [0, 2]].flatten().tolist()) <= trained  # every test entity is learnt
    again = split_triples(kg.triples, valid_fraction=0.1, test_fraction=0.1, seed=3)
    assert torch.equal(again.test, split.test)
    with pytest.raises(ValueError, match="test_fraction"):
        split_triples(kg.triples, test_fraction=0.0)


def test_corrupt_changes_one_side_and_never_draws_oov():
    torch.manual_seed(0)
    heads, tails = torch.arange(1, 101), torch.arange(101, 201)
    neg_heads, neg_tails = corrupt(heads, tails, num_negatives=5, num_entities=300)
    assert neg_heads.shape == neg_tails.shape == (100, 5)
    kept_head, kept_tail = neg_heads == heads[:, None], neg_tails == tails[:, None]
    assert (kept_head | kept_tail).all() and (neg_heads > 0).all() and (neg_tails > 0).all()


def test_kg_feature_is_a_frozen_lookup_usable_by_existing_models():
    links, triples = _raw()
    kg = build_kg(links, triples)
    vectors = torch.randn(kg.num_entities, 6)
    feature = kg_item_feature(kg, vectors, dim=6)
    assert feature.vocab_size == kg.num_entities and feature.embed_dim == 6
    embed = FeatureEmbedding([feature])
    ids = kg.item_entity_ids([1, 2, 999])
    out = embed({"item_kg": ids})
    assert out.shape == (3, 6) and (out[2] == 0).all()
    torch.testing.assert_close(out[0], vectors[ids[0]])
    assert not any(p.requires_grad for p in embed.parameters())
    with pytest.raises(ValueError, match=r"outside 0\.\.|ids must lie in \[0, "):
        embed({"item_kg": torch.tensor([kg.num_entities])})
    model = MMoE(MMoEConfig.tiny(features=(feature,)))
    batch = {"item_kg": ids, "labels": torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])}
    assert model(batch).shape == (3, 2) and model.loss(batch).shape == (2,)


def test_kg_embedding_of_the_wrong_dimension_raises_with_a_fix():
    links, triples = _raw()
    kg = build_kg(links, triples)
    with pytest.raises(ValueError, match=r"expected vectors of dimension 64, received .*set dim=6"):
        kg_item_feature(kg, torch.randn(kg.num_entities, 6), dim=64)
    with pytest.raises(ValueError, match=r"expected entity vectors of shape \(\d+, D\)"):
        item_kg_vectors(kg, torch.randn(5, 6), np.array([1]))
    with pytest.raises(ValueError, match="2-D float tensor"):
        PretrainedFeature("x", torch.zeros(5, dtype=torch.long))


def test_sequel_order_check_tells_right_links_from_shuffled_ones():
    triples = pd.DataFrame(
        [(f"film{i}", "film.film.sequel", f"film{i + 1}") for i in range(20)],
        columns=["head", "relation", "tail"],
    )
    years = pd.Series(np.arange(1950, 1971), index=np.arange(1, 22))  # item i+1 came out later
    right = pd.DataFrame({"item_id": np.arange(1, 22), "entity": [f"film{i}" for i in range(21)]})
    check = sequel_order_check(build_kg(right, triples), years)
    assert check == {"pairs": 20, "later": 1.0, "earlier": 0.0}
    shuffled = right.assign(item_id=np.random.default_rng(0).permutation(right.item_id.to_numpy()))
    assert sequel_order_check(build_kg(shuffled, triples), years)["later"] < 0.8


def test_trainable_pretrained_feature_gets_gradients_and_keeps_the_callers_table():
    table = torch.randn(5, 3)
    embed = FeatureEmbedding([PretrainedFeature("kg", table, trainable=True)])
    embed({"kg": torch.tensor([1, 2])}).sum().backward()
    weight = embed.tables["kg"].weight
    assert (
        weight.requires_grad and weight.grad[1].abs().sum() > 0 and weight.grad[3].abs().sum() == 0
    )
    with torch.no_grad():
        weight.add_(1.0)
    assert not torch.equal(weight, table)  # FeatureEmbedding copies the table
