"""Notebook 06's experiment: a tiny run on a task, the runner's seed rows, verdicts, rows read back."""

import argparse

import pandas as pd
import pytest
import torch

from mtrec.data.synthetic import random_batch, tiny_features
from mtrec.data.tasks import ClickTask
from mtrec.experiments import multitask, runner
from mtrec.reporting.store import quality_rows, upsert


def _task(n: int = 400) -> ClickTask:
    def part(seed: int) -> dict:
        batch = random_batch(tiny_features(), n // 4, num_tasks=2, num_scenarios=1, seed=seed)
        labels = torch.stack([batch["user"] % 2, (batch["item"] > 10).long()], 1).float()
        return {**batch, "labels": labels}

    return ClickTask("toy", tiny_features(), ("a", "b"), ("all",), part(0), part(1), part(2), "")


def test_run_and_balancing_on_a_tiny_dataset():
    data = {"toy": _task()}
    frame, trained = multitask.run(data, seeds=[0, 1], epochs=1)
    assert set(frame.model) == {"single_task", "shared_bottom", "mmoe", "ple"}
    assert len(frame) == 2 * 4 * 2 and frame.auc.between(0, 1).all()
    assert ("toy", "mmoe", 1) in trained
    balance, weights = multitask.run_balancing(data["toy"], seeds=[0], epochs=1)
    assert set(balance.weighting) == set(multitask.WEIGHTINGS)
    assert set(balance.task) == {"a", "b"}
    assert all(w[0].shape == (2,) for w in weights.values())


def test_training_is_reproducible():
    data = _task()
    make = multitask.builders(data.features, 2)["mmoe"]
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


@pytest.mark.usefixtures("one_thread")
def test_a_seed_gives_every_dataset_model_and_weighting_as_tidy_rows():
    rows = multitask.seed_rows({"clothing": _task(), "toy": _task()}, 0, epochs=1)
    assert list(rows.columns) == ["dataset", "model", "task", "metric", "value"]
    weighted = rows[rows.model.str.startswith("mmoe+")]
    assert set(weighted.model) == {f"mmoe+{kind}" for kind in multitask.WEIGHTINGS}
    assert set(weighted.dataset) == {"clothing"}  # the balancing study runs on Clothing only
    assert set(rows[rows.dataset == "toy"].model) == {"single_task", "shared_bottom", "mmoe", "ple"}
    assert len(rows) == 2 * 4 * 2 + 2 * 2 and (rows.metric == "auc").all()
    tidy = runner.tidy(multitask.EXPERIMENT, rows, seed=0)  # what the runner records
    assert not tidy.duplicated(runner.KEY).any() and set(tidy.scenario) == {"all"}


@pytest.mark.usefixtures("one_thread")
def test_main_runs_end_to_end_and_writes_nothing_by_default(monkeypatch, capsys):
    monkeypatch.delenv("MTREC_WRITE_RESULTS", raising=False)
    monkeypatch.setattr(multitask, "_data", lambda: {"clothing": _task()})
    table = multitask.main(["--seeds", "0", "1", "--epochs", "1"])
    assert "written to nowhere" in capsys.readouterr().out
    assert (table.seeds == 2).all() and len(table) == 4 * 2 + 2 * 2
    seed1 = multitask.run_seed(1, argparse.Namespace(epochs=1))  # the runner's unit
    assert set(seed1.model) == set(table.model) and seed1.value.between(0, 1).all()


def test_the_declared_task_names_are_checked(monkeypatch):
    monkeypatch.setattr(multitask, "multitask_data", lambda: {"clothing": _task()})
    with pytest.raises(ValueError, match="update multitask.TASKS"):
        multitask._data.__wrapped__()
