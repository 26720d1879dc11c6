"""Rows written as prompts: the same inputs as the feature models, in words."""

import pandas as pd
import pytest

from mtrec.data.tasks.prompts import NO_TITLE, clothing_review_prompts, item_titles


def test_clothing_prompt_names_every_input_and_ends_in_the_question():
    rows = pd.DataFrame({"age": [60, 25], "class_name": ["Dresses", None],
                         "department": ["Dresses", "Tops"], "title": ['Some "major" flaws', " "]})  # fmt: skip
    first, second = clothing_review_prompts(rows)
    assert first == (
        "A 60-year-old customer reviewed an item (class Dresses, department Dresses) with the "
        "title \"Some 'major' flaws\". Would they recommend it? Answer:"
    )
    assert NO_TITLE in second and "class unknown" in second and second.endswith("Answer:")


def test_clothing_prompt_names_the_missing_column():
    with pytest.raises(ValueError, match="title"):
        clothing_review_prompts(
            pd.DataFrame({"age": [1], "class_name": ["a"], "department": ["b"]})
        )


def test_item_titles_map_ids_to_stripped_titles():
    items = pd.DataFrame({"item_id": [1, 2], "title": ["Toy Story (1995) ", "Fargo (1996)"]})
    assert item_titles(items) == {1: "Toy Story (1995)", 2: "Fargo (1996)"}
