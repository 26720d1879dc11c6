"""How items are named: four item-ID schemes behind one interface, for the same P5 model.

A generative recommender writes an item as a short tuple of tokens, and how that tuple is chosen
is its central design choice (Hua, Xu, Ge and Zhang, "How to Index Item IDs for Recommendation
Foundation Models", SIGIR-AP 2023; Rajput et al., "Recommender Systems with Generative
Retrieval" (TIGER), NeurIPS 2023). Every scheme here gives each item a code of
:data:`CODE_LENGTH` tokens, with level-tagged tokens ``c<level>_<index>`` so the same prefix trie
and the same model serve them all (:func:`item_codebook`):

* ``random``: a seeded permutation r of the items, written as base-b digits of r (b = ceil of
  the cube root of the item count, 12 for ML-100k). Codes carry nothing about the items.
* ``sequential``: items numbered in order of first appearance when the users' sequences are
  read one user after another (P5's released data), then written as the same digits. Consecutive
  items of a sequence get consecutive numbers, so the next item is often "previous + 1" and shares
  its first digits: built from *full* sequences (test items included, as P5's data was) this
  leaks the answer. ``random`` is its control: the very same code set (the digits of 0..N-1),
  assigned to items by a seeded permutation instead of by appearance — the construction with the
  order shuffled away, so any gain of ``sequential`` over ``random`` is the leak.
* ``collaborative`` and ``semantic``: residual k-means (:func:`residual_kmeans`) over item
  vectors — collaborative vectors (co-occurrence PPMI + SVD of the training sequences) or MiniLM
  embeddings of the item profile ("title | genres", notebook 07). Similar items share prefixes.
  A last level resolves collisions: items in the same cell get 0, 1, 2, ... in order of their
  distance to the cell's centre (TIGER appends such a token too).

Residual k-means (documented stand-in for TIGER's RQ-VAE, which learns the same kind of
residual codebooks by gradient descent): level 1 clusters the vectors into K1 centres; level 2
clusters the residuals (vector − its level-1 centre) into K2 centres, and so on. The sum of an
item's chosen centres reconstructs its vector, more closely with every level.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.cluster import KMeans
from threadpoolctl import threadpool_limits

from mtrec.models.generative.codes import ItemCodebook

__all__ = [
    "CODE_LENGTH",
    "SCHEMES",
    "collision_level",
    "digit_codes",
    "first_appearance_order",
    "item_codebook",
    "residual_kmeans",
]

SCHEMES = ("random", "sequential", "collaborative", "semantic")
CODE_LENGTH = 3  # tokens per item in every scheme: 3 digits, or 2 k-means levels + collision


def residual_kmeans(
    vectors: np.ndarray, levels: Sequence[int], *, seed: int = 0
) -> tuple[np.ndarray, list[float]]:
    """Residual quantisation by k-means, one level after another.

    Args:
        vectors: (N, D) item vectors.
        levels: codebook size of each level, e.g. (16, 16).

    Returns:
        ((N, len(levels)) code indices, mean squared reconstruction error after each level).
    """
    x = np.asarray(vectors, dtype=np.float64)
    if x.ndim != 2 or len(x) == 0 or not np.isfinite(x).all():
        raise ValueError(f"vectors must be a finite (N, D) array with N >= 1, got shape {x.shape}")
    if not levels or any(int(k) < 1 for k in levels):
        raise ValueError(f"levels must be codebook sizes >= 1, got {list(levels)}")
    residual, codes, errors = x.copy(), [], []
    for depth, size in enumerate(levels):
        k = min(int(size), len(np.unique(residual.round(12), axis=0)))
        with threadpool_limits(1):  # tiny problem: one thread (no OpenMP waits on a busy CPU)
            km = KMeans(n_clusters=k, n_init=4, random_state=seed + depth).fit(residual)
        codes.append(km.labels_)
        residual = residual - km.cluster_centers_[km.labels_]
        errors.append(float((residual**2).sum(axis=1).mean()))
    return np.stack(codes, axis=1), errors


def collision_level(prefixes: np.ndarray, distance: np.ndarray) -> np.ndarray:
    """A last code level that makes codes unique: 0, 1, 2, ... within each prefix cell.

    Items sharing a prefix are numbered in order of ``distance`` (closest first; ties by row).
    """
    out = np.zeros(len(prefixes), dtype=np.int64)
    keys = [tuple(p) for p in np.asarray(prefixes).tolist()]
    cells: dict[tuple, list[int]] = {}
    for row, key in enumerate(keys):
        cells.setdefault(key, []).append(row)
    for rows in cells.values():
        for rank, row in enumerate(sorted(rows, key=lambda r: (distance[r], r))):
            out[row] = rank
    return out


def digit_codes(ranks: np.ndarray, base: int, length: int = CODE_LENGTH) -> np.ndarray:
    """(N, length) base-``base`` digits of each rank, most significant first."""
    ranks = np.asarray(ranks, dtype=np.int64)
    if base**length <= int(ranks.max(initial=0)):
        raise ValueError(f"{length} digits of base {base} cannot write rank {int(ranks.max())}")
    return np.stack([(ranks // base ** (length - 1 - d)) % base for d in range(length)], axis=1)


def first_appearance_order(
    item_ids: Sequence[int], sequences: Sequence[Sequence[int]]
) -> np.ndarray:
    """Rank of each item (aligned with ``item_ids``) in order of first appearance in the
    concatenated ``sequences``; items that never appear come last, by id."""
    seen: dict[int, int] = {}
    for seq in sequences:
        for item in seq:
            seen.setdefault(int(item), len(seen))
    rest = sorted(int(i) for i in item_ids if int(i) not in seen)
    order = {**{i: r for i, r in seen.items()}, **{i: len(seen) + r for r, i in enumerate(rest)}}
    ranks = np.array([order[int(i)] for i in item_ids])
    return np.argsort(np.argsort(ranks, kind="stable"), kind="stable")  # 0..N-1 over item_ids


def _as_codebook(item_ids: Sequence[int], table: np.ndarray) -> ItemCodebook:
    codes = {
        int(i): tuple(f"c{d}_{int(v)}" for d, v in enumerate(row))
        for i, row in zip(item_ids, table.tolist())
    }
    return ItemCodebook.from_codes(codes)


def item_codebook(
    scheme: str, item_ids: Sequence[int], *, sequences: Sequence[Sequence[int]] | None = None,
    vectors: np.ndarray | None = None, levels: Sequence[int] = (16, 16), seed: int = 0,
) -> ItemCodebook:  # fmt: skip
    """The codebook of one scheme (see the module docstring); every code has CODE_LENGTH tokens.

    Args:
        item_ids: the catalogue (distinct ids).
        sequences: users' item sequences, for ``sequential`` / ``sequential_shuffled``.
        vectors: (N, D) item vectors aligned with ``item_ids``, for ``collaborative`` / ``semantic``.
        levels: k-means codebook sizes (CODE_LENGTH - 1 of them; the last level resolves collisions).
        seed: permutation / k-means seed.
    """
    if scheme not in SCHEMES:
        raise ValueError(f"unknown item-ID scheme {scheme!r}; expected one of {list(SCHEMES)}")
    item_ids = [int(i) for i in item_ids]
    if not item_ids or len(set(item_ids)) != len(item_ids):
        raise ValueError("item_ids must be a non-empty list of distinct ids")
    n = len(item_ids)
    base = max(2, int(np.ceil(n ** (1 / CODE_LENGTH) - 1e-9)))
    while base**CODE_LENGTH < n:
        base += 1
    if scheme == "random":
        ranks = np.random.default_rng(seed).permutation(n)
        return _as_codebook(item_ids, digit_codes(ranks, base))
    if scheme == "sequential":
        if sequences is None:
            raise ValueError(f"scheme {scheme!r} needs sequences= (the users' item sequences)")
        ranks = first_appearance_order(item_ids, sequences)
        return _as_codebook(item_ids, digit_codes(ranks, base))
    if vectors is None or len(vectors) != n:
        raise ValueError(
            f"scheme {scheme!r} needs vectors= with one row per item ({n}), got "
            f"{None if vectors is None else len(vectors)} rows"
        )
    if len(levels) != CODE_LENGTH - 1:
        raise ValueError(f"levels must hold {CODE_LENGTH - 1} sizes, got {list(levels)}")
    codes, _ = residual_kmeans(vectors, levels, seed=seed)
    x = np.asarray(vectors, dtype=np.float64)
    centre = {}
    for key in {tuple(c) for c in codes.tolist()}:
        centre[key] = x[(codes == key).all(axis=1)].mean(axis=0)
    distance = np.array(
        [np.sum((x[r] - centre[tuple(c)]) ** 2) for r, c in enumerate(codes.tolist())]
    )
    table = np.concatenate([codes, collision_level(codes, distance)[:, None]], axis=1)
    return _as_codebook(item_ids, table)
