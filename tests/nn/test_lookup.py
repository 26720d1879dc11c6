"""The training lookup (FeatureEmbedding, STAR's scenario embedding): nn.Embedding's gradient,
bit for bit, summed by one index_add_ instead of a row-by-row backward."""

import pytest
import torch
from torch import nn

from mtrec.data.schema import DenseFeature, SequenceFeature, SparseFeature
from mtrec.nn.layers import FeatureEmbedding, lookup


def _grads(module: nn.Module, loss_of) -> dict[str, torch.Tensor]:
    module.zero_grad(set_to_none=True)
    loss_of(module).backward()
    return {name: p.grad.clone() for name, p in module.named_parameters()}


@pytest.mark.parametrize(("shape", "padding_idx"), [((4096,), 0), ((64, 50), 0), ((2048,), None)])
def test_the_lookup_gives_nn_embeddings_values_and_gradient_bit_for_bit(shape, padding_idx):
    g = torch.Generator().manual_seed(0)
    table = nn.Embedding(300, 16, padding_idx=padding_idx)
    ids = torch.randint(0, 300, shape, generator=g)  # many repeats, and padding ids
    ids.view(-1)[:7] = 0
    upstream = torch.randn(*shape, 16, generator=g)
    fast = _grads(table, lambda t: (lookup(t, ids) * upstream).sum())
    plain = _grads(table, lambda t: (t(ids) * upstream).sum())
    assert torch.equal(lookup(table, ids), table(ids))
    assert torch.equal(fast["weight"], plain["weight"])
    assert fast["weight"][0].any() == (padding_idx is None)  # padding learns nothing


def test_feature_embedding_trains_as_before_and_evaluates_with_the_plain_lookup():
    features = (SparseFeature("user", 50, 8), SequenceFeature("history", 40, 4, pooling="mean"),
                DenseFeature("age", 1))  # fmt: skip
    g = torch.Generator().manual_seed(1)
    batch = {"user": torch.randint(0, 50, (512,), generator=g),
             "history": torch.randint(0, 40, (512, 6), generator=g),
             "age": torch.rand(512, generator=g)}  # fmt: skip
    module = FeatureEmbedding(features)
    weights = torch.randn(module.out_dim, generator=g)
    train = _grads(module.train(), lambda m: (m(batch) * weights).square().sum())
    plain = _grads(module.eval(), lambda m: (m(batch) * weights).square().sum())  # table(ids)
    assert train.keys() == plain.keys()
    assert all(torch.equal(train[name], plain[name]) for name in train)
    with torch.no_grad():
        assert torch.equal(module.train()(batch), module.eval()(batch))
