"""Fuse per-modality item vectors into one: concatenation, a gated sum, or multi-head attention.

Every fusion takes ``features``, a mapping modality name → (B, D_m) tensor, and an optional
``present`` (B, M) bool mask (False where an item lacks a modality, e.g. a film without audio),
and returns (B, D). With ``return_weights=True`` it also returns (B, M) per-modality weights
that sum to 1 over present modalities. The attention fusion follows the cross-modal Transformer
idea (Tsai et al., "Multimodal Transformer for Unaligned Multimodal Language Sequences", ACL 2019)
in its simplest form: a query built from all modalities attends over the modality tokens
(pooling by multi-head attention, Lee et al., "Set Transformer", ICML 2019).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor, nn

from mtrec.checks import check_finite, check_int, check_tensor


class _Fusion(nn.Module):
    """Shared input handling: per-modality projections to ``d_model`` and the presence mask."""

    def __init__(self, dims: Mapping[str, int], d_model: int) -> None:
        super().__init__()
        if not isinstance(dims, Mapping) or not dims:
            raise ValueError(
                f"dims must map at least one modality to its width, e.g. {{'text': 384}}, got "
                f"{dims!r}"
            )
        for name, width in dims.items():
            check_int(width, f"dims[{name!r}]", min=1)
        check_int(d_model, "d_model")
        if d_model < 1:
            raise ValueError(f"d_model must be >= 1, got {d_model}")
        self.modalities = list(dims)
        self.dims = dict(dims)
        self.d_model = d_model
        self.project = nn.ModuleDict({m: nn.Linear(d, d_model) for m, d in dims.items()})

    def _inputs(self, features: Mapping[str, Tensor], present: Tensor | None) -> tuple[Tensor, ...]:
        """Check inputs; return stacked projections (B, M, D) and the presence mask (B, M)."""
        if not isinstance(features, Mapping):
            raise TypeError(
                f"features must map modality names to (B, D_m) tensors, got "
                f"{type(features).__name__}; pass e.g. {{'text': text_vectors}}"
            )
        missing = [m for m in self.modalities if m not in features]
        if missing:
            raise ValueError(
                f"features lack modalities {missing}; expected {self.modalities}, got "
                f"{list(features)}. Pass zeros and present[:, m] = False for absent modalities"
            )
        features = {m: check_tensor(features[m], f"features[{m!r}]", ndim=2)
                    for m in self.modalities}  # fmt: skip
        batch = features[self.modalities[0]].shape[0]
        for m in self.modalities:
            if features[m].dtype == torch.bool or features[m].is_complex():
                raise TypeError(f"features[{m!r}] must hold real numbers, got {features[m].dtype}")
            check_finite(features[m], f"features[{m!r}]")
            weight = self.project[m].weight
            if features[m].dtype != weight.dtype:  # float64 / int vectors: the layer's dtype
                features[m] = features[m].to(weight.dtype)
            if features[m].shape != (batch, self.dims[m]):
                raise ValueError(
                    f"features[{m!r}] must be (B={batch}, {self.dims[m]}), "
                    f"got {tuple(features[m].shape)}"
                )
        tokens = torch.stack([self.project[m](features[m]) for m in self.modalities], 1)  # (B,M,D)
        if present is None:
            present = torch.ones(batch, len(self.modalities), dtype=torch.bool)
        present = torch.as_tensor(present).to(tokens.device).bool()
        if present.shape != (batch, len(self.modalities)):
            raise ValueError(f"present must be (B, M) = {(batch, len(self.modalities))}")
        if not present.any(dim=1).all():
            raise ValueError("every item needs at least one present modality")
        return tokens, present

    def forward(
        self,
        features: Mapping[str, Tensor],
        *,
        present: Tensor | None = None,
        return_weights: bool = False,
    ) -> Tensor | tuple[Tensor, Tensor]:
        """Fuse one batch of items.

        Args:
            features: modality name → (B, D_m) vectors.
            present: (B, M) bool, False where an item lacks a modality; default all present.
            return_weights: also return the (B, M) per-modality weights.

        Returns:
            (B, D) fused vectors (and the weights).
        """
        tokens, present = self._inputs(features, present)  # (B, M, D), (B, M)
        out, weights = self._fuse(tokens, present)
        check_finite(out, "the fused vectors", fix="the inputs are too large for float32 "
                     "arithmetic: normalise each modality's vectors (e.g. to unit length)")  # fmt: skip
        return (out, weights) if return_weights else out

    def _fuse(self, tokens: Tensor, present: Tensor) -> tuple[Tensor, Tensor]:
        raise NotImplementedError


class ConcatFusion(_Fusion):
    """Project each modality to ``d_model``, zero absent ones, concatenate, map to ``d_model``.

    Weights returned are equal shares of the present modalities (concatenation has no weighting).
    """

    def __init__(self, dims: Mapping[str, int], d_model: int) -> None:
        super().__init__(dims, d_model)
        self.out = nn.Linear(len(dims) * d_model, d_model)

    def _fuse(self, tokens: Tensor, present: Tensor) -> tuple[Tensor, Tensor]:
        """tokens (B, M, D), present (B, M) → (B, D) fused, (B, M) weights."""
        tokens = tokens * present.unsqueeze(-1)
        out = self.out(tokens.flatten(1))  # (B, D)
        weights = present.float() / present.sum(dim=1, keepdim=True)  # (B, M)
        return out, weights


class GatedFusion(_Fusion):
    """Gated sum: softmax gates over modalities, computed from all projected modalities.

    out = sum_m g_m * proj_m(x_m), with g = softmax(W [proj_1; ...; proj_M]) over present m.
    """

    def __init__(self, dims: Mapping[str, int], d_model: int) -> None:
        super().__init__(dims, d_model)
        self.gate = nn.Linear(len(dims) * d_model, len(dims))

    def _fuse(self, tokens: Tensor, present: Tensor) -> tuple[Tensor, Tensor]:
        """tokens (B, M, D), present (B, M) → (B, D) fused, (B, M) weights."""
        tokens = tokens * present.unsqueeze(-1)
        scores = self.gate(tokens.flatten(1)).masked_fill(~present, float("-inf"))  # (B, M)
        weights = scores.softmax(dim=-1)  # (B, M)
        out = torch.einsum("bm,bmd->bd", weights, tokens)  # (B, D)
        return out, weights


class AttentionFusion(_Fusion):
    """Cross-modal multi-head attention pooling over modality tokens.

    Tokens = projection + a learned modality embedding. The query is a learned vector plus the
    mean of the item's present tokens, so what the item looks like across modalities decides
    where it attends; the keys/values are the unmixed modality tokens, so the attention (averaged
    over heads) says how much each modality contributes. Absent modalities are masked out.
    """

    def __init__(self, dims: Mapping[str, int], d_model: int, num_heads: int = 4) -> None:
        super().__init__(dims, d_model)
        from mtrec.nn.attention import MultiHeadAttention

        check_int(num_heads, "num_heads", min=1)
        if d_model % num_heads:
            raise ValueError(f"d_model={d_model} must be divisible by num_heads={num_heads}")
        self.modality_embedding = nn.Parameter(torch.randn(len(dims), d_model) * 0.02)  # (M, D)
        self.query = nn.Parameter(torch.randn(d_model) * 0.02)  # (D,)
        self.attention = MultiHeadAttention(d_model, num_heads)
        self.norm = nn.LayerNorm(d_model)

    def _fuse(self, tokens: Tensor, present: Tensor) -> tuple[Tensor, Tensor]:
        """tokens (B, M, D), present (B, M) → (B, D) fused, (B, M) weights."""
        tokens = tokens + self.modality_embedding  # (B, M, D)
        share = present.float() / present.sum(dim=1, keepdim=True)  # (B, M)
        context = torch.einsum("bm,bmd->bd", share, tokens)  # (B, D) mean of present tokens
        query = self.norm(self.query + context).unsqueeze(1)  # (B, 1, D)
        out, attn = self.attention(
            query, tokens, tokens, key_padding_mask=~present, need_weights=True
        )  # (B, 1, D), (B, H, 1, M)
        weights = attn.mean(dim=1).squeeze(1) if attn.ndim == 4 else attn.squeeze(1)  # (B, M)
        out = out.squeeze(1)  # (B, D)
        return out, weights


FUSIONS = {"concat": ConcatFusion, "gated": GatedFusion, "attention": AttentionFusion}
