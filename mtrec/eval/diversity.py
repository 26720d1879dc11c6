"""Beyond accuracy: how much of the catalogue the top-K lists cover, and how varied each list is.

* Coverage@K (Ge, Delgado-Battenfeld and Jannach, RecSys 2010): the share of candidate items that
  appear in at least one user's top-K list.
* Intra-list diversity (Ziegler et al., WWW 2005): the mean pairwise distance 1 − cos(f_i, f_j)
  between the K items of a list, over item feature vectors (here genres), averaged over users.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from mtrec.checks import check_finite, check_ids, check_int, check_nonempty, check_tensor


def coverage_at_k(top_items: Tensor, num_candidates: int) -> float:
    """Share of ``num_candidates`` items present in any row of the (U, K) top-K columns."""
    check_tensor(top_items, "top_items")
    num_candidates = check_int(num_candidates, "num_candidates", min=1)
    if top_items.ndim != 2 or num_candidates < 1:
        raise ValueError(
            f"expected (U, K) top items and num_candidates >= 1, got {tuple(top_items.shape)}, "
            f"{num_candidates}"
        )
    check_nonempty(top_items, "top_items", fix="pass the (U, K) top-K lists of at least one user")
    check_ids(top_items, "top_items")
    distinct = len(torch.unique(top_items))
    if distinct > num_candidates:
        raise ValueError(
            f"the lists hold {distinct} distinct items but num_candidates={num_candidates}; "
            "pass the number of items the lists were drawn from"
        )
    return distinct / num_candidates


def intra_list_diversity(top_items: Tensor, item_features: Tensor) -> float:
    """Mean over users of the mean pairwise 1 − cosine between the K items of each list.

    Args:
        top_items: (U, K) item columns, K >= 2.
        item_features: (I, F) item vectors (e.g. multi-hot genres); zero rows count as distance 1.
    """
    check_tensor(top_items, "top_items")
    check_tensor(item_features, "item_features", ndim=2)
    if top_items.ndim != 2 or top_items.shape[1] < 2:
        raise ValueError(f"expected (U, K) top items with K >= 2, got {tuple(top_items.shape)}")
    check_nonempty(top_items, "top_items", fix="pass the (U, K) top-K lists of at least one user")
    top_items = check_ids(top_items, "top_items", vocab_size=item_features.shape[0])
    check_finite(item_features.float(), "item_features")
    vectors = F.normalize(item_features.float(), dim=-1)[top_items]  # (U, K, F)
    cos = vectors @ vectors.transpose(1, 2)  # (U, K, K)
    k = top_items.shape[1]
    off_diagonal = (cos.sum(dim=(1, 2)) - cos.diagonal(dim1=1, dim2=2).sum(dim=1)) / (k * (k - 1))
    return float((1 - off_diagonal).mean())
