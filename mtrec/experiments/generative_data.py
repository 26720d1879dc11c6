"""What every next-item part of notebook 08's experiment shares: the data, the codes, the metrics.

ML-100k leave-last-out with what each item-ID scheme needs (:class:`NextItemData`), the
codebook of a scheme on it, the validation histories, the test metrics (HR/NDCG@5,10 with the
cold-item rows) and how a training run ended (:func:`convergence`). Used by
:mod:`mtrec.experiments.generative` (P5, SASRec, popularity) and
:mod:`mtrec.experiments.generative_lm` (the fine-tuned SmolLM2).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from mtrec.data import load_movielens
from mtrec.data.sequences import SequenceData
from mtrec.data.tasks.movielens import ml100k_leave_last_out, ml100k_next_item
from mtrec.eval.next_item import evaluate_next_item
from mtrec.models.generative.ids import item_codebook
from mtrec.train import History

__all__ = [
    "D_MODEL", "LEVELS", "NextItemData", "convergence", "load_next_item_data",
    "next_item_metrics", "scheme_codebook", "valid_histories",
]  # fmt: skip

D_MODEL = 32  # T5 width of every P5 here (notebook 08's), and of the collaborative vectors
LEVELS = (16, 16)  # residual k-means codebook sizes (then one collision level)


@dataclass
class NextItemData:
    """ML-100k leave-last-out, with what every scheme needs to build its codes."""

    items: pd.DataFrame  # item_id, title, genres
    seq: SequenceData  # padded tensors and seen masks (build_sequences)
    sequences: dict[int, list[tuple[int, int]]]  # user → training [(item, rating), ...]
    histories: list[list[int]]  # test histories: training items + the validation item
    full_sequences: list[list[int]]  # every user's whole sequence (train, valid, test)
    test_ratings: dict[int, int]  # user → the rating of the test film
    valid_ratings: dict[int, int]  # user → the rating of the validation film
    train_counts: dict[int, int]  # item → training interactions
    collaborative: np.ndarray  # (I, D) co-occurrence vectors, rows in items.item_id order
    semantic: np.ndarray  # (I, 384) MiniLM "title | genres", rows in items.item_id order


def load_next_item_data(d_model: int = D_MODEL) -> NextItemData:
    """The split, histories and the two kinds of item vectors (text vectors from the cache)."""
    from mtrec.extractors.text import TextEncoder
    from mtrec.models.sequential.cooccurrence import CoOccurrence

    ml = load_movielens()
    split = ml100k_leave_last_out(ml.ratings)
    num_items = int(ml.items.item_id.max())
    seq = ml100k_next_item(max_len=50, num_items=num_items, split=split)
    sequences = {
        int(u): list(zip(g.item_id.tolist(), g.rating.tolist()))
        for u, g in split.train.groupby("user_id", sort=True)
    }
    valid = dict(zip(split.valid.user_id, split.valid.item_id))
    histories = [
        [*map(int, seq.train_sequences[r]), int(valid[u])] for r, u in enumerate(seq.users)
    ]
    everything = pd.concat([split.train, split.valid, split.test], ignore_index=True)
    full = [g.item_id.tolist() for _, g in everything.groupby("user_id", sort=True)]
    # leave_last_out keeps time order within each part; parts are concatenated train → test
    train_seqs = [np.array(g.item_id) for _, g in split.train.groupby("user_id", sort=True)]
    ids = torch.tensor(ml.items.item_id.to_numpy(copy=True))
    cf = CoOccurrence(num_items, window=1).fit(train_seqs).item_vectors(d_model)[ids].numpy()
    texts = [f"{t} | {g.replace('|', ', ')}" for t, g in zip(ml.items.title, ml.items.genres)]
    semantic = TextEncoder().encode(texts, progress=False).float().numpy()
    counts = split.train.item_id.value_counts().to_dict()
    test_ratings = dict(zip(split.test.user_id.tolist(), split.test.rating.tolist()))
    valid_ratings = dict(zip(split.valid.user_id.tolist(), split.valid.rating.tolist()))
    return NextItemData(ml.items, seq, sequences, histories, full, test_ratings, valid_ratings,
                        counts, cf, semantic)  # fmt: skip


def scheme_codebook(data: NextItemData, scheme: str, seed: int):
    """The :func:`~mtrec.models.generative.ids.item_codebook` of ``scheme`` on this data."""
    vectors = {"collaborative": data.collaborative, "semantic": data.semantic}.get(scheme)
    return item_codebook(scheme, data.items.item_id.tolist(), sequences=data.full_sequences,
                         vectors=vectors, levels=LEVELS, seed=seed)  # fmt: skip


def valid_histories(data: NextItemData) -> list[list[int]]:
    """The validation histories: each user's training items (the validation item is the target)."""
    return [list(map(int, s)) for s in data.seq.train_sequences]


def convergence(history: History, cap: int) -> dict[str, float]:
    """The rows that say how training ended: epochs run, best epoch, and ``at_cap`` (1.0 when the
    cap, not early stopping, ended it)."""
    return {"epochs": float(len(history.epochs)), "best_epoch": float(history.best_epoch),
            "at_cap": float(len(history.epochs) >= cap)}  # fmt: skip


def next_item_metrics(scores_fn, history, data: NextItemData) -> dict[str, float]:
    """HR/NDCG@5,10 on all users, plus HR@10 on users whose test item is cold (no training
    interaction) and their count."""
    seq = data.seq
    result = evaluate_next_item(scores_fn, history, seq.test_target, seq.test_seen, k=(5, 10),
                                batch_size=128)  # fmt: skip
    cold = np.array([data.train_counts.get(int(t), 0) == 0 for t in seq.test_target])
    result["cold_users"] = float(cold.sum())
    if cold.any():
        rows = np.flatnonzero(cold)
        hist = [history[r] for r in rows] if isinstance(history, list) else history[rows]
        cold_result = evaluate_next_item(scores_fn, hist, seq.test_target[rows],
                                         seq.test_seen[rows], k=10)  # fmt: skip
        result["cold_hr@10"] = cold_result["hr@10"]
    return result
