"""Declared tasks: one per dataset × protocol, each turning a dataset into split tensors.

Experiments, serving, the benchmark and the notebooks all start from a task, so a dataset is
turned into features in exactly one place, with every transform fitted on the training rows only.
"""

from mtrec.data.tasks.adult import adult_income
from mtrec.data.tasks.base import ClickTask
from mtrec.data.tasks.clothing import (
    ClothingFeatures,
    clothing_departments,
    clothing_leave_one_out,
)
from mtrec.data.tasks.kg import KGTask, ml100k_kg
from mtrec.data.tasks.movielens import (
    ml100k_by_age,
    ml100k_impressions,
    ml100k_leave_last_out,
    ml100k_next_item,
    ml100k_topk_split,
    user_demographics,
)

__all__ = [
    "ClickTask",
    "ClothingFeatures",
    "KGTask",
    "adult_income",
    "clothing_departments",
    "clothing_leave_one_out",
    "ml100k_by_age",
    "ml100k_impressions",
    "ml100k_kg",
    "ml100k_leave_last_out",
    "ml100k_next_item",
    "ml100k_topk_split",
    "user_demographics",
]
