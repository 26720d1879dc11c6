"""Declared features and categorical encoding.

Features are small frozen dataclasses; :class:`mtrec.nn.layers.FeatureEmbedding` builds its embedding
tables from them. Batches are ``dict[str, Tensor]`` keyed by feature name (plus label keys such as
``"labels"`` of shape (B, T) and ``"scenario_ids"`` of shape (B,)).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from mtrec.checks import check_int

OOV = 0  # id of unknown and missing categories in every encoder


def _check_name(name: object) -> None:
    if not isinstance(name, str) or not name:
        raise TypeError(f"a feature name must be a non-empty str (its batch key), got {name!r}")


@dataclass(frozen=True)
class SparseFeature:
    """A categorical column looked up in an embedding table: batch key ``name``, shape (B,)."""

    name: str
    vocab_size: int  # number of ids including the OOV id 0
    embed_dim: int = 16  # width of its embedding

    def __post_init__(self) -> None:
        _check_name(self.name)
        check_int(self.vocab_size, f"{self.name}: vocab_size")
        check_int(self.embed_dim, f"{self.name}: embed_dim")
        if self.vocab_size < 2:
            raise ValueError(f"{self.name}: vocab_size must be >= 2 (OOV + one value)")
        if self.embed_dim < 1:
            raise ValueError(f"{self.name}: embed_dim must be >= 1, got {self.embed_dim}")


@dataclass(frozen=True)
class DenseFeature:
    """A real-valued column (standardised by the caller): batch key ``name``, shape (B,) or (B, dim)."""

    name: str
    dim: int = 1  # number of values per row

    def __post_init__(self) -> None:
        _check_name(self.name)
        check_int(self.dim, f"{self.name}: dim")
        if self.dim < 1:
            raise ValueError(f"{self.name}: dim must be >= 1, got {self.dim}")


@dataclass(frozen=True)
class SequenceFeature:
    """A padded id sequence (0 = padding), pooled to one vector: batch key ``name``, shape (B, L)."""

    name: str
    vocab_size: int  # ids including padding/OOV 0
    embed_dim: int = 16  # width of its embedding
    max_len: int = 50  # L
    pooling: str = "mean"  # "mean" or "sum" over non-padding positions

    def __post_init__(self) -> None:
        _check_name(self.name)
        check_int(self.vocab_size, f"{self.name}: vocab_size")
        check_int(self.embed_dim, f"{self.name}: embed_dim")
        check_int(self.max_len, f"{self.name}: max_len")
        if self.pooling not in ("mean", "sum"):
            raise ValueError(f"{self.name}: pooling must be 'mean' or 'sum', got {self.pooling!r}")
        if self.vocab_size < 2 or self.max_len < 1 or self.embed_dim < 1:
            raise ValueError(f"{self.name}: need vocab_size >= 2, max_len >= 1 and embed_dim >= 1")


@dataclass(frozen=True)
class TextFeature:
    """A precomputed text embedding (e.g. from :class:`mtrec.extractors.TextEncoder`): (B, dim)."""

    name: str
    dim: int = 384  # all-MiniLM-L6-v2 width

    def __post_init__(self) -> None:
        _check_name(self.name)
        check_int(self.dim, f"{self.name}: dim")
        if self.dim < 1:
            raise ValueError(f"{self.name}: dim must be >= 1, got {self.dim}")


@dataclass(frozen=True)
class PretrainedFeature:
    """Ids looked up in a fixed pretrained table (e.g. KG entity vectors): batch key ``name``, (B,).

    Row 0 of ``table`` is the OOV id (by convention a zero vector: ids without a pretrained vector,
    such as items without a knowledge-graph link). :class:`mtrec.nn.layers.FeatureEmbedding` copies
    the table into a frozen embedding (``trainable=True`` fine-tunes it) and outputs (B, dim).
    """

    name: str
    table: Tensor = field(repr=False, compare=False)  # (vocab_size, dim) float vectors, row 0 = OOV
    dim: int | None = None  # expected width; set it to catch a table of the wrong dimension
    trainable: bool = False  # fine-tune the vectors with the model (default: frozen)

    def __post_init__(self) -> None:
        _check_name(self.name)
        if self.dim is not None:
            check_int(self.dim, f"{self.name}: dim", min=1)
        table = self.table
        if not isinstance(table, Tensor) or table.ndim != 2 or not table.is_floating_point():
            got = tuple(table.shape) if isinstance(table, Tensor) else type(table).__name__
            raise ValueError(
                f"{self.name}: table must be a 2-D float tensor (vocab_size, dim), got {got}; "
                "pass e.g. a KG model's entity_vectors()"
            )
        if table.shape[0] < 2 or not bool(torch.isfinite(table).all()):
            raise ValueError(f"{self.name}: table needs >= 2 rows (OOV + one) and finite values")
        if self.dim is not None and table.shape[1] != self.dim:
            raise ValueError(
                f"{self.name}: expected vectors of dimension {self.dim}, received a table of "
                f"shape {tuple(table.shape)}; use the embeddings the feature was declared for or "
                f"set dim={table.shape[1]}"
            )

    @property
    def vocab_size(self) -> int:
        """Number of ids including OOV 0."""
        return int(self.table.shape[0])

    @property
    def embed_dim(self) -> int:
        """Width of the looked-up vectors."""
        return int(self.table.shape[1])


Feature = SparseFeature | DenseFeature | SequenceFeature | TextFeature | PretrainedFeature


def require_columns(frame: pd.DataFrame, columns: Iterable[str], *, what: str = "frame") -> None:
    """Raise ``ValueError`` naming every column of ``columns`` that ``frame`` lacks."""
    columns = list(columns)
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(
            f"{what} is missing columns {missing}; expected at least {columns}, "
            f"got {list(frame.columns)}. Rename or add them before calling."
        )


class CategoryEncoder:
    """Map category values to ids 1..n (by first appearance order of sorted values); 0 is OOV.

    Fit on training rows only; values unseen at fit time (and missing values) map to 0.
    """

    def __init__(self) -> None:
        self.mapping: dict[object, int] | None = None

    def fit(self, values: Iterable[object]) -> CategoryEncoder:
        if isinstance(values, (str, bytes)):
            raise TypeError("pass a column of values (a list or Series), not a single string")
        uniques = pd.Series(list(values)).dropna().unique()
        try:
            uniques = np.sort(uniques)
        except TypeError:  # mixed types: keep first-appearance order
            pass
        self.mapping = {v: i + 1 for i, v in enumerate(uniques.tolist())}
        return self

    @property
    def vocab_size(self) -> int:
        """Number of ids including OOV."""
        self._check_fitted()
        assert self.mapping is not None
        return len(self.mapping) + 1

    def transform(self, values: Iterable[object]) -> np.ndarray:
        self._check_fitted()
        if isinstance(values, (str, bytes)):
            raise TypeError("pass a column of values (a list or Series), not a single string")
        series = pd.Series(list(values) if not isinstance(values, pd.Series) else values)
        return series.map(self.mapping).fillna(OOV).to_numpy(dtype=np.int64)

    def fit_transform(self, values: Iterable[object]) -> np.ndarray:
        values = list(values)
        return self.fit(values).transform(values)

    def inverse(self, ids: Iterable[int]) -> list[object]:
        self._check_fitted()
        assert self.mapping is not None
        back = {i: v for v, i in self.mapping.items()}
        return [back.get(int(i)) for i in ids]

    def _check_fitted(self) -> None:
        if self.mapping is None:
            raise RuntimeError("CategoryEncoder is not fitted; call fit(train_values) first")
