import pytest
import torch

from mtrec.models.cf.bpr import BPRMF, BPRConfig
from mtrec.models.cf.hybrid import (
    WeightedHybrid,
    lm_initialised_bpr,
    place_cold_items,
    standardise,
    weight_grid,
)
from mtrec.nn.pca import pca_project


def test_weight_grid_is_the_simplex():
    grid = weight_grid(["a", "b", "c"], step=0.5)
    assert len(grid) == 6 and all(abs(sum(w.values()) - 1) < 1e-9 for w in grid)


def test_tune_picks_the_informative_component():
    gen = torch.Generator().manual_seed(0)
    truth = torch.rand(20, 30, generator=gen)
    components = {"good": truth + 0.01 * torch.rand(20, 30, generator=gen),
                  "noise": torch.rand(20, 30, generator=gen)}  # fmt: skip

    def metric(scores):
        return float(torch.corrcoef(torch.stack([scores.flatten(), truth.flatten()]))[0, 1])

    hybrid, tried = WeightedHybrid.tune(components, metric, step=0.25)
    assert len(tried) == 5 and hybrid.weights["good"] == 1.0
    torch.testing.assert_close(hybrid.scores(components), standardise(components["good"]))
    with pytest.raises(ValueError, match="missing component"):
        hybrid.scores({"noise": components["noise"]})


def test_lm_initialised_embeddings_follow_text_pca():
    vectors = torch.randn(8, 6, generator=torch.Generator().manual_seed(1))
    config = BPRConfig.tiny()
    model = lm_initialised_bpr(config, vectors)
    projected = pca_project(vectors, config.d_model)
    cos = torch.nn.functional.cosine_similarity(model.item_embedding.weight, projected, dim=1)
    torch.testing.assert_close(cos, torch.ones(8))
    with pytest.raises(ValueError, match="num_items"):
        lm_initialised_bpr(config, torch.randn(5, 6))


def test_place_cold_items_recovers_a_linear_map():
    gen = torch.Generator().manual_seed(2)
    vectors = torch.randn(8, 3, generator=gen)
    model = BPRMF(BPRConfig.tiny())
    mapping = torch.randn(3, 4, generator=gen)
    with torch.no_grad():
        model.item_embedding.weight.copy_(vectors @ mapping)
    truth = model.item_embedding.weight[6:].clone()
    with torch.no_grad():
        model.item_embedding.weight[6:] = 0
    warm = torch.tensor([True] * 6 + [False] * 2)
    place_cold_items(model, vectors, warm, l2=1e-6)
    torch.testing.assert_close(model.item_embedding.weight[6:], truth, atol=1e-3, rtol=1e-3)
    with pytest.raises(ValueError, match="both warm"):
        place_cold_items(model, vectors, torch.ones(8, dtype=torch.bool))
