"""Self-check: residual quantisation, the step that turns an item vector into a semantic ID.

The student writes ``residual_codes(vectors, codebooks) -> codes``: ``vectors`` is an (N, D)
NumPy array, ``codebooks`` a list of (K_l, D) arrays of centres, one per level. At level 1 each
vector takes the index of its nearest centre (squared Euclidean distance); the residual
(vector − that centre) is what level 2 quantises, and so on. Return an (N, levels) integer
array. This is the encoder of TIGER's RQ-VAE (Rajput et al., NeurIPS 2023) and of residual
k-means (:func:`mtrec.models.generative.ids.residual_kmeans`), with the codebooks given.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch

from mtrec.exercises._harness import Case, run_cases


def reference_residual_codes(vectors: np.ndarray, codebooks: Sequence[np.ndarray]) -> np.ndarray:
    """Nearest centre per level, each level quantising the previous level's residual."""
    residual = np.asarray(vectors, dtype=np.float64).copy()
    codes = []
    for centres in codebooks:
        distance = ((residual[:, None, :] - centres[None, :, :]) ** 2).sum(axis=2)  # (N, K)
        index = distance.argmin(axis=1)
        codes.append(index)
        residual = residual - centres[index]
    return np.stack(codes, axis=1).astype(np.int64)


def _no_residual(vectors, codebooks) -> torch.Tensor:
    x = np.asarray(vectors, dtype=np.float64)
    return torch.as_tensor(
        np.stack([((x[:, None] - c[None]) ** 2).sum(2).argmin(1) for c in codebooks], 1)
    )


def _farthest(vectors, codebooks) -> torch.Tensor:
    residual, codes = np.asarray(vectors, dtype=np.float64).copy(), []
    for c in codebooks:
        index = ((residual[:, None] - c[None]) ** 2).sum(2).argmax(1)
        codes.append(index)
        residual = residual - c[index]
    return torch.as_tensor(np.stack(codes, 1))


def _added(vectors, codebooks) -> torch.Tensor:
    residual, codes = np.asarray(vectors, dtype=np.float64).copy(), []
    for c in codebooks:
        index = ((residual[:, None] - c[None]) ** 2).sum(2).argmin(1)
        codes.append(index)
        residual = residual + c[index]
    return torch.as_tensor(np.stack(codes, 1))


def _dot_product(vectors, codebooks) -> torch.Tensor:
    residual, codes = np.asarray(vectors, dtype=np.float64).copy(), []
    for c in codebooks:
        index = (residual @ c.T).argmax(1)
        codes.append(index)
        residual = residual - c[index]
    return torch.as_tensor(np.stack(codes, 1))


DIAGNOSES = (
    (_no_residual, "every level quantised the original vector: subtract the chosen centre and "
     "quantise the residual at the next level"),
    (_farthest, "you took the farthest centre (argmax of distance): take argmin"),
    (_added, "you added the centre: the residual is vector − centre"),
    (_dot_product, "nearest means smallest squared distance, not largest dot product (centres "
     "have different norms)"),
)  # fmt: skip


def cases() -> list[Case]:
    """The hidden cases (seeded)."""
    rng = np.random.default_rng(7)
    coarse = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    fine = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [3.0, 3.0], [12.0, 0.0], [21.0, 0.0]])
    specs = [
        ("two levels, 2-d, by hand", np.array([[10.9, 0.1], [0.2, 11.1], [0.1, -0.2]]),
         [coarse, fine], "level 1 picks the nearest coarse centre; level 2 the nearest to what is left"),
        ("one level is plain nearest-centre", rng.normal(size=(6, 3)), [rng.normal(size=(4, 3))],
         "with one level the code is the index of the nearest centre"),
        ("three levels, 8-d, centres of unequal norm", rng.normal(size=(10, 8)),
         [rng.normal(size=(5, 8)) * s for s in (3.0, 1.0, 0.3)],
         "each level quantises the residual left by the levels before it"),
    ]  # fmt: skip
    out = []
    for name, vectors, books, hint in specs:
        kwargs = {"vectors": vectors, "codebooks": books}
        expected = torch.as_tensor(reference_residual_codes(**kwargs))  # compared as a tensor
        out.append(Case(name, kwargs, expected, hint, DIAGNOSES, atol=0))
    return out


def check_semantic_ids(student: Callable[..., np.ndarray]) -> bool:
    """Check ``student(vectors, codebooks) -> (N, levels) codes``."""
    return run_cases("residual quantisation (semantic IDs)", student, cases())
