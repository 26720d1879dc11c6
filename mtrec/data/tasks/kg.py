"""The ML-100k knowledge-graph task: ratings, id index, encoded graph and item side tensors.

The data half of ``mtrec.experiments.kg`` (notebook 07): everything but the MiniLM text
vectors, which need :mod:`mtrec.extractors` (a layer above the data) and are computed by the
experiment from :attr:`KGTask.texts`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from mtrec.data.interactions import IdIndex
from mtrec.data.kg import KnowledgeGraph, load_kg
from mtrec.data.loaders import ML_GENRES, load_movielens

__all__ = ["KGTask", "item_texts", "ml100k_kg"]


@dataclass(frozen=True)
class KGTask:
    """ML-100k with its knowledge graph; item tensors are in ``index`` column order."""

    ratings: pd.DataFrame  # user_id, item_id, rating, timestamp (all ratings)
    index: IdIndex  # users of the ratings, every catalogue item
    kg: KnowledgeGraph  # the encoded graph (load_kg)
    item_entities: Tensor  # (I,) int64 entity id per item column (0 = no link)
    genres: Tensor  # (I, G) float32 multi-hot genres (ML_GENRES order)
    titles: list[str]  # (I,) titles by column
    texts: list[str]  # (I,) "title | genre, genre" by column, the text to embed

    @property
    def num_items(self) -> int:
        return self.index.num_items


def item_texts(items: pd.DataFrame) -> list[str]:
    """The text of each item row, "title | genre, genre" (what the MiniLM vectors encode)."""
    missing = [c for c in ("title", "genres") if c not in items.columns]
    if missing:
        raise KeyError(
            f"items lacks the columns {missing} (has {list(items.columns)}); "
            "pass load_movielens().items"
        )
    return [f"{t} | {g.replace('|', ', ')}" for t, g in zip(items.title, items.genres)]


def ml100k_kg() -> KGTask:
    """ML-100k ratings, the id index over every catalogue item, the graph and item tensors."""
    ml = load_movielens()
    index = IdIndex.from_frames(ml.ratings, items=ml.items.item_id)
    items = ml.items.set_index("item_id").loc[index.item_ids]
    kg = load_kg()
    genres = torch.tensor(items[list(ML_GENRES)].to_numpy(dtype=np.float32))
    return KGTask(
        ratings=ml.ratings,
        index=index,
        kg=kg,
        item_entities=kg.item_entity_ids(index.item_ids),
        genres=genres,
        titles=list(items.title),
        texts=item_texts(items),
    )
