"""Inputs and outputs of the ranking models: interaction matrices in, top-k of the unseen out.

Shared by the families that rank items (cf, sequential, kg), so no family imports another:
:func:`bpr_loss` and :class:`BPRSampler` train any pairwise (BPR) model — BPR-MF and CKE.

:func:`check_interactions` is the one check every top-K model applies to its (U, I) matrix.
:func:`top_k_unseen` is the one rule every ``recommend`` in :mod:`mtrec.models` follows.

A recommendation list never holds an item the user has already seen, never the padding id 0
(scored ``-inf`` by the sequential models) and never the same item twice. When a row has fewer
than ``k`` such items left, :func:`top_k_unseen` raises ``ValueError`` saying how many are left,
rather than padding the list with seen items or padding ids (a short list per row would not fit
a (B, k) tensor). NaN scores are refused: they come from a model whose weights or inputs hold
NaN, and ``topk`` would rank them first.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mtrec.checks import check_finite, check_ids, check_int, check_nonempty, check_tensor

__all__ = ["BPRSampler", "bpr_loss", "check_interactions", "top_k_unseen"]


def check_interactions(
    interactions: Tensor, name: str = "interactions", *, items: int | None = None
) -> Tensor:
    """``interactions`` when it is a finite (U, I) matrix with U, I >= 1 (and I = ``items``).

    A NaN would silently become "no interaction" (``x > 0`` is False) or spread through a
    similarity or an inverse, so it is refused; so is an empty matrix, which has nothing to fit.
    """
    check_tensor(interactions, name, ndim=2)
    check_nonempty(interactions, name, fix="pass a (U, I) matrix with at least one user and item")
    check_finite(interactions, name, fix="use 0 for 'no interaction' and 1 (or a count) for one")
    if items is not None and interactions.shape[1] != items:
        raise ValueError(
            f"{name} have {interactions.shape[1]} item columns, the model was fitted on {items}; "
            "use the same IdIndex for both"
        )
    return interactions


def top_k_unseen(
    scores: Tensor,
    history: Tensor | None,
    k: int,
    *,
    exclude_seen: bool = True,
    what: str = "model",
) -> Tensor:
    """(B, k) column ids of the ``k`` best-scoring items per row, minus each row's history.

    Args:
        scores: (B, C) scores over C columns (item ids); ``-inf`` marks a column that is never
            recommended (padding).
        history: (B, L) item ids already seen per row (0 = padding); used when
            ``exclude_seen``.
        k: list length, >= 1.
        exclude_seen: leave out the items in ``history``.
        what: the model's name, for error messages.

    Returns:
        (B, k) long column ids, best first (ties keep the lower id first, ``topk`` order).

    Raises:
        ValueError: ``scores`` hold NaN, or a row has fewer than ``k`` recommendable items.
    """
    k = check_int(k, "k", min=1)
    check_tensor(scores, f"{what} scores", ndim=2)
    if scores.is_floating_point() and bool(torch.isnan(scores).any()):
        rows = torch.isnan(scores).any(dim=1).nonzero().flatten()[:5].tolist()
        raise ValueError(
            f"{what} scores contain NaN (rows {rows}); NaN cannot be ranked: check that the "
            "model's weights and inputs are finite (a NaN training loss, NaN features)"
        )
    if exclude_seen:
        if history is None:
            raise ValueError("exclude_seen=True needs the (B, L) history of seen item ids")
        seen = check_ids(history, "history", vocab_size=scores.shape[1])
        if seen.ndim != 2 or seen.shape[0] != scores.shape[0]:
            raise ValueError(
                f"history must be (B, L) item ids with B = {scores.shape[0]} rows like the "
                f"scores, got shape {tuple(seen.shape)}"
            )
        scores = scores.scatter(1, seen, float("-inf"))  # (B, C), seen items last
    if len(scores) == 0:  # no row: an empty (0, k) list, whatever k
        return torch.empty(0, k, dtype=torch.long, device=scores.device)
    left = (scores > float("-inf")).sum(dim=1)  # (B,) recommendable items per row
    if int(left.min()) < k:
        row = int(left.argmin())
        n = int(left[row])
        if n == 0:  # an all -inf row: no list of any length can be made for it
            if exclude_seen:
                raise ValueError(
                    f"row {row} of the {what} scores has no unseen item left to recommend (every "
                    "item is in its history or padding); leave that row out (a user who has seen "
                    "the whole catalogue), or pass exclude_seen=False to allow seen items"
                )
            raise ValueError(
                f"row {row} of the {what} scores is all -inf: no item to recommend; leave that "
                "row out, or score at least k items above -inf"
            )
        if exclude_seen:
            fix = f"ask for k <= {n}, or pass exclude_seen=False to allow seen items"
            raise ValueError(
                f"k={k} but row {row} has only {n} unseen items left to recommend (the "
                f"catalogue minus padding and that row's history); {fix}"
            )
        raise ValueError(f"k={k} but row {row} has only {n} items to recommend; ask for k <= {n}")
    return scores.topk(k, dim=1).indices


def bpr_loss(model: nn.Module, batch: dict[str, Tensor], *, l2: float) -> Tensor:
    """BPR's loss for any model scoring ``model(user_ids, item_ids) -> (B,)`` logits.

    -log σ(s(u, i⁺) − s(u, i⁻)) + l2 · (||p_u||² + ||q_i⁺||² + ||q_i⁻||²), averaged over the batch,
    where p and q are the model's ``user_embedding`` and ``item_embedding`` (the ID vectors).
    Keys: "user_ids", "pos_item_ids", "neg_item_ids", each (B,) long.
    """
    for key in ("user_ids", "pos_item_ids", "neg_item_ids"):
        if key not in batch:
            raise KeyError(f"BPR batches need key {key!r}; got {sorted(batch)}")
    users = check_nonempty(batch["user_ids"], "batch['user_ids']", fix="pass at least one triple")
    diff = model(users, batch["pos_item_ids"]) - model(users, batch["neg_item_ids"])
    reg = (
        model.user_embedding(users).pow(2).sum(-1)
        + model.item_embedding(batch["pos_item_ids"]).pow(2).sum(-1)
        + model.item_embedding(batch["neg_item_ids"]).pow(2).sum(-1)
    )
    return -F.logsigmoid(diff).mean() + l2 * reg.mean()


class BPRSampler:
    """Re-iterable triples: every epoch pairs each positive (u, i⁺) with a fresh unseen i⁻.

    Args:
        interactions: (U, I) training matrix (> 0 = positive).
        batch_size: triples per batch.
        seed: base seed; epoch e uses ``seed + e``.
    """

    def __init__(self, interactions: Tensor, batch_size: int = 1024, *, seed: int = 0) -> None:
        self.seen = check_interactions(interactions) > 0  # (U, I)
        check_int(batch_size, "batch_size", min=1)
        self.users, self.items = self.seen.nonzero(as_tuple=True)
        if len(self.users) == 0:
            raise ValueError("BPRSampler needs at least one positive interaction")
        self.batch_size = batch_size
        self.seed = seed
        self.epoch = 0

    def __len__(self) -> int:
        return -(-len(self.users) // self.batch_size)

    def __iter__(self) -> Iterator[dict[str, Tensor]]:
        gen = torch.Generator().manual_seed(self.seed + self.epoch)
        self.epoch += 1
        num_items = self.seen.shape[1]
        neg = torch.randint(num_items, (len(self.users),), generator=gen)
        for _ in range(20):  # resample negatives that hit a positive (vectorised rounds)
            clash = self.seen[self.users, neg]
            if not clash.any():
                break
            neg[clash] = torch.randint(num_items, (int(clash.sum()),), generator=gen)
        order = torch.randperm(len(self.users), generator=gen)
        for start in range(0, len(order), self.batch_size):
            idx = order[start : start + self.batch_size]
            yield {
                "user_ids": self.users[idx],
                "pos_item_ids": self.items[idx],
                "neg_item_ids": neg[idx],
            }
