"""check_add_scenario_slice: its reference is mtrec's, and its cases tell the known mistakes apart.

Every known mistake being named, and the untouched exercise saying "not implemented yet", are
checked for all exercises in tests/test_exercises.py.
"""

import torch

from mtrec.exercises import new_scenario
from mtrec.nn.scenario import StarLinear


def test_the_reference_passes(capsys):
    assert new_scenario.check_add_scenario_slice(new_scenario.reference_add_scenario_slice)
    assert "All 4 cases passed" in capsys.readouterr().out


def test_the_hand_case_separates_cosine_distance_and_dot_product():
    case = new_scenario.cases()[2]
    profile, profiles = case.kwargs["profile"], case.kwargs["profiles"]
    cosine = torch.nn.functional.cosine_similarity(profiles, profile[None], dim=1)
    picks = {
        int(cosine.argmax()),
        int((profiles - profile).norm(dim=1).argmin()),
        int((profiles @ profile).argmax()),
        int(cosine.argmin()),
    }
    assert len(picks) == 4  # each wrong rule copies a different slice


def test_the_reference_is_star_linear_add_scenario():
    torch.manual_seed(0)
    for init in ("shared", "mean"):
        layer = StarLinear(3, 4, 2)
        with torch.no_grad():
            layer.weight_p.add_(torch.randn_like(layer.weight_p))
        w, b = new_scenario.reference_add_scenario_slice(
            layer.weight_p.detach(), layer.bias_p.detach(), init
        )
        layer.add_scenario(init)
        torch.testing.assert_close((w, b), (layer.weight_p.detach(), layer.bias_p.detach()))
