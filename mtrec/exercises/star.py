"""Exercise 3: STAR's star-topology layer: shared ⊙ scenario-specific weights.

The student writes ``star_linear(x, scenario_ids, weight, bias, weight_p, bias_p) -> (B, D_out)``:
x (B, D_in), scenario_ids (B,) long, weight (D_in, D_out) shared, bias (D_out,) shared,
weight_p (S, D_in, D_out) and bias_p (S, D_out) per scenario; row b uses
``x_b (W ⊙ W_p) + b + b_p`` with p = scenario_ids[b]. One case uses a real
:class:`mtrec.models.scenario.star.StarLinear`. Reference: Sheng et al., "One Model to Serve All: Star
Topology Adaptive Recommender for Multi-Domain CTR Prediction", CIKM 2021.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from mtrec.exercises._harness import Case, run_cases


def reference_star_linear(
    x: Tensor, scenario_ids: Tensor, weight: Tensor, bias: Tensor, weight_p: Tensor, bias_p: Tensor
) -> Tensor:
    """(B, D_out): each row through its own scenario's W ⊙ W_p (gathered, one bmm)."""
    weights = weight * weight_p[scenario_ids]  # (B, D_in, D_out)
    return torch.bmm(x.unsqueeze(1), weights).squeeze(1) + bias + bias_p[scenario_ids]


def _matmul_combination(x, scenario_ids, weight, bias, weight_p, bias_p):
    weights = weight @ weight_p[scenario_ids]
    return torch.bmm(x.unsqueeze(1), weights).squeeze(1) + bias + bias_p[scenario_ids]


def _sum_combination(x, scenario_ids, weight, bias, weight_p, bias_p):
    weights = weight + weight_p[scenario_ids]
    return torch.bmm(x.unsqueeze(1), weights).squeeze(1) + bias + bias_p[scenario_ids]


def _first_scenario(x, scenario_ids, weight, bias, weight_p, bias_p):
    return reference_star_linear(x, torch.zeros_like(scenario_ids), weight, bias, weight_p, bias_p)


def _no_scenario_bias(x, scenario_ids, weight, bias, weight_p, bias_p):
    return reference_star_linear(x, scenario_ids, weight, bias, weight_p, torch.zeros_like(bias_p))


def _shared_only(x, scenario_ids, weight, bias, weight_p, bias_p):
    return x @ weight + bias + bias_p[scenario_ids]


DIAGNOSES = (
    (_matmul_combination, "W and W_p are combined element-wise (W * W_p), not multiplied (@)"),
    (_sum_combination, "STAR multiplies the weights element-wise (W * W_p); the biases add"),
    (_first_scenario, "every row used scenario 0's weights: gather weight_p[scenario_ids]"),
    (_no_scenario_bias, "add the scenario bias too: + bias + bias_p[scenario_ids]"),
    (_shared_only, "the scenario-specific weights were left out: use W * W_p[scenario_ids]"),
)


def _from_star(seed: int) -> dict[str, Tensor]:
    """Parameters (randomised away from their init) of a real StarLinear and its output."""
    with torch.random.fork_rng():  # the learner's random state is left alone
        return _build_star(seed)


def _build_star(seed: int) -> dict[str, Tensor]:
    from mtrec.nn.scenario import StarLinear

    torch.manual_seed(seed)
    layer = StarLinear(3, 5, 4)
    with torch.no_grad():
        for p in layer.parameters():
            p.add_(0.3 * torch.randn_like(p))
    x, ids = torch.randn(6, 5), torch.tensor([2, 0, 1, 1, 2, 0])
    kwargs = {"x": x, "scenario_ids": ids, "weight": layer.weight.detach(),
              "bias": layer.bias.detach(), "weight_p": layer.weight_p.detach(),
              "bias_p": layer.bias_p.detach()}  # fmt: skip
    with torch.no_grad():
        torch.testing.assert_close(reference_star_linear(**kwargs), layer(x, ids))
    return kwargs


def cases() -> list[Case]:
    """The hidden cases (seeded)."""
    g = torch.Generator().manual_seed(2)

    def make(b: int, d_in: int, d_out: int, s: int, ids: list[int]) -> dict[str, Tensor]:
        return {
            "x": torch.randn(b, d_in, generator=g),
            "scenario_ids": torch.tensor(ids),
            "weight": torch.randn(d_in, d_out, generator=g),
            "bias": torch.randn(d_out, generator=g),
            "weight_p": torch.randn(s, d_in, d_out, generator=g),
            "bias_p": torch.randn(s, d_out, generator=g),
        }

    specs = [
        ("one scenario", make(3, 4, 2, 1, [0, 0, 0]),
         "out = x @ (weight * weight_p[0]) + bias + bias_p[0]"),
        ("square layer, rows in scenario 1 only", make(4, 3, 3, 2, [1, 1, 1, 1]),
         "with D_in == D_out, '@' and '*' both run: STAR's combination is element-wise '*'"),
        ("three scenarios mixed in a batch", make(5, 4, 3, 3, [2, 0, 1, 0, 2]),
         "gather per row: weight_p[scenario_ids] is (B, D_in, D_out); then torch.bmm"),
        ("weights of a real mtrec StarLinear", _from_star(4),
         "same formula; compare with mtrec.models.scenario.star.StarLinear"),
    ]  # fmt: skip
    return [
        Case(name, kw, reference_star_linear(**kw), hint, DIAGNOSES) for name, kw, hint in specs
    ]


def check_star_linear(student: Callable[..., Tensor]) -> bool:
    """Check ``student(x, scenario_ids, weight, bias, weight_p, bias_p) -> (B, D_out)``."""
    return run_cases("STAR's shared ⊙ scenario-specific layer", student, cases())
