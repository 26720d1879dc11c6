"""Notebook 05's reporting pieces: routing-cost ratios, the quoted context, the diagrams."""

import matplotlib
import pandas as pd
import pytest

from mtrec.reporting import multiscenario as ms
from mtrec.reporting.diagram import draw_diagram

matplotlib.use("Agg")


def _row(model, ms_p50, device_name="cpu box"):
    return {"model": model, "device": "cpu", "device_name": device_name, "ms_p50": ms_p50}


def test_routing_costs_are_ratios_of_the_s128_and_s2_rows():
    frame = pd.DataFrame([_row("m fwd+bwd S=2", 2.0), _row("m fwd+bwd S=128", 3.0),
                          _row("m S=2", 4.0), _row("m S=128", 10.0),
                          _row("every-tower fwd+bwd S=2", 1.0),
                          _row("every-tower fwd+bwd S=128", 64.0), _row("mmoe", 1.0)])  # fmt: skip
    costs = ms.routing_costs(frame).set_index("model")
    assert list(costs.index) == ["m", "every-tower"]
    assert costs.loc["m", "fwd+bwd ratio"] == pytest.approx(1.5)
    assert costs.loc["m", "train step ratio"] == pytest.approx(2.5)
    assert costs.loc["every-tower", "fwd+bwd ratio"] == 64 and costs.machine.eq("cpu box").all()
    assert pd.isna(costs.loc["every-tower", "train step ratio"])  # no train-step rows: NaN


def test_published_context_says_not_comparable_and_quotes_only_what_is_there():
    protocol, numbers = ms.load_published()
    assert {"item", "scenario_wise_rec_ml1m", "mtrec_ml100k_age", "source"} <= set(protocol)
    assert protocol.source.notna().all()  # every protocol line names where it was read
    text = ms.published_markdown()
    assert "not comparable" in text and "arXiv:2412.17374" in text
    if numbers.empty:
        assert ms.NOT_QUOTED in text
    else:
        assert numbers.source.notna().all()


@pytest.mark.parametrize("spec", [ms.router_spec(), ms.star_spec(), ms.scenario_moe_spec(),
                                  *ms.new_model_specs()])  # fmt: skip
def test_every_diagram_spec_draws(spec):
    fig = draw_diagram(*spec)
    assert fig.axes and spec[2]
    matplotlib.pyplot.close(fig)
