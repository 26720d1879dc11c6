"""Notebook 04's experiment: two-tower recommenders on ML-100k with ID, text or fused item towers.

Protocol (also written in notebook 04): positives are ratings >= 4; per-user stratified 75/25
split (:func:`mtrec.data.tasks.movielens.ml100k_topk_split`, one per seed); every film a user
rated outside their test positives is removed from their candidates; full ranking over all films;
NDCG@10 and Recall@10 over users with a test positive. Training: BPR with one uniformly random
negative per positive, redrawn every epoch; batches of :data:`BATCH_SIZE`, Adam lr :data:`LR`, a
fixed number of epochs (no model selection, so no validation part).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from mtrec.checks import check_choice, check_int
from mtrec.data import TensorBatcher
from mtrec.data.tasks.movielens import TOPK_TEST_FRACTION, ml100k_topk_split
from mtrec.eval.metrics import ndcg_at_k, recall_at_k
from mtrec.extractors import FUSIONS
from mtrec.models.retrieval.two_tower import TwoTower, TwoTowerConfig
from mtrec.train import fit
from mtrec.utils import set_seed

BATCH_SIZE = 4096  # BPR triples per step
LR = 1e-2  # Adam learning rate
D_MODEL = 32  # width of the user and item vectors
TEST_FRACTION = TOPK_TEST_FRACTION  # share of each user's positives held out for the test
KINDS = ("id", "text", *FUSIONS)  # item towers: ID only, text only, or one fusion of FUSIONS


@contextmanager
def threads(n: int) -> Iterator[None]:
    """Run the block with ``n`` intra-op CPU threads, then restore the previous setting.

    Tiny CNN/RNN/embedding layers train faster on one thread than split across a busy CPU.
    """
    before = torch.get_num_threads()
    torch.set_num_threads(check_int(n, "threads", min=1))
    try:
        yield
    finally:
        torch.set_num_threads(before)


def same_class_hit_rate(vectors: torch.Tensor, labels: np.ndarray, k: int) -> float:
    """Share of items whose k nearest neighbours (cosine, itself excluded) hold a same-class item.

    ``vectors`` (N, D) must be L2-normalised; ``labels`` (N,) classes. This is a retrieval
    probe of an embedding (hit rate at k), not the recommender's Recall@k.
    """
    k = check_int(k, "k", min=1, max=len(vectors) - 1)
    similarity = vectors @ vectors.T  # (N, N)
    similarity.fill_diagonal_(-float("inf"))
    nearest = similarity.topk(k, dim=1).indices.numpy()  # (N, k)
    return float((labels[nearest] == labels[:, None]).any(axis=1).mean())


@dataclass
class TopKSplit:
    """One seed's split: training positives, test positives and every (user, film) to hide."""

    train: pd.DataFrame  # user_id, item_id of the training positives
    test: pd.DataFrame  # user_id, item_id of the test positives
    seen: pd.DataFrame  # every rated (user, film) except the test positives


def topk_split(positives: pd.DataFrame, rated: pd.DataFrame, seed: int) -> TopKSplit:
    """Per-user 75/25 split of ``positives``; ``seen`` = ``rated`` minus the test positives."""
    split = ml100k_topk_split(positives, seed=seed)
    marked = rated.merge(split.test, how="left", indicator=True)
    return TopKSplit(split.train, split.test, marked[marked["_merge"] == "left_only"])


def build_two_tower(
    kind: str, num_users: int, num_items: int, features: Mapping[str, torch.Tensor]
) -> TwoTower:
    """A two-tower model with item tower ``kind`` (one of :data:`KINDS`)."""
    check_choice(kind, "kind", KINDS)
    if kind == "id":
        return TwoTower(TwoTowerConfig(num_users, num_items, D_MODEL, "id"))
    tower = "content" if kind == "text" else "fused"
    fusion = None if kind == "text" else FUSIONS[kind]
    config = TwoTowerConfig(num_users, num_items, D_MODEL, tower, content="text")
    return TwoTower(config, features=features, fusion=fusion)


def train_two_tower(
    kind: str, split: TopKSplit, features: Mapping[str, torch.Tensor], *,
    num_users: int, num_items: int, epochs: int, seed: int,
) -> TwoTower:  # fmt: skip
    """Fit a two-tower model for ``epochs`` epochs, one fresh random negative per positive each.

    ``fit`` runs once per epoch (sharing one Adam optimizer) so each epoch gets its own negatives.
    """
    epochs = check_int(epochs, "epochs", min=1)
    negatives = np.random.default_rng(seed).integers(1, num_items, (epochs, len(split.train)))
    set_seed(seed)
    model = build_two_tower(kind, num_users, num_items, features)
    data = {
        "user_ids": torch.tensor(split.train["user_id"].to_numpy()),
        "pos_item_ids": torch.tensor(split.train["item_id"].to_numpy()),
        "neg_item_ids": torch.from_numpy(negatives[0]),
    }
    batches = TensorBatcher(data, BATCH_SIZE, shuffle=True, seed=seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=LR)
    for epoch in range(epochs):
        batches.tensors["neg_item_ids"] = torch.from_numpy(negatives[epoch])
        fit(model, batches, epochs=1, optimizer=optimizer, seed=seed + epoch, progress=False,
            device="cpu")  # fmt: skip
    return model


def evaluate_two_tower(model: TwoTower, split: TopKSplit) -> dict[str, float]:
    """NDCG@10 and Recall@10 of a full ranking over films 1..I-1 (id 0 is unused), seen removed."""
    num_items = model.config.num_items
    with torch.no_grad():
        items = model.item_vectors(torch.arange(1, num_items))  # (I-1, D)
        scores = (model.user_embedding.weight[1:] @ items.T).numpy()  # row u-1 = user u
    scores[split.seen["user_id"] - 1, split.seen["item_id"] - 1] = -np.inf
    relevance = np.zeros_like(scores)
    relevance[split.test["user_id"] - 1, split.test["item_id"] - 1] = 1
    keep = relevance.sum(1) > 0
    return {
        "ndcg@10": float(ndcg_at_k(scores[keep], relevance[keep], 10)),
        "recall@10": float(recall_at_k(scores[keep], relevance[keep], 10)),
    }
