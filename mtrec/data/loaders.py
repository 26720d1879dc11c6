"""Loaders: cached files → pandas DataFrames in a documented schema.

Every loader verifies the cached files against their sha256 (see :mod:`mtrec.data.registry`) and
raises ``DataError`` naming ``mtrec data fetch NAME`` when the cache is missing. Scenario and task
definitions are written down in ``datasets/README.md`` and in the docstrings here.
"""

from __future__ import annotations

import gzip
import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from mtrec.data.registry import path

ML_GENRES = [
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary",
    "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi",
    "Thriller", "War", "Western",
]  # fmt: skip

# ML-100k scenarios: a movie belongs to the first group (in this priority order) that contains
# any of its genres. Think of them as the channels of a streaming front page.
ML_SCENARIOS: dict[str, tuple[str, ...]] = {
    "family": ("Animation", "Children's"),
    "thriller": ("Horror", "Thriller", "Crime", "Mystery", "Film-Noir"),
    "action": ("Action", "Adventure", "Sci-Fi", "Fantasy", "War", "Western"),
    "comedy": ("Comedy", "Musical"),
    "drama": ("Drama", "Romance", "Documentary", "unknown"),
}
CLOTHING_SCENARIOS = ["Bottoms", "Dresses", "Intimate", "Jackets", "Tops", "Trend"]


def _read_parquet(name: str, file: str) -> pd.DataFrame:
    return pd.read_parquet(path(name, file))


@dataclass(frozen=True)
class MovieLens:
    """MovieLens-100k.

    ratings: user_id (1..943), item_id (1..1682), rating (1..5), timestamp (unix seconds).
    users: user_id, age, gender ("M"/"F"), occupation, zip_code.
    items: item_id, title (with year), year (float, NaN if unknown), genres ("A|B"), scenario
        (name from ``ML_SCENARIOS``), scenario_id (0..4 in ``ML_SCENARIOS`` order), and one 0/1
        column per genre in ``ML_GENRES``.
    """

    ratings: pd.DataFrame
    users: pd.DataFrame
    items: pd.DataFrame


def load_movielens() -> MovieLens:
    """Load MovieLens-100k from the cache (``mtrec data fetch ml-100k``)."""
    ratings = _read_parquet("ml-100k", "ratings.parquet").rename(columns={"movie_id": "item_id"})
    users = _read_parquet("ml-100k", "users.parquet")
    raw = _read_parquet("ml-100k", "items.parquet")
    genre_matrix = raw[ML_GENRES].to_numpy().astype(bool)
    names = np.array(ML_GENRES)
    items = pd.DataFrame(
        {
            "item_id": raw["movie_id"].astype("int64"),
            "title": raw["movie_title"].astype(str),
            "year": pd.to_datetime(raw["release_date"], format="%d-%b-%Y", errors="coerce").dt.year,
            "genres": ["|".join(names[row]) for row in genre_matrix],
        }
    )
    scenario_names = list(ML_SCENARIOS)
    scenario = np.full(len(items), len(scenario_names) - 1)
    for sid in reversed(range(len(scenario_names))):  # highest priority written last
        members = [ML_GENRES.index(g) for g in ML_SCENARIOS[scenario_names[sid]]]
        scenario[genre_matrix[:, members].any(axis=1)] = sid
    items["scenario_id"] = scenario
    items["scenario"] = [scenario_names[s] for s in scenario]
    items = pd.concat([items, raw[ML_GENRES].astype("int8").reset_index(drop=True)], axis=1)
    return MovieLens(
        ratings=ratings[["user_id", "item_id", "rating", "timestamp"]].astype("int64"),
        users=users,
        items=items,
    )


def movielens_multitask(*, negatives_per_positive: int = 1, seed: int = 0) -> pd.DataFrame:
    """ML-100k as a multi-scenario, multi-task click-like problem.

    Rows are (user, item) impressions: every rating is a positive impression, and for each one
    ``negatives_per_positive`` items the user never rated are sampled uniformly (seeded).

    Columns: user_id, item_id, scenario_id, scenario (item's genre group), age, gender,
    occupation, year, timestamp (NaN on sampled rows), rating (NaN on sampled rows), and tasks:
        watch: 1 if the user rated the item, else 0 (the "click").
        like: 1 if rated with rating >= 4, else 0 (the "conversion"; 0 on unwatched rows, so
            like ⊆ watch and ESMM's CTCVR = watch × like holds).
    """
    ml = load_movielens()
    rng = np.random.default_rng(seed)
    ratings = ml.ratings
    num_items = int(ml.items.item_id.max())
    users = ratings.user_id.to_numpy().repeat(negatives_per_positive)
    candidates = rng.integers(1, num_items + 1, size=len(users))
    seen = set(zip(ratings.user_id.to_numpy().tolist(), ratings.item_id.to_numpy().tolist()))
    # Resample collisions with rated items until none remain (vectorised rounds).
    pair_hit = np.fromiter((p in seen for p in zip(users.tolist(), candidates.tolist())), bool)
    while pair_hit.any():
        candidates[pair_hit] = rng.integers(1, num_items + 1, size=int(pair_hit.sum()))
        pair_hit[pair_hit] = np.fromiter(
            (p in seen for p in zip(users[pair_hit].tolist(), candidates[pair_hit].tolist())), bool
        )
    negatives = pd.DataFrame({"user_id": users, "item_id": candidates})
    positives = ratings.assign(watch=1)
    frame = pd.concat([positives, negatives.assign(watch=0)], ignore_index=True)
    frame["like"] = (frame["rating"].fillna(0) >= 4).astype("int64")
    frame = frame.merge(ml.users[["user_id", "age", "gender", "occupation"]], on="user_id")
    frame = frame.merge(ml.items[["item_id", "year", "scenario_id", "scenario"]], on="item_id")
    columns = ["user_id", "item_id", "scenario_id", "scenario", "age", "gender", "occupation"]
    columns += ["year", "timestamp", "rating", "watch", "like"]
    return frame[columns].sample(frac=1.0, random_state=seed).reset_index(drop=True)


