"""A toy movie knowledge graph served as the ``toy`` fixture.

4 genres × 6 films; each film links to its genre (``film.genre``) and to 2 of its genre's 3 actors
(``film.actor``), both with inverse relations, as in the ML-100k graph. One film per genre has its
genre triple pair held out for test: films of a genre share actors, so a model that embeds the
graph can infer the missing genre.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import pytest
import torch

from mtrec.data.kg import KnowledgeGraph, build_kg


@dataclass
class Toy:
    kg: KnowledgeGraph
    train: torch.Tensor  # (M_train, 3)
    test: torch.Tensor  # (4, 3) held-out (film, film.genre, genre) triples
    item_ids: list[int]  # raw item ids 1..25 (item 25 has no link)


def _toy() -> Toy:
    rows, test_rows, links = [], [], []
    for g in range(4):
        for f in range(6):
            film, item = f"film{g}_{f}", 1 + 6 * g + f
            links.append((item, film))
            pair = [(film, "film.genre", f"genre{g}"), (f"genre{g}", "genre.film", film)]
            (test_rows if f == 0 else rows).extend(pair)
            for a in (f % 3, (f + 1) % 3):
                rows += [
                    (film, "film.actor", f"actor{g}_{a}"),
                    (f"actor{g}_{a}", "actor.film", film),
                ]
    frame = pd.DataFrame(rows + test_rows, columns=["head", "relation", "tail"])
    kg = build_kg(pd.DataFrame(links, columns=["item_id", "entity"]), frame)
    encoded = kg.triples
    test_mask = torch.zeros(len(frame), dtype=torch.bool)
    test_mask[len(rows) :] = True
    test = encoded[test_mask]
    test = test[test[:, 1] == int((kg.relations == "film.genre").nonzero()[0][0])]
    return Toy(kg, encoded[~test_mask], test, list(range(1, 26)))


@pytest.fixture
def toy(one_thread: None) -> Toy:
    return _toy()
