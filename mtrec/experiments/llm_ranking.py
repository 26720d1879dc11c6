"""Zero-shot ranking with SmolLM2: is the next film the likeliest continuation of the history?

Protocol (notebook 15, part 1): ML-100k leave-last-out (:func:`mtrec.data.tasks.
ml100k_leave_last_out`); for each sampled user, the held-out last film is ranked against
:data:`NEGATIVES` films the user never rated (uniform, seeded), 100 candidates in all. The
language model scores each candidate title by its log-likelihood after a prompt listing the
user's last :data:`HISTORY` films (training and validation rows, oldest first;
:func:`mtrec.models.llm.history_prompt`); "sum" is the title's total log-probability, "mean"
the per-token mean (length-normalised). Baselines on the same candidates: popularity (number of
training ratings) and random scores. Ranks are pessimistic (a tie ranks the target last) and
HR@10 / NDCG@10 follow from them; random's expected HR@10 is exactly 10/100.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from mtrec.checks import check_int
from mtrec.data.loaders import load_movielens
from mtrec.data.tasks import ml100k_leave_last_out
from mtrec.data.tasks.prompts import item_titles
from mtrec.eval.metrics import hit_ndcg_from_rank, target_rank
from mtrec.models.llm import candidate_log_likelihood, history_prompt

NEGATIVES = 99  # sampled films per target (100 candidates, the target first)
HISTORY = 10  # most recent films in the prompt
K = 10  # HR@K, NDCG@K


@dataclass(frozen=True)
class RankingCase:
    """One user's candidates: column 0 is the held-out target."""

    user_id: int
    history: tuple[int, ...]  # item ids, oldest first (training and validation rows)
    candidates: np.ndarray  # (1 + NEGATIVES,) item ids, target first


def ranking_cases(num_users: int, *, seed: int = 0) -> tuple[list[RankingCase], dict, np.ndarray]:
    """``num_users`` sampled users' cases, the item titles and the training popularity.

    Returns:
        (cases, item id → title, popularity (max item id + 1,) training-row counts).
    """
    num_users = check_int(num_users, "num_users", min=1)
    movielens = load_movielens()
    split = ml100k_leave_last_out(movielens.ratings)
    titles = item_titles(movielens.items)
    known = pd.concat([split.train, split.valid])  # what the model may see of each user
    num_items = int(movielens.ratings.item_id.max()) + 1
    popularity = np.bincount(split.train.item_id.to_numpy(), minlength=num_items)
    users = np.sort(split.test.user_id.unique())
    if num_users > len(users):
        raise ValueError(f"num_users={num_users} but ML-100k has {len(users)} test users")
    rng = np.random.default_rng(seed)
    chosen = np.sort(rng.choice(users, size=num_users, replace=False))
    rated = movielens.ratings.groupby("user_id").item_id.agg(set)
    histories = known.groupby("user_id", sort=False).item_id.agg(tuple)  # time order kept
    targets = split.test.set_index("user_id").item_id
    pool = np.array(sorted(titles))
    cases = []
    for user in chosen:
        allowed = np.setdiff1d(pool, np.fromiter(rated[user], dtype=np.int64))
        negatives = rng.choice(allowed, size=NEGATIVES, replace=False)
        candidates = np.concatenate([[int(targets[user])], negatives])
        cases.append(RankingCase(int(user), tuple(histories[user]), candidates))
    return cases, titles, popularity


def language_model_scores(
    model, tokenizer, case: RankingCase, titles: dict
) -> dict[str, np.ndarray]:
    """``{"sum": (C,), "mean": (C,)}`` log-likelihood scores of the case's candidate titles."""
    unknown = sorted({int(i) for i in (*case.history, *case.candidates)} - set(titles))
    if unknown:
        raise ValueError(
            f"item ids {unknown[:5]} have no title ({len(unknown)} unknown; titles cover ids "
            f"{min(titles)}..{max(titles)}); build cases with ranking_cases(), which draws "
            "only catalogue items"
        )
    prompt = history_prompt([titles[i] for i in case.history], max_items=HISTORY)
    texts = [" " + titles[int(i)] for i in case.candidates]
    total = candidate_log_likelihood(model, tokenizer, prompt, texts, reduce="sum").numpy()
    lengths = np.array(
        [len(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]]
    )
    return {"sum": total, "mean": total / lengths}


def hit_ndcg(scores: np.ndarray) -> tuple[float, float]:
    """HR@K and NDCG@K of (U, C) scores whose column 0 is each user's target."""
    ranks = target_rank(torch.as_tensor(scores), torch.zeros(len(scores), dtype=torch.long))
    return hit_ndcg_from_rank(ranks, K)


def zero_shot_rows(model, tokenizer, *, num_users: int, seed: int) -> pd.DataFrame:
    """One seed's rows: model (smollm2-sum, smollm2-mean, popularity, random) × hr@10, ndcg@10."""
    cases, titles, popularity = ranking_cases(num_users, seed=seed)
    scores: dict[str, list[np.ndarray]] = {"smollm2-sum": [], "smollm2-mean": []}
    for case in cases:
        for reduce, values in language_model_scores(model, tokenizer, case, titles).items():
            scores[f"smollm2-{reduce}"].append(values)
    candidates = np.stack([case.candidates for case in cases])  # (U, C)
    scores["popularity"] = list(popularity[candidates].astype(float))
    rng = np.random.default_rng(seed)
    scores["random"] = list(rng.random(candidates.shape))
    rows = []
    for name, values in scores.items():
        hr, ndcg = hit_ndcg(np.stack(values))
        rows += [(name, f"hr@{K}", hr), (name, f"ndcg@{K}", ndcg)]
    return pd.DataFrame(rows, columns=["model", "metric", "value"])
