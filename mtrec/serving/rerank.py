"""The last stage of a request: the unseen, de-duplicated candidate pool, its MMR re-ranking
and attention explanations.

MMR and the explanations work on the unit-norm item text embeddings (I, D): their cosine is the
item-item similarity MMR penalises, and the attention of a recommended item over the user's
history names the films it was recommended "because of".
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from mtrec.checks import check_finite
from mtrec.nn.attention import scaled_dot_product_attention

RECENT = 50  # explanations attend over the user's last RECENT history items


def unseen_distinct(scores: Tensor, title_ids: Tensor, history: Tensor) -> Tensor:
    """Item rows by descending score, without seen titles and with one copy of each title.

    Args:
        scores: (I,) fused score of every item row.
        title_ids: (I,) each row's title id (repeated titles share one).
        history: (L,) rows the user has seen: every copy of their titles is left out.

    Returns:
        (P,) rows, best first (ties in row order); of a repeated title, its best-scored copy.
    """
    seen_title = torch.zeros(int(title_ids.max()) + 1, dtype=torch.bool)
    seen_title[title_ids[history]] = True
    scores = scores.masked_fill(seen_title[title_ids], float("-inf"))
    order = torch.argsort(scores, descending=True, stable=True)  # (I,)
    titles = title_ids[order]
    first = torch.full_like(seen_title, len(order), dtype=torch.long).scatter_reduce(
        0, titles, torch.arange(len(order)), reduce="amin"
    )  # first position of each title in the order
    keep = (first[titles] == torch.arange(len(order))) & torch.isfinite(scores[order])
    return order[keep]


def mmr(relevance: Tensor, similarity: Tensor, k: int, trade_off: float) -> list[int]:
    """Maximal marginal relevance (Carbonell & Goldstein, SIGIR 1998) over a candidate pool.

    Picks, k times, the candidate maximising ``trade_off · rel − (1 − trade_off) · max sim to the
    picked ones``; ``trade_off = 1`` is plain relevance order.

    Args:
        relevance: (N,) scores, rescaled to [0, 1] inside.
        similarity: (N, N) item-item similarities.
    """
    if not 0.0 <= trade_off <= 1.0:
        raise ValueError(f"trade_off must be in [0, 1], got {trade_off}")
    rel = (relevance - relevance.min()) / (relevance.max() - relevance.min()).clamp_min(1e-9)
    picked: list[int] = []
    max_sim = torch.full_like(rel, -1.0)  # no item picked yet: no redundancy penalty
    available = torch.ones_like(rel, dtype=torch.bool)
    for _ in range(min(k, len(rel))):
        gain = trade_off * rel - (1 - trade_off) * max_sim.clamp_min(0.0)
        best = int(gain.masked_fill(~available, float("-inf")).argmax())
        picked.append(best)
        available[best] = False
        max_sim = torch.maximum(max_sim, similarity[best])
    return picked


def attention_weights(
    embeddings: Tensor, item_rows: Tensor, history: Tensor, *, tau: float
) -> Tensor:
    """(K, L) attention of each recommended item over the recent history (softmax(cos / τ)).

    Args:
        embeddings: (I, D) unit-norm item embeddings.
        item_rows: (K,) rows of the recommended items.
        history: the user's item rows, oldest first; the last ``RECENT`` (L of them) are used.
        tau: temperature of the softmax over cosines.
    """
    d = embeddings.shape[1]
    recent = history[-RECENT:]
    q = embeddings[item_rows] * math.sqrt(d) / tau  # scaled so weights = softmax(cos/τ)
    keys = embeddings[recent]  # (L, D)
    _, weights = scaled_dot_product_attention(q, keys, keys, return_weights=True)
    return weights


def explain(
    titles: list[str], embeddings: Tensor, item_rows: Tensor, history: Tensor, *, tau: float
) -> list[str]:
    """One line per recommended item: the (at most) two history titles it attends to most."""
    if len(history) == 0:
        return ["popular in this context (no history yet)"] * len(item_rows)
    weights = attention_weights(embeddings, item_rows, history, tau=tau)  # (K, L)
    check_finite(weights, "explanation attention weights", fix="the item embeddings hold NaN or "
                 "inf (a damaged save?): re-encode the items or re-fit the recommender")  # fmt: skip
    recent = history[-RECENT:]
    top_w, top_i = weights.topk(min(2, weights.shape[1]), dim=1)
    return [
        " + ".join(f"{titles[int(recent[i])]} ({w:.2f})" for w, i in zip(ws, idx))
        for ws, idx in zip(top_w.tolist(), top_i.tolist())
    ]
