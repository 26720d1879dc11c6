"""Exercise 9: a new scenario's slice in a trained STAR layer (the zero-shot step of notebook 12).

The student writes ``add_scenario_slice(weight_p, bias_p, init, profile, profiles) -> (weight_p,
bias_p)``: ``weight_p`` (S, D_in, D_out) and ``bias_p`` (S, D_out) are a trained STAR layer's
per-scenario weights, and the new scenario gets one more slice, appended at index S so the trained
scenarios keep their ids and values. The slice starts as ``init``:

* ``"shared"``: the shared layer alone, W_p = 1 and b_p = 0 (W ⊙ 1 = W);
* ``"mean"``: the mean of the S trained slices;
* ``"nearest"``: a copy of the trained slice whose profile (a row of ``profiles`` (S, D), e.g. the
  mean MiniLM embedding of a department's item texts) is the most cosine-similar to the new
  scenario's ``profile`` (D,).

Return (S + 1, D_in, D_out) and (S + 1, D_out). The reference is what
:meth:`mtrec.nn.scenario.StarLinear.add_scenario` and
:func:`mtrec.train.transfer.nearest_scenario` compute. Reference: Sheng et al., "One Model to Serve
All: Star Topology Adaptive Recommender for Multi-Domain CTR Prediction", CIKM 2021.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from mtrec.exercises._harness import Case, run_cases
from mtrec.nn.scenario import StarLinear, new_scenario_row
from mtrec.train.transfer import nearest_scenario


def reference_add_scenario_slice(
    weight_p: Tensor,
    bias_p: Tensor,
    init: str,
    profile: Tensor | None = None,
    profiles: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """(S + 1, D_in, D_out), (S + 1, D_out): the trained slices, then the new one."""
    nearest = nearest_scenario(profile, profiles) if init == "nearest" else None
    w_row = new_scenario_row(weight_p, init, nearest=nearest, shared=torch.ones(1))
    b_row = new_scenario_row(bias_p, init, nearest=nearest, shared=torch.zeros(1))
    w_row, b_row = w_row.expand_as(weight_p[0]), b_row.expand_as(bias_p[0])
    return torch.cat([weight_p, w_row[None]]), torch.cat([bias_p, b_row[None]])


def _with_index(weight_p: Tensor, bias_p: Tensor, init: str, index: int | None):
    """The reference, except that "nearest" copies slice ``index``."""
    if init != "nearest":
        return reference_add_scenario_slice(weight_p, bias_p, init)
    return torch.cat([weight_p, weight_p[index][None]]), torch.cat([bias_p, bias_p[index][None]])


def _shared_zeros(weight_p, bias_p, init, profile=None, profiles=None):
    if init == "shared":
        return torch.cat([weight_p, torch.zeros_like(weight_p[:1])]), torch.cat(
            [bias_p, torch.zeros_like(bias_p[:1])]
        )
    return reference_add_scenario_slice(weight_p, bias_p, init, profile, profiles)


def _prepended(weight_p, bias_p, init, profile=None, profiles=None):
    w, b = reference_add_scenario_slice(weight_p, bias_p, init, profile, profiles)
    return torch.cat([w[-1:], w[:-1]]), torch.cat([b[-1:], b[:-1]])


def _mean_of_everything(weight_p, bias_p, init, profile=None, profiles=None):
    if init == "mean":
        w_row, b_row = weight_p.mean().expand_as(weight_p[0]), bias_p.mean().expand_as(bias_p[0])
        return torch.cat([weight_p, w_row[None]]), torch.cat([bias_p, b_row[None]])
    return reference_add_scenario_slice(weight_p, bias_p, init, profile, profiles)


def _nearest_by_distance(weight_p, bias_p, init, profile=None, profiles=None):
    index = None if profiles is None else int((profiles - profile).norm(dim=1).argmin())
    return _with_index(weight_p, bias_p, init, index)


def _nearest_by_dot_product(weight_p, bias_p, init, profile=None, profiles=None):
    index = None if profiles is None else int((profiles @ profile).argmax())
    return _with_index(weight_p, bias_p, init, index)


def _least_similar(weight_p, bias_p, init, profile=None, profiles=None):
    similarity = None if profiles is None else F.cosine_similarity(profiles, profile[None], dim=1)
    return _with_index(
        weight_p, bias_p, init, None if similarity is None else int(similarity.argmin())
    )


DIAGNOSES = (
    (_shared_zeros, "W_p multiplies the shared W element-wise: the neutral slice is ones "
     "(W ⊙ 1 = W, b_p = 0); zeros switch the new scenario's layer off"),
    (_prepended, "append the new slice at the end (index S): the trained scenarios keep their ids, "
     "so their rows must not move"),
    (_mean_of_everything, "average the S trained slices element-wise, weight_p.mean(dim=0), not "
     "every number at once"),
    (_nearest_by_distance, "'nearest' means the most cosine-similar profile (its direction), not "
     "the smallest Euclidean distance: profiles differ in length"),
    (_nearest_by_dot_product, "a plain dot product favours long profiles: divide by both norms "
     "(cosine similarity) before taking the argmax"),
    (_least_similar, "you copied the least similar scenario: take the argmax of the cosine "
     "similarity, not the argmin"),
)  # fmt: skip


def _trained(g: torch.Generator, s: int, d_in: int, d_out: int) -> dict[str, Tensor]:
    """weight_p around 1 and bias_p around 0, as a trained STAR layer has them."""
    return {
        "weight_p": 1.0 + 0.5 * torch.randn(s, d_in, d_out, generator=g),
        "bias_p": 0.1 * torch.randn(s, d_out, generator=g),
    }


def _from_star_linear(seed: int) -> tuple[dict[str, Tensor | str], tuple[Tensor, Tensor]]:
    """Inputs from a real StarLinear (5 trained scenarios) and its own add_scenario's result."""
    with torch.random.fork_rng(), torch.no_grad():  # the caller's random state is left alone
        torch.manual_seed(seed)
        layer = StarLinear(5, 6, 3)
        layer.weight_p.add_(0.5 * torch.randn_like(layer.weight_p))  # as if trained
        layer.bias_p.add_(0.1 * torch.randn_like(layer.bias_p))
        profiles, profile = torch.randn(5, 16), torch.randn(16)
        kwargs = {
            "weight_p": layer.weight_p.detach().clone(),
            "bias_p": layer.bias_p.detach().clone(),
            "init": "nearest",
            "profile": profile,
            "profiles": profiles,
        }
        layer.add_scenario("nearest", nearest=nearest_scenario(profile, profiles))
        return kwargs, (layer.weight_p.detach().clone(), layer.bias_p.detach().clone())


