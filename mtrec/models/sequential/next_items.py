"""Generative next-items recommender: an encoder reads the history, a decoder emits the next k ids.

Sequence-to-sequence recommendation in the style of Sutskever, Vinyals & Le, "Sequence to Sequence
Learning with Neural Networks", NeurIPS 2014, on the Transformer of Vaswani et al., NeurIPS 2017
(:class:`mtrec.nn.encoder_decoder.EncoderDecoder`); item ids are the vocabulary, as in generative
retrieval recommenders (e.g. Rajput et al., "Recommender Systems with Generative Retrieval",
NeurIPS 2023, which uses semantic ids instead). Tokens: 0 = pad, 1..N = items, N+1 = start.

Training: each epoch, :class:`NextItemsSampler` cuts every user's training sequence at random
points: the L items before a cut are the source, the k items after it the target (teacher
forcing, cross-entropy). Ranking all items uses the decoder's first-step distribution
(:meth:`NextItems.scores`); :meth:`NextItems.generate` decodes k distinct unseen items (greedy or
beam search).

Batch keys: "history" (B, L) left-padded item ids, "next_items" (B, k) (0 = none).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from mtrec.checks import check_ids, check_int, check_probability, check_tensor
from mtrec.nn.encoder_decoder import EncoderDecoder, EncoderDecoderConfig

__all__ = ["NextItems", "NextItemsConfig", "NextItemsSampler"]


@dataclass(frozen=True)
class NextItemsConfig:
    """Next-items encoder-decoder hyper-parameters."""

    num_items: int  # N; item ids 1..N, 0 = padding, N+1 = start token
    history_len: int = 20  # L, source length (most recent items)
    k: int = 3  # items the decoder emits
    d_model: int = 64  # D
    num_heads: int = 2  # H
    num_encoder_layers: int = 2
    num_decoder_layers: int = 1
    d_ff: int = 128  # feed-forward width
    dropout: float = 0.1

    def __post_init__(self) -> None:
        for name in (
            "num_items",
            "history_len",
            "k",
            "d_model",
            "num_heads",
            "num_encoder_layers",
            "num_decoder_layers",
            "d_ff",
        ):
            check_int(getattr(self, name), f"NextItemsConfig.{name}", min=1)
        check_probability(self.dropout, "NextItemsConfig.dropout")
        if self.num_items < 1 or self.history_len < 1 or self.k < 1:
            raise ValueError(
                f"need num_items, history_len, k >= 1, got {self.num_items}, "
                f"{self.history_len}, {self.k}"
            )

    @classmethod
    def tiny(cls, **overrides: object) -> NextItemsConfig:
        """A small config for tests."""
        base = dict(num_items=20, history_len=6, k=2, d_model=32, d_ff=64, dropout=0.0)
        base.update(num_encoder_layers=1, num_decoder_layers=1)
        return cls(**{**base, **overrides})


class NextItems(nn.Module):
    """History (B, L) → EncoderDecoder → logits for the next k items over tokens 0..N+1."""

    def __init__(self, config: NextItemsConfig) -> None:
        super().__init__()
        self.config = c = config
        vocab = c.num_items + 2
        self.net = EncoderDecoder(
            EncoderDecoderConfig(
                src_vocab=vocab,
                tgt_vocab=vocab,
                d_model=c.d_model,
                num_heads=c.num_heads,
                num_encoder_layers=c.num_encoder_layers,
                num_decoder_layers=c.num_decoder_layers,
                d_ff=c.d_ff,
                dropout=c.dropout,
                max_len=max(c.history_len, c.k),
                bos_id=c.num_items + 1,
                share_embeddings=True,
            )
        )

    def _check(self, history: Tensor) -> None:
        c = self.config
        check_tensor(history, "history")
        if history.ndim != 2 or history.dtype != torch.long or history.shape[1] > c.history_len:
            raise ValueError(
                f"history must be (B, L <= {c.history_len}) int64, got {history.dtype} "
                f"{tuple(history.shape)}"
            )
        check_ids(history, "history", c.num_items + 1)  # 0 = pad, 1..N

    def loss(self, batch: dict[str, Tensor]) -> Tensor:
        """Teacher-forced cross-entropy over the k target positions (0 = no target, skipped).

        A batch without any target item raises ValueError (its mean loss would be NaN).
        """
        for key in ("history", "next_items"):
            if key not in batch:
                raise KeyError(f"NextItems batches need {key!r}; got keys {sorted(batch)}")
        self._check(batch["history"])
        check_ids(batch["next_items"], "next_items", self.config.num_items + 1)
        return self.net.loss({"src": batch["history"], "tgt": batch["next_items"]})

    @torch.no_grad()
    def scores(self, histories: Tensor) -> Tensor:
        """(B, L) histories → (B, N+1) first-step logits; column 0 (padding) is -inf."""
        self._check(histories)
        was_training = self.training
        self.eval()
        memory, pad = self.net.encode(histories)
        start = torch.full_like(histories[:, :1], self.config.num_items + 1)
        scores = self.net.decode(start, memory, pad)[:, 0, : self.config.num_items + 1]
        scores[:, 0] = float("-inf")
        self.train(was_training)
        return scores

    @torch.no_grad()
    def generate(
        self,
        history: Tensor,
        *,
        k: int | None = None,
        beam_size: int = 1,
        exclude_seen: bool = True,
    ) -> Tensor:
        """(B, L) histories → (B, k) distinct item ids (greedy, or the best beam).

        Never emits padding, the start token, a repeat or (with ``exclude_seen``) a seen item:
        a row with fewer than ``k`` such items left raises ValueError, the rule of
        :func:`mtrec.models.ranking.top_k_unseen`.
        """
        self._check(history)
        k = self.config.k if k is None else k
        longest = self.net.config.max_len
        if check_int(k, "k", min=1) > longest:
            raise ValueError(
                f"k={k} exceeds the {longest} output positions this decoder was built with "
                "(max(history_len, k) of NextItemsConfig); ask for fewer items or build the "
                "model with a larger NextItemsConfig.k"
            )
        check_int(beam_size, "beam_size", min=1)
        self.eval()
        allowed = torch.ones(len(history), self.config.num_items + 2, dtype=torch.bool)
        allowed = allowed.to(history.device)
        allowed[:, self.config.num_items + 1] = False  # never the start token
        if exclude_seen:
            allowed.scatter_(1, history, False)
        left = allowed[:, 1:].sum(dim=1)  # (B,) items that may still be emitted
        if len(left) and int(left.min()) < k:
            row = int(left.argmin())
            raise ValueError(
                f"k={k} but row {row} has only {int(left[row])} unseen items left to recommend "
                f"(the catalogue minus that row's history); ask for k <= {int(left[row])}"
                + (", or pass exclude_seen=False to allow seen items" if exclude_seen else "")
            )
        if beam_size == 1:
            return self.net.greedy_decode(history, k, allowed=allowed, no_repeat=True)
        seqs, _ = self.net.beam_search(
            history, k, beam_size=beam_size, allowed=allowed, no_repeat=True
        )
        return seqs[:, 0]


class NextItemsSampler:
    """Re-iterable training batches: fresh random cut points in every user's sequence per epoch.

    Args:
        sequences: one time-ordered array of item ids (1..N) per user (training part only).
        history_len: L source items before a cut (left-padded).
        k: target items after a cut (right-padded with 0).
        cuts_per_user: samples per user per epoch.
        batch_size: rows per batch.
        seed: base seed; epoch e uses seed + e.
    """

    def __init__(
        self,
        sequences: list[np.ndarray],
        *,
        history_len: int,
        k: int,
        cuts_per_user: int = 4,
        batch_size: int = 256,
        seed: int = 0,
    ) -> None:
        usable = [np.asarray(s, dtype=np.int64) for s in sequences if len(s) >= 2]
        if not usable:
            raise ValueError("no sequence has >= 2 items: nothing to predict")
        width = max(len(s) for s in usable)
        padded = np.zeros((len(usable), width), dtype=np.int64)
        for row, seq in enumerate(usable):  # once, at construction
            padded[row, : len(seq)] = seq
        self.items = torch.from_numpy(padded)  # (U, W) right-padded
        self.lengths = torch.tensor([len(s) for s in usable])  # (U,)
        self.history_len, self.k, self.cuts = history_len, k, cuts_per_user
        self.batch_size, self.seed, self.epoch = batch_size, seed, 0

    def __len__(self) -> int:
        return -(-len(self.lengths) * self.cuts // self.batch_size)

    def __iter__(self) -> Iterator[dict[str, Tensor]]:
        g = torch.Generator().manual_seed(self.seed + self.epoch)
        self.epoch += 1
        users = torch.arange(len(self.lengths)).repeat(self.cuts)  # (S,)
        users = users[torch.randperm(len(users), generator=g)]
        n = self.lengths[users]
        cut = 1 + (torch.rand(len(users), generator=g) * (n - 1)).long()  # 1..n-1
        src_pos = cut[:, None] - self.history_len + torch.arange(self.history_len)  # (S, L)
        tgt_pos = cut[:, None] + torch.arange(self.k)  # (S, k)
        rows = users[:, None]
        width = self.items.shape[1]
        history = self.items[rows, src_pos.clamp(0, width - 1)].masked_fill(src_pos < 0, 0)
        targets = self.items[rows, tgt_pos.clamp(max=width - 1)]
        targets = targets.masked_fill(tgt_pos >= n[:, None], 0)
        for start in range(0, len(users), self.batch_size):
            part = slice(start, start + self.batch_size)
            yield {"history": history[part], "next_items": targets[part]}