def load_clothing() -> pd.DataFrame:
    """Women's Clothing E-Commerce Reviews (one row per review).

    Columns: review_id (0..23485, file order), item_id (Clothing ID), age, title, text (title and
    review text may be empty strings), rating (1..5), recommended (0/1), positive_feedback (count),
    division, department, class_name (strings; missing as NaN).
    """
    raw = _read_parquet("clothing", "reviews.parquet")
    frame = pd.DataFrame(
        {
            "review_id": np.arange(len(raw), dtype="int64"),
            "item_id": raw["Clothing ID"].astype("int64"),
            "age": raw["Age"].astype("int64"),
            "title": raw["Title"].fillna("").astype(str),
            "text": raw["Review Text"].fillna("").astype(str),
            "rating": raw["Rating"].astype("int64"),
            "recommended": raw["Recommended IND"].astype("int64"),
            "positive_feedback": raw["Positive Feedback Count"].astype("int64"),
            "division": raw["Division Name"],
            "department": raw["Department Name"],
            "class_name": raw["Class Name"],
        }
    )
    return frame


def clothing_multitask() -> pd.DataFrame:
    """Clothing reviews as a multi-scenario, multi-task problem.

    Scenario: the department (6: Bottoms, Dresses, Intimate, Jackets, Tops, Trend); the 14 rows
    without a department are dropped. scenario_id follows ``CLOTHING_SCENARIOS`` order.
    Tasks (binary): recommended (the reviewer recommends the item), like (rating >= 4),
    helpful (positive_feedback > 0: another shopper found the review helpful).
    """
    frame = load_clothing().dropna(subset=["department"]).reset_index(drop=True)
    frame["scenario"] = frame["department"].astype(str)
    frame["scenario_id"] = (
        frame["scenario"]
        .map({name: i for i, name in enumerate(CLOTHING_SCENARIOS)})
        .astype("int64")
    )
    frame["like"] = (frame["rating"] >= 4).astype("int64")
    frame["helpful"] = (frame["positive_feedback"] > 0).astype("int64")
    return frame


def load_adult() -> pd.DataFrame:
    """Adult census income; snake_case columns, plus tasks income_50k and never_married (0/1)."""
    raw = _read_parquet("adult", "adult.parquet")
    frame = raw.rename(columns=lambda c: c.replace("-", "_"))
    frame["income_50k"] = frame["income"].str.contains(">50K").astype("int64")
    frame["never_married"] = (frame["marital_status"] == "Never-married").astype("int64")
    return frame


def load_ml100k_kg() -> tuple[pd.DataFrame, pd.DataFrame]:
    """The ML-100k knowledge graph: (links: item_id, entity; triples: head, relation, tail)."""
    links = pd.read_csv(path("ml-100k-kg", "ml-100k.link"), sep="\t")
    links.columns = ["item_id", "entity"]
    triples = pd.read_csv(path("ml-100k-kg", "ml-100k.kg"), sep="\t")
    triples.columns = ["head", "relation", "tail"]
    return links, triples


def load_mnist5k() -> tuple[np.ndarray, np.ndarray]:
    """5,000 real MNIST digits: images uint8 (5000, 28, 28) and labels int64 (5000,)."""
    with gzip.open(path("mnist-5k", "mnist_5k.csv.gz"), "rt") as handle:
        table = np.loadtxt(handle, delimiter=",")
    return table[:, :-1].reshape(-1, 28, 28).astype(np.uint8), table[:, -1].astype(np.int64)


def load_asterisk_sounds() -> pd.DataFrame:
    """Asterisk English speech prompts (CC BY-SA 3.0), one row per WAV file.

    Columns: path (absolute), name (relative path without ``.wav``, e.g. ``digits/7``), folder
    ("" for top-level prompts, else digits, letters, phonetic, dictate, followme, silence), prefix
    (first dash-separated word of the file name, e.g. ``vm`` for voicemail prompts), transcript
    (the prompt's text when ``asterisk-transcripts`` is cached, else NaN).
    Read audio with ``soundfile.read(path)`` (8 kHz mono).
    """
    root = path("asterisk-sounds")
    wavs = sorted(p for p in root.rglob("*.wav"))
    names = [str(p.relative_to(root).with_suffix("")) for p in wavs]
    frame = pd.DataFrame(
        {
            "path": [str(p) for p in wavs],
            "name": names,
            "folder": [n.rsplit("/", 1)[0] if "/" in n else "" for n in names],
            "prefix": [re.split(r"[-_]", n.rsplit("/", 1)[-1])[0] for n in names],
        }
    )
    try:
        text_path = path("asterisk-transcripts", "core-sounds-en.txt.gz")
    except Exception:  # transcripts are optional
        frame["transcript"] = np.nan
        return frame
    transcripts: dict[str, str] = {}
    with gzip.open(text_path, "rt", encoding="utf-8", errors="replace") as handle:
        for line in handle:
            if line.startswith(";") or ":" not in line:
                continue
            key, text = line.split(":", 1)
            transcripts[key.strip()] = text.strip()
    frame["transcript"] = frame["name"].map(transcripts)
    return frame


LOADERS = {
    "ml-100k": load_movielens,
    "clothing": load_clothing,
    "adult": load_adult,
    "ml-100k-kg": load_ml100k_kg,
    "mnist-5k": load_mnist5k,
    "asterisk-sounds": load_asterisk_sounds,
}
