"""Every diagram spec of notebooks 04, 06 and 07 draws (its arrows name existing boxes)."""

import matplotlib.pyplot as plt
import pytest

from mtrec.reporting import figures_models
from mtrec.reporting.diagram import draw_diagram

SPECS = [figures_models.feature_extraction_spec, figures_models.two_tower_spec,
         figures_models.content_cf_hybrid_spec, *[
             lambda s=s: s for s in figures_models.multitask_specs()]]  # fmt: skip


@pytest.mark.parametrize("make", SPECS)
def test_spec_draws(make):
    boxes, arrows, title = make()
    assert title and boxes and arrows
    fig = draw_diagram(boxes, arrows, title)
    assert fig.axes
    plt.close(fig)


def test_multitask_specs_name_the_four_models():
    titles = [title for _, _, title in figures_models.multitask_specs()]
    assert titles == ["Shared-Bottom", "MMoE", "PLE (one CGC level)", "ESMM"]
