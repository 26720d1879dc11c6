"""mtrec.experiments.sequential: the runner on a tiny synthetic split, the tables and the verdicts."""

import functools

import numpy as np
import pandas as pd
import pytest
import torch

from mtrec.data import leave_last_out
from mtrec.data.sequences import build_sequences
from mtrec.experiments import runner
from mtrec.experiments import sequential as experiment
from mtrec.reporting.store import QUALITY_COLUMNS


@pytest.fixture(scope="module")
def seq():
    """24 users, each walking 8 steps along a ring of 12 items (the next item is predictable)."""
    rng = np.random.default_rng(0)
    rows = [(u, (start + t) % 12 + 1, t) for u, start in enumerate(rng.integers(0, 12, 24))
            for t in range(8)]  # fmt: skip
    ratings = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"])
    return build_sequences(leave_last_out(ratings), max_len=6, num_items=12)


def test_run_trains_every_model_and_reports_its_epochs(seq):
    results = experiment.run(seq, seeds=(0, 1), epochs={"SASRec": 2, "next-items enc-dec": 2})
    assert sorted(results.model.unique()) == sorted(experiment.BASELINES + experiment.TRAINED)
    trained = results[results.model.isin(experiment.TRAINED)]
    assert len(trained) == 4 and (trained.epochs <= 2).all()
    assert results[list(experiment.METRICS)].apply(lambda c: c.between(0, 1)).all().all()
    table = experiment.summary(results)
    assert table.loc["SASRec", "seeds"] == 2 and np.isnan(table.loc["popularity", "hr@10 std"])
    # the ring is learnable: co-occurrence (one step back) finds every next item
    assert table.loc["co-occurrence", "hr@10"] == pytest.approx(1.0)


def test_a_live_run_records_whether_it_reached_its_cap(seq):
    trained = experiment.train_sasrec(seq, 0, epochs=1, device="cpu")
    assert len(trained.history.epochs) == 1 and trained.stopped_early is False


def _table(a_mean, a_std, b_mean, b_std):
    return pd.DataFrame({"hr@10": [a_mean, b_mean], "hr@10 std": [a_std, b_std]},
                        index=["a", "b"])  # fmt: skip


def test_a_difference_counts_only_beyond_the_seed_std():
    assert "no difference" in experiment.verdict(_table(0.150, 0.010, 0.145, 0.002), "a", "b")
    assert "a is better" in experiment.verdict(_table(0.150, 0.002, 0.140, 0.003), "a", "b")
    assert "b is better" in experiment.verdict(_table(0.10, 0.01, 0.27, np.nan), "a", "b")
    with pytest.raises(KeyError, match="not in the table"):
        experiment.verdict(_table(0.1, 0.0, 0.1, 0.0), "a", "SASRec")


def test_recorded_reads_back_the_runners_rows(tmp_path):
    per_seed = pd.DataFrame({"model": ["popularity", "SASRec", "SASRec"], "seed": [0, 0, 1],
                             "hr@10": [0.05, 0.15, 0.17], "ndcg@10": [0.02, 0.08, 0.09]})  # fmt: skip
    ended = per_seed.assign(epochs=[0, 12, 30], stopped_early=[True, True, False])
    rows = experiment.tidy_rows(ended)
    assert len(rows) == 6 + 4 and set(rows.metric) == {*experiment.METRICS, "epochs", "at_cap"}
    at_cap = rows[rows.metric == "at_cap"].value.tolist()
    assert at_cap == [0.0, 1.0]  # only the trained model's rows; seed 1 ran into its cap
    path = tmp_path / "quality.csv"
    summary = runner.summarise(rows.assign(dataset="ml-100k", scenario="all", task="next-item"))
    summary[QUALITY_COLUMNS].to_csv(path, index=False)
    table = experiment.recorded(path)
    assert list(table.index) == ["popularity", "SASRec"]
    assert table.loc["SASRec", "hr@10"] == pytest.approx(0.16)
    assert table.loc["SASRec", "hr@10 std"] == pytest.approx(np.std([0.15, 0.17], ddof=1))
    assert table.loc["SASRec", "seeds"] == 2 and table.loc["popularity", "seeds"] == 1
    assert table.loc["SASRec", ["epochs", "at_cap"]].tolist() == [21.0, 0.5]
    assert table.loc["popularity", ["epochs", "at_cap"]].isna().all()  # not trained
    pd.testing.assert_frame_equal(experiment.per_seed_table(rows), per_seed, check_dtype=False)


def test_main_runs_end_to_end_and_writes_nothing_by_default(seq, monkeypatch, capsys):
    """Three seeds on the ring, 2 epochs each: baselines on seed 0 only, verdicts printed."""
    monkeypatch.delenv("MTREC_WRITE_RESULTS", raising=False)
    monkeypatch.setattr(experiment, "_sequences", lambda: seq)
    for name, train in experiment.TRAINERS.items():
        monkeypatch.setitem(experiment.TRAINERS, name, functools.partial(train, epochs=2))
    threads = torch.get_num_threads()
    try:
        table = experiment.main(["--seeds", "0", "1", "2"])
    finally:
        torch.set_num_threads(threads)
    out = capsys.readouterr().out
    assert "[sequential] 3 seeds in" in out and "written to nowhere" in out
    assert "SASRec vs popularity:" in out
    seeds = table.groupby("model").seeds.max()
    assert seeds["popularity"] == 1 and seeds["SASRec"] == 3  # a baseline is run once
    assert set(table.metric) == {*experiment.METRICS, "epochs", "at_cap"}
    assert set(table.task) == {"next-item"}
    assert table[table.model == "popularity"]["std"].isna().all()
