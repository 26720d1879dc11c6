import pandas as pd
import pytest
import torch

from mtrec.data import (
    CategoryEncoder,
    DenseFeature,
    SequenceFeature,
    SparseFeature,
    TensorBatcher,
    frame_to_tensors,
)
from mtrec.nn.layers import MLP, FeatureEmbedding


def test_category_encoder_reserves_zero_for_unknown():
    enc = CategoryEncoder().fit(["b", "a", "b", None])
    assert enc.vocab_size == 3
    assert enc.transform(["a", "b", "zzz", None]).tolist() == [1, 2, 0, 0]
    assert enc.inverse([1, 2]) == ["a", "b"]
    with pytest.raises(RuntimeError, match="not fitted"):
        CategoryEncoder().transform(["a"])


def test_feature_specs_validate():
    with pytest.raises(ValueError):
        SparseFeature("u", vocab_size=1)
    with pytest.raises(ValueError):
        SequenceFeature("h", vocab_size=10, pooling="max")


def test_batcher_covers_every_row_once_per_epoch():
    tensors = {"x": torch.arange(10), "y": torch.arange(10) * 2}
    batcher = TensorBatcher(tensors, 4, shuffle=True, seed=1)
    assert len(batcher) == 3
    seen = torch.cat([b["x"] for b in batcher])
    assert sorted(seen.tolist()) == list(range(10))
    for b in batcher:
        torch.testing.assert_close(b["y"], b["x"] * 2)  # rows stay aligned
    assert len(TensorBatcher(tensors, 4, drop_last=True)) == 2
    with pytest.raises(ValueError, match="same first dimension"):
        TensorBatcher({"a": torch.zeros(3), "b": torch.zeros(4)}, 2)


def test_batcher_reshuffles_per_epoch_but_is_seeded():
    tensors = {"x": torch.arange(50)}
    first = [b["x"].tolist() for b in TensorBatcher(tensors, 50, shuffle=True, seed=0)]
    again = [b["x"].tolist() for b in TensorBatcher(tensors, 50, shuffle=True, seed=0)]
    assert first == again
    batcher = TensorBatcher(tensors, 50, shuffle=True, seed=0)
    assert next(iter(batcher))["x"].tolist() != next(iter(batcher))["x"].tolist()


def test_frame_to_tensors_and_feature_embedding():
    frame = pd.DataFrame({"u": [1, 2, 0], "age": [0.1, -0.2, 0.3]})
    batch = frame_to_tensors(frame, {"u": torch.long, "age": torch.float32})
    batch["hist"] = torch.tensor([[1, 2, 0], [3, 0, 0], [0, 0, 0]])
    features = [SparseFeature("u", 3, 4), DenseFeature("age"), SequenceFeature("hist", 5, 2, 3)]
    emb = FeatureEmbedding(features)
    out = emb(batch)
    assert out.shape == (3, emb.out_dim) == (3, 7)
    torch.testing.assert_close(out[2, 5:], torch.zeros(2))  # all-padding history pools to 0
    with pytest.raises(KeyError, match="lacks feature keys"):
        emb({"u": batch["u"]})
    assert MLP(7, [8, 4], 1)(out).shape == (3, 1)


def test_grouped_batches_hold_one_group_each_and_cover_every_row_once():
    groups = torch.tensor([0, 1, 1, 2, 0, 1, 2, 2, 2, 1])  # (N,)
    tensors = {"row": torch.arange(10), "group": groups}
    batcher = TensorBatcher(tensors, 2, shuffle=True, seed=3, group_ids=groups)
    batches = list(batcher)
    assert len(batches) == len(batcher) == 1 + 2 + 2  # ceil(2/2) + ceil(4/2) + ceil(4/2)
    assert all(b["group"].unique().numel() == 1 for b in batches)
    assert sorted(torch.cat([b["row"] for b in batches]).tolist()) == list(range(10))
    again = [b["row"].tolist() for b in TensorBatcher(tensors, 2, shuffle=True, seed=3,
                                                        group_ids=groups)]  # fmt: skip
    assert again == [b["row"].tolist() for b in batches]  # seeded
    assert [b["row"].tolist() for b in list(batcher)] != again  # next epoch: a new order
    dropped = TensorBatcher(tensors, 3, drop_last=True, group_ids=groups)
    assert [b["row"].tolist() for b in dropped] == [[1, 2, 5], [3, 6, 7]]
    with pytest.raises(ValueError, match="group_ids must be an integer tensor of shape"):
        TensorBatcher(tensors, 2, group_ids=torch.zeros(9, dtype=torch.long))
