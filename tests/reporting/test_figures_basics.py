"""figures_basics and figures_generative: every diagram spec draws, its arrows join existing boxes."""

import matplotlib.pyplot as plt
import pytest

from mtrec.reporting import figures_basics, figures_generative
from mtrec.reporting.diagram import draw_diagram


@pytest.mark.parametrize(
    ("module", "name"),
    [(m, name) for m in (figures_basics, figures_generative) for name in m.__all__],
)
def test_each_spec_draws(module, name):
    boxes, arrows, title = getattr(module, name)()
    assert title and len(boxes) >= 4 and arrows
    assert {a[0] for a in arrows} | {a[1] for a in arrows} <= set(boxes)
    fig = draw_diagram(boxes, arrows, title)
    assert len(fig.axes[0].patches) == len(boxes) + len(arrows)
    plt.close(fig)


def test_multi_head_draws_one_column_per_head():
    boxes, _, title = figures_basics.multi_head(4)
    assert "H = 4" in title and sum(key.startswith("a") for key in boxes) == 4
