"""mtrec.reporting.figures_system: every diagram spec draws, with arrows between known boxes."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import pytest

from mtrec.reporting import figures_system
from mtrec.reporting.diagram import draw_diagram

SPECS = [figures_system.distillation_diagram, figures_system.timing_diagram,
         figures_system.cpu_time_diagram, figures_system.allocator_diagram,
         figures_system.serving_diagram,
         figures_system.star_transfer_diagram, figures_system.kg_diagram,
         figures_system.cascade_diagram]  # fmt: skip


@pytest.mark.parametrize("spec", SPECS, ids=lambda f: f.__name__)
def test_each_spec_draws(spec):
    boxes, arrows = spec()
    assert all(a[0] in boxes and a[1] in boxes for a in arrows)
    fig = draw_diagram(boxes, arrows, spec.__name__)
    assert fig.axes
    plt.close(fig)


def test_the_serving_diagram_shows_every_stage_in_order():
    _, arrows = figures_system.serving_diagram()
    chain = [arrows[0][0]] + [a[1] for a in arrows]
    assert chain == ["query", "encoder", "router", "tasks", "models", "fusion", "dedup", "mmr",
                     "explain", "out"]  # fmt: skip