def cases() -> list[Case]:
    """The hidden cases (seeded)."""
    g = torch.Generator().manual_seed(12)
    # new profile [1, 0]; by cosine the nearest is 0, by distance 1, by dot product 2; 3 is the least
    profiles = torch.tensor([[2.0, 0.2], [0.6, 0.3], [20.0, 15.0], [-1.0, 0.1]])
    specs = [
        ("shared: the new scenario is the shared layer alone", {**_trained(g, 3, 4, 2),
         "init": "shared", "profile": None, "profiles": None},
         "W_p = 1 and b_p = 0 for the new slice; append it after the trained ones"),
        ("mean of 3 trained slices", {**_trained(g, 3, 4, 2), "init": "mean", "profile": None,
         "profiles": None}, "the new slice is weight_p.mean(dim=0), bias_p.mean(dim=0)"),
        ("nearest: 4 scenarios, 2-d profiles of unequal length", {**_trained(g, 4, 3, 2),
         "init": "nearest", "profile": torch.tensor([1.0, 0.0]), "profiles": profiles},
         "cosine similarity: F.cosine_similarity(profiles, profile[None], dim=1).argmax()"),
    ]  # fmt: skip
    out = [
        Case(name, kw, reference_add_scenario_slice(**kw), hint, DIAGNOSES)
        for name, kw, hint in specs
    ]
    kwargs, expected = _from_star_linear(0)
    torch.testing.assert_close(reference_add_scenario_slice(**kwargs), expected)  # mtrec agrees
    hint = "the same rule on a StarLinear's weight_p and bias_p, with 16-d profiles"
    out.append(Case("a real StarLinear, init='nearest'", kwargs, expected, hint, DIAGNOSES))
    return out


def check_add_scenario_slice(student: Callable[..., tuple[Tensor, Tensor]]) -> bool:
    """Check ``student(weight_p, bias_p, init, profile, profiles) -> (weight_p, bias_p)``."""
    return run_cases("a new scenario's STAR slice", student, cases())
