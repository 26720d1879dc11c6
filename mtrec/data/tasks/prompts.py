"""Rows written as text for a language model: the same inputs the feature models see, in words.

* :func:`clothing_review_prompts`: one Clothing review (the reviewer's age, the item's class and
  department, the review title) as a yes/no question, "Would they recommend it?". The feature
  models of notebooks 05 and 06 read exactly these inputs (item id aside, which has no words);
  the review body is left out for both.
* :func:`item_titles`: MovieLens item id → title, for history prompts and candidate titles.
"""

from __future__ import annotations

import pandas as pd

from mtrec.data.schema import require_columns

__all__ = ["NO_TITLE", "clothing_review_prompts", "item_titles"]

NO_TITLE = "(no title)"  # 16% of the Clothing reviews have an empty title


def clothing_review_prompts(rows: pd.DataFrame) -> list[str]:
    """One prompt per Clothing row, ending in a question the answer " Yes" or " No" follows.

    Example::

        A 60-year-old customer reviewed a dress (class Dresses, department Dresses) with the
        title "Some major design flaws". Would they recommend it? Answer:

    Args:
        rows: rows of :func:`~mtrec.data.loaders.clothing_multitask` (columns age, class_name,
            department, title).
    """
    require_columns(rows, ["age", "class_name", "department", "title"], what="Clothing rows")
    prompts = []
    for age, item_class, department, title in zip(rows.age, rows.class_name, rows.department,
                                                   rows.title):  # fmt: skip
        title = str(title).strip().replace('"', "'") or NO_TITLE
        item_class = str(item_class) if pd.notna(item_class) else "unknown"
        prompts.append(
            f"A {int(age)}-year-old customer reviewed an item (class {item_class}, department "
            f'{department}) with the title "{title}". Would they recommend it? Answer:'
        )
    return prompts


def item_titles(items: pd.DataFrame) -> dict[int, str]:
    """MovieLens ``item_id`` → ``title`` (with its year, e.g. "Toy Story (1995)")."""
    require_columns(items, ["item_id", "title"], what="MovieLens items")
    return {int(i): str(t).strip() for i, t in zip(items.item_id, items.title)}
