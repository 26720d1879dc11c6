"""The multi-scenario tables: significance marks, model order, cost table."""

import numpy as np
import pandas as pd

from mtrec.reporting.multiscenario import (
    multiscenario_markdown,
    scenario_table,
    significance,
    verdicts,
)
from mtrec.reporting.store import quality_rows


def _per_seed() -> pd.DataFrame:
    rows = []
    for seed in range(5):
        base = 0.75 + 0.003 * np.sin(seed)
        for scenario, lift in [("all", 0.01), ("young", 0.0)]:
            for model, value in [("sb+scenario", base), ("star", base + lift),
                                 ("pepnet", base + (-1) ** seed * 0.004)]:  # fmt: skip
                rows.append(("ml-100k-age", model, scenario, "like", "auc", seed, value, "test"))
    return pd.DataFrame(rows, columns=["dataset", "model", "scenario", "task", "metric", "seed",
                                       "value", "split"])  # fmt: skip


def _quality(per_seed: pd.DataFrame) -> pd.DataFrame:
    return pd.concat(
        quality_rows(dataset=d, model=m, scenario=s, task=t, metrics={"auc": g.value})
        for (d, m, s, t), g in per_seed.groupby(["dataset", "model", "scenario", "task"])
    )


def test_only_consistent_differences_are_marked():
    per_seed = _per_seed()
    table = scenario_table(_quality(per_seed), significance(per_seed), dataset="ml-100k-age",
                           task="like", metric="auc").set_index("model")  # fmt: skip
    assert list(table.index) == ["sb+scenario (baseline)", "star", "pepnet"]
    assert list(table.columns) == ["all", "young"]
    assert table.loc["star", "all"].endswith("▲▲")  # +0.01 on every seed
    assert "▲" not in table.loc["star", "young"]  # identical to the baseline
    assert "▲" not in table.loc["pepnet", "all"] and "▼" not in table.loc["pepnet", "all"]
    found = verdicts(significance(per_seed))
    assert found[["model", "scenario", "verdict"]].values.tolist() == [["star", "all", "beats"]]


def test_markdown_with_cost_and_empty_inputs():
    per_seed = _per_seed()
    cost = pd.DataFrame({"dataset": ["ml-100k-age"] * 2, "model": ["star", "sb+scenario"],
                         "parameters": [1000, 2000], "train_s_per_epoch": [1.0, 0.5],
                         "infer_us_per_row": [3.0, 2.0]})  # fmt: skip
    text = multiscenario_markdown(_quality(per_seed), per_seed, cost)
    assert "#### ml-100k-age" in text and "**like · auc**" in text and "| 2,000 |" in text
    assert text.index("| sb+scenario | 2,000") < text.index("| star | 1,000")
    empty = multiscenario_markdown(_quality(per_seed).iloc[:0], per_seed.iloc[:0], cost.iloc[:0])
    assert "No multi-scenario results" in empty
