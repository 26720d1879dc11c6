import pandas as pd
import pytest

from mtrec.experiments import generative, sequential, tuning


def test_coordinate_search_moves_one_setting_at_a_time_and_keeps_the_best():
    calls = []

    def score(settings):
        calls.append(dict(settings))
        return -abs(settings["a"] - 2) - abs(settings["b"] - 30), 5

    table = tuning.coordinate_search({"a": (1, 2, 3), "b": (10, 30)}, score)
    assert calls[0] == {"a": 1, "b": 10}  # the first values are the start
    assert {"a": 2, "b": 30} in calls and len(calls) == 4  # (2, 10) is not run twice
    best = table[table.picked]
    assert len(best) == 1 and best.iloc[0][["a", "b"]].tolist() == [2, 30]
    assert set(table.columns) >= {"valid", "epochs", "seconds", "picked"}


def test_ties_keep_the_earlier_value():
    table = tuning.coordinate_search({"a": (1, 2)}, lambda s: (0.5, 1))
    assert table[table.picked].a.tolist() == [1]


def test_the_experiments_use_the_settings_picked_on_validation():
    sasrec = tuning.picked("sasrec")
    assert (sequential.D_MODEL, sequential.SASREC_LR, sequential.DROPOUT, sequential.HEADS) == (
        sasrec["d_model"], pytest.approx(sasrec["lr"]), pytest.approx(sasrec["dropout"]),
        sasrec["heads"],
    )  # fmt: skip
    p5 = tuning.picked("p5")
    assert (generative.D_MODEL, generative.LR, generative.DROPOUT, generative.HEADS,
            generative.POSITIONS) == (p5["d_model"], pytest.approx(p5["lr"]),
                                      pytest.approx(p5["dropout"]), p5["heads"], p5["positions"])  # fmt: skip


def test_picked_names_the_command_when_the_table_lacks_a_model(tmp_path):
    path = tmp_path / "tuning.csv"
    pd.DataFrame([{"model": "sasrec", "picked": True, "d_model": 64}]).to_csv(path, index=False)
    with pytest.raises(ValueError, match="mtrec run tuning"):
        tuning.picked("p5", path)


def test_recorded_lists_one_models_runs_best_first():
    table = tuning.recorded("sasrec")
    assert list(table.columns[:4]) == list(tuning.SPACES["sasrec"])
    assert table["valid_ndcg@10"].is_monotonic_decreasing
    assert table.picked.sum() == 1
