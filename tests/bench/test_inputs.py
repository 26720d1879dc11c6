"""Synthetic benchmark inputs: real shapes, ids in range and never 0, fixed seeds."""

import torch

from mtrec import bench


def test_click_batch_has_real_shapes_and_no_zero_ids():
    features = bench.click_features(3, embed_dim=4, vocab=10)
    batch = bench.click_batch(features, 64, num_tasks=2)
    assert set(batch) == {"f0", "f1", "f2", "dense", "labels"}  # no scenario_ids to collate
    assert batch["f0"].shape == (64,) and batch["f0"].min() >= 1 and batch["f0"].max() < 10
    assert batch["dense"].shape == (64, 2)
    assert batch["labels"].shape == (64, 2) and set(batch["labels"].unique().tolist()) <= {0, 1}
    again = bench.click_batch(features, 64, num_tasks=2)
    torch.testing.assert_close(batch["dense"], again["dense"])  # fixed seed
