import pandas as pd
import torch

from mtrec.data.kg import build_kg
from mtrec.models.kg.paths import KGExplainer, explained_fraction, path_exists


def _graph():
    triples = pd.DataFrame(
        [
            ("heat", "film.actor", "pacino"),
            ("godfather", "film.actor", "pacino"),
            ("heat", "film.genre", "crime"),
            ("godfather", "film.genre", "crime"),
            ("casino", "film.genre", "crime"),
            ("alien", "film.sequel", "aliens"),
            ("crime", "genre.film", "heat"),
        ],
        columns=["head", "relation", "tail"],
    )
    links = pd.DataFrame(
        {"item_id": [1, 2, 3, 4, 5], "entity": ["heat", "godfather", "casino", "alien", "aliens"]}
    )
    kg = build_kg(links, triples)
    items = kg.item_entity_ids([1, 2, 3, 4, 5, 6])  # item 6 has no link (OOV)
    return kg, KGExplainer(kg, items)


def test_two_hop_path_prefers_the_rarest_middle_entity_and_exists():
    kg, explainer = _graph()
    found = explainer.explain([0], 1)  # liked Heat → The Godfather
    assert found is not None and found.liked_item == 0 and len(found.triples) == 2
    assert kg.entities[found.middle] == "pacino"  # actor (2 links) beats genre crime (3 links)
    assert path_exists(kg, found)
    text = explainer.describe(found, ["Heat", "The Godfather", "Casino", "Alien", "Aliens", "X"])
    assert (
        text.startswith("because you liked Heat, which shares an actor") and "The Godfather" in text
    )


def test_direct_link_and_missing_paths():
    kg, explainer = _graph()
    direct = explainer.explain([3], 4)  # Alien → Aliens
    assert direct is not None and direct.middle is None and path_exists(kg, direct)
    assert explainer.explain([3], 2) is None  # Alien and Casino share nothing
    assert explainer.explain([0], 5) is None  # an item without a link is never explained
    assert explainer.explain([0], 2, max_degree=2) is None  # only the 3-link genre connects them
    assert explainer.explain([0], 2).middle is not None


def test_every_returned_path_is_made_of_graph_triples():
    kg, explainer = _graph()
    for liked in range(5):
        for item in range(6):
            found = explainer.explain([liked], item)
            assert found is None or path_exists(kg, found)
    recs = torch.tensor([[1, 2], [4, 2]])
    assert explained_fraction(explainer, [[0], [3]], recs) == 0.75
