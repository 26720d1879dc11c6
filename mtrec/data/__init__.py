"""Datasets (registry, fetch, loaders), feature schema, splits and tensor batching."""

from mtrec.data.batching import TensorBatcher, frame_to_tensors
from mtrec.data.loaders import (
    CLOTHING_SCENARIOS,
    ML_GENRES,
    ML_SCENARIOS,
    MovieLens,
    clothing_multitask,
    load_adult,
    load_asterisk_sounds,
    load_clothing,
    load_ml100k_kg,
    load_mnist5k,
    load_movielens,
    movielens_multitask,
)
from mtrec.data.registry import (
    DATASETS,
    DataError,
    cache_dir,
    fetch,
    is_cached,
    is_verified,
    path,
    spec,
)
from mtrec.data.schema import (
    OOV,
    CategoryEncoder,
    DenseFeature,
    SequenceFeature,
    SparseFeature,
    TextFeature,
    require_columns,
)
from mtrec.data.splits import Split, cold_item_split, leave_last_out, per_user_split, random_split

__all__ = [
    "CLOTHING_SCENARIOS", "DATASETS", "ML_GENRES", "ML_SCENARIOS", "OOV", "CategoryEncoder",
    "DataError", "DenseFeature", "MovieLens", "SequenceFeature", "SparseFeature", "Split",
    "TensorBatcher", "TextFeature", "cache_dir", "clothing_multitask", "cold_item_split", "fetch",
    "frame_to_tensors", "is_cached", "is_verified", "leave_last_out", "load_adult", "load_asterisk_sounds",
    "load_clothing", "load_ml100k_kg", "load_mnist5k", "load_movielens", "movielens_multitask",
    "path", "per_user_split", "random_split", "require_columns", "spec",
]  # fmt: skip
