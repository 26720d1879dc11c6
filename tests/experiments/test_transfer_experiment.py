"""mtrec.experiments.transfer: the tables and curves built from per-seed rows and from the CSV."""

import numpy as np
import pandas as pd

from mtrec.experiments import transfer as experiment
from mtrec.reporting.store import QUALITY_COLUMNS


def _per_seed() -> pd.DataFrame:
    """Two seeds of every strategy: oracle 0.8, zero-shot 0.7, adapted 0.7 → 0.8, scratch 0.5 → 0.78."""
    rows = []
    for seed in (0, 1):
        rows += [("oracle", "all", seed, 0.8)]
        rows += [(f"zeroshot-{init}", "0", seed, 0.7) for init in experiment.ZERO_SHOT]
        for n, adapted, scratch in [("16", 0.72, 0.5), ("64", 0.77, 0.6), ("all", 0.8, 0.78)]:
            rows += [(name, n, seed, adapted) for name in experiment.ADAPTED]
            rows += [("scratch", n, seed, scratch)]
    frame = pd.DataFrame(rows, columns=["strategy", "n", "seed", "auc"])
    return frame.assign(task="recommended", rows=0)


def test_summary_curves_and_rows_to_reach():
    frame = _per_seed()
    table = experiment.summary(frame)
    assert list(table.columns) == ["0", "16", "64", "all"]
    assert table.loc["oracle", "all"] == "0.800 ± 0.000" and table.loc["scratch", "0"] == ""
    curve = experiment.curves(frame, rows_all=100)
    new = curve[curve.strategy == "finetune-new"]
    assert new.n.tolist() == [0, 16, 64, 100]  # starts from its zero-shot init at n = 0
    np.testing.assert_allclose(new.auc, [0.7, 0.72, 0.77, 0.8])
    reach = experiment.rows_to_reach(curve, 0.95)  # 0.95 × 0.8 = 0.76
    assert reach["finetune-new"] == 64 and reach["scratch"] == 100
    assert "oracle" not in reach


def test_recorded_reads_back_what_record_writes(tmp_path, monkeypatch):
    path, written = tmp_path / "quality.csv", []
    monkeypatch.setattr(experiment, "record_quality", lambda rows: written.append(rows) or True)
    assert experiment.record(_per_seed(), "Jackets")
    rows = pd.concat(written)
    assert set(rows.seeds) == {2} and "recommended@n=16" in set(rows.task)
    assert set(rows.model) == {f"star-{s}" for s in _per_seed().strategy}
    rows[QUALITY_COLUMNS].to_csv(path, index=False)
    back = experiment.recorded("Jackets", path)
    assert len(back) == len(rows) and set(back.n) == {"0", "16", "64", "all"}
    np.testing.assert_allclose(back.set_index(["strategy", "n"]).auc["scratch", "64"], 0.6)
