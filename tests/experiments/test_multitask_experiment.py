"""Notebook 06's experiment: preparation without leaks, a tiny run, verdicts, rows read back."""

import numpy as np
import pandas as pd
import pytest

from mtrec.experiments import multitask
from mtrec.reporting.store import quality_rows, upsert


def _frame(n=400, seed=0):
    rng = np.random.default_rng(seed)
    color = rng.choice(["red", "blue", "green"], n)
    size = rng.normal(10, 3, n)
    a = ((color == "red") ^ (rng.random(n) < 0.1)).astype(int)
    b = ((size > 10) ^ (rng.random(n) < 0.1)).astype(int)
    return pd.DataFrame({"color": color, "size": size, "a": a, "b": b})


def test_prepare_fits_scalers_on_train_only():
    frame = _frame()
    features, train, valid, test = multitask.prepare(frame, ["a", "b"], ["color"], ["size"])
    assert [f.name for f in features] == ["color", "size"]
    assert len(train["labels"]) + len(valid["labels"]) + len(test["labels"]) == len(frame)
    assert abs(float(train["size"].mean())) < 1e-4  # standardised with training statistics
    assert train["labels"].shape[1] == 2


def test_run_and_balancing_on_a_tiny_dataset():
    data = {"toy": (["a", "b"], multitask.prepare(_frame(), ["a", "b"], ["color"], ["size"]))}
    frame, trained = multitask.run(data, seeds=[0, 1], epochs=1)
    assert set(frame.model) == {"single_task", "shared_bottom", "mmoe", "ple"}
    assert len(frame) == 2 * 4 * 2 and frame.auc.between(0, 1).all()
    assert ("toy", "mmoe", 1) in trained
    balance, weights = multitask.run_balancing(data["toy"][1], ["a", "b"], seeds=[0], epochs=1)
    assert set(balance.weighting) == set(multitask.WEIGHTINGS)
    assert all(w[0].shape == (2,) for w in weights.values())


def test_training_is_reproducible():
    data = multitask.prepare(_frame(), ["a", "b"], ["color"], ["size"])
    make = multitask.builders(data[0], 2)["mmoe"]
    assert (
        multitask.train(make, data, epochs=1, seed=3)[1]
        == multitask.train(make, data, epochs=1, seed=3)[1]
    )


def test_verdicts_need_a_difference_above_the_seed_std():
    rows = pd.DataFrame(
        [("d", "single_task", "t", 0.80, 0.01), ("d", "mmoe", "t", 0.75, 0.01),
         ("d", "ple", "t", 0.805, 0.01), ("d", "shared_bottom", "t", 0.83, 0.02)],
        columns=["dataset", "model", "task", "auc", "std"],
    )  # fmt: skip
    verdicts = multitask.transfer_verdicts(rows).set_index("model")["verdict"]
    assert verdicts.to_dict() == {"mmoe": "negative transfer", "ple": "no difference",
                                  "shared_bottom": "positive transfer"}  # fmt: skip


def test_recorded_reads_the_rows_back(tmp_path, monkeypatch):
    monkeypatch.setenv("MTREC_WRITE_RESULTS", "1")
    path = tmp_path / "quality.csv"
    from mtrec.reporting.store import QUALITY_COLUMNS, QUALITY_KEY

    rows = pd.concat([quality_rows(dataset="adult", model="mmoe", task="income_50k",
                                   metrics={"auc": [0.85, 0.86]}),
                      quality_rows(dataset="adult", model="star", task="x",
                                   metrics={"auc": [0.5, 0.6]})])  # fmt: skip
    upsert(path, rows, QUALITY_COLUMNS, QUALITY_KEY)
    back = multitask.recorded(path)
    assert back[["model", "task", "seeds"]].values.tolist() == [["mmoe", "income_50k", 2]]
    assert back.auc.iloc[0] == pytest.approx(0.855)
