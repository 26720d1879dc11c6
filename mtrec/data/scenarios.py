"""Multi-scenario benchmark datasets: scenario definitions in the style of Scenario-Wise Rec.

Scenario-Wise Rec (Li et al., "Scenario-Wise Rec: A Multi-Scenario Recommendation Benchmark",
arXiv:2412.17374, 2024) splits MovieLens-1M into three scenarios by user age group — ML-1M's
codes {1, 18} (under 25), {25} (25–34) and {35, 45, 50, 56} (35 and over) — and labels a rating
as positive when it is above 3. MovieLens-100k records exact ages, so the same boundaries apply
directly: under 25, 25–34, 35 and over. On ML-100k they hold 26.6 %, 35.4 % and 38.0 % of the
ratings (ML-1M: 21.1 %, 39.6 %, 39.4 %); the protocol is written in ``datasets/README.md``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from mtrec.data.loaders import load_movielens

# name → [lowest age, highest age] (inclusive), in scenario-id order.
ML_AGE_SCENARIOS: dict[str, tuple[int, int]] = {
    "under_25": (0, 24),
    "25_34": (25, 34),
    "35_plus": (35, 200),
}


def age_scenario_ids(ages: pd.Series | np.ndarray) -> np.ndarray:
    """Scenario id (0..2, ``ML_AGE_SCENARIOS`` order) of each age; raise on ages outside them."""
    ages = np.asarray(ages)
    ids = np.full(len(ages), -1, dtype=np.int64)
    for sid, (low, high) in enumerate(ML_AGE_SCENARIOS.values()):
        ids[(ages >= low) & (ages <= high)] = sid
    if (ids < 0).any():
        raise ValueError(f"ages {np.unique(ages[ids < 0])[:5].tolist()} fall in no age scenario")
    return ids


def movielens_age_scenarios() -> pd.DataFrame:
    """MovieLens-100k ratings as a 3-scenario click problem (scenario = the user's age group).

    One row per rating. Columns: user_id, item_id, rating (1..5), timestamp, age, gender,
    occupation, zip_code, genre (the movie's first listed genre, Scenario-Wise Rec's
    ``cate_id``), scenario (name from ``ML_AGE_SCENARIOS``), scenario_id (0..2) and the task
    label ``like`` = 1 if rating > 3 else 0. Split and encode downstream (e.g.
    :func:`mtrec.data.random_split` 8:1:1, encoders fitted on the training part).
    """
    ml = load_movielens()
    items = ml.items[["item_id", "genres"]].assign(genre=lambda f: f.genres.str.split("|").str[0])
    users = ml.users[["user_id", "age", "gender", "occupation", "zip_code"]]
    frame = ml.ratings.merge(users, on="user_id").merge(items[["item_id", "genre"]], on="item_id")
    frame["scenario_id"] = age_scenario_ids(frame["age"])
    frame["scenario"] = np.array(list(ML_AGE_SCENARIOS))[frame["scenario_id"]]
    frame["like"] = (frame["rating"] > 3).astype("int64")
    frame = frame.sort_values(["user_id", "timestamp", "item_id"], kind="stable")
    return frame.reset_index(drop=True)
