"""The torch scenario classifiers' networks and their training loop.

``"neural"`` on TF-IDF is a fastText-style bag of word embeddings (:class:`BagOfWords`); on
tabular columns, and ``"lm"`` on sentence embeddings, an :class:`~mtrec.nn.layers.MLP`.
:func:`train_network` is a plain Adam loop over shuffled mini-batches of cross-entropy.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mtrec.nn.layers import MLP


class BagOfWords(nn.Module):
    """TF-IDF-weighted mean of word embeddings → MLP → class logits (fastText-style)."""

    def __init__(self, vocab: int, embed_dim: int, hidden: Sequence[int], num_classes: int) -> None:
        super().__init__()
        self.bag = nn.EmbeddingBag(vocab, embed_dim, mode="sum")
        self.mlp = MLP(embed_dim, hidden, num_classes, dropout=0.1)

    def forward(self, x: tuple[Tensor, Tensor, Tensor]) -> Tensor:
        """(indices, offsets, weights) of B rows → (B, S) logits."""
        indices, offsets, weights = x
        return self.mlp(self.bag(indices, offsets, per_sample_weights=weights))


def rows_tensor(x: Any, rows: np.ndarray | None, device: torch.device) -> Any:
    """Rows of an (N, F) array as a float tensor, or of a sparse TF-IDF matrix as EmbeddingBag
    inputs (indices, offsets, weights)."""
    part = x if rows is None else x[rows]
    if isinstance(part, np.ndarray):
        return torch.as_tensor(part, dtype=torch.float32, device=device)
    part = part.tocsr()
    return tuple(
        torch.as_tensor(a, dtype=d, device=device)
        for a, d in ((part.indices, torch.long), (part.indptr[:-1], torch.long),
                     (part.data, torch.float32))
    )  # fmt: skip


def train_network(
    net: nn.Module,
    x: Any,
    y: np.ndarray,
    *,
    epochs: int,
    lr: float,
    batch_size: int,
    seed: int,
    device: torch.device,
) -> nn.Module:
    """Adam on cross-entropy over ``epochs`` shuffled passes; returns ``net`` in eval mode.

    Not :func:`mtrec.train.fit`: fit re-seeds after the network is built, which would change the
    dropout masks (and the random state left to the caller), so the classifiers' published
    scores would move; this loop has no validation split to select on either.
    """
    optimizer = torch.optim.Adam(net.parameters(), lr=lr, weight_decay=1e-5)
    targets = torch.as_tensor(y, dtype=torch.long, device=device)
    generator = torch.Generator().manual_seed(seed)
    net.train()
    for _ in range(epochs):
        order = torch.randperm(len(y), generator=generator).numpy()
        for start in range(0, len(y), batch_size):
            rows = order[start : start + batch_size]
            loss = F.cross_entropy(net(rows_tensor(x, rows, device)), targets[rows])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    return net.eval()
