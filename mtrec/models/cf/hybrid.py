"""Hybrids of collaborative and language-model content signals.

Two kinds: a weighted blend of per-user standardised scores with weights tuned on validation
(Burke, "Hybrid Recommender Systems: Survey and Experiments", UMUAI 2002), and BPR-MF whose item
embeddings start from language-model item vectors, with a ridge map from text vectors to item
embeddings that places cold items (no interactions) in the learned space (van den Oord, Dieleman
and Schrauwen, "Deep content-based music recommendation", NeurIPS 2013).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping

import torch
from torch import Tensor

from mtrec.checks import check_finite, check_float, check_nonempty, check_tensor
from mtrec.models.cf.bpr import BPRMF, BPRConfig
from mtrec.nn.pca import pca_project


def standardise(scores: Tensor) -> Tensor:
    """Per-user z-scores of a (U, I) score matrix, so components on different scales blend."""
    if scores.numel() == 0:  # no user (or no item): nothing to standardise
        return scores.clone()
    mean = scores.mean(dim=1, keepdim=True)
    std = scores.std(dim=1, keepdim=True).clamp(min=1e-8)
    return (scores - mean) / std


def weight_grid(names: list[str], step: float = 0.1) -> list[dict[str, float]]:
    """All weight vectors on the simplex with the given step (weights sum to 1)."""
    if not 0 < step <= 1:
        raise ValueError(f"step must be in (0, 1], got {step}")
    n = round(1 / step)
    grid = []
    for combo in itertools.product(range(n + 1), repeat=len(names) - 1):
        if sum(combo) <= n:
            parts = [*combo, n - sum(combo)]
            grid.append({name: p / n for name, p in zip(names, parts)})
    return grid


def check_components(components: Mapping[str, Tensor]) -> None:
    """Raise unless every component is a finite (U, I) score matrix of one shape."""
    check_nonempty(components, "components", fix="pass {name: (U, I) scores}")
    shapes = {}
    for name, scores in components.items():
        check_tensor(scores, f"components[{name!r}]", ndim=2)
        check_finite(scores, f"components[{name!r}]", fix="blend raw scores, before masking seen")
        shapes[name] = tuple(scores.shape)
    if len(set(shapes.values())) > 1:
        raise ValueError(f"every component must score the same (U, I) pairs, got shapes {shapes}")
    if next(iter(shapes.values()))[1] < 2:
        raise ValueError(
            f"per-user z-scores need at least 2 items (a spread), got shapes {shapes}; blend "
            "scores over the whole catalogue"
        )


class WeightedHybrid:
    """score = Σ_c w_c · standardise(score_c); weights picked by a validation metric.

    Args:
        weights: component name → weight (non-negative).
    """

    def __init__(self, weights: Mapping[str, float]) -> None:
        if not isinstance(weights, Mapping) or not weights:
            raise ValueError(f"weights must be a non-empty mapping of non-negatives, got {weights}")
        for name, weight in weights.items():
            check_float(weight, f"weights[{name!r}]", min=0.0)
        self.weights = dict(weights)

    def scores(self, components: Mapping[str, Tensor]) -> Tensor:
        """(U, I) blended scores from component name → (U, I) scores."""
        missing = sorted(set(self.weights) - set(components))
        if missing:
            raise ValueError(f"missing component scores {missing}; got {sorted(components)}")
        check_components(components)
        return sum(w * standardise(components[n]) for n, w in self.weights.items() if w > 0)

    @classmethod
    def tune(
        cls,
        components: Mapping[str, Tensor],
        valid_metric: Callable[[Tensor], float],
        *,
        step: float = 0.1,
    ) -> tuple[WeightedHybrid, list[tuple[dict[str, float], float]]]:
        """Grid-search the weights that maximise ``valid_metric(blended_scores)``.

        Returns:
            The best hybrid and every (weights, validation score) tried.
        """
        check_components(components)
        z = {name: standardise(s) for name, s in components.items()}
        tried = []
        for weights in weight_grid(list(components), step):
            blended = sum(w * z[n] for n, w in weights.items() if w > 0)
            tried.append((weights, float(valid_metric(blended))))
        best = max(tried, key=lambda t: t[1])[0]
        return cls(best), tried


def lm_initialised_bpr(config: BPRConfig, item_vectors: Tensor) -> BPRMF:
    """BPR-MF whose item embeddings start as the PCA of LM item vectors (scaled to init_std)."""
    if item_vectors.shape != (config.num_items, item_vectors.shape[1]):
        raise ValueError(
            f"item_vectors must be ({config.num_items}, D) to match num_items, got "
            f"{tuple(item_vectors.shape)}"
        )
    model = BPRMF(config)
    projected = pca_project(item_vectors, config.d_model)
    projected = projected / projected.std().clamp(min=1e-8) * config.init_std
    with torch.no_grad():
        model.item_embedding.weight.copy_(projected)
    return model


@torch.no_grad()
def place_cold_items(model: BPRMF, item_vectors: Tensor, warm: Tensor, *, l2: float = 1.0) -> None:
    """Overwrite cold items' embeddings and biases with a ridge map fitted on warm items.

    Args:
        model: a trained BPR-MF.
        item_vectors: (I, D_text) language-model vectors of every item.
        warm: (I,) bool, True for items seen in training.
        l2: ridge penalty of the text → (embedding, bias) regression.
    """
    if warm.all() or not warm.any():
        raise ValueError("place_cold_items needs both warm (trained) and cold items")
    x = torch.cat([item_vectors.float(), torch.ones(len(item_vectors), 1)], dim=1)  # (I, Dt+1)
    y = torch.cat([model.item_embedding.weight, model.item_bias.weight], dim=1)  # (I, D+1)
    xw = x[warm]
    gram = xw.T @ xw + l2 * torch.eye(x.shape[1])
    mapping = torch.linalg.solve(gram, xw.T @ y[warm])  # (Dt+1, D+1)
    predicted = x[~warm] @ mapping
    model.item_embedding.weight[~warm] = predicted[:, :-1]
    model.item_bias.weight[~warm] = predicted[:, -1:]
