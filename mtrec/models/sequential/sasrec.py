"""SASRec: causal self-attention over a user's item history predicts the next item.

Kang & McAuley, "Self-Attentive Sequential Recommendation", ICDM 2018. Item embeddings (scaled by
sqrt(D)) + learned positions → pre-LN causal Transformer blocks (:class:`mtrec.nn.transformer.
EncoderLayer`) → final LayerNorm; the score of item j at position t is ``h_t · e_j`` with the
input embedding table shared as the output layer.

Loss: ``"ce"`` (default) is full-softmax cross-entropy over all N items at every position, the
choice Klenitskiy & Vasilev ("Turning Dross Into Gold Loss: is BERT4Rec really better than
SASRec?", RecSys 2023) found much stronger than the paper's ``"bce"`` (one sampled negative per
position); ``"bce"`` is kept to reproduce the paper. Notebook 03 trains with ``"ce"``. Padding (item 0) is masked as a key and skipped in the
loss; with left padding and the causal mask, padded query rows see no key and yield zeros.

Batch keys: "item_ids" (B, L) left-padded history (0 = pad), "targets" (B, L) the next item at
each position (0 = no target). See :func:`mtrec.data.sequences.build_sequences`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mtrec.checks import check_ids, check_int, check_probability, check_tensor, checked_once
from mtrec.models.ranking import top_k_unseen
from mtrec.nn.attention import trusted_values
from mtrec.nn.transformer import Encoder, LearnedPositionalEncoding

__all__ = ["SASRec", "SASRecConfig"]


@dataclass(frozen=True)
class SASRecConfig:
    """SASRec hyper-parameters (defaults: the paper's ML-1M settings with D=64)."""

    num_items: int  # N; item ids 1..N, 0 = padding
    max_len: int = 50  # L, most recent items kept
    d_model: int = 64  # D
    num_heads: int = 1  # H (the paper uses one head)
    num_layers: int = 2  # self-attention blocks
    d_ff: int = 64  # feed-forward width (paper: D)
    dropout: float = 0.2  # embedding, attention and feed-forward dropout
    loss: str = "ce"  # "ce" full softmax or "bce" with one sampled negative (the paper)

    def __post_init__(self) -> None:
        for name in ("num_items", "max_len", "d_model", "num_heads", "num_layers", "d_ff"):
            check_int(getattr(self, name), f"SASRecConfig.{name}", min=1)
        check_probability(self.dropout, "SASRecConfig.dropout")
        if self.d_model % self.num_heads:
            raise ValueError(
                f"d_model={self.d_model} must be divisible by num_heads={self.num_heads}"
            )
        if self.loss not in ("ce", "bce"):
            raise ValueError(f"loss must be 'ce' or 'bce', got {self.loss!r}")

    @classmethod
    def tiny(cls, **overrides: object) -> SASRecConfig:
        """A small config for tests."""
        base = dict(num_items=30, max_len=8, d_model=16, num_heads=2, d_ff=16, dropout=0.0)
        return cls(**{**base, **overrides})


class SASRec(nn.Module):
    """History (B, L) → hidden states (B, L, D) → next-item logits over items 0..N."""

    def __init__(self, config: SASRecConfig) -> None:
        super().__init__()
        c = self.config = config
        self.item_embed = nn.Embedding(c.num_items + 1, c.d_model, padding_idx=0)
        nn.init.normal_(self.item_embed.weight, std=c.d_model**-0.5)
        with torch.no_grad():
            self.item_embed.weight[0].zero_()
        self.position = LearnedPositionalEncoding(c.d_model, c.max_len)
        self.drop = nn.Dropout(c.dropout)
        self.encoder = Encoder(
            c.num_layers, c.d_model, c.num_heads, d_ff=c.d_ff, dropout=c.dropout, norm_first=True
        )

    def _check(self, item_ids: Tensor) -> None:
        check_tensor(item_ids, "item_ids")
        if item_ids.ndim != 2 or item_ids.dtype != torch.long:
            raise ValueError(
                f"item_ids must be (B, L) int64, got {item_ids.dtype} {tuple(item_ids.shape)}"
            )
        if item_ids.shape[1] > self.config.max_len:
            raise ValueError(
                f"history length {item_ids.shape[1]} exceeds max_len {self.config.max_len}; keep "
                f"the last {self.config.max_len} items (mtrec.data.sequences.left_pad)"
            )
        check_ids(item_ids, "item_ids", self.config.num_items + 1)  # 0 = pad, 1..N

    def _check_whole(self, data: Mapping[str, Tensor]) -> None:
        """The id checks over a batcher's whole data (run once: :func:`checked_once`)."""
        self._check(data["item_ids"])
        check_ids(data["targets"], "targets", self.config.num_items + 1)

    def forward(self, item_ids: Tensor, *, checked: bool = False) -> Tensor:
        """(B, L) left-padded item ids → (B, L, D) hidden states (h_t summarises items ≤ t).

        ``checked=True``: the ids were checked already (the whole data, by :meth:`loss`)."""
        if not checked:
            self._check(item_ids)
        pad = item_ids == 0
        x = self.item_embed(item_ids) * math.sqrt(self.config.d_model)
        x = self.drop(self.position(x)) * (~pad)[..., None]  # (B, L, D), pads stay 0
        with trusted_values():  # embeddings of checked ids: no NaN check per layer
            return self.encoder(x, padding_mask=pad, is_causal=True)

    def loss(self, batch: dict[str, Tensor]) -> Tensor:
        """Mean next-item loss over positions with a target (``config.loss``).

        A batch without any target (every position 0, or B = 0) raises ValueError: its mean
        loss would be NaN.
        """
        for key in ("item_ids", "targets"):
            if key not in batch:
                raise KeyError(f"SASRec batches need {key!r} (B, L); got keys {sorted(batch)}")
        covered = checked_once(batch, ("sasrec", self.config.num_items), self._check_whole)
        hidden = self(batch["item_ids"], checked=covered)  # (B, L, D)
        targets = batch["targets"]
        if targets.shape != batch["item_ids"].shape:
            raise ValueError(
                f"targets must match item_ids {tuple(batch['item_ids'].shape)}, got "
                f"{tuple(targets.shape)}"
            )
        if not covered:
            targets = check_ids(targets, "targets", self.config.num_items + 1)  # 0 = no target
        keep = targets > 0
        if not bool(keep.any()):
            raise ValueError(
                "this batch has no target (every 'targets' entry is 0 = no target): the mean "
                "loss over no position is undefined; drop empty sequences from the batch"
            )
        h, t = hidden[keep], targets[keep]  # (P, D), (P,)
        table = self.item_embed.weight  # (N+1, D)
        if self.config.loss == "ce":
            logits = h @ table[1:].T  # (P, N): padding is never a class
            return F.cross_entropy(logits, t - 1)
        negatives = torch.randint(1, self.config.num_items + 1, t.shape, device=t.device)
        pos = (h * table[t]).sum(-1)
        neg = (h * table[negatives]).sum(-1)
        return F.binary_cross_entropy_with_logits(
            torch.cat([pos, neg]), torch.cat([torch.ones_like(pos), torch.zeros_like(neg)])
        )

    @torch.no_grad()
    def scores(self, histories: Tensor) -> Tensor:
        """(B, L) left-padded histories → (B, N+1) next-item logits; column 0 (padding) is -inf."""
        if check_tensor(histories, "histories").ndim == 2 and histories.shape[1] == 0:
            raise ValueError(
                "histories have length L = 0: the next item is scored from the last position; "
                "left-pad every history to L >= 1 with 0 (an all-padding row is fine)"
            )
        was_training = self.training
        self.eval()
        last = self(histories)[:, -1]  # (B, D): left padding puts the newest item last
        scores = last @ self.item_embed.weight.T  # (B, N+1)
        scores[:, 0] = float("-inf")
        self.train(was_training)
        return scores

    def recommend(self, history: Tensor, k: int = 10, *, exclude_seen: bool = True) -> Tensor:
        """(B, L) histories → (B, k) top item ids, minus items already in the history.

        Never returns padding (0) or a seen item: a row with fewer than ``k`` unseen items
        left raises ValueError (:func:`mtrec.models.ranking.top_k_unseen`).
        """
        scores = self.scores(history)
        return top_k_unseen(scores, history, k, exclude_seen=exclude_seen, what="SASRec")
