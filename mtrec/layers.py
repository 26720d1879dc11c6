"""Shared building blocks: an MLP and the embedding module built from declared features."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from mtrec.data.schema import DenseFeature, Feature, SequenceFeature, SparseFeature, TextFeature


class MLP(nn.Module):
    """Linear → (LayerNorm) → activation → dropout, repeated; optional linear output layer.

    Args:
        in_dim: input width D_in.
        hidden: widths of the hidden layers.
        out_dim: width of a final plain linear layer (None: end after the last hidden layer).
        dropout: dropout after each hidden activation.
        norm: put a LayerNorm before each activation.
    """

    def __init__(
        self,
        in_dim: int,
        hidden: Sequence[int],
        out_dim: int | None = None,
        *,
        dropout: float = 0.0,
        norm: bool = False,
        activation: type[nn.Module] = nn.ReLU,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = in_dim
        for h in hidden:
            layers.append(nn.Linear(width, h))
            if norm:
                layers.append(nn.LayerNorm(h))
            layers.append(activation())
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            width = h
        if out_dim is not None:
            layers.append(nn.Linear(width, out_dim))
            width = out_dim
        self.net = nn.Sequential(*layers)
        self.out_dim = width

    def forward(self, x: Tensor) -> Tensor:
        """(..., D_in) → (..., out_dim)."""
        return self.net(x)


class FeatureEmbedding(nn.Module):
    """Embed a batch described by declared features into one flat vector per row.

    Sparse features are looked up, sequence features are looked up and pooled over non-padding
    positions (id 0 is padding), dense and text features pass through. The output concatenates
    them in declaration order: (B, ``out_dim``).
    """

    def __init__(self, features: Sequence[Feature]) -> None:
        super().__init__()
        if not features:
            raise ValueError("FeatureEmbedding needs at least one feature")
        names = [f.name for f in features]
        if len(set(names)) != len(names):
            raise ValueError(f"feature names must be unique, got {names}")
        self.features = list(features)
        self.tables = nn.ModuleDict()
        out_dim = 0
        for f in self.features:
            if isinstance(f, (SparseFeature, SequenceFeature)):
                self.tables[f.name] = nn.Embedding(f.vocab_size, f.embed_dim, padding_idx=0)
                nn.init.normal_(self.tables[f.name].weight, std=0.05)
                with torch.no_grad():
                    self.tables[f.name].weight[0].zero_()
                out_dim += f.embed_dim
            elif isinstance(f, (DenseFeature, TextFeature)):
                out_dim += f.dim
            else:
                raise TypeError(f"unknown feature type {type(f).__name__} for {f.name!r}")
        self.out_dim = out_dim

    def forward(self, batch: dict[str, Tensor]) -> Tensor:
        """batch[name]: (B,) ids, (B, L) id sequences, (B,) or (B, dim) floats → (B, out_dim)."""
        missing = [f.name for f in self.features if f.name not in batch]
        if missing:
            raise KeyError(f"batch lacks feature keys {missing}; it has {sorted(batch)}")
        parts = []
        for f in self.features:
            x = batch[f.name]
            if isinstance(f, SparseFeature):
                parts.append(self.tables[f.name](x.long()))  # (B, D_f)
            elif isinstance(f, SequenceFeature):
                ids = x.long()  # (B, L)
                vectors = self.tables[f.name](ids)  # (B, L, D_f)
                pooled = vectors.sum(dim=1)  # (B, D_f)
                if f.pooling == "mean":
                    pooled = pooled / (ids != 0).sum(dim=1, keepdim=True).clamp_min(1)
                parts.append(pooled)
            else:
                x = x.float()
                parts.append(x.unsqueeze(-1) if x.ndim == 1 else x)  # (B, dim)
        return torch.cat(parts, dim=-1)
