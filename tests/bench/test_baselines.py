"""The loop baselines train through a per-sample DataLoader; the every-tower reference agrees."""

import pytest
import torch

from mtrec import bench


@pytest.mark.parametrize("kind", ["mmoe", "ple"])
def test_typical_loop_baselines_train_through_a_per_sample_dataloader(kind):
    features = bench.click_features(3, vocab=20)
    torch.manual_seed(0)
    if kind == "mmoe":
        model = bench.LoopMMoE(
            features, num_experts=3, expert_hidden=(8, 4), tower_hidden=(4,), num_tasks=2
        )
    else:
        model = bench.LoopPLE(
            features,
            num_levels=2,
            num_specific=1,
            num_shared=2,
            expert_hidden=(8, 4),
            tower_hidden=(4,),
            num_tasks=2,
        )
    data = bench.click_batch(features, 96, num_tasks=2)
    loader = torch.utils.data.DataLoader(bench.PerSampleDataset(data), batch_size=32)
    first = next(iter(loader))
    torch.testing.assert_close(first["f0"], data["f0"][:32])  # default collate of 32 dicts
    probs = model(first)
    assert probs.shape == (32, 2) and ((probs > 0) & (probs < 1)).all()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    assert bench.naive_train_epoch(model, loader, optimizer) == 96


def test_the_every_tower_reference_computes_what_the_router_computes():
    torch.manual_seed(0)
    routed = bench.router_built(64, num_scenarios=8)
    torch.manual_seed(0)
    every = bench.every_tower_built(64, num_scenarios=8)  # same weights, S x the work
    torch.testing.assert_close(every.predict(every.batch), routed.predict(routed.batch))
