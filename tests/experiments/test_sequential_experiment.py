"""mtrec.experiments.sequential: the runner on a tiny synthetic split, the tables and the verdicts."""

import numpy as np
import pandas as pd
import pytest

from mtrec.data import leave_last_out
from mtrec.data.sequences import build_sequences
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


def test_recorded_reads_back_what_record_writes(tmp_path, monkeypatch):
    per_seed = pd.DataFrame({"model": ["popularity", "SASRec", "SASRec"], "seed": [0, 0, 1],
                             "hr@10": [0.05, 0.15, 0.17], "ndcg@10": [0.02, 0.08, 0.09]})  # fmt: skip
    written = []
    monkeypatch.setattr(experiment, "record_quality", lambda rows: written.append(rows) or True)
    assert experiment.record(per_seed)
    path = tmp_path / "quality.csv"
    written[0][QUALITY_COLUMNS].to_csv(path, index=False)
    table = experiment.recorded(path)
    assert list(table.index) == ["popularity", "SASRec"]
    assert table.loc["SASRec", "hr@10"] == pytest.approx(0.16)
    assert table.loc["SASRec", "hr@10 std"] == pytest.approx(np.std([0.15, 0.17], ddof=1))
    assert table.loc["SASRec", "seeds"] == 2
