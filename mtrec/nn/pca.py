"""Principal-component projection of item vectors (one implementation for every caller).

Language-model item embeddings (384-d MiniLM sentence vectors) are too wide to feed a small
ranking model or to initialise a 32-d embedding table, so they are centred and projected on
their top principal axes. Three places do it: the compute-allocation teacher's title feature
(:func:`mtrec.experiments.allocation.title_pca`), the LM-initialised BPR-MF
(:func:`mtrec.models.cf.hybrid.lm_initialised_bpr`) and the serving system's item-text feature
(:func:`mtrec.serving.build.text_projection`); each scales the projection its own way.
"""

from __future__ import annotations

import torch
from torch import Tensor

from mtrec.checks import check_finite, check_int, check_nonempty, check_tensor


def pca_project(vectors: Tensor, dim: int, *, randomized: bool = False) -> Tensor:
    """(N, D) vectors → (N, dim): centred, then projected on their top ``dim`` principal axes.

    Args:
        vectors: finite (N, D) vectors, one row per item (cast to float32).
        dim: output width, in ``1..min(N, D)``.
        randomized: ``False`` (exact): a thin SVD; ``True``: ``torch.pca_lowrank``, faster on
            wide inputs but drawn from the global torch random state, so the result depends on
            what ran before it (the caller seeds).
    """
    check_tensor(vectors, "vectors", ndim=2)
    check_nonempty(vectors, "vectors", fix="pass at least one item's vector")
    check_finite(vectors, "vectors")
    check_int(dim, "dim", min=1, max=min(vectors.shape))
    centred = vectors.float() - vectors.float().mean(0)
    if randomized:
        _, _, v = torch.pca_lowrank(centred, q=dim, center=False)  # v: (D, dim)
        return centred @ v[:, :dim]
    _, _, v = torch.linalg.svd(centred, full_matrices=False)  # v: (min(N, D), D)
    return centred @ v[:dim].T
