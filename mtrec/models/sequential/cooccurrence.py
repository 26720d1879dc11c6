"""Item-to-item co-occurrence: recommend what followed the user's recent items in other histories.

The "people who watched X next watched Y" baseline, a windowed form of item-to-item
collaborative filtering (Linden, Smith & York, "Amazon.com Recommendations: Item-to-Item
Collaborative Filtering", IEEE Internet Computing, 2003). ``C[i, j]`` counts how often item j
comes within ``window`` steps after item i in a training sequence; rows are normalised to
``P(j | i)``; a user's score is the recency-weighted sum of the rows of their last ``recent`` items.

Usage::

    cooc = CoOccurrence(num_items, window=3, recent=5).fit(train_sequences)
    scores = cooc.scores(histories)  # (B, N+1) for (B, L) left-padded histories

Memory is a dense (N+1, N+1) float32 matrix: fine for thousands of items, not for millions.

:meth:`CoOccurrence.item_vectors` turns the same counts into dense item vectors (a truncated SVD
of the positive pointwise mutual information, Levy, Goldberg & Dagan, TACL 2015): collaborative
item embeddings that other models can start from (notebook 08 seeds P5's item tokens with them).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from mtrec.checks import check_float, check_ids, check_int, check_nonempty

__all__ = ["CoOccurrence"]


class CoOccurrence:
    """Windowed, directed item-to-item transition counts, row-normalised."""

    def __init__(
        self,
        num_items: int,
        *,
        window: int = 3,
        recent: int = 5,
        decay: float = 0.7,
        symmetric: bool = False,
    ) -> None:
        """Args: num_items N; window: steps ahead that count as co-occurring; recent: how many of
        the user's last items vote; decay: weight of the item ``a`` steps back is ``decay**a``;
        symmetric: count j-before-i too (plain co-occurrence instead of "followed by")."""
        for name, value in (("num_items", num_items), ("window", window), ("recent", recent)):
            check_int(value, name)  # a whole number; the range is checked below
        check_float(decay, "decay")
        if num_items < 1 or window < 1 or recent < 1 or not 0.0 < decay <= 1.0:
            raise ValueError(
                f"need num_items, window, recent >= 1 and 0 < decay <= 1, got num_items="
                f"{num_items}, window={window}, recent={recent}, decay={decay}"
            )
        self.num_items, self.window, self.recent = num_items, window, recent
        self.decay, self.symmetric = decay, symmetric
        self.matrix: Tensor | None = None  # (N+1, N+1) P(j | i)
        self.counts: Tensor | None = None  # (N+1, N+1) raw windowed pair counts

    def fit(self, sequences: list[np.ndarray]) -> CoOccurrence:
        """Count pairs in time-ordered sequences of item ids 1..N (one array per user)."""
        n = self.num_items + 1
        check_nonempty(sequences, "sequences", fix="pass one array of item ids per user")
        arrays = [np.asarray(s).reshape(-1) for s in sequences]
        flat = check_ids(np.concatenate(arrays), "sequences").numpy()  # 1.7 refused, not cut
        owner = np.repeat(np.arange(len(arrays)), [a.size for a in arrays])
        if flat.size and (flat.min() < 1 or flat.max() >= n):
            raise ValueError(
                f"item ids must be in 1..{self.num_items}, got {flat.min()}..{flat.max()}"
            )
        counts = np.zeros(n * n, dtype=np.float64)
        for step in range(1, self.window + 1):  # a handful of offsets, each vectorised
            same = owner[:-step] == owner[step:]
            a, b = flat[:-step][same], flat[step:][same]
            counts += np.bincount(a * n + b, minlength=n * n)
            if self.symmetric:
                counts += np.bincount(b * n + a, minlength=n * n)
        self.counts = torch.from_numpy(counts.reshape(n, n)).float()
        self.matrix = self.counts / self.counts.sum(dim=1, keepdim=True).clamp_min(1.0)
        return self

    def item_vectors(self, dim: int) -> Tensor:
        """(N+1, dim) item vectors from the counts: truncated SVD of the PPMI matrix.

        The counts are symmetrised (i before j and j before i both count), turned into positive
        pointwise mutual information ``max(0, log(c_ij · c / (c_i · c_j)))``, and factorised as
        ``U_k · sqrt(S_k)`` (the symmetric SVD embedding of Levy, Goldberg & Dagan, TACL 2015):
        items watched in similar company point the same way. Rows are scaled to a mean norm of
        1; row 0 (padding) and items never seen are zero.
        """
        if self.counts is None:
            raise RuntimeError("CoOccurrence is not fitted; call fit(train_sequences) first")
        n = self.counts.shape[0]
        if not 1 <= dim <= n:
            raise ValueError(f"dim must be in 1..{n} (items + 1), got {dim}")
        counts = (self.counts + self.counts.T).double()  # (N+1, N+1), symmetric
        row = counts.sum(dim=1, keepdim=True)  # (N+1, 1)
        expected = row * row.T / counts.sum().clamp_min(1.0)  # c_i · c_j / c
        ppmi = torch.log(counts / expected).nan_to_num(0.0, posinf=0.0, neginf=0.0).clamp_min(0.0)
        u, s, _ = torch.linalg.svd(ppmi)  # exact and deterministic; (N+1)² is small here
        vectors = (u[:, :dim] * s[:dim].sqrt()).float()  # (N+1, dim)
        norms = vectors.norm(dim=1)
        return vectors / norms[norms > 0].mean().clamp_min(1e-12)

    def scores(self, histories: Tensor) -> Tensor:
        """(B, L) left-padded histories (0 = pad) → (B, N+1) scores; column 0 is -inf."""
        if self.matrix is None:
            raise RuntimeError("CoOccurrence is not fitted; call fit(train_sequences) first")
        histories = check_ids(histories, "histories", self.num_items + 1)  # 0 = pad, 1..N
        if histories.ndim != 2:
            raise ValueError(
                f"histories must be (B, L) left-padded item ids, got shape {tuple(histories.shape)}"
            )
        last = histories[:, -self.recent :].cpu()  # (B, r), most recent last
        ages = torch.arange(last.shape[1] - 1, -1, -1, dtype=torch.float32)
        weights = (self.decay**ages) * (last > 0)  # (B, r), padding votes 0
        scores = torch.einsum("br,brn->bn", weights, self.matrix[last])  # (B, N+1)
        scores[:, 0] = float("-inf")
        return scores
