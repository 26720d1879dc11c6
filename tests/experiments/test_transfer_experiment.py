"""mtrec.experiments.transfer: the tables and curves built from per-seed rows and from the CSV."""

import numpy as np
import pandas as pd
import torch

from mtrec.experiments import runner
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


def test_recorded_reads_back_the_runners_rows(tmp_path):
    per_seed = experiment.tidy_rows(_per_seed(), "Jackets")
    assert set(per_seed.model) == {f"star-{s}" for s in _per_seed().strategy}
    assert "recommended@n=16" in set(per_seed.task) and set(per_seed.metric) == {"auc"}
    rows = runner.summarise(per_seed.assign(dataset="clothing"))
    assert set(rows.seeds) == {2} and set(rows.scenario) == {"Jackets"}
    path = tmp_path / "quality.csv"
    rows[QUALITY_COLUMNS].to_csv(path, index=False)
    back = experiment.recorded("Jackets", path)
    assert len(back) == len(rows) and set(back.n) == {"0", "16", "64", "all"}
    np.testing.assert_allclose(back.set_index(["strategy", "n"]).auc["scratch", "64"], 0.6)
    assert experiment.recorded("Dresses", path).empty  # another held-out department's rows


def test_main_runs_the_seeds_and_writes_nothing_by_default(monkeypatch, capsys):
    """The runner's path end to end, with a stand-in for the (minutes-long) training."""
    monkeypatch.delenv("MTREC_WRITE_RESULTS", raising=False)
    threads = torch.get_num_threads()
    frame = _per_seed()
    monkeypatch.setattr(experiment, "_data", lambda held_out: held_out)
    monkeypatch.setattr(experiment, "run_seed",
                        lambda data, seed: frame[frame.seed == 0].assign(seed=seed))  # fmt: skip
    try:
        table = experiment.main(["--seeds", "0", "1", "2", "--held-out", "Dresses"])
    finally:
        torch.set_num_threads(threads)
    out = capsys.readouterr().out
    assert "[transfer] 3 seeds in" in out and "written to nowhere" in out
    assert "0.800 ± 0.000" in out  # the strategy × n summary printed after the rows
    assert set(table.dataset) == {"clothing"} and set(table.scenario) == {"Dresses"}
    assert set(table.seeds) == {3} and set(table.metric) == {"auc"}
    assert len(table) == frame[frame.seed == 0].shape[0]  # one row per strategy × n × task
